//! Heads: a decoder per model family that turns raw output tensors into typed results
//! mapped back to source pixels. The config's `output.decoder` picks one (`Decoder`).

pub mod movenet;
pub mod pose;

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
}

impl HeadOutput {
    /// The persons found (empty for heads that find none).
    pub fn persons(&self) -> &[Person] {
        match self {
            HeadOutput::Poses(p) => p,
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
    }
}
