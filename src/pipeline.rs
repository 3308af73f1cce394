//! Image -> letterbox -> model -> decoded persons, on any executor.

use crate::graph::{DType, Tensor};
use crate::models::{ModelConfig, Repository};
use crate::runtime::{self, Executor, Plan};
use crate::vision::{image_io, pose};
use image::RgbImage;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Repo(#[from] crate::models::RepoError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Decode(#[from] pose::DecodeError),
    #[error("model '{0}' has no config.toml with an input spec; pose needs one")]
    NoConfig(String),
    #[error("model '{0}': task '{1}' is not pose")]
    NotPose(String, String),
    #[error("model input size {0}x{1} is not a multiple of {2}")]
    Size(usize, usize, usize),
}

/// A compiled pose model with its preprocessing and decoder.
pub struct PosePipeline {
    pub config: ModelConfig,
    exec: Box<dyn Executor>,
    plan: Box<dyn Plan>,
    pub size: [usize; 2],
    pub min_score: f32,
}

impl std::fmt::Debug for PosePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PosePipeline")
            .field("model", &self.config.name)
            .field("size", &self.size)
            .finish()
    }
}

impl PosePipeline {
    pub fn new(
        repo: &Repository,
        model: &str,
        device: &str,
        size: Option<[usize; 2]>,
    ) -> Result<Self, PipelineError> {
        let m = repo.resolve(model)?;
        let config = m
            .config
            .clone()
            .ok_or_else(|| PipelineError::NoConfig(model.to_string()))?;
        if config.task != "pose" {
            return Err(PipelineError::NotPose(model.into(), config.task.clone()));
        }
        let size = size.unwrap_or(config.input.default_size);
        let mult = config.input.multiple_of.max(1);
        if !size[0].is_multiple_of(mult)
            || !size[1].is_multiple_of(mult)
            || size[0] == 0
            || size[1] == 0
        {
            return Err(PipelineError::Size(size[0], size[1], mult));
        }
        let graph = m.load_graph()?;
        let exec = runtime::executor_for(device)?;
        let plan = exec.compile(&graph, &[vec![1, size[0], size[1], 3]])?;
        Ok(PosePipeline {
            min_score: config.output.min_score,
            config,
            exec,
            plan,
            size,
        })
    }

    pub fn adapter(&self) -> String {
        self.exec.adapter()
    }

    /// The model input tensor for one image, and its letterbox placement.
    pub fn preprocess(&self, img: &RgbImage) -> (Tensor, image_io::Letterbox) {
        let [h, w] = self.size;
        let (px, lb) = image_io::letterbox(img, w, h);
        let c = &self.config.input;
        let identity = c.mean == [0.0; 3] && c.std == [1.0; 3];
        let t = if identity && self.config.input.dtype == DType::I32 {
            Tensor::i32(vec![1, h, w, 3], px.iter().map(|&v| v as i32).collect())
        } else {
            let v = px
                .iter()
                .enumerate()
                .map(|(i, &v)| (v as f32 - c.mean[i % 3]) / c.std[i % 3])
                .collect();
            Tensor::f32(vec![1, h, w, 3], v).cast(self.config.input.dtype)
        };
        (t, lb)
    }

    pub fn run(&mut self, img: &RgbImage) -> Result<Vec<pose::Person>, PipelineError> {
        let (t, lb) = self.preprocess(img);
        let out = self.plan.run(&[t])?;
        Ok(pose::decode_movenet(
            &out[0],
            0,
            &lb,
            img.width(),
            img.height(),
            self.min_score,
        )?)
    }
}
