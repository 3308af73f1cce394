//! `walkout demo`: the server on embedded defaults, fed by the sample cameras (the sample
//! video, the sample photos and the synthetic store), with live frames/s per camera.

use crate::app::Running;
use crate::runtime::Device;
use crate::serve::config::{CameraConfig, ModelServeConfig, ServerConfig};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub data: PathBuf,
    pub repository: PathBuf,
    pub device: Device,
    pub seconds: f64,
    pub draw: Option<PathBuf>,
    pub grpc_addr: String,
    pub http_addr: String,
    /// Model input [height, width] for all cameras.
    pub input_size: [usize; 2],
}

#[derive(Default)]
struct CamStats {
    frames: u64,
    persons: u64,
    e2e_ms: Vec<f64>,
    batch: u64,
}

/// The embedded demo configuration: cameras for whatever sample data exists.
pub fn demo_config(o: &DemoOptions) -> Result<ServerConfig> {
    let mut cameras = Vec::new();
    let video = o.data.join("vtest.avi");
    if video.is_file() {
        cameras.push(CameraConfig {
            id: "vtest".into(),
            source: "video".into(),
            url: video.display().to_string(),
            fps: 5.0,
            r#loop: true,
            ..Default::default()
        });
    }
    let has_photos = ["bus.jpg", "zidane.jpg", "messi5.jpg", "basketball1.png"].iter().any(|p| o.data.join(p).is_file());
    if has_photos {
        cameras.push(CameraConfig {
            id: "photos".into(),
            source: "images".into(),
            url: o.data.display().to_string(),
            fps: 1.0,
            r#loop: true,
            ..Default::default()
        });
    }
    if cameras.is_empty() {
        bail!("no sample data in {}; run scripts/fetch-data", o.data.display());
    }
    cameras.push(CameraConfig {
        id: "store".into(),
        source: "sim".into(),
        url: "cameras=4,shoppers=10,seconds=120,warmup=30".into(),
        fps: 1.0,
        r#loop: true,
        width: 640,
        height: 480,
        ..Default::default()
    });
    Ok(ServerConfig {
        grpc_addr: o.grpc_addr.clone(),
        http_addr: o.http_addr.clone(),
        model_repository: o.repository.clone(),
        device: o.device,
        models: vec![ModelServeConfig { name: "movenet-multipose".into(), device: None, input_size: Some(o.input_size), batching: None }],
        cameras,
        keep_frames: o.draw.is_some(),
        ..ServerConfig::default()
    })
}

pub fn run(o: &DemoOptions) -> Result<()> {
    let config = demo_config(o)?;
    if let Some(d) = &o.draw {
        std::fs::create_dir_all(d)?;
    }
    let running = match Running::start(config.clone()) {
        Ok(r) => r,
        Err(e) if format!("{e:#}").contains("binding") => {
            eprintln!("walkout demo: {e:#}; using free ports instead");
            Running::start(ServerConfig { grpc_addr: "127.0.0.1:0".into(), http_addr: "127.0.0.1:0".into(), ..config })?
        }
        Err(e) => return Err(e),
    };
    let server = running.server.clone();
    let adapter = server
        .model("movenet-multipose")?
        .handle
        .current()
        .map(|m| format!("{} executor on {}", m.exec.name(), m.exec.adapter()))
        .unwrap_or_default();
    println!("walkout demo: gRPC on {}, metrics on http://{}/metrics, {adapter}", running.grpc_addr, running.http_addr);
    println!(
        "cameras: {}",
        server.cameras().iter().map(|c| format!("{} ({})", c.config.id, c.config.source)).collect::<Vec<_>>().join(", ")
    );
    let mut rx = server.subscribe();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(o.seconds);
    let mut stats: BTreeMap<String, CamStats> = BTreeMap::new();
    let mut last_print = t0;
    let mut last_frames: BTreeMap<String, u64> = BTreeMap::new();
    let mut drawn = 0usize;
    running.runtime().block_on(async {
        while Instant::now() < end {
            match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                Ok(Ok(r)) => {
                    let s = stats.entry(r.camera.clone()).or_default();
                    s.frames += 1;
                    s.persons += r.persons().len() as u64;
                    s.e2e_ms.push(r.e2e_s * 1e3);
                    s.batch += r.batch_size as u64;
                    if let (Some(dir), Some(img)) = (&o.draw, &r.image) {
                        let mut canvas = (**img).clone();
                        let labels: Vec<(u64, String)> = r
                            .identities
                            .iter()
                            .map(|id| match (id.global, id.track) {
                                (Some(g), _) => (g, format!("id {g} {}", id.session.as_deref().unwrap_or(""))),
                                (None, Some(t)) => (t, format!("t{t}")),
                                _ => (0, String::new()),
                            })
                            .collect();
                        crate::vision::draw::draw_labelled(&mut canvas, r.persons(), &labels, 0.2);
                        let sub = dir.join(&r.camera);
                        if std::fs::create_dir_all(&sub).is_ok() && canvas.save(sub.join(format!("{:06}.png", r.seq))).is_ok() {
                            drawn += 1;
                        }
                    }
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => eprintln!("demo reader skipped {n} results"),
                Ok(Err(_)) => break,
                Err(_) => {}
            }
            if last_print.elapsed() >= Duration::from_secs(2) {
                let dt = last_print.elapsed().as_secs_f64();
                last_print = Instant::now();
                let line: Vec<String> = stats
                    .iter()
                    .map(|(c, s)| {
                        let prev = last_frames.insert(c.clone(), s.frames).unwrap_or(0);
                        format!("{c} {:.1}", (s.frames - prev) as f64 / dt)
                    })
                    .collect();
                println!("[{:5.1} s] frames/s: {}", t0.elapsed().as_secs_f64(), line.join("  "));
            }
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let cams = server.cameras();
    running.shutdown()?;
    println!("\n{:<14} {:>7} {:>8} {:>8} {:>8} {:>10} {:>9}", "camera", "frames", "fps", "persons", "dropped", "e2e p50ms", "avg batch");
    let mut total = 0;
    for c in &cams {
        let lanes: Vec<&String> = stats.keys().filter(|k| *k == &c.config.id || k.starts_with(&format!("{}-", c.config.id))).collect();
        for lane in lanes {
            let s = &stats[lane];
            let mut l = s.e2e_ms.clone();
            l.sort_by(|a, b| a.total_cmp(b));
            total += s.frames;
            println!(
                "{:<14} {:>7} {:>8.2} {:>8} {:>8} {:>10.1} {:>9.2}",
                lane,
                s.frames,
                s.frames as f64 / wall,
                s.persons,
                if lane == &c.config.id { c.frames_dropped.to_string() } else { "-".into() },
                l.get(l.len() / 2).copied().unwrap_or(f64::NAN),
                s.batch as f64 / s.frames.max(1) as f64
            );
        }
    }
    let dropped: u64 = cams.iter().map(|c| c.frames_dropped).sum();
    println!(
        "total: {total} frames in {wall:.1} s ({:.2} frames/s), {dropped} dropped (oldest first, counted), {adapter}",
        total as f64 / wall
    );
    if let Some(d) = &o.draw {
        println!("wrote {drawn} annotated frames under {}", d.display());
    }
    if total == 0 {
        bail!("no frame was processed");
    }
    Ok(())
}
