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
    /// The model's own `min_score`. With tracking on, a camera's persons are decoded lower,
    /// for the tracker; the tracking stage keeps those under this score only where they
    /// continue a track.
    pub min_score: f32,
    /// Who each person is, in the order of `persons()`, once the tracking stages ran (empty
    /// before them).
    pub identities: Vec<Identity>,
    /// Each person's L2-normalised ReID embedding, in the order of `persons()`, when the
    /// server runs a ReID model (empty otherwise). In memory only: never on the wire.
    pub embeddings: Vec<Vec<f32>>,
    pub queue_s: f64,
    pub compute_s: f64,
    pub e2e_s: f64,
    pub batch_size: usize,
    /// The frame itself, only with the `keep_frames` debug option.
    pub image: Option<Arc<image::RgbImage>>,
}

/// Who a person in a frame is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The camera's track id (confirmed tracks only).
    pub track: Option<u64>,
    /// The store-wide id from multi-camera fusion.
    pub global: Option<u64>,
    /// The app session bound to the global id at the gate.
    pub session: Option<String>,
}

impl FrameResult {
    /// The persons found in the frame.
    pub fn persons(&self) -> &[Person] {
        self.output.persons()
    }
}

#[cfg(test)]
impl FrameResult {
    /// A result for tests: `persons` seen by `camera` in frame `seq`, captured at `seq / 10` s.
    pub(crate) fn sample(camera: &str, seq: u64, persons: Vec<Person>) -> FrameResult {
        FrameResult {
            camera: camera.into(),
            seq,
            capture_ts: seq as f64 * 0.1,
            model: String::new(),
            version: 1,
            width: 640,
            height: 480,
            output: HeadOutput::Poses(persons),
            min_score: 0.0,
            identities: Vec::new(),
            embeddings: Vec::new(),
            queue_s: 0.0,
            compute_s: 0.0,
            e2e_s: 0.0,
            batch_size: 1,
            image: None,
        }
    }
}
