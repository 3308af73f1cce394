//! The synthetic store as a camera source.

use super::{CameraFrame, FrameSource, SourceError};
use crate::sim::{SimConfig, Simulator};
use image::RgbImage;

/// The synthetic store's options for a `sim` camera, as `key=value` pairs in its url:
/// `seed`, `shoppers`, `cameras` (4 to 32), `seconds` (length of one store session; it
/// restarts when `loop` is set) and `warmup` (simulated seconds skipped before the first
/// frame, so shoppers are already in the store). A frame size and rate above 0 override the
/// simulator's. Returns the config and the warm-up.
pub fn sim_options(url: &str, width: u32, height: u32, fps: f64) -> Result<(SimConfig, f64), String> {
    let mut s = SimConfig { seconds: 300.0, ..SimConfig::default() };
    let mut warmup = 0.0;
    for kv in url.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
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
    if width > 0 && height > 0 {
        s.width = width as usize;
        s.height = height as usize;
    }
    if fps > 0.0 {
        s.fps = fps;
    }
    s.validate().map_err(|e| e.to_string())?;
    Ok((s, warmup))
}

/// The calibrated cameras and the floor plan of the store a `sim` camera's options describe
/// (what its operator would configure for a real store): fusion places people with them.
pub fn sim_store(url: &str, width: u32, height: u32, fps: f64) -> Result<(Vec<crate::geometry::Camera>, serde_json::Value), String> {
    let (sc, _) = sim_options(url, width, height, fps)?;
    Ok((crate::sim::rig::rig(sc.cameras, sc.width, sc.height, sc.fps), crate::sim::store::floor_plan()))
}

/// The simulator as a camera source (`source = "sim"`): cameras `sim-cam0`, `sim-cam1`, ...
#[derive(Debug)]
pub struct SimSource {
    sim: Simulator,
    frames: u64,
}

/// How many cameras a `sim` camera's options give.
pub fn sim_cameras(url: &str, width: u32, height: u32, fps: f64) -> Result<usize, String> {
    Ok(sim_options(url, width, height, fps)?.0.cameras)
}

impl SimSource {
    /// The store a `sim` camera's options describe (see [`sim_options`]), warmed up.
    pub fn from_options(id: &str, url: &str, width: u32, height: u32, fps: f64) -> Result<Self, SourceError> {
        let (sc, warmup) = sim_options(url, width, height, fps).map_err(|msg| SourceError::Failed { source_id: id.into(), msg })?;
        let mut src = SimSource::new(sc)?;
        src.fast_forward(warmup);
        Ok(src)
    }

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
