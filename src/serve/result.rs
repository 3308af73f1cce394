//! What the server makes of one frame.

use crate::models::heads::{HeadOutput, Person};
use std::sync::Arc;

/// The result of one frame.
#[derive(Clone, Debug)]
pub struct FrameResult {
    pub camera: String,
    pub seq: u64,
    pub capture_ts: f64,
    pub model: String,
    pub version: u64,
    pub width: u32,
    pub height: u32,
    /// What the model's head made of the frame.
    pub output: HeadOutput,
    pub queue_s: f64,
    pub compute_s: f64,
    pub e2e_s: f64,
    pub batch_size: usize,
    /// The frame itself, only with the `keep_frames` debug option.
    pub image: Option<Arc<image::RgbImage>>,
}

impl FrameResult {
    /// The persons found in the frame.
    pub fn persons(&self) -> &[Person] {
        self.output.persons()
    }
}
