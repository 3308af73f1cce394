//! The server end to end over its real edges: gRPC (walkout.v1, KServe v2, health,
//! reflection) and HTTP, with camera sources, bad input, overload, hot swap and SIGTERM.
//! Model outputs are checked against the TF.js references and hand-annotated boxes.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use walkout::api::proto::inference as kpb;
use walkout::api::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use walkout::api::proto::walkout as pb;
use walkout::api::proto::walkout::vision_client::VisionClient;
use walkout::app::Running;
use walkout::serve::config::{BatchingParams, ModelServeConfig, ServerConfig};

const MODEL: &str = "movenet-multipose";

/// A private model repository: the config plus a copy of version 1.
fn temp_repo(tag: &str) -> PathBuf {
    common::movenet_repo(&format!("serve-{tag}"))
}

fn config(repo: &Path) -> ServerConfig {
    ServerConfig {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        model_repository: repo.to_path_buf(),
        device: walkout::runtime::Device::Cpu,
        models: vec![ModelServeConfig {
            name: MODEL.into(),
            device: None,
            input_size: None,
            batching: Some(BatchingParams {
                max_batch_size: 4,
                max_queue_delay_us: 2000,
                preferred_batch_sizes: vec![],
                max_queue_size: 8,
            }),
        }],
        result_buffer: 32,
        ..ServerConfig::default()
    }
}

fn url(r: &Running) -> String {
    format!("http://{}", r.grpc_addr)
}

fn jpeg_of(img: &image::RgbImage) -> Vec<u8> {
    let mut v = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut v, 90).encode_image(img).unwrap();
    v
}

fn reference(name: &str) -> (walkout::graph::Tensor, walkout::graph::Tensor) {
    let dir = common::fetched("data/reference");
    (
        walkout::npy::read(&dir.join(format!("{name}.input.npy"))).unwrap(),
        walkout::npy::read(&dir.join(format!("{name}.output.npy"))).unwrap(),
    )
}

fn infer_request(input: &walkout::graph::Tensor, datatype: &str, raw: Vec<u8>) -> kpb::ModelInferRequest {
    kpb::ModelInferRequest {
        model_name: MODEL.into(),
        inputs: vec![kpb::model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: datatype.into(),
            shape: input.shape.iter().map(|&d| d as i64).collect(),
            ..Default::default()
        }],
        raw_input_contents: vec![raw],
        ..Default::default()
    }
}

use common::{iou, BUS_PEOPLE};

#[test]
fn grpc_and_http_end_to_end() {
    let repo = temp_repo("e2e");
    let mut cfg = config(&repo);
    cfg.max_frame_side = 4096;
    let r = Running::start(cfg).expect("server starts");
    let bus = std::fs::read(common::fetched("data/bus.jpg")).unwrap();
    let (ref_in, ref_out) = reference("bus_256x256");
    r.runtime().block_on(async {
        let mut vision = VisionClient::connect(url(&r)).await.unwrap();
        let mut kserve = GrpcInferenceServiceClient::connect(url(&r)).await.unwrap();

        // health and reflection
        let channel = tonic::transport::Endpoint::from_shared(url(&r)).unwrap().connect().await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let h = health.check(tonic_health::pb::HealthCheckRequest { service: "walkout.v1.Vision".into() }).await.unwrap().into_inner();
        assert_eq!(h.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        let mut refl = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
        let req = tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(String::new())),
        };
        let mut resp = refl.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
        let listed = format!("{:?}", resp.next().await.unwrap().unwrap());
        for s in ["walkout.v1.Vision", "inference.GRPCInferenceService", "grpc.health.v1.Health"] {
            assert!(listed.contains(s), "reflection does not list {s}: {listed}");
        }

        // AnalyzeImage: every annotated pedestrian on bus.jpg is found
        let a = vision
            .analyze_image(pb::AnalyzeImageRequest {
                model: String::new(),
                image: Some(pb::analyze_image_request::Image::Encoded(bus.clone())),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((a.width, a.height, a.model.as_str(), a.model_version.as_str()), (810, 1080, MODEL, "1"));
        for gt in &BUS_PEOPLE {
            let best = a.persons.iter().map(|p| iou(&[p.x0, p.y0, p.x1, p.y1], gt)).fold(0.0, f32::max);
            assert!(best >= 0.5, "pedestrian {gt:?} not found over gRPC (best IoU {best:.2})");
        }
        assert_eq!(a.persons[0].keypoints.len(), 17);
        assert_eq!(a.persons[0].keypoints[0].name, "nose");

        // ModelInfer (raw contents) equals TF.js
        let out = kserve.model_infer(infer_request(&ref_in, "INT32", ref_in.to_le_bytes())).await.unwrap().into_inner();
        assert_eq!(out.outputs.len(), 1);
        assert_eq!(out.outputs[0].shape, vec![1, 6, 56]);
        let got = walkout::graph::Tensor::from_le_bytes(walkout::graph::DType::F32, vec![1, 6, 56], &out.raw_output_contents[0]).unwrap();
        let d = got.max_abs_diff(&ref_out).unwrap();
        assert!(d < 1e-3, "ModelInfer differs from TF.js by {d}");
        // typed contents give the same
        let mut typed = infer_request(&ref_in, "INT32", vec![]);
        typed.raw_input_contents.clear();
        typed.inputs[0].contents = Some(kpb::InferTensorContents {
            int_contents: ref_in
                .cast(walkout::graph::DType::I32)
                .to_le_bytes()
                .chunks(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            ..Default::default()
        });
        let out2 = kserve.model_infer(typed).await.unwrap().into_inner();
        assert_eq!(out2.raw_output_contents[0], out.raw_output_contents[0]);

        // bad ModelInfer requests
        let bad_dtype = infer_request(&ref_in, "FP32", ref_in.cast(walkout::graph::DType::F32).to_le_bytes());
        let e = kserve.model_infer(bad_dtype).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("input 'input'") && e.message().contains("FP32"), "{}", e.message());
        let mut bad_bytes = infer_request(&ref_in, "INT32", ref_in.to_le_bytes());
        bad_bytes.raw_input_contents[0].truncate(1000);
        let e = kserve.model_infer(bad_bytes).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("input 'input'") && e.message().contains("1000 bytes"), "{}", e.message());
        let mut bad_shape = infer_request(&ref_in, "INT32", ref_in.to_le_bytes());
        bad_shape.inputs[0].shape = vec![1, 256, 256];
        let e = kserve.model_infer(bad_shape).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("input 'input'"), "{}", e.message());
        let mut unknown = infer_request(&ref_in, "INT32", ref_in.to_le_bytes());
        unknown.model_name = "no-such-model".into();
        assert_eq!(kserve.model_infer(unknown).await.unwrap_err().code(), tonic::Code::NotFound);
        let mut unknown_ver = infer_request(&ref_in, "INT32", ref_in.to_le_bytes());
        unknown_ver.model_version = "7".into();
        assert_eq!(kserve.model_infer(unknown_ver).await.unwrap_err().code(), tonic::Code::NotFound);
        let e = kserve.model_metadata(kpb::ModelMetadataRequest { name: "nope".into(), version: String::new() }).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);

        // PushFrames: a corrupt JPEG and an oversized one are rejected on their own; the rest go on
        let mut results = vision.stream_poses(pb::StreamPosesRequest { camera_ids: vec!["door".into()] }).await.unwrap().into_inner();
        // a client that never reads its stream (it must stall nobody)
        let _stalled = vision.stream_poses(pb::StreamPosesRequest { camera_ids: vec![] }).await.unwrap().into_inner();
        // a JPEG cut inside its headers, then noise
        let mut corrupt = bus[..300].to_vec();
        corrupt.extend(std::iter::repeat_n(0x55, 2000));
        let huge = jpeg_of(&image::RgbImage::new(5000, 8));
        let frames: Vec<pb::Frame> = [bus.clone(), corrupt, huge, bus.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, b)| pb::Frame { camera_id: "door".into(), seq: i as u64, capture_ts: 0.0, image: Some(pb::frame::Image::Encoded(b)) })
            .collect();
        let resp = vision.push_frames(tokio_stream::iter(frames)).await.unwrap().into_inner();
        assert_eq!((resp.accepted, resp.rejected), (2, 2), "{resp:?}");
        assert!(resp.errors.iter().all(|e| e.code == tonic::Code::InvalidArgument as i32));
        assert_eq!(resp.errors.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert!(resp.errors[1].message.contains("4096"), "size limit error: {}", resp.errors[1].message);
        // raw frames: a wrong byte count and an oversized one are rejected; a right one is queued
        let raw = |seq: u64, w: u32, h: u32, n: usize| pb::Frame {
            camera_id: "door-raw".into(),
            seq,
            capture_ts: 0.0,
            image: Some(pb::frame::Image::Raw(pb::RawImage { width: w, height: h, rgb: vec![90; n] })),
        };
        let resp = vision
            .push_frames(tokio_stream::iter(vec![raw(0, 64, 48, 100), raw(1, 5000, 2, 30000), raw(2, 64, 48, 64 * 48 * 3)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((resp.accepted, resp.rejected), (1, 2), "{resp:?}");
        assert!(resp.errors[0].message.contains("needs 9216 RGB bytes, got 100"), "{}", resp.errors[0].message);
        // AnalyzeImage with a corrupt image
        let e = vision
            .analyze_image(pb::AnalyzeImageRequest {
                model: String::new(),
                image: Some(pb::analyze_image_request::Image::Encoded(b"GIF89a garbage".to_vec())),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            let m = tokio::time::timeout(Duration::from_secs(60), results.message()).await.expect("result in time").unwrap().unwrap();
            assert_eq!(m.camera_id, "door");
            assert!(m.persons.len() >= 3, "pushed bus.jpg: {} persons", m.persons.len());
            seqs.push(m.seq);
        }
        seqs.sort();
        assert_eq!(seqs, vec![0, 3]);

        // overload: a push camera with a 2-frame queue drops its oldest frames, counted
        let many: Vec<pb::Frame> = (0..24)
            .map(|i| pb::Frame { camera_id: "flood".into(), seq: i, capture_ts: 0.0, image: Some(pb::frame::Image::Encoded(bus.clone())) })
            .collect();
        vision
            .add_camera(pb::AddCameraRequest {
                camera: Some(pb::CameraSpec { id: "flood".into(), source: "push".into(), queue_size: 2, ..Default::default() }),
            })
            .await
            .unwrap();
        let resp = vision.push_frames(tokio_stream::iter(many)).await.unwrap().into_inner();
        assert_eq!(resp.accepted, 24);
        assert!(resp.dropped > 0, "a flood into a 2-frame queue drops frames: {resp:?}");
        // overload of requests: RESOURCE_EXHAUSTED past max_queue_size, never another failure
        let mut calls = Vec::new();
        for _ in 0..24 {
            let mut c = vision.clone();
            let b = bus.clone();
            calls.push(tokio::spawn(async move {
                c.analyze_image(pb::AnalyzeImageRequest { model: MODEL.into(), image: Some(pb::analyze_image_request::Image::Encoded(b)) })
                    .await
            }));
        }
        let (mut ok, mut exhausted) = (0, 0);
        for c in calls {
            match c.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) if e.code() == tonic::Code::ResourceExhausted => exhausted += 1,
                Err(e) => panic!("overload gave {e:?}"),
            }
        }
        assert!(ok >= 8 && exhausted >= 1, "ok {ok}, exhausted {exhausted}");

        // camera management
        let e = vision
            .add_camera(pb::AddCameraRequest {
                camera: Some(pb::CameraSpec { id: "x".into(), source: "teleport".into(), ..Default::default() }),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        // a frame rate whose interval fits no Duration (the gRPC fuzz pass sent one; the
        // camera's thread panicked) is refused, as are negative and huge ones
        for fps in [1e-300, 0.001, -1.0, 1001.0, f64::NAN] {
            let e = vision
                .add_camera(pb::AddCameraRequest {
                    camera: Some(pb::CameraSpec { id: "slow".into(), source: "synthetic".into(), fps, ..Default::default() }),
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "fps {fps}: {e:?}");
        }
        let e = vision
            .add_camera(pb::AddCameraRequest {
                camera: Some(pb::CameraSpec { id: "flood".into(), source: "push".into(), ..Default::default() }),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::AlreadyExists);
        let list = vision.list_cameras(pb::ListCamerasRequest {}).await.unwrap().into_inner();
        let door = list.cameras.iter().find(|c| c.spec.as_ref().unwrap().id == "door").expect("door listed");
        assert_eq!((door.frames_in, door.frames_done), (4, 2));
        vision.remove_camera(pb::RemoveCameraRequest { id: "flood".into() }).await.unwrap();
        assert_eq!(vision.remove_camera(pb::RemoveCameraRequest { id: "flood".into() }).await.unwrap_err().code(), tonic::Code::NotFound);
    });

    // HTTP
    let (code, body) = common::http_get(r.http_addr, "/metrics");
    assert_eq!(code, 200);
    for m in [
        "walkout_frames_in_total{camera=\"door\"} 4",
        "walkout_frames_rejected_total{camera=\"door\",reason=\"invalid\"} 2",
        "walkout_queue_depth",
        "walkout_batch_size_bucket",
        "walkout_queue_latency_seconds_bucket",
        "walkout_compute_latency_seconds_bucket",
        "walkout_e2e_latency_seconds_bucket",
        "walkout_inferences_total{model=\"movenet-multipose\",version=\"1\"}",
        "walkout_adapter_info{adapter=",
        "walkout_requests_total{api=\"AnalyzeImage\",code=\"ResourceExhausted\"",
    ] {
        assert!(body.contains(m), "/metrics lacks {m}");
    }
    // a removed camera's series go with it (its drops were counted while it lived)
    assert!(!body.contains("camera=\"flood\""), "a removed camera keeps metric series");
    assert_eq!(common::http_get(r.http_addr, "/healthz").0, 200);
    assert_eq!(common::http_get(r.http_addr, "/readyz").0, 200);
    r.shutdown().unwrap();
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn camera_sources_video_images_and_reconnect() {
    let repo = temp_repo("sources");
    let imgs = repo.join("frames");
    std::fs::create_dir_all(&imgs).unwrap();
    std::fs::copy(common::fetched("data/bus.jpg"), imgs.join("a.jpg")).unwrap();
    std::fs::write(imgs.join("b.jpg"), b"not a jpeg").unwrap();
    std::fs::copy(common::fetched("data/zidane.jpg"), imgs.join("c.jpg")).unwrap();
    let late = repo.join("late.avi");
    let mut cfg = config(&repo);
    cfg.cameras = vec![
        walkout::serve::config::CameraConfig {
            id: "seq".into(),
            source: "images".into(),
            url: imgs.display().to_string(),
            ..Default::default()
        },
        walkout::serve::config::CameraConfig {
            id: "video".into(),
            source: "video".into(),
            url: common::fetched("data/vtest.avi").display().to_string(),
            fps: 10.0,
            ..Default::default()
        },
        walkout::serve::config::CameraConfig {
            id: "late".into(),
            source: "video".into(),
            url: late.display().to_string(),
            fps: 10.0,
            ..Default::default()
        },
    ];
    let r = Running::start(cfg).expect("server starts");
    let m = r.server.metrics.clone();
    // the image sequence: two good frames done, the corrupt one rejected and counted
    wait_for("image sequence", 60, || (m.frames_done.with_label_values(&["seq"]).get() == 2).then_some(()));
    assert_eq!(m.frames_rejected.with_label_values(&["seq", "invalid"]).get(), 1);
    // the video through ffmpeg
    wait_for("video frames", 60, || (m.frames_done.with_label_values(&["video"]).get() >= 5).then_some(()));
    // a missing stream retries with backoff; once it exists, frames flow, and the others never stopped
    wait_for("reconnect attempts", 30, || (m.source_reconnects.with_label_values(&["late"]).get() >= 2).then_some(()));
    let video_before = m.frames_done.with_label_values(&["video"]).get();
    std::fs::copy(common::fetched("data/vtest.avi"), &late).unwrap();
    wait_for("late camera frames", 60, || (m.frames_done.with_label_values(&["late"]).get() >= 3).then_some(()));
    assert!(m.frames_done.with_label_values(&["video"]).get() > video_before, "the video camera stalled while another reconnected");
    let cams = r.server.cameras();
    assert!(cams.iter().find(|c| c.config.id == "late").unwrap().reconnects >= 2);
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
fn hot_swap_fails_no_request_and_a_failed_load_keeps_the_old_version() {
    let repo = temp_repo("swap");
    let r = Running::start(config(&repo)).expect("server starts");
    let (ref_in, ref_out) = reference("zidane_256x256");
    let target = url(&r);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = r.runtime();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (stop, target, ref_in, ref_out) = (stop.clone(), target.clone(), ref_in.clone(), ref_out.clone());
        workers.push(rt.spawn(async move {
            let mut k = GrpcInferenceServiceClient::connect(target).await.unwrap();
            let mut versions = std::collections::BTreeMap::<String, usize>::new();
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match k.model_infer(infer_request(&ref_in, "INT32", ref_in.to_le_bytes())).await {
                    Ok(o) => {
                        let o = o.into_inner();
                        let got =
                            walkout::graph::Tensor::from_le_bytes(walkout::graph::DType::F32, vec![1, 6, 56], &o.raw_output_contents[0])
                                .unwrap();
                        assert!(got.max_abs_diff(&ref_out).unwrap() < 1e-3);
                        *versions.entry(o.model_version).or_default() += 1;
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (versions, failures)
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    // version 2 appears in the repository and is loaded while requests run
    common::copy_dir(&common::root().join("models").join(MODEL).join("1"), &repo.join(MODEL).join("2"));
    rt.block_on(async {
        let mut k = GrpcInferenceServiceClient::connect(target.clone()).await.unwrap();
        let l = k
            .repository_model_load(kpb::RepositoryModelLoadRequest { model_name: MODEL.into(), triton_model_name: String::new() })
            .await
            .unwrap()
            .into_inner();
        assert!(l.is_loaded);
        let md = k.model_metadata(kpb::ModelMetadataRequest { name: MODEL.into(), version: String::new() }).await.unwrap().into_inner();
        assert_eq!(md.versions, vec!["2".to_string()]);
    });
    std::thread::sleep(Duration::from_secs(2));
    // a broken version 3: the load fails, version 2 keeps serving
    let v3 = repo.join(MODEL).join("3");
    std::fs::create_dir_all(&v3).unwrap();
    std::fs::write(v3.join("model.json"), b"{ this is not a model").unwrap();
    rt.block_on(async {
        let mut k = GrpcInferenceServiceClient::connect(target.clone()).await.unwrap();
        let e = k
            .repository_model_load(kpb::RepositoryModelLoadRequest { model_name: MODEL.into(), triton_model_name: String::new() })
            .await
            .unwrap_err();
        assert!(e.message().contains("model.json") || e.message().contains("loading failed"), "{e:?}");
        let ready = k.model_ready(kpb::ModelReadyRequest { name: MODEL.into(), version: "2".into() }).await.unwrap().into_inner();
        assert!(ready.ready);
        let idx = k.repository_index(kpb::RepositoryIndexRequest::default()).await.unwrap().into_inner();
        assert_eq!(idx.models.len(), 1);
        assert_eq!((idx.models[0].state.as_str(), idx.models[0].version.as_str()), ("READY", "2"));
    });
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = std::collections::BTreeMap::<String, usize>::new();
    for w in workers {
        let (versions, failures) = rt.block_on(w).unwrap();
        assert!(failures.is_empty(), "requests failed during the swap: {failures:?}");
        for (v, n) in versions {
            *total.entry(v).or_default() += n;
        }
    }
    println!("answered per version: {total:?}");
    assert!(total.get("1").copied().unwrap_or(0) > 0 && total.get("2").copied().unwrap_or(0) > 0, "{total:?}");
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&repo);
}

/// Starts `walkout serve` as a child process; returns it and its gRPC and HTTP addresses.
/// Callers wait for the child.
#[allow(clippy::zombie_processes)]
fn spawn_server(args: &[&str], envs: &[(&str, &str)]) -> (std::process::Child, String, String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"));
    cmd.arg("serve").args(args).stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let t0 = Instant::now();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("server prints its addresses");
        if let Some(rest) = line.strip_prefix("walkout: serving gRPC on ") {
            let (g, rest) = rest.split_once(" and HTTP on ").unwrap();
            let h = rest.split_whitespace().next().unwrap();
            return (child, g.to_string(), h.to_string(), rx);
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "server did not start");
    }
}

#[test]
fn sigterm_drains_queued_frames_ends_open_streams_and_exits_cleanly() {
    let repo = temp_repo("sigterm");
    let cfg = repo.join("walkout.toml");
    std::fs::write(
        &cfg,
        format!(
            "device = \"cpu\"\n[[models]]\nname = \"{MODEL}\"\n[models.batching]\nmax_batch_size = 4\n\n[[cameras]]\nid = \"cam\"\nsource = \"synthetic\"\nfps = 50.0\nqueue_size = 16\nurl = \"{}\"\n",
            common::fetched("data/bus.jpg").display()
        ),
    )
    .unwrap();
    // addresses from the environment, repository from the flag, the rest from the file
    let (mut child, grpc, http, rx) = spawn_server(
        &["--config", cfg.to_str().unwrap(), "--model-repository", repo.to_str().unwrap()],
        &[("WALKOUT_GRPC_ADDR", "127.0.0.1:0"), ("WALKOUT_HTTP_ADDR", "127.0.0.1:0")],
    );
    let addr: std::net::SocketAddr = http.parse().unwrap();
    wait_for("frames done", 60, || {
        let (_, body) = common::http_get(addr, "/metrics");
        body.lines().any(|l| l.starts_with("walkout_frames_done_total{camera=\"cam\"}") && !l.ends_with(" 0")).then_some(())
    });
    // a client streaming frames that has not closed its stream when the server is told to stop
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (frames, open) = tokio::sync::mpsc::channel::<pb::Frame>(4);
    let push = rt.spawn(async move {
        let mut v = VisionClient::connect(format!("http://{grpc}")).await.unwrap();
        v.push_frames(tokio_stream::wrappers::ReceiverStream::new(open)).await
    });
    let jpeg = std::fs::read(common::fetched("data/bus.jpg")).unwrap();
    let frame = pb::Frame { camera_id: "pusher".into(), seq: 1, image: Some(pb::frame::Image::Encoded(jpeg)), ..Default::default() };
    rt.block_on(frames.send(frame)).unwrap();
    wait_for("the pushed frame", 60, || {
        let (_, body) = common::http_get(addr, "/metrics");
        body.lines().any(|l| l.starts_with("walkout_frames_in_total{camera=\"pusher\"} 1")).then_some(())
    });
    let t0 = Instant::now();
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    // the stream ends with its summary, without waiting for the client or the drain deadline
    let summary = rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), push).await }).expect("the stream ended");
    let summary = summary.unwrap().expect("PushFrames ends with a summary, not an error").into_inner();
    assert_eq!((summary.accepted, summary.rejected), (1, 0), "{summary:?}");
    let status = wait_for("exit after SIGTERM", 60, || child.try_wait().unwrap());
    println!("stopped {:?} after SIGTERM", t0.elapsed());
    drop(frames);
    let log: Vec<String> = rx.try_iter().collect();
    // the queued frames are run first; then the listeners close at once: the open stream, whose
    // client never closed it, did not hold them to the drain deadline
    assert!(!log.iter().any(|l| l.contains("did not close within")), "an open stream held the server: {log:?}");
    assert!(status.success(), "exit status {status:?}; log: {log:?}");
    assert!(log.iter().any(|l| l.contains("SIGTERM: draining")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("stopped cleanly")), "{log:?}");
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
fn unmodified_tritonclient_works() {
    let python = common::python();
    let repo = temp_repo("triton");
    let (mut child, grpc, _h, _rx) = spawn_server(
        &["--model-repository", repo.to_str().unwrap(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--device", "cpu"],
        &[],
    );
    let out = std::process::Command::new(&python)
        .arg(common::root().join("scripts/triton/check.py"))
        .args(["--url", &grpc, "--reference", common::fetched("data/reference").to_str().unwrap()])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "tritonclient check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
fn bench_in_process_and_over_grpc() {
    use walkout::cli::bench::{run, BenchOptions};
    let repo = temp_repo("bench");
    let plot = repo.join("bench.png");
    let mut o = BenchOptions {
        cameras: 2,
        fps: 4.0,
        seconds: 3.0,
        width: 640,
        height: 480,
        target: None,
        plot: Some(plot.clone()),
        model: MODEL.into(),
        device: walkout::runtime::Device::Cpu,
        repository: repo.clone(),
        still: Some(common::fetched("data/bus.jpg")),
        batching: BatchingParams::default(),
        warmup: 1.0,
    };
    let (r, samples) = run(&o).expect("in-process bench");
    println!("{r:?}");
    // counts, not speed (a loaded machine runs fewer frames): every frame sent is done,
    // dropped or still in flight, and some got through
    assert!(
        r.frames_done >= 1 && r.frames_done as u64 + r.frames_dropped <= r.frames_sent && r.frames_sent <= 30,
        "2 cameras x 4 fps x 3 s: {r:?}"
    );
    assert!(r.e2e_ms_p50 > 0.0 && r.e2e_ms_p50 <= r.e2e_ms_p99 && r.avg_batch >= 1.0);
    assert_eq!(samples.len(), r.frames_done);
    assert!(image::open(&plot).is_ok() && repo.join("bench.csv").is_file());
    // the same load against a running server over gRPC
    let server = Running::start(config(&repo)).expect("server starts");
    o.target = Some(server.grpc_addr.to_string());
    o.plot = None;
    let (r, _) = run(&o).expect("gRPC bench");
    println!("{r:?}");
    assert!(r.frames_done >= 1, "over gRPC: {r:?}");
    assert!(r.e2e_ms_p50 > 0.0 && r.e2e_ms_p50 <= r.e2e_ms_p99);
    server.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&repo);
}

/// A live HTTP stream served by a separate ffmpeg (`-listen 1`): the camera decodes it, the
/// stream drops when that ffmpeg dies, the camera retries with backoff while the other camera
/// goes on, and frames flow again once a new stream is up on the same address.
#[test]
fn live_http_stream_drops_and_reconnects() {
    let repo = temp_repo("live");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/live.ts");
    let video = common::fetched("data/vtest.avi");
    let serve_stream = || {
        std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(&video)
            .args(["-an", "-c:v", "mpeg2video", "-q:v", "5", "-f", "mpegts", "-listen", "1", &url])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("ffmpeg (scripts/setup installs it)")
    };
    let mut streamer = serve_stream();
    std::thread::sleep(Duration::from_millis(500));
    let mut cfg = config(&repo);
    cfg.cameras = vec![
        walkout::serve::config::CameraConfig { id: "live".into(), source: "video".into(), url: url.clone(), ..Default::default() },
        walkout::serve::config::CameraConfig {
            id: "steady".into(),
            source: "synthetic".into(),
            fps: 5.0,
            width: 320,
            height: 240,
            ..Default::default()
        },
    ];
    let r = Running::start(cfg).expect("server starts");
    let m = r.server.metrics.clone();
    let done = |c: &str| m.frames_done.with_label_values(&[c]).get();
    wait_for("frames from the live stream", 60, || (done("live") >= 5).then_some(()));
    // the stream drops
    streamer.kill().unwrap();
    streamer.wait().unwrap();
    wait_for("reconnect attempts", 30, || (m.source_reconnects.with_label_values(&["live"]).get() >= 2).then_some(()));
    // frames queued before the drop finish first: count only what arrives after them
    let mut last = done("live");
    wait_for("frames queued before the drop to finish", 30, || {
        std::thread::sleep(Duration::from_millis(1000));
        let now = done("live");
        let settled = now == last;
        last = now;
        settled.then_some(())
    });
    let steady = done("steady");
    let live = done("live");
    // the stream comes back on the same address
    let mut streamer = serve_stream();
    wait_for("frames after the reconnect", 60, || (done("live") >= live + 5).then_some(()));
    assert!(done("steady") > steady, "the other camera stalled during the reconnect");
    let info = r.server.cameras().into_iter().find(|c| c.config.id == "live").unwrap();
    assert!(info.connected && info.reconnects >= 2, "{info:?}");
    r.shutdown().unwrap();
    let _ = streamer.kill();
    let _ = streamer.wait();
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
fn sigterm_drops_what_is_still_queued_at_the_drain_deadline() {
    let repo = temp_repo("deadline");
    let cfg = repo.join("walkout.toml");
    // four cameras far faster than the model, each with a deep queue, and a drain deadline
    // far shorter than the queue needs: the CPU executor runs MoveNet at up to about 150
    // frames/s on 2 cores (at a 1 s deadline it drained 112 queued frames in 0.99 s), so
    // 0.2 s drains a fraction of the 100 or more queued
    let mut text =
        format!("device = \"cpu\"\ndrain_timeout_s = 0.2\n[[models]]\nname = \"{MODEL}\"\n[models.batching]\nmax_batch_size = 4\n");
    for i in 0..4 {
        text += &format!(
            "\n[[cameras]]\nid = \"cam{i}\"\nsource = \"synthetic\"\nfps = 100.0\nqueue_size = 64\nurl = \"{}\"\n",
            common::fetched("data/bus.jpg").display()
        );
    }
    std::fs::write(&cfg, text).unwrap();
    let (mut child, _g, http, rx) = spawn_server(
        &["--config", cfg.to_str().unwrap(), "--model-repository", repo.to_str().unwrap()],
        &[("WALKOUT_GRPC_ADDR", "127.0.0.1:0"), ("WALKOUT_HTTP_ADDR", "127.0.0.1:0")],
    );
    let addr: std::net::SocketAddr = http.parse().unwrap();
    // far more queued than the model runs in a second
    wait_for("a deep queue", 60, || {
        let (_, body) = common::http_get(addr, "/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix("walkout_queue_depth{model=\"movenet-multipose\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|&d| d >= 100.0)
    });
    let t0 = Instant::now();
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = wait_for("exit after SIGTERM", 60, || child.try_wait().unwrap());
    println!("stopped {:?} after SIGTERM", t0.elapsed());
    let log: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "exit status {status:?}; log: {log:?}");
    assert!(log.iter().any(|l| l.contains("shutdown deadline: dropping queued items")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("stopped cleanly")), "{log:?}");
    let _ = std::fs::remove_dir_all(&repo);
}
