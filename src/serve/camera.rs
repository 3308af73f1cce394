//! Camera runners: one thread per configured camera pulls frames from its source, paces them,
//! and queues them with the camera's model. Streams that drop reconnect with backoff; the
//! other cameras are unaffected.

use super::config::CameraConfig;
use super::error::ServeError;
use super::metrics::Metrics;
use crate::sources::{self, CameraFrame, ChildPid, FfmpegSource, FrameSource, ImageSeqSource, SimSource, SourceError, SyntheticSource};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The lowest frame rate a camera may ask for (one frame in 100 s), besides 0.
const MIN_FPS: f64 = 0.01;

/// Where a camera runner sends what its source yields (the server).
pub trait FrameSink: Clone + Send + 'static {
    /// Queues a frame with the camera's model.
    fn push_frame(&self, frame: CameraFrame, arrived: Instant) -> Result<(), ServeError>;
    /// Counts a frame the source could not decode.
    fn reject_frame(&self, camera: &str, reason: &str);
    fn metrics(&self) -> &Metrics;
    /// The largest accepted frame side.
    fn max_frame_side(&self) -> u32;
}

#[derive(Debug)]
struct Status {
    connected: AtomicBool,
    reconnects: AtomicU64,
    last_error: Mutex<String>,
    last_frame: Mutex<Instant>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            connected: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            last_error: Mutex::default(),
            last_frame: Mutex::new(Instant::now()),
        }
    }
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
    /// A push camera that registered itself with its first frame (expires when idle).
    pub self_registered: bool,
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

fn lane_of(cfg: &CameraConfig, frame_camera: &str) -> String {
    if cfg.source == "sim" {
        format!("{}-{}", cfg.id, frame_camera.trim_start_matches("sim-"))
    } else {
        cfg.id.clone()
    }
}

/// Starts a camera's runner thread (push cameras have none).
pub fn start<S: FrameSink>(server: S, cfg: CameraConfig) -> Result<CameraEntry, ServeError> {
    let lanes = match cfg.source.as_str() {
        "push" | "video" | "images" | "synthetic" => vec![cfg.id.clone()],
        "sim" => {
            let n = sources::sim_cameras(&cfg.url, cfg.width, cfg.height, cfg.fps)
                .map_err(|e| ServeError::InvalidArgument(format!("camera '{}': {e}", cfg.id)))?;
            (0..n).map(|i| format!("{}-cam{i}", cfg.id)).collect()
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
    // 0 is "as the source gives"; below MIN_FPS a frame interval would not fit a Duration
    if !(cfg.fps.is_finite() && (cfg.fps == 0.0 || (MIN_FPS..=1000.0).contains(&cfg.fps))) {
        return Err(ServeError::InvalidArgument(format!("camera '{}': fps must be 0 or in [{MIN_FPS}, 1000]", cfg.id)));
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
    Ok(CameraEntry { config: cfg, lanes, stop, pid, status, thread, self_registered: false })
}

impl CameraEntry {
    /// The queue lanes (camera ids on frames) this camera feeds.
    pub fn lanes(&self) -> Vec<String> {
        self.lanes.clone()
    }

    /// Notes that a frame arrived (push cameras).
    pub fn touch(&self) {
        if let Ok(mut t) = self.status.last_frame.lock() {
            *t = Instant::now();
        }
    }

    /// Time since the last frame arrived (or since the camera started).
    pub fn idle_for(&self) -> Duration {
        self.status.last_frame.lock().map(|t| t.elapsed()).unwrap_or_default()
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
        let dropped = |l: &str| super::metrics::DROP_REASONS.iter().map(|r| m.frames_dropped.with_label_values(&[l, r]).get()).sum::<u64>();
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

fn open<S: FrameSink>(server: &S, cfg: &CameraConfig, pid: &ChildPid) -> Result<Box<dyn FrameSource>, SourceError> {
    let fps = (cfg.fps > 0.0).then_some(cfg.fps);
    let max_side = server.max_frame_side();
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
        "sim" => Box::new(SimSource::from_options(&cfg.id, &cfg.url, cfg.width, cfg.height, cfg.fps)?),
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

fn run<S: FrameSink>(server: S, cfg: CameraConfig, stop: Arc<AtomicBool>, pid: ChildPid, status: Arc<Status>) {
    let stream = cfg.source == "video" && sources::is_stream_url(&cfg.url);
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
                // a source's own rate (a video's header) may be anything: one that gives no
                // representable interval paces nothing
                let interval = src.fps().filter(|f| *f > 0.0).and_then(|f| Duration::try_from_secs_f64(1.0 / f).ok());
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
        server.metrics().source_reconnects.with_label_values(&[&cfg.id]).inc();
        tracing::info!(camera = %cfg.id, "reconnecting in {:.2} s", backoff.as_secs_f64());
        sleep_unless_stopped(backoff, &stop);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    status.connected.store(false, Ordering::SeqCst);
}
