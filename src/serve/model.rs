//! Loaded models and hot swap: a new version is loaded and warmed up beside the old one, then
//! swapped in; batches already running keep the version they started with.

use super::ServeError;
use crate::graph::{DType, Dim, Graph, Layout, Tensor};
use crate::models::{ModelConfig, Repository, Task};
use crate::runtime::{self, Device, Executor, PlanCache};
use std::sync::{Arc, Mutex, RwLock};

/// One version of a model, compiled for its executor.
pub struct LoadedModel {
    pub name: String,
    pub version: u64,
    pub config: Option<ModelConfig>,
    pub graph: Graph,
    pub exec: Box<dyn Executor>,
    plans: Mutex<PlanCache>,
    /// The cache's bytes as of its last change, read without its lock (which a run holds).
    plan_bytes: std::sync::atomic::AtomicUsize,
    /// Model input [height, width] for camera frames (pose models).
    pub input_size: [usize; 2],
    /// Its frame plans letterbox on the device (`Plan::takes_frames`), so the batcher hands
    /// them raw frames instead of letterboxing on the CPU.
    pub device_frames: bool,
    /// FLOPs of one frame at `input_size` (pose models, measured on the warm-up plan): what
    /// the server scales by a request's area to refuse costly requests up front.
    pub frame_flops: Option<u64>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("name", &self.name).field("version", &self.version).finish()
    }
}

impl LoadedModel {
    /// Loads the newest version (or `version`) of `name` and compiles plans for batch 1 and
    /// `warm_batch` at the frame input size, so the first requests do not pay for compiling.
    pub fn load(
        repo: &Repository,
        name: &str,
        version: Option<u64>,
        device: Device,
        input_size: Option<[usize; 2]>,
        warm_batch: usize,
        limits: runtime::PlanLimits,
    ) -> Result<Self, ServeError> {
        let spec = match version {
            Some(v) => format!("{name}:{v}"),
            None => name.to_string(),
        };
        let resolved = repo.resolve(&spec).map_err(|e| match e {
            crate::models::RepoError::NotFound(_) => ServeError::ModelNotFound(spec.clone()),
            e => ServeError::Load(e.to_string()),
        })?;
        let graph = resolved.load_graph().map_err(|e| ServeError::Load(e.to_string()))?;
        let exec = runtime::executor_with(device, resolved.config.as_ref().map(|c| c.precision).unwrap_or_default())
            .map_err(|e| ServeError::Load(e.to_string()))?;
        let config = resolved.config.clone();
        let input_size = input_size.or(config.as_ref().map(|c| c.input.default_size)).unwrap_or([256, 256]);
        let mut m = LoadedModel {
            name: name.to_string(),
            version: resolved.version.unwrap_or(1),
            config,
            graph,
            exec,
            // the warm-up compiles the operator's own frame size whatever it costs
            plans: Mutex::new(PlanCache::with_limits(runtime::PlanLimits { max_flops: u64::MAX, ..limits })),
            plan_bytes: Default::default(),
            input_size,
            device_frames: false,
            frame_flops: None,
        };
        if m.is_pose() {
            let shapes = m.frame_shapes();
            for b in [1, warm_batch.max(1)] {
                let dummy: Vec<Tensor> = shapes
                    .iter()
                    .zip(&m.graph.inputs)
                    .map(|(s, i)| {
                        let mut s = s.clone();
                        s[0] = b;
                        Tensor::zeros(i.dtype, s)
                    })
                    .collect();
                m.run(&shapes, b, &dummy).map_err(|e| ServeError::Load(format!("warm-up at batch {b}: {e}")))?;
            }
            m.device_frames = m.with_plan(&shapes, warm_batch.max(1), |p| Ok(p.takes_frames()))?;
            m.frame_flops = Some(m.with_plan(&shapes, 1, |p| Ok(p.cost().flops))?);
        }
        // a client may always ask for what one of the model's own frames costs
        let max_flops = limits.max_flops.max(m.frame_flops.unwrap_or(0));
        m.plans
            .lock()
            .map_err(|_| ServeError::Internal("plan cache lock poisoned".into()))?
            .set_limits(runtime::PlanLimits { max_flops, ..limits });
        Ok(m)
    }

    pub fn is_pose(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.task == Task::Pose) && self.graph.inputs.len() == 1
    }

    pub fn layout(&self) -> Layout {
        self.config.as_ref().map_or(Layout::Nhwc, |c| c.input.layout.into())
    }

    /// Per-frame input shapes of camera frames (batch dim 1).
    pub fn frame_shapes(&self) -> Vec<Vec<usize>> {
        let [h, w] = self.input_size;
        match self.layout() {
            Layout::Nhwc => vec![vec![1, h, w, 3]],
            Layout::Nchw => vec![vec![1, 3, h, w]],
        }
    }

    /// Whether items can be stacked along axis 0 (every input's leading dim is dynamic or 1).
    pub fn batchable(&self) -> bool {
        self.graph.inputs.iter().all(|i| matches!(i.dims.first(), Some(Dim::Dynamic(_)) | Some(Dim::Fixed(1))))
    }

    pub fn input_dtype(&self) -> DType {
        self.graph.inputs.first().map(|i| i.dtype).unwrap_or(DType::F32)
    }

    /// How camera frames become this model's input (pose models).
    pub fn frame_spec(&self) -> Option<runtime::FrameSpec> {
        let c = &self.config.as_ref()?.input;
        Some(runtime::FrameSpec {
            height: self.input_size[0],
            width: self.input_size[1],
            layout: self.layout(),
            dtype: self.input_dtype(),
            mean: c.mean,
            std: c.std,
        })
    }

    /// Runs a batch of frames letterboxed where the plan runs (the GPU kernel into the plan's
    /// input buffer); None when the plan cannot.
    pub fn run_frames(&self, frames: &[&image::RgbImage]) -> Option<Result<runtime::FramesOutput, ServeError>> {
        let spec = self.frame_spec()?;
        self.with_plan(&self.frame_shapes(), frames.len(), |plan| plan.run_frames(frames, &spec).transpose()).transpose()
    }

    /// FLOPs of one item of per-item `shape` (batch dim included, and ignored): `frame_flops`
    /// scaled by the item's area against `input_size`. None for models without that measure.
    pub fn item_flops(&self, shape: &[usize]) -> Option<u64> {
        let f = self.frame_flops?;
        let (h, w) = match self.layout() {
            Layout::Nhwc => (*shape.get(1)?, *shape.get(2)?),
            Layout::Nchw => (*shape.get(2)?, *shape.get(3)?),
        };
        let base = (self.input_size[0] * self.input_size[1]).max(1) as f64;
        Some((f as f64 * (h as f64 * w as f64) / base).min(u64::MAX as f64) as u64)
    }

    /// Bytes the plan cache holds (as of its last change).
    pub fn plan_cache_bytes(&self) -> usize {
        self.plan_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `batch` items whose per-item shapes (leading dim 1) are `frame_shapes`.
    pub fn run(&self, frame_shapes: &[Vec<usize>], batch: usize, inputs: &[Tensor]) -> Result<Vec<Tensor>, ServeError> {
        self.with_plan(frame_shapes, batch, |plan| plan.run(inputs))
    }

    /// Calls `f` with the plan for (`frame_shapes`, `batch`) from the bounded cache,
    /// compiling it on first use.
    fn with_plan<T>(
        &self,
        frame_shapes: &[Vec<usize>],
        batch: usize,
        f: impl FnOnce(&mut Box<dyn runtime::Plan>) -> runtime::Result<T>,
    ) -> Result<T, ServeError> {
        let mut plans = self.plans.lock().map_err(|_| ServeError::Internal("plan cache lock poisoned".into()))?;
        let key = format!("{}:{}", self.name, self.version);
        // compile (or find) first, and note the cache's size, then run: a hit is a map lookup
        let compiled = plans.get_or_compile(self.exec.as_ref(), &key, &self.graph, frame_shapes, batch).map(|_| ());
        self.plan_bytes.store(plans.bytes(), std::sync::atomic::Ordering::Relaxed);
        compiled.map_err(runtime_err)?;
        let plan = plans.get_or_compile(self.exec.as_ref(), &key, &self.graph, frame_shapes, batch).map_err(runtime_err)?;
        f(plan).map_err(runtime_err)
    }
}

fn runtime_err(e: runtime::RuntimeError) -> ServeError {
    match e {
        runtime::RuntimeError::Input { .. } => ServeError::InvalidArgument(e.to_string()),
        runtime::RuntimeError::Limit(_) => ServeError::ResourceExhausted(e.to_string()),
        e => ServeError::Internal(e.to_string()),
    }
}

/// State of a model slot, as RepositoryIndex reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelState {
    Loading,
    Ready,
    Unavailable(String),
}

/// The version of a model that new batches use, swapped atomically.
#[derive(Debug)]
pub struct ModelHandle {
    current: RwLock<Option<Arc<LoadedModel>>>,
    state: RwLock<ModelState>,
    /// Serialises loads of this model.
    pub load_lock: Mutex<()>,
}

impl Default for ModelHandle {
    fn default() -> Self {
        ModelHandle { current: RwLock::new(None), state: RwLock::new(ModelState::Loading), load_lock: Mutex::new(()) }
    }
}

impl ModelHandle {
    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        self.current.read().ok().and_then(|g| g.clone())
    }
    pub fn swap(&self, m: Arc<LoadedModel>) -> Option<Arc<LoadedModel>> {
        self.set_state(ModelState::Ready);
        self.current.write().ok().and_then(|mut g| g.replace(m))
    }
    pub fn clear(&self, reason: &str) {
        if let Ok(mut g) = self.current.write() {
            g.take();
        }
        self.set_state(ModelState::Unavailable(reason.into()));
    }
    pub fn state(&self) -> ModelState {
        self.state.read().map(|s| s.clone()).unwrap_or(ModelState::Unavailable("state lock poisoned".into()))
    }
    pub fn set_state(&self, s: ModelState) {
        if let Ok(mut g) = self.state.write() {
            *g = s;
        }
    }
}
