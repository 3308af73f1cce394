//! Hostile clients over the real edges: sizes past every limit, camera sources outside the
//! media roots, calls without or with the wrong token, metric labels minted by clients, and
//! repository paths that lead out. Each gets a typed error; the server stays up and keeps
//! serving.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use tonic::Code;
use walkout::api::proto::inference as kpb;
use walkout::api::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use walkout::api::proto::walkout as pb;
use walkout::api::proto::walkout::vision_client::VisionClient;
use walkout::app::Running;
use walkout::serve::config::{Secret, ServerConfig};

const MODEL: &str = "movenet-multipose";
const ADMIN: &str = "admin-0123456789abcdef";
const INFER: &str = "infer-0123456789abcdef";

fn temp_repo(tag: &str) -> PathBuf {
    common::movenet_repo(&format!("hostile-{tag}"))
}

fn config(repo: &Path, tokens: bool) -> ServerConfig {
    ServerConfig {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        model_repository: repo.to_path_buf(),
        device: walkout::runtime::Device::Cpu,
        models: vec![walkout::serve::config::ModelServeConfig { name: MODEL.into(), device: None, input_size: None, batching: None }],
        admin_token: tokens.then(|| Secret(ADMIN.into())),
        infer_token: tokens.then(|| Secret(INFER.into())),
        media_roots: vec![common::root().join("data")],
        ..ServerConfig::default()
    }
}

fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

fn camera(id: &str, source: &str, url: &str) -> pb::AddCameraRequest {
    pb::AddCameraRequest { camera: Some(pb::CameraSpec { id: id.into(), source: source.into(), url: url.into(), ..Default::default() }) }
}

#[test]
fn sizes_and_sources_past_the_limits_are_refused_and_the_server_lives() {
    let repo = temp_repo("limits");
    let r = Running::start(config(&repo, false)).unwrap();
    let url = format!("http://{}", r.grpc_addr);
    r.runtime().block_on(async {
        let mut v = VisionClient::connect(url.clone()).await.unwrap();
        // a synthetic camera of 100000 x 100000 and a queue of 2^32 - 1 used to abort the server
        let mut huge = camera("huge", "synthetic", "");
        huge.camera.as_mut().unwrap().width = 100_000;
        huge.camera.as_mut().unwrap().height = 100_000;
        assert_eq!(v.add_camera(huge).await.unwrap_err().code(), Code::InvalidArgument);
        let mut deep = camera("deep", "push", "");
        deep.camera.as_mut().unwrap().queue_size = u32::MAX;
        assert_eq!(v.add_camera(deep).await.unwrap_err().code(), Code::InvalidArgument);
        for bad_id in ["", "a b", &"x".repeat(1 << 10)] {
            assert_eq!(v.add_camera(camera(bad_id, "push", "")).await.unwrap_err().code(), Code::InvalidArgument, "{bad_id:.20}");
        }
        // sources outside the media roots: the same answer whether the file exists or not
        let mut messages = Vec::new();
        for (source, u) in [
            ("video", "/etc/shadow"),
            ("video", "/etc/no-such-file"),
            ("video", "http://127.0.0.1:1/x"),
            ("video", "../etc/passwd"),
            ("synthetic", "/dev/zero"),
            ("images", "/root/*"),
        ] {
            let e = v.add_camera(camera("cam", source, u)).await.unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{source} {u}: {e}");
            assert!(!e.message().contains(u), "{u} echoed: {}", e.message());
            messages.push(e.message().to_string());
        }
        assert_eq!(messages[0], messages[1], "an existing and a missing file must read the same");
        // inside the root it works, and the url is the canonical path
        let ok = v.add_camera(camera("vtest", "video", "vtest.avi")).await.unwrap().into_inner();
        assert!(ok.spec.unwrap().url.ends_with("data/vtest.avi"));
        v.remove_camera(pb::RemoveCameraRequest { id: "vtest".into() }).await.unwrap();
        // the server still serves
        let cams = v.list_cameras(pb::ListCamerasRequest {}).await.unwrap().into_inner();
        assert!(cams.cameras.is_empty());
    });
    assert!(r.server.is_ready());
    // frames rejected for an invalid camera id make no metric series of that id
    r.server.reject_frame(&"z".repeat(4096), "invalid");
    let metrics = r.server.metrics.render();
    assert!(!metrics.contains(&"z".repeat(64)) && metrics.contains("camera=\"unregistered\""));
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(repo);
}

#[test]
fn tokens_and_roles_guard_both_edges() {
    let repo = temp_repo("auth");
    let r = Running::start(config(&repo, true)).unwrap();
    let url = format!("http://{}", r.grpc_addr);
    r.runtime().block_on(async {
        let mut k = GrpcInferenceServiceClient::connect(url.clone()).await.unwrap();
        let unload = || kpb::RepositoryModelUnloadRequest { model_name: MODEL.into(), ..Default::default() };
        assert_eq!(k.repository_model_unload(with_token(unload(), None)).await.unwrap_err().code(), Code::Unauthenticated);
        assert_eq!(
            k.repository_model_unload(with_token(unload(), Some("wrong-token-0123456789"))).await.unwrap_err().code(),
            Code::Unauthenticated
        );
        assert_eq!(k.repository_model_unload(with_token(unload(), Some(INFER))).await.unwrap_err().code(), Code::PermissionDenied);
        // nothing changed: the model still serves, for the infer role
        let ready =
            k.model_ready(with_token(kpb::ModelReadyRequest { name: MODEL.into(), version: String::new() }, Some(INFER))).await.unwrap();
        assert!(ready.into_inner().ready);
        let mut v = VisionClient::connect(url.clone()).await.unwrap();
        assert_eq!(v.add_camera(with_token(camera("c", "push", ""), Some(INFER))).await.unwrap_err().code(), Code::PermissionDenied);
        v.add_camera(with_token(camera("c", "push", ""), Some(ADMIN))).await.unwrap();
        assert_eq!(v.list_cameras(with_token(pb::ListCamerasRequest {}, None)).await.unwrap_err().code(), Code::Unauthenticated);
        // shapes that would take the model for minutes, or that it cannot run, are refused
        // up front, naming the input and not the graph's nodes
        for shape in [vec![1i64, 1, 1_000_000, 3], vec![1, 33, 17, 3], vec![1, 1024, 1024, 3]] {
            let n: i64 = shape.iter().product();
            let req = kpb::ModelInferRequest {
                model_name: MODEL.into(),
                inputs: vec![kpb::model_infer_request::InferInputTensor {
                    name: "input".into(),
                    datatype: "INT32".into(),
                    shape: shape.clone(),
                    ..Default::default()
                }],
                raw_input_contents: vec![vec![0u8; n as usize * 4]],
                ..Default::default()
            };
            let t0 = std::time::Instant::now();
            let e = k.model_infer(with_token(req, Some(INFER))).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{shape:?}: {e}");
            assert!(t0.elapsed().as_secs_f64() < 5.0 && e.message().contains("input"), "{shape:?}: {e}");
        }
        // `name:01` is the same model, not a second copy
        k.repository_model_load(with_token(
            kpb::RepositoryModelLoadRequest { model_name: format!("{MODEL}:01"), ..Default::default() },
            Some(ADMIN),
        ))
        .await
        .unwrap();
        assert_eq!(r.server.model_names(), vec![MODEL.to_string()]);
        // the admin unloads; with nothing loaded the server is not ready
        k.repository_model_unload(with_token(unload(), Some(ADMIN))).await.unwrap();
    });
    assert!(!r.server.is_ready(), "/readyz must say no when nothing is loaded");
    let (code, _) = common::http_get(r.http_addr, "/metrics");
    assert_eq!(code, 401);
    let (code, _) = common::http_get(r.http_addr, "/healthz");
    assert_eq!(code, 200);
    let (code, _) = common::http_get(r.http_addr, "/readyz");
    assert_eq!(code, 503);
    let m = r.server.metrics.render();
    assert!(m.contains("walkout_auth_failures_total{edge=\"grpc\",reason=\"unauthenticated\"} 3"), "{m}");
    assert!(m.contains("walkout_auth_failures_total{edge=\"grpc\",reason=\"permission_denied\"} 2"), "{m}");
    assert!(m.contains("walkout_auth_failures_total{edge=\"http\",reason=\"unauthenticated\"} 1"), "{m}");
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(repo);
}

#[test]
fn without_credentials_the_server_listens_on_loopback_only() {
    let repo = temp_repo("loopback");
    let mut cfg = config(&repo, false);
    cfg.grpc_addr = "0.0.0.0:0".into();
    cfg.http_addr = "0.0.0.0:0".into();
    cfg.models.clear();
    let r = Running::start(cfg).unwrap();
    assert!(r.grpc_addr.ip().is_loopback() && r.http_addr.ip().is_loopback(), "{} {}", r.grpc_addr, r.http_addr);
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(repo);
}

#[test]
fn repository_paths_that_lead_out_are_refused() {
    let repo = temp_repo("paths");
    // a config whose file climbs out, and a TF.js shard path that does
    let evil = repo.join("evil");
    std::fs::create_dir_all(evil.join("1")).unwrap();
    let cfg = std::fs::read_to_string(repo.join(MODEL).join("config.toml")).unwrap();
    std::fs::write(
        evil.join("config.toml"),
        cfg.replace("name = \"movenet-multipose\"", "name = \"evil\"").replace("model.json", "../../../../etc/passwd"),
    )
    .unwrap();
    let shard = repo.join("shard");
    common::copy_dir(&repo.join(MODEL), &shard);
    let mj = shard.join("1/model.json");
    let text = std::fs::read_to_string(&mj).unwrap().replace("movenet-multipose.bin", "../../../../../etc/passwd");
    std::fs::write(&mj, text).unwrap();
    let r = Running::start(config(&repo, false)).unwrap();
    for name in ["evil", "shard", "../etc", "a/b"] {
        let e = r.server.load_model(name).unwrap_err();
        assert!(!e.to_string().contains("root:"), "{e}");
    }
    let e = r.server.load_model("shard").unwrap_err().to_string();
    assert!(e.contains("outside the model's folder") || e.contains("plain path"), "{e}");
    assert!(r.server.is_ready(), "the good model keeps serving");
    r.shutdown().unwrap();
    // with no model list the server loads what it finds: the broken one is reported, the
    // others serve
    let mut cfg = config(&repo, false);
    cfg.models.clear();
    let r = Running::start(cfg).expect("one broken model does not stop the server");
    assert_eq!(r.server.model_names(), vec![MODEL.to_string()]);
    let why = r.server.load_failure("shard").expect("the failure is kept for RepositoryIndex");
    assert!(why.contains("weight shard"), "{why}");
    // over HTTP: the server is ready with what loaded and names what did not; per model
    // (KServe v2 paths) the broken one is not ready, with its reason
    let (code, body) = common::http_get(r.http_addr, "/readyz");
    assert!(code == 200 && body.contains("failed to load: shard"), "{body}");
    let (code, body) = common::http_get(r.http_addr, "/v2/models/shard/ready");
    assert!(code == 503 && body.contains("weight shard"), "{body}");
    assert_eq!(common::http_get(r.http_addr, &format!("/v2/models/{MODEL}/ready")).0, 200);
    assert_eq!(common::http_get(r.http_addr, &format!("/v2/models/{MODEL}/versions/1/ready")).0, 200);
    assert_eq!(common::http_get(r.http_addr, &format!("/v2/models/{MODEL}/versions/9/ready")).0, 404);
    assert_eq!(common::http_get(r.http_addr, "/v2/models/nothing/ready").0, 404);
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(repo);
}

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf, String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let srv_key = KeyPair::generate().unwrap();
    let srv = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&srv_key, &ca, &ca_key).unwrap();
    let cli_key = KeyPair::generate().unwrap();
    let cli = CertificateParams::new(vec!["camera-rack-1".to_string()]).unwrap().signed_by(&cli_key, &ca, &ca_key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (c, k, a) = (dir.join("server.pem"), dir.join("server.key"), dir.join("ca.pem"));
    std::fs::write(&c, srv.pem()).unwrap();
    std::fs::write(&k, srv_key.serialize_pem()).unwrap();
    std::fs::write(&a, ca.pem()).unwrap();
    (c, k, a, ca.pem(), cli.pem(), cli_key.serialize_pem())
}

#[test]
fn mutual_tls_on_both_edges() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let repo = temp_repo("tls");
    let (cert, key, ca_file, ca, cli_cert, cli_key) = certificates(&repo.join("pki"));
    let mut cfg = config(&repo, true);
    cfg.models.clear();
    cfg.tls_cert = Some(cert);
    cfg.tls_key = Some(key);
    cfg.tls_client_ca = Some(ca_file);
    let r = Running::start(cfg).unwrap();
    let addr = r.grpc_addr;
    r.runtime().block_on(async {
        let connect = |identity: Option<Identity>| {
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca)).domain_name("localhost");
            if let Some(id) = identity {
                tls = tls.identity(id);
            }
            async move { Channel::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap().connect().await }
        };
        // with the client certificate and a token: served
        let ch = connect(Some(Identity::from_pem(&cli_cert, &cli_key))).await.unwrap();
        let mut k = GrpcInferenceServiceClient::new(ch);
        let live = k.server_live(with_token(kpb::ServerLiveRequest {}, Some(INFER))).await.unwrap();
        assert!(live.into_inner().live);
        // without a client certificate the handshake fails
        let no_cert = match connect(None).await {
            Err(_) => true,
            Ok(ch) => GrpcInferenceServiceClient::new(ch).server_live(with_token(kpb::ServerLiveRequest {}, Some(INFER))).await.is_err(),
        };
        assert!(no_cert, "a client without a certificate must be refused");
        // plain text is not spoken
        let plain = match Channel::from_shared(format!("http://{addr}")).unwrap().connect().await {
            Err(_) => true,
            Ok(ch) => GrpcInferenceServiceClient::new(ch).server_live(with_token(kpb::ServerLiveRequest {}, Some(INFER))).await.is_err(),
        };
        assert!(plain);
    });
    // HTTPS with the client certificate
    let body = https_get(r.http_addr, "/healthz", &ca, Some((&cli_cert, &cli_key)));
    assert!(body.as_deref().is_some_and(|b| b.starts_with("HTTP/1.1 200")), "{body:?}");
    assert!(https_get(r.http_addr, "/healthz", &ca, None).is_none(), "no client certificate, no answer");
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(repo);
}

/// A GET over TLS with rustls, as a client of the test's CA; `None` when the connection fails.
fn https_get(addr: std::net::SocketAddr, path: &str, ca: &str, identity: Option<(&str, &str)>) -> Option<String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let b =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots);
    let cfg = match identity {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), ServerName::try_from("localhost").unwrap()).ok()?;
    let tcp = std::net::TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    tls.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}

#[test]
fn one_memory_budget_bounds_queued_work_across_cameras_and_clients() {
    let repo = temp_repo("budget");
    let mut cfg = config(&repo, false);
    cfg.max_queued_bytes = 20_000;
    let r = Running::start(cfg).unwrap();
    let img = image::RgbImage::new(100, 100); // 30000 bytes: over the whole budget
    let e = r.runtime().block_on(r.server.analyze(MODEL, img.clone())).unwrap_err();
    assert!(matches!(e, walkout::serve::ServeError::ResourceExhausted(_)), "{e}");
    let frame = walkout::sources::CameraFrame { camera: "pushed".into(), seq: 1, capture_ts: 0.0, image: img };
    assert!(r.server.push_frame(frame, std::time::Instant::now()).is_err());
    let m = r.server.metrics.render();
    assert!(m.contains("walkout_frames_dropped_total{camera=\"pushed\",reason=\"memory\"} 1"), "{m}");
    assert_eq!(r.server.budget.used(), 0);
    // small frames still fit, and give their bytes back when done
    let small = image::RgbImage::new(64, 64);
    r.runtime().block_on(r.server.analyze(MODEL, small)).unwrap();
    assert_eq!(r.server.budget.used(), 0);
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(repo);
}

/// `walkout serve` in a child process with at most 1024 file descriptors, as the report had
/// it; returns the child and its gRPC and HTTP addresses.
#[allow(clippy::zombie_processes)]
fn spawn_with_fd_limit(repo: &Path, fds: u64, extra: &[&str]) -> (std::process::Child, String, std::net::SocketAddr) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"));
    cmd.args(["serve", "--device", "cpu", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--model-repository"])
        .arg(repo)
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and touches only the child
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: fds, rlim_max: fds };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.strip_prefix("walkout: serving gRPC on ") {
            let (g, rest) = rest.split_once(" and HTTP on ").unwrap();
            let h = rest.split_whitespace().next().unwrap().parse().unwrap();
            // keep reading its log, so that the server never writes into a closed pipe
            std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
            return (child, g.to_string(), h);
        }
    }
    let _ = child.kill();
    panic!("the server did not start");
}

#[test]
fn eleven_hundred_silent_connections_keep_neither_edge_from_answering() {
    let repo = temp_repo("slow");
    let (mut child, grpc, http) = spawn_with_fd_limit(&repo, 1024, &[]);
    let grpc_addr: std::net::SocketAddr = grpc.parse().unwrap();
    // 1,100 peers per port that connect and send nothing: more than the port's 256 slots, and
    // together more than the server's 1024 file descriptors
    let mut silent = Vec::new();
    for addr in [http, grpc_addr] {
        for _ in 0..1100 {
            if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)) {
                silent.push(s);
            }
        }
    }
    assert!(silent.len() > 2000, "only {} connections opened", silent.len());
    let t0 = std::time::Instant::now();
    let (code, _) = common::http_get(http, "/readyz");
    assert_eq!(code, 200);
    let (code, metrics) = common::http_get(http, "/metrics");
    assert_eq!(code, 200, "{metrics:.200}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let live = rt.block_on(async {
        let mut k = GrpcInferenceServiceClient::connect(format!("http://{grpc}")).await.unwrap();
        k.server_live(kpb::ServerLiveRequest {}).await.unwrap().into_inner().live
    });
    assert!(live);
    println!("answered in {:?} with {} silent peers open", t0.elapsed(), silent.len());
    // the quiet peers are evicted after a second of silence, so this is seconds, not a timeout
    assert!(t0.elapsed().as_secs_f64() < 10.0, "answered only after {:?}", t0.elapsed());
    drop(silent);
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(repo);
}

#[test]
fn costly_requests_are_refused_before_they_run_and_plans_are_bounded() {
    let repo = temp_repo("cost");
    let mut cfg = config(&repo, false);
    // MoveNet costs 1.95 GFLOP per 256 x 256 frame: its own frames stay allowed
    cfg.max_request_gflop = 1.0;
    let r = Running::start(cfg).unwrap();
    let url = format!("http://{}", r.grpc_addr);
    let infer = |side: i64| {
        let mut req = kpb::ModelInferRequest { model_name: MODEL.into(), ..Default::default() };
        req.inputs.push(kpb::model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "INT32".into(),
            shape: vec![1, side, side, 3],
            ..Default::default()
        });
        req.raw_input_contents.push(vec![0u8; (side * side * 3 * 4) as usize]);
        req
    };
    r.runtime().block_on(async {
        let mut k = GrpcInferenceServiceClient::connect(url).await.unwrap();
        // 512 x 512 is within the pixel limit but four frames' compute
        let t0 = std::time::Instant::now();
        let e = k.model_infer(infer(512)).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
        assert!(e.message().contains("GFLOP"), "{}", e.message());
        assert!(t0.elapsed().as_secs_f64() < 2.0, "refused only after {:?}", t0.elapsed());
        k.model_infer(infer(256)).await.unwrap();
        k.model_infer(infer(128)).await.unwrap();
    });
    // the compiled plans are counted and within the per-model limit
    r.server.update_memory_metrics();
    let m = r.server.metrics.render();
    let plans: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("walkout_memory_bytes{pool=\"plans\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no plans gauge in {m}"));
    println!("plan cache: {:.1} MiB", plans / 1048576.0);
    assert!(plans > 0.0 && plans <= r.server.config.max_plan_cache_bytes as f64, "{plans}");
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(repo);
}

/// Peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    kb / 1024.0
}

#[test]
fn small_files_that_decode_to_huge_frames_stay_within_the_memory_budget() {
    let repo = temp_repo("bombs");
    let cfg = repo.join("walkout.toml");
    std::fs::write(&cfg, "max_queued_bytes = 268435456\n").unwrap();
    let (mut child, grpc, http) = spawn_with_fd_limit(&repo, 4096, &["--config", cfg.to_str().unwrap()]);
    let before = peak_rss_mib(child.id());
    // a PNG of a few hundred kB that decodes to 4096 x 4096 (48 MiB of RGB)
    let mut png = Vec::new();
    image::RgbImage::from_pixel(4096, 4096, image::Rgb([90, 120, 150]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert!(png.len() < 300_000, "{} bytes", png.len());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("http://{grpc}");
    let (pushed, answers) = rt.block_on(async {
        let v = VisionClient::connect(url).await.unwrap().max_decoding_message_size(64 << 20);
        // 30 push cameras, one such frame each (7.2 GB before there was one budget)
        let frames: Vec<pb::Frame> = (0..30)
            .map(|i| pb::Frame {
                camera_id: format!("bomb-{i}"),
                seq: 1,
                image: Some(pb::frame::Image::Encoded(png.clone())),
                ..Default::default()
            })
            .collect();
        let pushed = v.clone().push_frames(tokio_stream::iter(frames)).await.unwrap().into_inner();
        // and 50 AnalyzeImage calls of it at once (4.85 GB for 200 before)
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let mut v = v.clone();
                let png = png.clone();
                tokio::spawn(async move {
                    let req = pb::AnalyzeImageRequest { image: Some(pb::analyze_image_request::Image::Encoded(png)), ..Default::default() };
                    v.analyze_image(req).await.map(|_| ()).map_err(|e| e.code())
                })
            })
            .collect();
        let mut answers = std::collections::BTreeMap::<String, usize>::new();
        for c in calls {
            *answers.entry(format!("{:?}", c.await.unwrap())).or_default() += 1;
        }
        (pushed, answers)
    });
    let peak = peak_rss_mib(child.id());
    println!(
        "pushed: {} accepted, {} refused; AnalyzeImage: {answers:?}; peak RSS {before:.0} MiB before, {peak:.0} MiB after",
        pushed.accepted, pushed.rejected
    );
    assert_eq!(pushed.accepted + pushed.rejected, 30);
    // every call is answered: a result, or RESOURCE_EXHAUSTED past the budget
    assert!(answers.keys().all(|k| k == "Ok(())" || k.contains("ResourceExhausted")), "{answers:?}");
    // the budget (256 MiB), four frames being decoded and what is being letterboxed
    assert!(peak - before < 1200.0, "peak resident memory grew by {:.0} MiB", peak - before);
    let (code, metrics) = common::http_get(http, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("walkout_memory_bytes{pool=\"queued\"}"), "{metrics:.300}");
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(repo);
}
