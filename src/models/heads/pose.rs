//! Pose results: persons with a box, a score and 17 COCO keypoints in source pixels.

use serde::Serialize;

pub const KEYPOINT_NAMES: [&str; 17] = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
];

/// COCO-17 skeleton edges.
pub const SKELETON: [(usize, usize); 16] = [
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (5, 6),
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
];

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    pub score: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Person {
    pub score: f32,
    /// [x0, y0, x1, y1] in source pixels.
    pub bbox: [f32; 4],
    pub keypoints: Vec<Keypoint>,
}
