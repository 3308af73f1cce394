//! The gRPC edge in process: one byte picks a method (Vision or KServe) and a credential, the
//! rest is the request's protobuf message (several, split at `\xffMSG`, for client streams)
//! or, with bit 5 set, the raw gRPC body, length prefixes and all. Each request goes through
//! the auth layer, tonic's framing and decoding and the handler's checks into a live server
//! with a small pose model on the CPU. A request must end within 20 s, and bad input must
//! never come back as INTERNAL or UNKNOWN: those are findings. The one exception is gRPC's
//! own: a body whose framing or protobuf does not parse is INTERNAL ("Error parsing request
//! proto" in gRPC's status code table), and tonic says so before any handler runs.
#![no_main]
use bytes::Bytes;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};
use walkout::api::auth::{Auth, GrpcAuth, GrpcAuthLayer};
use walkout::serve::{config::ServerConfig, Server};

const METHODS: &[&str] = &[
    "/walkout.v1.Vision/AnalyzeImage",
    "/walkout.v1.Vision/PushFrames",
    "/walkout.v1.Vision/AddCamera",
    "/walkout.v1.Vision/RemoveCamera",
    "/walkout.v1.Vision/ListCameras",
    "/walkout.v1.Vision/ReportGateScan",
    "/walkout.v1.Vision/ReportShelfReadings",
    "/inference.GRPCInferenceService/ModelInfer",
    "/inference.GRPCInferenceService/ModelMetadata",
    "/inference.GRPCInferenceService/ModelReady",
    "/inference.GRPCInferenceService/RepositoryModelLoad",
    "/inference.GRPCInferenceService/RepositoryModelUnload",
    "/inference.GRPCInferenceService/RepositoryIndex",
    "/inference.GRPCInferenceService/ServerMetadata",
    "/grpc.health.v1.Health/Check",
    "/walkout.v1.Vision/NoSuchMethod",
];
const ADMIN: &str = "fuzz-admin-token-0123456789";
const INFER: &str = "fuzz-infer-token-0123456789";
const SEP: &[u8] = b"\xffMSG";
/// What tonic answers, as INTERNAL, for a request body it cannot parse (tonic's codec).
const TONIC_PARSE_ERRORS: &[&str] = &[
    "failed to decode Protobuf message",
    "Unexpected EOF decoding stream",
    "protocol error: received message with",
    "Error decompressing",
    "Missing request message",
];
const MODEL: &[u8] = include_bytes!("../fixture/pose.onnx");
const MODEL_CONFIG: &str = include_str!("../fixture/pose.toml");

struct Harness {
    rt: tokio::runtime::Runtime,
    svc: GrpcAuth<tonic::service::Routes>,
    _server: Arc<Server>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let repo = std::env::temp_dir().join(format!("walkout-fuzz-grpc-{}", std::process::id()));
        std::fs::create_dir_all(repo.join("pose/1")).expect("fixture repository");
        std::fs::write(repo.join("pose/config.toml"), MODEL_CONFIG).expect("fixture config");
        std::fs::write(repo.join("pose/1/model.onnx"), MODEL).expect("fixture model");
        let cfg = ServerConfig::parse(&format!(
            "model_repository = {:?}\ndevice = \"cpu\"\nmax_cameras = 4\nmax_frame_side = 256\nmax_frame_bytes = 262144\n\
             max_queued_bytes = 16777216\ntracking = false\nadmin_token = \"{ADMIN}\"\ninfer_token = \"{INFER}\"\n",
            repo.display().to_string()
        ))
        .expect("fuzz server config");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let server = Server::start(cfg).expect("fuzz server starts");
        let auth = Arc::new(Auth::new(&server.config, server.metrics.clone()));
        let (routes, _) = rt.block_on(walkout::api::grpc::services(&server)).expect("services");
        Harness { rt, svc: GrpcAuthLayer(auth).layer(routes.prepare()), _server: server }
    })
}

fn frame(out: &mut Vec<u8>, msg: &[u8]) {
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
}

fn split<'a>(mut rest: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
        parts.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Some((&head, rest)) = data.split_first() else { return };
    let path = METHODS[(head & 0x0f) as usize];
    let token = match head >> 6 {
        0 | 1 => Some(ADMIN),
        2 => Some(INFER),
        _ => None,
    };
    let body = if head & 0x20 != 0 {
        rest.to_vec()
    } else {
        let mut b = Vec::new();
        for m in split(rest, SEP) {
            frame(&mut b, m);
        }
        b
    };
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://fuzz{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(body)))).expect("request");
    let mut svc = h.svc.clone();
    let t0 = std::time::Instant::now();
    let (status, message) = h.rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(20), async move {
            let resp =
                ServiceExt::<http::Request<tonic::body::Body>>::ready(&mut svc).await.expect("ready").call(req).await.expect("infallible");
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await.ok();
            let trailers = collected.as_ref().and_then(|c| c.trailers().cloned()).unwrap_or_default();
            let get = |k: &str| trailers.get(k).or_else(|| parts.headers.get(k)).and_then(|v| v.to_str().ok()).map(str::to_string);
            (get("grpc-status").and_then(|s| s.parse::<i32>().ok()).unwrap_or(0), get("grpc-message").unwrap_or_default())
        })
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within 20 s"))
    });
    if std::env::var_os("WALKOUT_FUZZ_SLOW").is_some() && t0.elapsed() > Duration::from_millis(50) {
        eprintln!("slow: {path} took {:?} (status {status})", t0.elapsed());
    }
    // 2 UNKNOWN, 13 INTERNAL: a client's bytes must get a typed error
    let message = percent_decode(&message);
    let grpc_parse_error = status == 13 && TONIC_PARSE_ERRORS.iter().any(|p| message.starts_with(p));
    assert!(grpc_parse_error || (status != 2 && status != 13), "{path}: status {status}: {message}");
});

/// grpc-message is percent-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
