//! Perception: box overlap and optimal assignment (shared with the scorer), the Kalman box
//! filter, per-camera tracking, placing people on the floor, multi-camera fusion with
//! re-identification, and joints in 3-D from several views.

pub mod assign;
pub mod fusion;
pub mod kalman;
pub mod locate;
pub mod pose3d;
pub mod track;

pub use assign::{assign, iou};
pub use fusion::{Fusion, FusionConfig, FusionMode, Observation, Zone};
pub use locate::{place, whole_body_box, Placement};
pub use track::{CameraTracker, Detection, TrackState, TrackerConfig};

/// An appearance template moved towards a new sighting: `keep * old + (1 - keep) * new`,
/// L2-normalised (tracks and global tracks keep theirs this way, so one crossing companion
/// does not overwrite it).
pub(crate) fn blend(old: &[f32], new: &[f32], keep: f32) -> Vec<f32> {
    unit(old.iter().zip(new).map(|(a, b)| keep * a + (1.0 - keep) * b).collect())
}

/// A vector scaled to unit length (an embedding, or a sum of them).
pub(crate) fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / n).collect()
}

/// Cosine of two unit-length embeddings.
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum()
}
