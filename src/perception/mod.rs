//! Perception shared by tracking and scoring: box overlap and optimal assignment. Tracking,
//! re-identification and multi-camera fusion build on these.

pub mod assign;

pub use assign::{assign, iou};
