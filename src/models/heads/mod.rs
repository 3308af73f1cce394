//! Heads: a decoder per model family that turns raw output tensors into typed results
//! mapped back to source pixels. The config's `output.decoder` picks one (`Decoder`).

pub mod detect;
pub mod hands;
pub mod movenet;
pub mod pose;

pub use detect::{Detection, COCO_CLASSES};
pub use hands::{Hand, HandPoint, HandRect, Handedness, Palm, HAND_LANDMARK_NAMES, HAND_SKELETON};
pub use pose::{Keypoint, Person, KEYPOINT_NAMES, SKELETON};

use super::config::Decoder;
use crate::graph::Tensor;
use crate::runtime::Letterbox;

/// An output tensor that does not have the shape or dtype its head decodes.
#[derive(Clone, Debug, thiserror::Error)]
#[error("model output has shape {shape:?}; expected {expected}")]
pub struct DecodeError {
    pub shape: Vec<usize>,
    pub expected: &'static str,
}

/// What a head made of one frame's outputs.
#[derive(Clone, Debug, PartialEq)]
pub enum HeadOutput {
    Poses(Vec<Person>),
    /// A re-identification embedding of one crop, L2-normalised.
    Embedding(Vec<f32>),
    /// Objects with their classes.
    Detections(Vec<Detection>),
    /// Palms, with the keypoints a hand crop is turned by.
    Palms(Vec<Palm>),
    /// The 21 landmarks of the hand a crop holds, with its presence and handedness.
    Hand(Hand),
}

impl HeadOutput {
    /// The persons found (empty for heads that find none).
    pub fn persons(&self) -> &[Person] {
        match self {
            HeadOutput::Poses(p) => p,
            HeadOutput::Embedding(_) | HeadOutput::Detections(_) | HeadOutput::Palms(_) | HeadOutput::Hand(_) => &[],
        }
    }
}

/// Where a frame sits in a batch and in the model input.
#[derive(Clone, Copy, Debug)]
pub struct FrameCtx<'a> {
    /// Index in the batch.
    pub index: usize,
    pub letterbox: &'a Letterbox,
    pub width: u32,
    pub height: u32,
    pub min_score: f32,
}

/// Decodes one frame of a batch's outputs with the configured head.
pub fn decode(decoder: Decoder, outputs: &[Tensor], f: FrameCtx<'_>) -> Result<HeadOutput, DecodeError> {
    let first = outputs.first().ok_or(DecodeError { shape: Vec::new(), expected: "at least one output" })?;
    match decoder {
        Decoder::MovenetMultipose => {
            Ok(HeadOutput::Poses(movenet::decode_movenet(first, f.index, f.letterbox, f.width, f.height, f.min_score)?))
        }
        Decoder::Embedding => Ok(HeadOutput::Embedding(embedding(first, f.index)?)),
        Decoder::CenternetDetections => {
            Ok(HeadOutput::Detections(detect::decode_centernet(first, f.index, f.letterbox, f.width, f.height, f.min_score)?))
        }
        Decoder::MediapipePalms => Ok(HeadOutput::Palms(hands::decode_palms(first, f.index, f.letterbox, f.width, f.height, f.min_score)?)),
        Decoder::HandLandmarks => Ok(HeadOutput::Hand(hands::decode_hand(outputs, f.index, f.letterbox)?)),
    }
}

/// Row `index` of an `[N, D]` (or `[N, D, 1, 1]`) float output, L2-normalised.
pub fn embedding(t: &Tensor, index: usize) -> Result<Vec<f32>, DecodeError> {
    let bad = || DecodeError { shape: t.shape.clone(), expected: "[N, D] float embeddings" };
    let n = *t.shape.first().ok_or_else(bad)?;
    if t.shape.len() < 2 || t.shape[2..].iter().any(|&d| d != 1) || index >= n {
        return Err(bad());
    }
    let d = t.shape[1];
    let v = t.as_f32().ok_or_else(bad)?;
    let row = v.get(index * d..(index + 1) * d).ok_or_else(bad)?;
    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    Ok(row.iter().map(|x| x / norm).collect())
}
