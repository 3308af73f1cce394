//! Generated cameras for benchmarks.

use super::{CameraFrame, FrameSource, SourceError};
use image::RgbImage;

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
