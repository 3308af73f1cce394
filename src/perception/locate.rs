//! Where a person seen in one camera stands on the floor, and the whole-body box they fill
//! in that camera even where a shelf hides part of them.
//!
//! A person's feet are often hidden (by a shelf, a basket, the frame's edge), so the floor
//! point comes from whichever body part places it best: each visible part (ankles, knees,
//! hips, shoulders, head) sits at a typical height above the floor, and the ray through it
//! meets that height's plane over the floor point. A height error `s` moves the floor point
//! by `s * d / |camera height - part height|` (d: the horizontal distance), so the part with
//! the smallest `s / |camera height - part height|` wins: ankles when seen, the head from a
//! ceiling camera over a shelf, the hips from a camera at head height.

use super::track::Detection;
use crate::geometry::Camera;

/// Keypoints below this score place nothing.
pub const PART_MIN_SCORE: f32 = 0.3;

/// Typical height above the floor (metres, for a 1.72 m adult) and its spread across
/// adults, per body part (COCO-17 keypoint indices).
const PARTS: [(&[usize], f32, f32); 5] = [
    (&[15, 16], 0.08, 0.03),      // ankles
    (&[13, 14], 0.48, 0.04),      // knees
    (&[11, 12], 0.9, 0.06),       // hips
    (&[5, 6], 1.42, 0.08),        // shoulders
    (&[0, 1, 2, 3, 4], 1.6, 0.1), // head
];

/// Height of the whole-body box's top above the floor (top of the head).
pub const BODY_HEIGHT_M: f32 = 1.75;

/// A person placed on the floor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    pub floor: [f32; 2],
    /// Which part placed it (index into the parts table: 0 ankles .. 4 head; 5 the box).
    pub part: usize,
}

/// The floor point of a detection in a camera, from its best-placed visible body part, else
/// from its box's bottom centre.
pub fn place(cam: &Camera, d: &Detection) -> Option<Placement> {
    let mut best: Option<(f32, Placement)> = None;
    for (part, &(idx, z, spread)) in PARTS.iter().enumerate() {
        let seen: Vec<&[f32; 3]> = idx.iter().filter_map(|&i| d.keypoints.get(i)).filter(|k| k[2] >= PART_MIN_SCORE).collect();
        if seen.is_empty() {
            continue;
        }
        let n = seen.len() as f32;
        let (u, v) = (seen.iter().map(|k| k[0]).sum::<f32>() / n, seen.iter().map(|k| k[1]).sum::<f32>() / n);
        let lever = (cam.center[2] - z).abs();
        if lever < 0.3 {
            continue;
        }
        let Some(floor) = cam.point_at_height(u, v, z) else { continue };
        let err = spread / lever;
        if best.is_none_or(|(e, _)| err < e) {
            best = Some((err, Placement { floor, part }));
        }
    }
    best.map(|b| b.1).or_else(|| {
        let b = d.bbox;
        cam.floor_point((b[0] + b[2]) / 2.0, b[3]).map(|floor| Placement { floor, part: PARTS.len() })
    })
}

/// The box the whole body of a person standing at `floor` fills in the camera: the
/// detection's box where it shows the head and the feet, extended to where the body's top
/// and bottom project where they are hidden; clipped to the frame.
pub fn whole_body_box(cam: &Camera, floor: [f32; 2], d: &Detection) -> [f32; 4] {
    let seen = |idx: &[usize]| idx.iter().any(|&i| d.keypoints.get(i).is_some_and(|k| k[2] >= PART_MIN_SCORE));
    let mut b = d.bbox;
    let top = cam.project([floor[0], floor[1], BODY_HEIGHT_M]);
    let bottom = cam.project([floor[0], floor[1], 0.0]);
    if let (Some(top), Some(bottom)) = (top, bottom) {
        let (vt, vb) = (top.1.min(bottom.1), top.1.max(bottom.1));
        if !seen(&[15, 16]) {
            b[3] = b[3].max(vb);
        }
        if !seen(&[0, 1, 2, 3, 4]) {
            b[1] = b[1].min(vt);
        }
    }
    let (w, h) = (cam.width as f32, cam.height as f32);
    [b[0].clamp(0.0, w), b[1].clamp(0.0, h), b[2].clamp(0.0, w), b[3].clamp(0.0, h)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::camera::{CamKind, Sensor};

    fn person_in(cam: &Camera, at: [f32; 2], hide_legs: bool) -> Detection {
        let z = [1.6, 1.6, 1.6, 1.6, 1.6, 1.42, 1.42, 1.15, 1.15, 0.9, 0.9, 0.9, 0.9, 0.48, 0.48, 0.08, 0.08];
        let keypoints: Vec<[f32; 3]> = (0..17)
            .map(|i| {
                let side = if i % 2 == 1 { 0.18 } else { -0.18 };
                let (u, v, _) = cam.project([at[0] + side * (i > 4) as i32 as f32, at[1], z[i]]).expect("visible");
                [u, v, if hide_legs && i >= 13 { 0.05 } else { 0.9 }]
            })
            .collect();
        let (xs, ys): (Vec<f32>, Vec<f32>) = keypoints.iter().filter(|k| k[2] > 0.3).map(|k| (k[0], k[1])).unzip();
        let f = |v: &[f32], m: bool| v.iter().copied().fold(if m { f32::MAX } else { f32::MIN }, if m { f32::min } else { f32::max });
        Detection { bbox: [f(&xs, true), f(&ys, true), f(&xs, false), f(&ys, false)], score: 0.8, keypoints, embedding: None }
    }

    #[test]
    fn hidden_legs_still_place_the_person_and_their_whole_body() {
        let sensor = Sensor { width: 640, height: 480, fps: 5.0 };
        let cam = Camera::look_at(0, CamKind::Ceiling, [2.0, 0.0, 3.4], [2.0, 3.0, 0.0], 95.0, sensor);
        let at = [2.3, 3.5];
        let full = person_in(&cam, at, false);
        let p = place(&cam, &full).expect("placed");
        assert_eq!(p.part, 0, "ankles place a fully seen person");
        assert!((p.floor[0] - at[0]).abs() < 0.05 && (p.floor[1] - at[1]).abs() < 0.05, "{p:?}");
        let half = person_in(&cam, at, true);
        let q = place(&cam, &half).expect("placed");
        assert!(q.part > 0 && (q.floor[0] - at[0]).abs() < 0.1 && (q.floor[1] - at[1]).abs() < 0.1, "{q:?}");
        // the box's bottom centre alone would put them well beyond where they stand
        let naive = cam.floor_point((half.bbox[0] + half.bbox[2]) / 2.0, half.bbox[3]).expect("on the floor");
        assert!((naive[1] - at[1]).abs() > 0.5, "{naive:?}");
        let whole = whole_body_box(&cam, q.floor, &half);
        assert!((whole[3] - full.bbox[3]).abs() < 8.0, "feet restored: {whole:?} vs {:?}", full.bbox);
        assert_eq!(whole[1], half.bbox[1], "the head was seen: the top stays");
    }
}
