//! Camera sources. Every frame carries a camera id, a capture timestamp and a sequence
//! number. The synthetic store is one source that feeds all of its cameras.

use crate::sim::{SimConfig, SimError, Simulator};
use image::RgbImage;

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
    #[error("source '{source_id}': {msg}")]
    Failed { source_id: String, msg: String },
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
