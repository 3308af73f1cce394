//! Pose decoding: MoveNet MultiPose output `[1, 6, 56]` into persons with a box, a score and
//! 17 COCO keypoints in source-image pixels.

use super::image_io::Letterbox;
use crate::graph::Tensor;
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

#[derive(Debug, thiserror::Error)]
#[error("pose output has shape {0:?}; expected [N, 6, 56] f32")]
pub struct DecodeError(Vec<usize>);

/// Decodes frame `frame` of a MoveNet MultiPose output. Rows are
/// `17 x (y, x, score)` then `(ymin, xmin, ymax, xmax, score)`, normalised to the input.
pub fn decode_movenet(
    out: &Tensor,
    frame: usize,
    lb: &Letterbox,
    src_w: u32,
    src_h: u32,
    min_score: f32,
) -> Result<Vec<Person>, DecodeError> {
    let bad = || DecodeError(out.shape.clone());
    let data = out.as_f32().ok_or_else(bad)?;
    if out.shape.len() != 3 || out.shape[2] != 56 || frame >= out.shape[0] {
        return Err(bad());
    }
    let rows = out.shape[1];
    let (mw, mh) = (src_w as f32, src_h as f32);
    let clampx = |v: f32| v.clamp(0.0, mw);
    let clampy = |v: f32| v.clamp(0.0, mh);
    let mut persons = Vec::new();
    for r in 0..rows {
        let row = &data[(frame * rows + r) * 56..(frame * rows + r + 1) * 56];
        let score = row[55];
        if score < min_score {
            continue;
        }
        let keypoints = (0..17)
            .map(|k| {
                let (x, y) = lb.to_source(row[k * 3 + 1], row[k * 3]);
                Keypoint { x: clampx(x), y: clampy(y), score: row[k * 3 + 2] }
            })
            .collect();
        let (x0, y0) = lb.to_source(row[52], row[51]);
        let (x1, y1) = lb.to_source(row[54], row[53]);
        persons.push(Person { score, bbox: [clampx(x0), clampy(y0), clampx(x1), clampy(y1)], keypoints });
    }
    persons.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(persons)
}
