//! Video files and RTSP/HTTP streams decoded by an `ffmpeg` subprocess.

use super::{CameraFrame, FrameSource, SourceError};
use image::RgbImage;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

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
