//! Camera frames as a model input: the spec a plan letterboxes frames by, and where each
//! frame landed in the input (to map outputs back to source pixels).

use crate::graph::{DType, Layout, Tensor};

/// One crop of a batch: the frame it is cut from (`None`: padding, all zeros) and its
/// rectangle [x0, y0, width, height] in that frame's pixels (`vision::crop::crop_rect`).
pub type CropRect = (Option<usize>, [f32; 4]);

/// How a batch of RGB frames becomes a model's image input: size, layout, dtype and
/// normalisation ((pixel - mean) / std).
#[derive(Clone, Debug, PartialEq)]
pub struct FrameSpec {
    pub height: usize,
    pub width: usize,
    pub layout: Layout,
    pub dtype: DType,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// What `Plan::run_frames` returns: the outputs and where each frame was placed.
pub type FramesOutput = (Vec<Tensor>, Vec<Letterbox>);

/// How an image was placed into the model input: scaled by `scale`, aspect kept, centred with
/// `pad_x`/`pad_y` pixels of bars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub in_w: usize,
    pub in_h: usize,
}

impl Letterbox {
    pub fn new(src_w: u32, src_h: u32, in_w: usize, in_h: usize) -> Self {
        let scale = (in_w as f32 / src_w as f32).min(in_h as f32 / src_h as f32);
        let rw = (src_w as f32 * scale).round();
        let rh = (src_h as f32 * scale).round();
        Letterbox { scale, pad_x: ((in_w as f32 - rw) / 2.0).floor(), pad_y: ((in_h as f32 - rh) / 2.0).floor(), in_w, in_h }
    }
    /// Maps normalised model coordinates (0..1 of the input tensor) to source pixels.
    pub fn to_source(&self, nx: f32, ny: f32) -> (f32, f32) {
        ((nx * self.in_w as f32 - self.pad_x) / self.scale, (ny * self.in_h as f32 - self.pad_y) / self.scale)
    }
}
