//! `models/<name>/config.toml`, parsed once into typed values: an unknown task, layout or
//! decoder is a config error naming the file, not a string compared at run time.

use crate::graph::{DType, Layout};
use serde::Deserialize;

/// What a model is for; picks how the server feeds it and which head decodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// People and their keypoints (camera frames in, persons out).
    Pose,
    /// Person re-identification (person crops in, one embedding per crop out).
    Reid,
    /// Objects and their classes (images in, boxes out).
    Detect,
    /// Palms (images in, palm boxes with keypoints out): the first of the hand models.
    Palms,
    /// Hand landmarks (hand crops in, 21 points and handedness out).
    #[serde(rename = "hand-landmarks")]
    HandLandmarks,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Pose => "pose",
            Task::Reid => "reid",
            Task::Detect => "detect",
            Task::Palms => "palms",
            Task::HandLandmarks => "hand-landmarks",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Layout of the image input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputLayout {
    #[default]
    Nhwc,
    Nchw,
}

impl From<InputLayout> for Layout {
    fn from(l: InputLayout) -> Layout {
        match l {
            InputLayout::Nhwc => Layout::Nhwc,
            InputLayout::Nchw => Layout::Nchw,
        }
    }
}

/// The head that decodes a model's outputs (`models::heads`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decoder {
    /// MoveNet MultiPose: `[N, 6, 56]` into persons with 17 COCO keypoints.
    MovenetMultipose,
    /// Re-identification: `[N, D]` features, L2-normalised per crop.
    Embedding,
    /// CenterNet's built-in detections: `[N, K, 6]` rows of box, score and COCO class.
    CenternetDetections,
    /// MediaPipe's palm detector: `[N, 2944, 19]` rows of score, box and 7 keypoints per SSD
    /// anchor.
    MediapipePalms,
    /// MediaPipe's hand landmarks: `[N, 63]` points, `[N, 1]` presence, `[N, 1]` handedness
    /// (the three outputs named in that order in `output.outputs`).
    HandLandmarks,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Tfjs,
    Onnx,
}

#[derive(Clone, Debug, Deserialize)]
pub struct InputConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub layout: InputLayout,
    pub dtype: DType,
    #[serde(default = "default_multiple")]
    pub multiple_of: usize,
    /// [height, width]
    pub default_size: [usize; 2],
    /// Largest height x width a client may send per frame (ModelInfer), which bounds a
    /// request's time and memory; 0: eight times the default size's area.
    #[serde(default)]
    pub max_pixels: usize,
    #[serde(default = "zeros3")]
    pub mean: [f32; 3],
    #[serde(default = "ones3")]
    pub std: [f32; 3],
}

fn default_multiple() -> usize {
    1
}

impl InputConfig {
    /// The per-frame pixel limit (`max_pixels`, or eight times the default area).
    pub fn pixel_limit(&self) -> usize {
        if self.max_pixels > 0 {
            self.max_pixels
        } else {
            8 * self.default_size[0] * self.default_size[1]
        }
    }
}
fn zeros3() -> [f32; 3] {
    [0.0; 3]
}
fn ones3() -> [f32; 3] {
    [1.0; 3]
}

#[derive(Clone, Debug, Deserialize)]
pub struct OutputConfig {
    pub decoder: Decoder,
    #[serde(default = "default_min_score")]
    pub min_score: f32,
    /// The graph outputs the model exposes, in the order its head reads them (Triton's
    /// `output` list); empty: all of them, in the graph's order. Unknown names fail the load.
    #[serde(default)]
    pub outputs: Vec<String>,
}

fn default_min_score() -> f32 {
    0.25
}

#[derive(Clone, Debug, Deserialize)]
pub struct BatchingConfig {
    #[serde(default = "default_max_batch")]
    pub max_batch_size: usize,
}

fn default_max_batch() -> usize {
    8
}

/// `models/<name>/config.toml`.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelConfig {
    pub name: String,
    pub format: Format,
    pub task: Task,
    pub file: String,
    pub input: InputConfig,
    pub output: OutputConfig,
    #[serde(default)]
    pub batching: Option<BatchingConfig>,
    /// Storage of weights and activations: "f32" (default) or "f16" (the wgpu executor on an
    /// adapter with SHADER_F16; elsewhere f32, with a warning).
    #[serde(default)]
    pub precision: crate::runtime::Precision,
}

/// Sides and areas a model config may name: larger ones are typing errors or attacks.
const MAX_SIDE: usize = 1 << 14;

impl ModelConfig {
    /// Parses and checks a `config.toml`: the model file is a plain file name (never a path
    /// out of its version folder), sizes are positive and bounded, the default size is a
    /// multiple of `multiple_of`, and normalisation divides by no zero.
    pub fn parse(text: &str) -> Result<ModelConfig, String> {
        let c: ModelConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if c.file.is_empty() || c.file.contains(['/', '\\']) || c.file.starts_with('.') {
            return Err(format!("file '{}' must be a plain file name", c.file));
        }
        let i = &c.input;
        if !(1..=MAX_SIDE).contains(&i.multiple_of) {
            return Err(format!("input.multiple_of {} is not in 1..={MAX_SIDE}", i.multiple_of));
        }
        if let Some(&s) = i.default_size.iter().find(|&&s| !(1..=MAX_SIDE).contains(&s) || s % i.multiple_of != 0) {
            return Err(format!("input.default_size side {s} is not in 1..={MAX_SIDE} or not a multiple of {}", i.multiple_of));
        }
        if i.max_pixels > MAX_SIDE * MAX_SIDE {
            return Err(format!("input.max_pixels {} is over {}", i.max_pixels, MAX_SIDE * MAX_SIDE));
        }
        if i.std.iter().chain(&i.mean).any(|v| !v.is_finite()) || i.std.contains(&0.0) {
            return Err("input.mean and input.std must be finite and std non-zero".into());
        }
        if c.output.outputs.len() > 64 || c.output.outputs.iter().any(|n| n.is_empty() || n.len() > 256) {
            return Err("output.outputs: at most 64 names of 1 to 256 characters".into());
        }
        if !(0.0..=1.0).contains(&c.output.min_score) {
            return Err(format!("output.min_score {} is not in 0..=1", c.output.min_score));
        }
        if let Some(b) = &c.batching {
            if !(1..=1024).contains(&b.max_batch_size) {
                return Err(format!("batching.max_batch_size {} is not in 1..=1024", b.max_batch_size));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_typed() {
        let text = r#"
            name = "m"
            format = "onnx"
            task = "pose"
            file = "model.onnx"
            [input]
            layout = "nchw"
            dtype = "f32"
            default_size = [256, 192]
            [output]
            decoder = "movenet-multipose"
        "#;
        let c: ModelConfig = toml::from_str(text).expect("parses");
        assert_eq!((c.task, c.input.layout, c.output.decoder), (Task::Pose, InputLayout::Nchw, Decoder::MovenetMultipose));
        for bad in [("task = \"pose\"", "task = \"juggle\""), ("\"nchw\"", "\"chwn\""), ("\"movenet-multipose\"", "\"yolo\"")] {
            assert!(toml::from_str::<ModelConfig>(&text.replace(bad.0, bad.1)).is_err(), "{bad:?} accepted");
        }
        // storage precision: f32 unless the config says f16; nothing else parses
        assert_eq!(c.precision, crate::runtime::Precision::F32);
        let half = text.replace("file = \"model.onnx\"", "file = \"model.onnx\"\n            precision = \"f16\"");
        assert_eq!(toml::from_str::<ModelConfig>(&half).expect("parses").precision, crate::runtime::Precision::F16);
        assert!(toml::from_str::<ModelConfig>(&half.replace("\"f16\"", "\"f8\"")).is_err(), "precision f8 accepted");
    }
}
