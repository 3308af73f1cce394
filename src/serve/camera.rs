//! Camera runners: one thread per configured camera pulls frames from its source, paces them,
//! and queues them with the camera's model. Streams that drop reconnect with backoff; the
//! other cameras are unaffected.

use super::config::CameraConfig;
use super::metrics::Metrics;
use super::source::{self, ChildPid, FfmpegSource, FrameSource, ImageSeqSource, SimSource, SourceError, SyntheticSource};
use super::{ServeError, Server};
use crate::sim::SimConfig;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Status {
    connected: AtomicBool,
    reconnects: AtomicU64,
    last_error: Mutex<String>,
}

/// A running camera.
#[derive(Debug)]
pub struct CameraEntry {
    pub config: CameraConfig,
    lanes: Vec<String>,
    stop: Arc<AtomicBool>,
    pid: ChildPid,
    status: Arc<Status>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What ListCameras reports.
#[derive(Clone, Debug)]
pub struct CameraInfo {
    pub config: CameraConfig,
    pub connected: bool,
    pub frames_in: u64,
    pub frames_dropped: u64,
    pub frames_done: u64,
    pub reconnects: u64,
    pub last_error: String,
}

/// The synthetic store for a `sim` camera: cameras `<id>-cam0`, `<id>-cam1`, ... Options
/// come as `key=value` pairs in `url`: `seed`, `shoppers`, `cameras` (4 to 32), `seconds`
/// (length of one store session; it restarts when `loop` is set) and `warmup` (simulated
/// seconds skipped before the first frame, so shoppers are already in the store).
fn sim_config(cfg: &CameraConfig) -> Result<(SimConfig, f64), String> {
    let mut s = SimConfig { seconds: 300.0, ..SimConfig::default() };
    let mut warmup = 0.0;
    for kv in cfg.url.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("sim option '{kv}' is not key=value"))?;
        let num = |v: &str| v.trim().parse::<f64>().map_err(|_| format!("sim option {k}: '{v}' is not a number"));
        match k.trim() {
            "seed" => s.seed = num(v)? as u64,
            "shoppers" => s.shoppers = num(v)? as usize,
            "cameras" => s.cameras = num(v)? as usize,
            "seconds" => s.seconds = num(v)?,
            "warmup" => warmup = num(v)?.clamp(0.0, 3600.0),
            other => return Err(format!("unknown sim option '{other}' (seed, shoppers, cameras, seconds, warmup)")),
        }
    }
    if cfg.width > 0 && cfg.height > 0 {
        s.width = cfg.width as usize;
        s.height = cfg.height as usize;
    }
    if cfg.fps > 0.0 {
        s.fps = cfg.fps;
    }
    s.validate().map_err(|e| e.to_string())?;
    Ok((s, warmup))
}

fn lane_of(cfg: &CameraConfig, frame_camera: &str) -> String {
    if cfg.source == "sim" {
        format!("{}-{}", cfg.id, frame_camera.trim_start_matches("sim-"))
    } else {
        cfg.id.clone()
    }
}

/// Starts a camera's runner thread (push cameras have none).
pub fn start(server: Arc<Server>, cfg: CameraConfig) -> Result<CameraEntry, ServeError> {
    let lanes = match cfg.source.as_str() {
        "push" | "video" | "images" | "synthetic" => vec![cfg.id.clone()],
        "sim" => {
            let (sc, _) = sim_config(&cfg).map_err(|e| ServeError::InvalidArgument(format!("camera '{}': {e}", cfg.id)))?;
            (0..sc.cameras).map(|i| format!("{}-cam{i}", cfg.id)).collect()
        }
        other => {
            return Err(ServeError::InvalidArgument(format!(
                "camera '{}': unknown source '{other}' (expected video, images, push, synthetic or sim)",
                cfg.id
            )))
        }
    };
    if matches!(cfg.source.as_str(), "video" | "images") && cfg.url.is_empty() {
        return Err(ServeError::InvalidArgument(format!("camera '{}': source '{}' needs a url", cfg.id, cfg.source)));
    }
    if !(cfg.fps.is_finite() && cfg.fps >= 0.0 && cfg.fps <= 1000.0) {
        return Err(ServeError::InvalidArgument(format!("camera '{}': fps must be in [0, 1000]", cfg.id)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pid: ChildPid = Arc::new(AtomicU32::new(0));
    let status = Arc::new(Status::default());
    let thread = if cfg.source == "push" {
        status.connected.store(true, Ordering::SeqCst);
        None
    } else {
        let (c, s, p, st) = (cfg.clone(), stop.clone(), pid.clone(), status.clone());
        Some(
            std::thread::Builder::new()
                .name(format!("cam-{}", cfg.id))
                .spawn(move || run(server, c, s, p, st))
                .map_err(|e| ServeError::Internal(format!("spawning camera thread: {e}")))?,
        )
    };
    Ok(CameraEntry { config: cfg, lanes, stop, pid, status, thread })
}

impl CameraEntry {
    /// The queue lanes (camera ids on frames) this camera feeds.
    pub fn lanes(&self) -> Vec<String> {
        self.lanes.clone()
    }

    pub fn feeds(&self, camera: &str) -> bool {
        self.lanes.iter().any(|l| l == camera)
    }

    /// Stops the runner (killing a blocked ffmpeg) and joins it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let pid = self.pid.load(Ordering::SeqCst);
        if pid != 0 {
            // SAFETY: kill(2) on a child process id this camera started; a stale id is
            // harmless because the runner clears it after reaping the child.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn info(&self, m: &Metrics) -> CameraInfo {
        let sum = |f: &dyn Fn(&str) -> u64| self.lanes.iter().map(|l| f(l)).sum::<u64>();
        let dropped = |l: &str| {
            ["queue_full", "removed", "shutdown", "no_model"].iter().map(|r| m.frames_dropped.with_label_values(&[l, r]).get()).sum::<u64>()
        };
        CameraInfo {
            config: self.config.clone(),
            connected: self.status.connected.load(Ordering::SeqCst),
            frames_in: sum(&|l| m.frames_in.with_label_values(&[l]).get()),
            frames_dropped: sum(&dropped),
            frames_done: sum(&|l| m.frames_done.with_label_values(&[l]).get()),
            reconnects: self.status.reconnects.load(Ordering::SeqCst),
            last_error: self.status.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }
}

fn open(server: &Server, cfg: &CameraConfig, pid: &ChildPid) -> Result<Box<dyn FrameSource>, SourceError> {
    let fps = (cfg.fps > 0.0).then_some(cfg.fps);
    let max_side = server.config.max_frame_side;
    Ok(match cfg.source.as_str() {
        "video" => Box::new(FfmpegSource::open(&cfg.id, &cfg.url, fps, max_side, pid)?),
        "images" => Box::new(ImageSeqSource::open(&cfg.id, &cfg.url, cfg.r#loop, fps, max_side)?),
        "synthetic" => {
            let still = if cfg.url.is_empty() {
                None
            } else {
                Some(
                    crate::vision::image_io::load(std::path::Path::new(&cfg.url))
                        .map_err(|e| SourceError::Failed { source_id: cfg.id.clone(), msg: e.to_string() })?,
                )
            };
            let (w, h) = if cfg.width > 0 && cfg.height > 0 { (cfg.width, cfg.height) } else { (640, 480) };
            Box::new(SyntheticSource::new(&cfg.id, w, h, still.as_ref(), fps, None))
        }
        "sim" => {
            let (sc, warmup) = sim_config(cfg).map_err(|msg| SourceError::Failed { source_id: cfg.id.clone(), msg })?;
            let mut src = SimSource::new(sc)?;
            src.fast_forward(warmup);
            Box::new(src)
        }
        other => return Err(SourceError::Failed { source_id: cfg.id.clone(), msg: format!("unknown source '{other}'") }),
    })
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

enum Ended {
    Stopped,
    Eof,
    Failed,
}

fn run(server: Arc<Server>, cfg: CameraConfig, stop: Arc<AtomicBool>, pid: ChildPid, status: Arc<Status>) {
    let stream = cfg.source == "video" && source::is_stream_url(&cfg.url);
    let mut backoff = Duration::from_millis(250);
    let set_error = |msg: String| {
        if let Ok(mut e) = status.last_error.lock() {
            *e = msg;
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let ended = match open(&server, &cfg, &pid) {
            Err(e) => {
                tracing::warn!(camera = %cfg.id, "{e}");
                set_error(e.to_string());
                Ended::Failed
            }
            Ok(mut src) => {
                status.connected.store(true, Ordering::SeqCst);
                let interval = src.fps().filter(|f| *f > 0.0).map(|f| Duration::from_secs_f64(1.0 / f));
                let mut start = Instant::now();
                let mut n: u32 = 0;
                let ended = loop {
                    if stop.load(Ordering::SeqCst) {
                        break Ended::Stopped;
                    }
                    match src.next_frames() {
                        Ok(Some(frames)) => {
                            backoff = Duration::from_millis(250);
                            let now = Instant::now();
                            for mut f in frames {
                                f.camera = lane_of(&cfg, &f.camera);
                                if let Err(e) = server.push_frame(f, now) {
                                    tracing::debug!(camera = %cfg.id, "frame not queued: {e}");
                                }
                            }
                            if let Some(iv) = interval {
                                n += 1;
                                let due = start + iv * n;
                                let now = Instant::now();
                                if due > now {
                                    sleep_unless_stopped(due - now, &stop);
                                } else if now - due > Duration::from_secs(1) {
                                    // far behind (the machine stalled): restart the clock rather than burst
                                    start = now;
                                    n = 0;
                                }
                            }
                        }
                        Ok(None) => break Ended::Eof,
                        Err(SourceError::BadFrame { msg, .. }) => {
                            server.reject_frame(&cfg.id, "invalid");
                            tracing::warn!(camera = %cfg.id, "bad frame skipped: {msg}");
                            set_error(msg);
                        }
                        Err(e) => {
                            tracing::warn!(camera = %cfg.id, "{e}");
                            set_error(e.to_string());
                            break Ended::Failed;
                        }
                    }
                };
                drop(src);
                pid.store(0, Ordering::SeqCst);
                status.connected.store(false, Ordering::SeqCst);
                ended
            }
        };
        match ended {
            Ended::Stopped => break,
            Ended::Eof if !stream => {
                if cfg.r#loop {
                    continue;
                }
                tracing::info!(camera = %cfg.id, "source ended");
                break;
            }
            _ => {}
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        status.reconnects.fetch_add(1, Ordering::SeqCst);
        server.metrics.source_reconnects.with_label_values(&[&cfg.id]).inc();
        tracing::info!(camera = %cfg.id, "reconnecting in {:.2} s", backoff.as_secs_f64());
        sleep_unless_stopped(backoff, &stop);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    status.connected.store(false, Ordering::SeqCst);
}
