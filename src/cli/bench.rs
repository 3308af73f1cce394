//! `walkout bench`: N cameras at F frames/s through an in-process server, or through a
//! running server over gRPC (PushFrames in, StreamPoses out). Reports throughput, end-to-end
//! latency percentiles, the average batch size and drops.

use crate::app::Running;
use crate::runtime::Device;
use crate::serve::config::{BatchingParams, CameraConfig, ModelServeConfig, ServerConfig};
use crate::vision::draw;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub cameras: usize,
    pub fps: f64,
    pub seconds: f64,
    pub width: u32,
    pub height: u32,
    /// A running server's gRPC address; in-process when None.
    pub target: Option<String>,
    pub plot: Option<PathBuf>,
    pub model: String,
    pub device: Device,
    pub repository: PathBuf,
    /// Still image the cameras show (resized); a gradient when None.
    pub still: Option<PathBuf>,
    pub batching: BatchingParams,
    pub warmup: f64,
}

/// One finished frame: when its result arrived (seconds since the measurement began), its
/// end-to-end latency and its batch size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    pub t: f64,
    pub e2e_ms: f64,
    pub batch: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub mode: String,
    pub cameras: usize,
    pub fps_per_camera: f64,
    pub width: u32,
    pub height: u32,
    pub seconds: f64,
    pub offered_fps: f64,
    pub frames_done: usize,
    pub throughput_fps: f64,
    pub e2e_ms_p50: f64,
    pub e2e_ms_p95: f64,
    pub e2e_ms_p99: f64,
    pub avg_batch: f64,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    pub adapter: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(o: &BenchOptions, mode: &str, samples: &[Sample], sent: u64, dropped: u64, adapter: String) -> BenchReport {
    let mut lat: Vec<f64> = samples.iter().map(|s| s.e2e_ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let n = samples.len();
    BenchReport {
        mode: mode.into(),
        cameras: o.cameras,
        fps_per_camera: o.fps,
        width: o.width,
        height: o.height,
        seconds: o.seconds,
        offered_fps: o.cameras as f64 * o.fps,
        frames_done: n,
        throughput_fps: n as f64 / o.seconds,
        e2e_ms_p50: percentile(&lat, 0.5),
        e2e_ms_p95: percentile(&lat, 0.95),
        e2e_ms_p99: percentile(&lat, 0.99),
        avg_batch: if n == 0 { 0.0 } else { samples.iter().map(|s| s.batch as f64).sum::<f64>() / n as f64 },
        frames_sent: sent,
        frames_dropped: dropped,
        adapter,
    }
}

/// Runs the benchmark and returns the report and the samples.
pub fn run(o: &BenchOptions) -> Result<(BenchReport, Vec<Sample>)> {
    if o.cameras == 0 || o.seconds <= 0.0 || o.fps < 0.0 || o.width == 0 || o.height == 0 {
        bail!("bench needs --cameras >= 1, --seconds > 0, --fps >= 0 and a frame size");
    }
    let out = match &o.target {
        None => in_process(o)?,
        Some(addr) => remote(o, addr)?,
    };
    if let Some(p) = &o.plot {
        plot(&out.1, o.seconds, p)?;
    }
    Ok(out)
}

fn in_process(o: &BenchOptions) -> Result<(BenchReport, Vec<Sample>)> {
    let config = ServerConfig {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        model_repository: o.repository.clone(),
        device: o.device,
        models: vec![ModelServeConfig { name: o.model.clone(), device: None, input_size: None, batching: Some(o.batching.clone()) }],
        ..ServerConfig::default()
    };
    let running = Running::start(config)?;
    let server = running.server.clone();
    let adapter = server.model(&o.model)?.handle.current().map(|m| m.exec.adapter()).unwrap_or_default();
    let mut rx = server.subscribe();
    let ids: Vec<String> = (0..o.cameras).map(|i| format!("bench-cam{i}")).collect();
    for id in &ids {
        server.add_camera(CameraConfig {
            id: id.clone(),
            source: "synthetic".into(),
            url: o.still.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            fps: o.fps,
            model: o.model.clone(),
            width: o.width,
            height: o.height,
            ..Default::default()
        })?;
    }
    let t0 = Instant::now();
    let begin = t0 + Duration::from_secs_f64(o.warmup);
    let end = begin + Duration::from_secs_f64(o.seconds);
    let mut before = (0u64, 0u64);
    let counts = |server: &crate::serve::Server| {
        let m = &server.metrics;
        let sent: u64 = ids.iter().map(|c| m.frames_in.with_label_values(&[c]).get()).sum();
        let dropped: u64 = ids.iter().map(|c| m.frames_dropped.with_label_values(&[c, "queue_full"]).get()).sum();
        (sent, dropped)
    };
    let mut samples = Vec::new();
    let mut measuring = false;
    // when the sent count was read: frames that arrived before it are not in the window
    let mut before_at = end;
    running.runtime().block_on(async {
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if !measuring && now >= begin {
                measuring = true;
                before = counts(&server);
                before_at = Instant::now();
            }
            match tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
                Ok(Ok(r)) => {
                    let now = Instant::now();
                    // frames that arrived in the window (the sent count's window), done in it
                    let arrived = now.checked_sub(Duration::from_secs_f64(r.e2e_s)).unwrap_or(now);
                    if arrived >= before_at && now < end {
                        samples.push(Sample { t: (now - begin).as_secs_f64(), e2e_ms: r.e2e_s * 1e3, batch: r.batch_size });
                    }
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => tracing::warn!("bench reader skipped {n} results"),
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
    });
    let (s1, d1) = counts(&server);
    let (s0, d0) = before;
    let r = report(o, "in-process", &samples, s1 - s0, d1 - d0, adapter);
    running.shutdown()?;
    Ok((r, samples))
}

fn remote(o: &BenchOptions, addr: &str) -> Result<(BenchReport, Vec<Sample>)> {
    use crate::api::proto::walkout as pb;
    use crate::api::proto::walkout::vision_client::VisionClient;
    let url = if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") };
    let base = match &o.still {
        Some(p) => crate::vision::image_io::load(p)?,
        None => image::RgbImage::from_fn(o.width, o.height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])),
    };
    let img = image::imageops::resize(&base, o.width, o.height, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85).encode_image(&img).context("encoding the bench frame")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let client = VisionClient::connect(url.clone()).await.with_context(|| format!("connecting to {url}"))?.max_decoding_message_size(64 << 20);
        let ids: Vec<String> = (0..o.cameras).map(|i| format!("bench-cam{i}")).collect();
        let mut results = client.clone().stream_poses(pb::StreamPosesRequest { camera_ids: ids.clone() }).await?.into_inner();
        let total = o.warmup + o.seconds;
        let mut pushers = Vec::new();
        for id in ids.clone() {
            let mut c = client.clone();
            let jpeg = jpeg.clone();
            let (fps, total) = (o.fps, total);
            pushers.push(tokio::spawn(async move {
                let stream = async_stream::stream! {
                    let t0 = Instant::now();
                    let mut seq = 0u64;
                    let period = if fps > 0.0 { Duration::from_secs_f64(1.0 / fps) } else { Duration::from_millis(1) };
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    while t0.elapsed().as_secs_f64() < total {
                        tick.tick().await;
                        let ts = crate::serve::unix_now();
                        yield pb::Frame { camera_id: id.clone(), seq, capture_ts: ts, image: Some(pb::frame::Image::Encoded(jpeg.clone())) };
                        seq += 1;
                    }
                };
                c.push_frames(stream).await.map(|r| r.into_inner())
            }));
        }
        let t0 = Instant::now();
        let begin = t0 + Duration::from_secs_f64(o.warmup);
        let end = begin + Duration::from_secs_f64(o.seconds);
        let mut samples = Vec::new();
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            match tokio::time::timeout(end - now, results.message()).await {
                Ok(Ok(Some(r))) => {
                    let now = Instant::now();
                    if now >= begin {
                        samples.push(Sample { t: (now - begin).as_secs_f64(), e2e_ms: (crate::serve::unix_now() - r.capture_ts) * 1e3, batch: r.batch_size as usize });
                    }
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(anyhow::anyhow!("StreamPoses: {e}")),
                Err(_) => break,
            }
        }
        let mut sent = 0;
        let mut dropped = 0;
        for p in pushers {
            let r = p.await??;
            sent += r.accepted + r.rejected;
            dropped += r.dropped + r.rejected;
        }
        // frames offered over the whole run, scaled to the measured window
        let scale = o.seconds / total;
        let r = report(o, &format!("grpc {addr}"), &samples, (sent as f64 * scale) as u64, (dropped as f64 * scale) as u64, String::new());
        Ok((r, samples))
    })
}

/// Draws throughput (top) and end-to-end latency p50/p99 (bottom) per second, and
/// writes the series as CSV beside the PNG.
pub fn plot(samples: &[Sample], seconds: f64, path: &std::path::Path) -> Result<()> {
    let bucket = 1.0;
    let nb = ((seconds / bucket).ceil() as usize).max(1);
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); nb];
    for s in samples {
        let b = ((s.t / bucket) as usize).min(nb - 1);
        per[b].push(s.e2e_ms);
    }
    let mut rows = Vec::new();
    for v in per.iter_mut() {
        v.sort_by(|a, b| a.total_cmp(b));
        rows.push((v.len() as f64 / bucket, percentile(v, 0.5), percentile(v, 0.99)));
    }
    let mut csv = String::from("t_s,throughput_fps,e2e_ms_p50,e2e_ms_p99\n");
    for (i, r) in rows.iter().enumerate() {
        csv.push_str(&format!("{:.2},{:.2},{:.2},{:.2}\n", i as f64 * bucket, r.0, r.1, r.2));
    }
    std::fs::write(path.with_extension("csv"), csv)?;
    let (w, h) = (900u32, 640u32);
    let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    let (black, grey) = ([0, 0, 0], [170, 170, 170]);
    let fmt = |v: f64| if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") };
    // one panel: axes, a grid line at half height, the max and 0 labels, and the series
    let panel = |img: &mut image::RgbImage, top: i32, title: &str, series: &[(Vec<f64>, [u8; 3])]| {
        let (x0, x1, y0, y1) = (70i32, w as i32 - 20, top + 30, top + 270);
        let max = series.iter().flat_map(|(v, _)| v.iter().copied()).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-9) * 1.1;
        draw::text(img, x0, top + 6, title, 3, black);
        draw::segment(img, (x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2), grey);
        draw::segment(img, (x0, y0), (x1, y0), grey);
        draw::segment(img, (x0, y1), (x1, y1), black);
        draw::segment(img, (x0, y0), (x0, y1), black);
        draw::text(img, 4, y0 - 2, &fmt(max), 2, black);
        draw::text(img, 4, (y0 + y1) / 2 - 5, &fmt(max / 2.0), 2, black);
        draw::text(img, 4, y1 - 10, "0", 2, black);
        for (v, color) in series {
            let pts: Vec<(i32, i32)> = v
                .iter()
                .enumerate()
                .filter(|(_, y)| y.is_finite())
                .map(|(i, y)| (x0 + ((x1 - x0) as f64 * (i as f64 + 0.5) / nb as f64) as i32, y1 - ((y1 - y0) as f64 * y / max) as i32))
                .collect();
            for p in pts.windows(2) {
                draw::segment(img, p[0], p[1], *color);
                draw::segment(img, (p[0].0, p[0].1 + 1), (p[1].0, p[1].1 + 1), *color);
            }
        }
        draw::text(img, x0, y1 + 6, "0 S", 2, black);
        let end = format!("{} S", fmt(seconds));
        draw::text(img, x1 - end.len() as i32 * 8, y1 + 6, &end, 2, black);
    };
    panel(&mut img, 0, "THROUGHPUT: FRAMES/S PER SECOND", &[(rows.iter().map(|r| r.0).collect(), [20, 90, 200])]);
    panel(
        &mut img,
        320,
        "E2E LATENCY MS: P50 GREEN  P99 RED",
        &[(rows.iter().map(|r| r.1).collect(), [20, 160, 60]), (rows.iter().map(|r| r.2).collect(), [200, 40, 40])],
    );
    img.save(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
