//! The store pipeline live in `walkout serve`: a synthetic store's cameras (which bring their
//! calibrations and floor plan), per-camera tracking and fusion, gate scans and shelf
//! readings over gRPC, ReID embeddings of every person's crop, global ids on StreamPoses and
//! the floor tracks on StreamTracks.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use walkout::api::proto::walkout as pb;
use walkout::api::proto::walkout::vision_client::VisionClient;
use walkout::app::Running;
use walkout::serve::config::{CameraConfig, ModelServeConfig, ServerConfig};

const MODEL: &str = "movenet-multipose";

#[test]
fn sim_store_gets_global_ids_sessions_and_floor_tracks() {
    common::movenet_json();
    let dir = std::env::temp_dir().join(format!("walkout-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(MODEL)).unwrap();
    std::fs::copy(common::root().join("models").join(MODEL).join("config.toml"), dir.join(MODEL).join("config.toml")).unwrap();
    common::copy_dir(&common::root().join("models").join(MODEL).join("1"), &dir.join(MODEL).join("1"));
    // walkout's own ReID model embeds every person's crop for tracking and fusion
    common::copy_dir(&common::root().join("models/reid-sim"), &dir.join("reid-sim"));
    let cfg = ServerConfig {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        model_repository: dir.clone(),
        device: walkout::runtime::Device::Cpu,
        models: vec![ModelServeConfig { name: MODEL.into(), device: None, input_size: None, batching: None }],
        cameras: vec![CameraConfig {
            id: "store".into(),
            source: "sim".into(),
            url: "seed=5,shoppers=4,cameras=4,warmup=25".into(),
            fps: 4.0,
            ..Default::default()
        }],
        result_buffer: 64,
        max_pending_scans: 4,
        ..ServerConfig::default()
    };
    let r = Running::start(cfg).expect("server starts");
    r.runtime().block_on(async {
        let url = format!("http://{}", r.grpc_addr);
        let mut vision = VisionClient::connect(url.clone()).await.unwrap();
        // device reports: a gate scan, a bad one, shelf readings
        let ok = vision.report_gate_scan(pb::GateScan { t: 0.0, lane: "gate-1".into(), session: "app-1".into() }).await.unwrap();
        assert_eq!(ok.into_inner().accepted, 1);
        let bad = vision.report_gate_scan(pb::GateScan { t: 0.0, lane: String::new(), session: "x".into() }).await.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        let long = vision.report_gate_scan(pb::GateScan { t: 0.0, lane: "l".repeat(300), session: "x".into() }).await.unwrap_err();
        assert_eq!(long.code(), tonic::Code::InvalidArgument);
        let readings = (0..3).map(|i| pb::ShelfReading { t: 0.0, shelf: format!("u0-r{i}"), grams: 500.0 });
        let got = vision.report_shelf_readings(tokio_stream::iter(readings)).await.unwrap().into_inner();
        assert_eq!(got.accepted, 3);
        let nan =
            vision.report_shelf_readings(tokio_stream::iter(vec![pb::ShelfReading { t: 0.0, shelf: "s".into(), grams: f32::NAN }])).await;
        assert_eq!(nan.unwrap_err().code(), tonic::Code::InvalidArgument);

        // floor tracks and global ids arrive
        let mut tracks = vision.stream_tracks(pb::StreamTracksRequest {}).await.unwrap().into_inner();
        let mut poses = vision.stream_poses(pb::StreamPosesRequest { camera_ids: vec!["store".into()] }).await.unwrap().into_inner();
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut saw_track, mut saw_global) = (None, None);
        while Instant::now() < deadline && (saw_track.is_none() || saw_global.is_none()) {
            tokio::select! {
                u = tracks.next() => {
                    let u = u.unwrap().unwrap();
                    if let Some(g) = u.tracks.first() {
                        assert!(u.camera_id.starts_with("store-cam"), "{u:?}");
                        assert!(g.x.is_finite() && g.y.is_finite() && (-1.0..25.0).contains(&g.x), "{g:?}");
                        saw_track = Some(g.id);
                    }
                }
                p = poses.next() => {
                    let p = p.unwrap().unwrap();
                    if let Some(person) = p.persons.iter().find(|q| q.global_id > 0) {
                        assert!(person.track_id > 0, "a global id comes with a camera track id");
                        saw_global = Some(person.global_id);
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        assert!(saw_track.is_some(), "no floor track within the deadline");
        assert!(saw_global.is_some(), "no person with a global id within the deadline");
        let (_, metrics) = common::http_get(r.http_addr, "/metrics");
        assert!(metrics.contains("walkout_store_reports_total{kind=\"gate_scan\"} 1"), "{metrics}");
        assert!(metrics.contains("walkout_store_reports_total{kind=\"shelf_reading\"} 3"));
        let crops: f64 = metrics
            .lines()
            .find(|l| l.starts_with("walkout_reid_crops_total{model=\"movenet-multipose\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(crops > 0.0, "no person crop was embedded: {metrics}");
    });
    r.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
