//! Perception: box overlap and optimal assignment (shared with the scorer), the Kalman box
//! filter, and per-camera tracking. Re-identification and multi-camera fusion come here.

pub mod assign;
pub mod fusion;
pub mod kalman;
pub mod locate;
pub mod track;

pub use assign::{assign, iou};
pub use fusion::{Fusion, FusionConfig, FusionMode, Observation, Zone};
pub use locate::{place, whole_body_box, Placement};
pub use track::{CameraTracker, Detection, TrackState, TrackerConfig};
