//! Image -> letterbox -> model -> decoded persons (or the head's other results), on any
//! executor; person crops -> ReID model -> L2-normalised embeddings; and hands: palms, then
//! landmarks on each palm's upright crop.

use crate::graph::Tensor;
use crate::models::heads::{self, DecodeError, FrameCtx, Person};
use crate::models::{ModelConfig, Repository, Task};
use crate::runtime::{self, Device, Executor, FrameSpec, Letterbox, Plan};
use crate::vision::crop::{crop_batch, crop_rect, Crop};
use crate::vision::letterbox;
use image::RgbImage;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Repo(#[from] crate::models::RepoError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("model '{0}' has no config.toml with an input spec; the pipeline needs one")]
    NoConfig(String),
    #[error("model '{0}': task '{1}' is not {2}")]
    WrongTask(String, Task, Task),
    #[error("model input size {0}x{1} is not a multiple of {2}")]
    Size(usize, usize, usize),
}

/// How the model input size is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSize {
    /// Always this [height, width].
    Fixed([usize; 2]),
    /// Per image: its own size scaled down so the longer side is at most `max_side`, rounded
    /// up to the model's multiple. Suits wide camera views with small people.
    Auto { max_side: usize },
}

/// A pose model with its preprocessing and decoder; plans are compiled once per input size.
pub struct PosePipeline {
    pub config: ModelConfig,
    exec: Box<dyn Executor>,
    graph: crate::graph::Graph,
    plans: runtime::PlanCache,
    pub size: InputSize,
    pub min_score: f32,
}

impl std::fmt::Debug for PosePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PosePipeline").field("model", &self.config.name).field("size", &self.size).finish()
    }
}

impl PosePipeline {
    pub fn new(repo: &Repository, model: &str, device: Device, size: Option<InputSize>) -> Result<Self, PipelineError> {
        Self::for_task(repo, model, device, size, Task::Pose)
    }

    /// An image model of `task` (pose or detect): letterbox, model, the config's head.
    pub fn for_task(repo: &Repository, model: &str, device: Device, size: Option<InputSize>, task: Task) -> Result<Self, PipelineError> {
        let m = repo.resolve(model)?;
        let config = m.config.clone().ok_or_else(|| PipelineError::NoConfig(model.to_string()))?;
        if config.task != task {
            return Err(PipelineError::WrongTask(model.into(), config.task, task));
        }
        let size = size.unwrap_or(InputSize::Fixed(config.input.default_size));
        let graph = m.load_graph()?;
        let exec = runtime::executor_with(device, config.precision)?;
        let mut p = PosePipeline { min_score: config.output.min_score, config, exec, graph, plans: runtime::PlanCache::new(), size };
        if let InputSize::Fixed(s) = size {
            p.plan_for(s)?;
        }
        Ok(p)
    }

    /// The model input [height, width] for an image of the given size.
    pub fn input_size(&self, img_w: u32, img_h: u32) -> [usize; 2] {
        self.input_size_with(self.size, img_w, img_h)
    }

    fn input_size_with(&self, size: InputSize, img_w: u32, img_h: u32) -> [usize; 2] {
        match size {
            InputSize::Fixed(s) => s,
            InputSize::Auto { max_side } => {
                let mult = self.config.input.multiple_of.max(1);
                let scale = (max_side as f32 / img_w.max(img_h) as f32).min(1.0);
                let up = |v: u32| ((v as f32 * scale).round() as usize).max(1).div_ceil(mult) * mult;
                [up(img_h), up(img_w)]
            }
        }
    }

    fn plan_for(&mut self, size: [usize; 2]) -> Result<&mut Box<dyn Plan>, PipelineError> {
        let mult = self.config.input.multiple_of.max(1);
        if !size[0].is_multiple_of(mult) || !size[1].is_multiple_of(mult) || size[0] == 0 || size[1] == 0 {
            return Err(PipelineError::Size(size[0], size[1], mult));
        }
        let name = self.config.name.clone();
        let shape = match self.config.input.layout.into() {
            crate::graph::Layout::Nhwc => vec![1, size[0], size[1], 3],
            crate::graph::Layout::Nchw => vec![1, 3, size[0], size[1]],
        };
        Ok(self.plans.get_or_compile(self.exec.as_ref(), &name, &self.graph, &[shape], 1)?)
    }

    pub fn adapter(&self) -> String {
        self.exec.adapter()
    }

    /// The model input tensor for one image, and its letterbox placement.
    pub fn preprocess(&self, img: &RgbImage) -> (Tensor, Letterbox) {
        self.preprocess_at(img, self.input_size(img.width(), img.height()))
    }

    fn preprocess_at(&self, img: &RgbImage, [h, w]: [usize; 2]) -> (Tensor, Letterbox) {
        let c = &self.config.input;
        let spec = FrameSpec { height: h, width: w, layout: c.layout.into(), dtype: c.dtype, mean: c.mean, std: c.std };
        let (t, mut boxes) = letterbox::letterbox_batch(&[img], &spec);
        (t, boxes.remove(0))
    }

    pub fn run(&mut self, img: &RgbImage) -> Result<Vec<Person>, PipelineError> {
        self.run_with(img, self.size)
    }

    /// Runs one image with an explicit input-size rule (per camera, say).
    pub fn run_with(&mut self, img: &RgbImage, size: InputSize) -> Result<Vec<Person>, PipelineError> {
        match self.run_output(img, size)? {
            heads::HeadOutput::Poses(p) => Ok(p),
            _ => Err(PipelineError::WrongTask(self.config.name.clone(), self.config.task, Task::Pose)),
        }
    }

    /// Runs one image and returns what the config's head made of it.
    pub fn run_output(&mut self, img: &RgbImage, size: InputSize) -> Result<heads::HeadOutput, PipelineError> {
        let size = self.input_size_with(size, img.width(), img.height());
        let (t, lb) = self.preprocess_at(img, size);
        let out = self.plan_for(size)?.run(&[t])?;
        let f = FrameCtx { index: 0, letterbox: &lb, width: img.width(), height: img.height(), min_score: self.min_score };
        Ok(heads::decode(self.config.output.decoder, &out, f)?)
    }
}

/// Person crops -> a ReID model -> one L2-normalised embedding per crop, on any executor.
/// Crops from any frames of a time step go in one batch, padded to a multiple of
/// `BATCH_STEP` so that a handful of plans serve every crowd size.
#[allow(missing_debug_implementations)]
pub struct ReidPipeline {
    pub config: ModelConfig,
    exec: Box<dyn Executor>,
    graph: crate::graph::Graph,
    plans: runtime::PlanCache,
}

/// Crop batches are padded to a multiple of this.
pub const BATCH_STEP: usize = 8;

impl ReidPipeline {
    pub fn new(repo: &Repository, model: &str, device: Device) -> Result<Self, PipelineError> {
        let m = repo.resolve(model)?;
        let config = m.config.clone().ok_or_else(|| PipelineError::NoConfig(model.to_string()))?;
        if config.task != Task::Reid {
            return Err(PipelineError::WrongTask(model.into(), config.task, Task::Reid));
        }
        let graph = m.load_graph()?;
        let exec = runtime::executor_with(device, config.precision)?;
        Ok(ReidPipeline { config, exec, graph, plans: runtime::PlanCache::new() })
    }

    pub fn adapter(&self) -> String {
        self.exec.adapter()
    }

    /// The crops' embeddings, in order.
    pub fn embed(&mut self, frames: &[&RgbImage], crops: &[Crop]) -> Result<Vec<Vec<f32>>, PipelineError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let c = &self.config.input;
        let [h, w] = c.default_size;
        let spec = FrameSpec { height: h, width: w, layout: c.layout.into(), dtype: c.dtype, mean: c.mean, std: c.std };
        let n = crops.len().div_ceil(BATCH_STEP) * BATCH_STEP;
        let mut padded = crops.to_vec();
        padded.resize(n, Crop { frame: usize::MAX, bbox: [0.0; 4] });
        let shape = match spec.layout {
            crate::graph::Layout::Nhwc => vec![1, h, w, 3],
            crate::graph::Layout::Nchw => vec![1, 3, h, w],
        };
        let name = self.config.name.clone();
        let plan = self.plans.get_or_compile(self.exec.as_ref(), &name, &self.graph, &[shape], n)?;
        // on the GPU the crops are cut from the frames by a kernel into the plan's input
        let rects: Vec<crate::runtime::CropRect> =
            padded.iter().map(|c| ((c.frame < frames.len()).then_some(c.frame), crop_rect(c.bbox, w, h))).collect();
        let out = match plan.run_crops(frames, &rects, &spec) {
            Some(out) => out?,
            None => plan.run(&[crop_batch(frames, &padded, &spec)])?,
        };
        let first = out.first().ok_or(DecodeError { shape: Vec::new(), expected: "an embedding output" })?;
        (0..crops.len()).map(|i| Ok(heads::embedding(first, i)?)).collect()
    }
}

/// Hands whose landmark boxes overlap by more than this are one hand.
pub const HAND_IOU: f32 = 0.5;

/// One hand of an image: the palm that found it, the rectangle its crop was cut from, and its
/// landmarks in source pixels.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FoundHand {
    pub palm: heads::Palm,
    pub rect: heads::HandRect,
    pub hand: heads::Hand,
}

/// MediaPipe's two-stage hands on any executor: the palm detector on the letterboxed image,
/// then for each palm (best first, at most `max_hands`) the landmark model on the palm's
/// hand rectangle, cut upright from the source image. Hands whose presence is below the
/// landmark model's `min_score` are dropped, and so is a hand whose landmarks' box overlaps a
/// better palm's hand by more than half (two palms of one hand: the detector's suppression
/// works on palm boxes, which can overlap little where the landmarks coincide).
#[derive(Debug)]
pub struct HandsPipeline {
    pub palms: PosePipeline,
    pub landmarks: PosePipeline,
    pub max_hands: usize,
}

impl HandsPipeline {
    pub fn new(repo: &Repository, palm_model: &str, landmark_model: &str, device: Device) -> Result<Self, PipelineError> {
        let palms = PosePipeline::for_task(repo, palm_model, device, None, Task::Palms)?;
        let landmarks = PosePipeline::for_task(repo, landmark_model, device, None, Task::HandLandmarks)?;
        Ok(HandsPipeline { palms, landmarks, max_hands: 8 })
    }

    pub fn run(&mut self, img: &RgbImage) -> Result<Vec<FoundHand>, PipelineError> {
        let heads::HeadOutput::Palms(mut palms) = self.palms.run_output(img, self.palms.size)? else {
            return Err(PipelineError::WrongTask(self.palms.config.name.clone(), self.palms.config.task, Task::Palms));
        };
        palms.truncate(self.max_hands);
        let [h, w] = self.landmarks.config.input.default_size;
        let side = h.min(w);
        let mut found = Vec::with_capacity(palms.len());
        for palm in palms {
            let rect = palm.hand_rect();
            let crop = crate::vision::crop::rotated_crop(img, &rect, side);
            let heads::HeadOutput::Hand(hand) = self.landmarks.run_output(&crop, InputSize::Fixed([side, side]))? else {
                return Err(PipelineError::WrongTask(self.landmarks.config.name.clone(), self.landmarks.config.task, Task::HandLandmarks));
            };
            if hand.presence < self.landmarks.min_score {
                continue;
            }
            let hand = hand.mapped(|x, y| rect.to_source(x, y, side as f32), rect.side / side as f32);
            let b = hand.bbox();
            if !found.iter().any(|f: &FoundHand| heads::detect::iou(&f.hand.bbox(), &b) > HAND_IOU) {
                found.push(FoundHand { palm, rect, hand });
            }
        }
        Ok(found)
    }
}
