//! Camera sources. Every frame carries a camera id, a capture timestamp and a sequence
//! number. The synthetic store is one source that feeds all of its cameras.

use crate::sim::{SimConfig, SimError, Simulator};
use crate::vision::image_io;
use image::RgbImage;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// One decoded camera frame.
#[derive(Clone, Debug)]
pub struct CameraFrame {
    pub camera: String,
    /// Per-camera sequence number, from 0.
    pub seq: u64,
    /// Capture time in seconds since the source started.
    pub capture_ts: f64,
    pub image: RgbImage,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source cannot go on (a stream dropped, a file is unreadable); streams reconnect.
    #[error("source '{source_id}': {msg}")]
    Failed { source_id: String, msg: String },
    /// One frame is bad (an undecodable image); the source goes on with the next one.
    #[error("source '{source_id}': frame {seq}: {msg}")]
    BadFrame { source_id: String, seq: u64, msg: String },
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// A producer of frames for one or more cameras.
pub trait FrameSource: Send {
    /// Camera ids this source feeds.
    fn cameras(&self) -> Vec<String>;
    /// The next frame of every camera, or `None` at the end.
    fn next_frames(&mut self) -> Result<Option<Vec<CameraFrame>>, SourceError>;
    /// Nominal frame rate, if any.
    fn fps(&self) -> Option<f64>;
}

/// The simulator as a camera source (`source = "sim"`): cameras `sim-cam0`, `sim-cam1`, ...
#[derive(Debug)]
pub struct SimSource {
    sim: Simulator,
    frames: u64,
}

impl SimSource {
    pub fn new(config: SimConfig) -> Result<Self, SourceError> {
        let frames = (config.seconds * config.fps).round() as u64;
        Ok(SimSource { sim: Simulator::new(config)?, frames })
    }
    /// Advances the store by `seconds` of simulated time without rendering.
    pub fn fast_forward(&mut self, seconds: f64) {
        let steps = (seconds / 0.04).round() as usize;
        for _ in 0..steps {
            self.sim.world.step(0.04);
        }
    }

    /// The simulator, for its ground truth.
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }
}

impl FrameSource for SimSource {
    fn cameras(&self) -> Vec<String> {
        self.sim.cams.iter().map(|c| format!("sim-cam{}", c.cam.id)).collect()
    }
    fn fps(&self) -> Option<f64> {
        Some(self.sim.config.fps)
    }
    fn next_frames(&mut self) -> Result<Option<Vec<CameraFrame>>, SourceError> {
        if self.sim.frame >= self.frames {
            return Ok(None);
        }
        self.sim.step();
        let seq = self.sim.frame - 1;
        let ts = self.sim.time();
        let mut out = Vec::with_capacity(self.sim.cams.len());
        for c in &self.sim.cams {
            let image = RgbImage::from_raw(c.frame.width as u32, c.frame.height as u32, c.frame.rgb.clone())
                .ok_or_else(|| SourceError::Failed { source_id: "sim".into(), msg: "frame buffer size mismatch (this is a bug)".into() })?;
            out.push(CameraFrame { camera: format!("sim-cam{}", c.cam.id), seq, capture_ts: ts, image });
        }
        Ok(Some(out))
    }
}

/// An image sequence: the files of a directory, or of a glob like `dir/frame-*.jpg` (one `*`
/// in the file name), in name order.
#[derive(Debug)]
pub struct ImageSeqSource {
    camera: String,
    paths: Vec<PathBuf>,
    next: usize,
    seq: u64,
    looped: bool,
    fps: Option<f64>,
    max_side: u32,
}

impl ImageSeqSource {
    pub fn open(camera: &str, pattern: &str, looped: bool, fps: Option<f64>, max_side: u32) -> Result<Self, SourceError> {
        let fail = |msg: String| SourceError::Failed { source_id: camera.into(), msg };
        let p = Path::new(pattern);
        let (dir, filter): (PathBuf, Option<(String, String)>) = if p.is_dir() {
            (p.to_path_buf(), None)
        } else {
            let name =
                p.file_name().and_then(|n| n.to_str()).ok_or_else(|| fail(format!("'{pattern}' is neither a directory nor a glob")))?;
            let (pre, post) =
                name.split_once('*').ok_or_else(|| fail(format!("'{pattern}' is neither a directory nor a glob with one '*'")))?;
            (p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")), Some((pre.to_string(), post.to_string())))
        };
        let rd = std::fs::read_dir(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                match &filter {
                    Some((pre, post)) => n.len() >= pre.len() + post.len() && n.starts_with(pre.as_str()) && n.ends_with(post.as_str()),
                    None => {
                        let l = n.to_ascii_lowercase();
                        l.ends_with(".jpg") || l.ends_with(".jpeg") || l.ends_with(".png")
                    }
                }
            })
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(fail(format!("no images match '{pattern}'")));
        }
        Ok(ImageSeqSource { camera: camera.into(), paths, next: 0, seq: 0, looped, fps, max_side })
    }
}

impl FrameSource for ImageSeqSource {
    fn cameras(&self) -> Vec<String> {
        vec![self.camera.clone()]
    }
    fn fps(&self) -> Option<f64> {
        self.fps
    }
    fn next_frames(&mut self) -> Result<Option<Vec<CameraFrame>>, SourceError> {
        if self.next >= self.paths.len() {
            if !self.looped {
                return Ok(None);
            }
            self.next = 0;
        }
        let path = &self.paths[self.next];
        self.next += 1;
        let seq = self.seq;
        self.seq += 1;
        let bytes = std::fs::read(path).map_err(|e| SourceError::BadFrame {
            source_id: self.camera.clone(),
            seq,
            msg: format!("{}: {e}", path.display()),
        })?;
        let image = image_io::decode_limited(&bytes, &path.display().to_string(), self.max_side).map_err(|e| SourceError::BadFrame {
            source_id: self.camera.clone(),
            seq,
            msg: e.to_string(),
        })?;
        let capture_ts = self.fps.map(|f| seq as f64 / f).unwrap_or(0.0);
        Ok(Some(vec![CameraFrame { camera: self.camera.clone(), seq, capture_ts, image }]))
    }
}

/// Whether a video URL is a live stream (reconnected when it drops) rather than a file.
pub fn is_stream_url(url: &str) -> bool {
    ["rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://"].iter().any(|p| url.starts_with(p))
}

/// A video file or stream URL decoded to RGB by an `ffmpeg` subprocess (Debian `ffmpeg`).
/// ffmpeg writes one binary PPM per frame, so each frame carries its own size: no probe
/// connection is needed (live streams may accept one client), a resolution change mid-stream
/// is followed, and the side limit is checked from each frame's header before its pixels are
/// read.
#[derive(Debug)]
pub struct FfmpegSource {
    camera: String,
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
    seq: u64,
    fps: Option<f64>,
    max_side: u32,
    started: std::time::Instant,
}

/// The process id of a running ffmpeg, so a camera can be stopped while its read blocks.
pub type ChildPid = Arc<AtomicU32>;

impl FfmpegSource {
    pub fn open(camera: &str, url: &str, fps: Option<f64>, max_side: u32, pid: &ChildPid) -> Result<Self, SourceError> {
        let fail = |msg: String| SourceError::Failed { source_id: camera.into(), msg };
        let stream = is_stream_url(url);
        if !stream && !Path::new(url).is_file() {
            return Err(fail(format!("{url}: no such file")));
        }
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        if stream {
            // a stalled connection fails after 5 s instead of blocking forever
            cmd.args(["-rw_timeout", "5000000"]);
        }
        cmd.args(["-i", url, "-an", "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "pipe:1"]);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("running ffmpeg: {e}; run scripts/setup")))?;
        pid.store(child.id(), Ordering::SeqCst);
        let out = child.stdout.take().ok_or_else(|| fail("ffmpeg has no output pipe".into()))?;
        Ok(FfmpegSource {
            camera: camera.into(),
            child,
            out: std::io::BufReader::with_capacity(1 << 20, out),
            seq: 0,
            fps,
            max_side,
            started: std::time::Instant::now(),
        })
    }

    /// Reads one PPM header token (skipping whitespace and comments); None at end of stream.
    fn token(&mut self) -> std::io::Result<Option<String>> {
        let mut tok = String::new();
        let mut byte = [0u8; 1];
        loop {
            if self.out.read(&mut byte)? == 0 {
                return Ok(if tok.is_empty() { None } else { Some(tok) });
            }
            let c = byte[0];
            if c == b'#' && tok.is_empty() {
                while self.out.read(&mut byte)? == 1 && byte[0] != b'\n' {}
                continue;
            }
            if c.is_ascii_whitespace() {
                if !tok.is_empty() {
                    return Ok(Some(tok));
                }
                continue;
            }
            if tok.len() > 16 {
                return Err(std::io::Error::other("PPM header token too long"));
            }
            tok.push(c as char);
        }
    }

    fn ended(&mut self, got_header: bool) -> Result<Option<Vec<CameraFrame>>, SourceError> {
        let status = self.child.wait().ok();
        match status {
            Some(s) if s.success() && !got_header => Ok(None),
            s => Err(SourceError::Failed {
                source_id: self.camera.clone(),
                msg: format!("stream ended ({})", s.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".into())),
            }),
        }
    }
}

impl Drop for FfmpegSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FrameSource for FfmpegSource {
    fn cameras(&self) -> Vec<String> {
        vec![self.camera.clone()]
    }
    fn fps(&self) -> Option<f64> {
        self.fps
    }
    fn next_frames(&mut self) -> Result<Option<Vec<CameraFrame>>, SourceError> {
        let fail = |camera: &str, msg: String| SourceError::Failed { source_id: camera.into(), msg };
        let mut header = Vec::with_capacity(4);
        for _ in 0..4 {
            match self.token() {
                Ok(Some(t)) => header.push(t),
                Ok(None) => return self.ended(!header.is_empty()),
                Err(e) => return Err(fail(&self.camera, format!("reading ffmpeg: {e}"))),
            }
        }
        let (w, h) = match (header[0].as_str(), header[1].parse::<u32>(), header[2].parse::<u32>(), header[3].as_str()) {
            ("P6", Ok(w), Ok(h), "255") => (w, h),
            _ => return Err(fail(&self.camera, format!("unexpected frame header from ffmpeg: {header:?}"))),
        };
        if w == 0 || h == 0 || w > self.max_side || h > self.max_side {
            return Err(fail(&self.camera, format!("video is {w}x{h}; each side must be between 1 and {}", self.max_side)));
        }
        let mut buf = vec![0u8; w as usize * h as usize * 3];
        if let Err(e) = self.out.read_exact(&mut buf) {
            return match e.kind() {
                std::io::ErrorKind::UnexpectedEof => self.ended(true),
                _ => Err(fail(&self.camera, format!("reading ffmpeg: {e}"))),
            };
        }
        let seq = self.seq;
        self.seq += 1;
        let capture_ts = match self.fps {
            Some(f) if f > 0.0 => seq as f64 / f,
            _ => self.started.elapsed().as_secs_f64(),
        };
        let image = RgbImage::from_raw(w, h, buf).ok_or_else(|| fail(&self.camera, "frame size mismatch (this is a bug)".into()))?;
        Ok(Some(vec![CameraFrame { camera: self.camera.clone(), seq, capture_ts, image }]))
    }
}

/// A generated camera for benchmarks: a still image (or a gradient when none is given)
/// resized to `width x height`, with a moving bar so consecutive frames differ.
#[derive(Debug)]
pub struct SyntheticSource {
    camera: String,
    base: RgbImage,
    seq: u64,
    fps: Option<f64>,
    frames: Option<u64>,
}

impl SyntheticSource {
    pub fn new(camera: &str, width: u32, height: u32, still: Option<&RgbImage>, fps: Option<f64>, frames: Option<u64>) -> Self {
        let (w, h) = (width.max(1), height.max(1));
        let base = match still {
            Some(img) => image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle),
            None => RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])),
        };
        SyntheticSource { camera: camera.into(), base, seq: 0, fps, frames }
    }
}

impl FrameSource for SyntheticSource {
    fn cameras(&self) -> Vec<String> {
        vec![self.camera.clone()]
    }
    fn fps(&self) -> Option<f64> {
        self.fps
    }
    fn next_frames(&mut self) -> Result<Option<Vec<CameraFrame>>, SourceError> {
        if self.frames.is_some_and(|n| self.seq >= n) {
            return Ok(None);
        }
        let mut image = self.base.clone();
        let w = image.width();
        let bar = (self.seq as u32 * 8) % w;
        for y in 0..image.height() {
            for x in bar..(bar + 4).min(w) {
                image.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let seq = self.seq;
        self.seq += 1;
        let capture_ts = self.fps.map(|f| seq as f64 / f).unwrap_or(0.0);
        Ok(Some(vec![CameraFrame { camera: self.camera.clone(), seq, capture_ts, image }]))
    }
}
