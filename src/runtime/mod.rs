//! Executors compile a shape-specialised graph into a plan and run batches.
//! This module holds only the traits, errors and shared helpers; the backends live in
//! `cpu/` and `gpu/`, and `device.rs` is the one place that chooses and builds them.

mod batch;
pub mod cpu;
pub mod device;
pub mod frames;
pub mod gpu;
pub mod opencl;

pub use device::{executor_for, executor_with, Device, Precision};
pub use frames::{CropRect, FrameSpec, FramesOutput, Letterbox};

use crate::graph::{self, Dim, Graph, GraphError, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("input '{name}': {msg}")]
    Input { name: String, msg: String },
    #[error("{backend} backend: {msg}")]
    Backend { backend: &'static str, msg: String },
    #[error("unknown device '{0}' (expected cpu, gpu or auto)")]
    UnknownDevice(String),
    /// A plan over the cache's byte limit or the compute limit per run.
    #[error("{0}")]
    Limit(String),
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// A compiled model for fixed input shapes.
pub trait Plan: Send + std::fmt::Debug {
    /// Input shapes this plan was compiled for (batch included).
    fn input_shapes(&self) -> &[Vec<usize>];
    /// What one run costs and what the plan holds: the plan cache bounds its bytes, and the
    /// server refuses requests whose plan is over its compute limit.
    fn cost(&self) -> PlanCost;
    /// Runs one batch. Inputs must match the compiled shapes and dtypes.
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>>;
    /// Runs one batch and times each kernel, where the plan supports it.
    fn profile(&mut self, inputs: &[Tensor]) -> Result<Option<Profile>> {
        let _ = inputs;
        Ok(None)
    }
    /// Runs a batch whose only input is `frames` letterboxed per `spec`, produced where the
    /// plan runs (on the GPU: by the preprocessing kernel straight into the plan's input
    /// buffer, with no host round trip). `None` when the plan cannot; callers then build the
    /// input tensor themselves and call `run`.
    fn run_frames(&mut self, frames: &[&image::RgbImage], spec: &FrameSpec) -> Option<Result<FramesOutput>> {
        let _ = (frames, spec);
        None
    }
    /// Runs a batch whose only input is person crops of `frames` (`rects`: each crop's frame,
    /// `None` for padding, and its rectangle), cut and resampled per `spec` where the plan
    /// runs (on the GPU: by the crop kernel straight into the plan's input buffer).
    /// `None` when the plan cannot; callers then build the input themselves
    /// (`vision::crop::crop_batch`) and call `run`.
    fn run_crops(&mut self, frames: &[&image::RgbImage], rects: &[CropRect], spec: &FrameSpec) -> Option<Result<Vec<Tensor>>> {
        let _ = (frames, rects, spec);
        None
    }
    /// Whether `run_frames` letterboxes where the plan runs. Callers that can prepare the
    /// input elsewhere meanwhile (the batcher's CPU letterbox) ask this instead of the
    /// executor's name.
    fn takes_frames(&self) -> bool {
        false
    }
}

/// A compiled plan's size: FLOPs per run (multiply-add = 2) and the bytes it holds while
/// cached (weights as the executor keeps them, and its buffers or an estimate of its
/// intermediates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanCost {
    pub flops: u64,
    pub bytes: usize,
}

impl PlanCost {
    /// Runs `n` times over (a per-frame plan), holding the same memory.
    pub fn runs(self, n: usize) -> PlanCost {
        PlanCost { flops: self.flops.saturating_mul(n as u64), bytes: self.bytes }
    }
    /// Two plans used together.
    pub fn and(self, o: PlanCost) -> PlanCost {
        PlanCost { flops: self.flops.saturating_add(o.flops), bytes: self.bytes.saturating_add(o.bytes) }
    }
}

/// Bytes of a graph's constants (weights and folded values).
pub fn const_bytes(g: &Graph) -> usize {
    g.consts.values().map(|t| t.numel().saturating_mul(t.dtype().size())).fold(0usize, usize::saturating_add)
}

/// Time spent in one kernel launch.
#[derive(Clone, Debug)]
pub struct KernelTime {
    pub node: String,
    pub kernel: String,
    pub ms: f64,
    pub flops: u64,
    /// Bytes the node reads and writes at least once (its operands and results).
    pub bytes: u64,
}

/// Per-kernel timings of one run and how they were measured.
#[derive(Clone, Debug)]
pub struct Profile {
    pub method: String,
    pub kernels: Vec<KernelTime>,
    /// Nodes that ran outside the timed kernels (the CPU tail of a GPU plan).
    pub untimed: Vec<String>,
}

/// FLOPs of one node of a shape-specialised graph (multiply-add = 2).
pub fn node_flops(g: &Graph, n: &graph::Node) -> u64 {
    let out = g.values[n.outputs[0]].shape.as_ref().map(|s| graph::numel(s) as u64).unwrap_or(0);
    match &n.op {
        graph::Op::Conv2d(_) => g.values[n.inputs[1]].shape.as_ref().map(|w| 2 * out * (w[0] * w[1] * w[2]) as u64).unwrap_or(0),
        graph::Op::MatMul { transpose_a, .. } => g.values[n.inputs[0]]
            .shape
            .as_ref()
            .filter(|a| a.len() >= 2)
            .map(|a| 2 * out * a[a.len() - if *transpose_a { 2 } else { 1 }] as u64)
            .unwrap_or(0),
        _ => out,
    }
}

/// Bytes a node reads and writes at least once: its operands and results. Gathers and
/// slices read only what they pick, so their first operand counts as much as their results.
pub fn node_bytes(g: &Graph, n: &graph::Node) -> u64 {
    let size = |v: usize| g.values[v].shape.as_ref().map(|s| (graph::numel(s) * g.values[v].dtype.size()) as u64).unwrap_or(0);
    let out: u64 = n.outputs.iter().map(|&v| size(v)).sum();
    let picks = matches!(n.op, graph::Op::GatherNd | graph::Op::Gather { .. } | graph::Op::Slice);
    n.inputs.iter().enumerate().map(|(i, &v)| if picks && i == 0 { size(v).min(out) } else { size(v) }).sum::<u64>() + out
}

/// A backend that compiles graphs into plans.
pub trait Executor: Send + Sync {
    /// Short backend name: `cpu`, `gpu`.
    fn name(&self) -> &'static str;
    /// Human-readable description of the hardware that runs the plans.
    fn adapter(&self) -> String;
    /// Compiles `graph` for the given concrete input shapes.
    fn compile(&self, graph: &Graph, input_shapes: &[Vec<usize>]) -> Result<Box<dyn Plan>>;
    /// How many frames of a batch may run their per-frame part (`batch::SplitPlan`'s
    /// suffix) at once, each on its own plan: the CPU runs one per core, since the suffix's
    /// small ops leave cores idle.
    fn frame_workers(&self) -> usize {
        1
    }
    /// How its plans store weights and activations.
    fn precision(&self) -> Precision {
        Precision::F32
    }
}

/// Checks runtime inputs against a plan's shapes and the graph's dtypes.
pub fn check_run_inputs(graph: &Graph, shapes: &[Vec<usize>], inputs: &[Tensor]) -> Result<()> {
    if inputs.len() != graph.inputs.len() {
        return Err(RuntimeError::Input { name: "*".into(), msg: format!("expected {} inputs, got {}", graph.inputs.len(), inputs.len()) });
    }
    for ((info, shape), t) in graph.inputs.iter().zip(shapes).zip(inputs) {
        if t.dtype() != info.dtype {
            return Err(RuntimeError::Input {
                name: info.name.clone(),
                msg: format!("dtype {} but the model expects {}", t.dtype(), info.dtype),
            });
        }
        if &t.shape != shape {
            return Err(RuntimeError::Input {
                name: info.name.clone(),
                msg: format!("shape {:?} but the plan was compiled for {:?}", t.shape, shape),
            });
        }
    }
    Ok(())
}

/// The batch every input fixes, if they all fix the same one (`Some(1)`: a model the runtime
/// may batch by splitting; `Some(2)`: a model that must be given exactly 2).
pub fn fixed_batch(graph: &Graph) -> Option<usize> {
    let mut it = graph.inputs.iter().map(|i| match i.dims.first() {
        Some(Dim::Fixed(n)) => Some(*n),
        _ => None,
    });
    let first = it.next()??;
    it.all(|b| b == Some(first)).then_some(first)
}

/// Whether the model accepts a batch dimension other than 1 on every input.
pub fn batch_is_dynamic(graph: &Graph) -> bool {
    graph.inputs.iter().all(|i| matches!(i.dims.first(), Some(Dim::Dynamic(_))))
}

/// Runs a batch through a model whose graph fixes the batch at 1, frame by frame, reusing one
/// per-frame plan; outputs are concatenated along axis 0.
#[derive(Debug)]
struct PerFramePlan<P> {
    /// One per frame worker (`Executor::frame_workers`, at most the batch).
    inner: Vec<P>,
    shapes: Vec<Vec<usize>>,
}

impl Plan for PerFramePlan<Box<dyn Plan>> {
    fn input_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }
    fn cost(&self) -> PlanCost {
        let each = self.inner.first().map(|p| p.cost()).unwrap_or_default();
        let batch = self.shapes.first().and_then(|s| s.first()).copied().unwrap_or(1);
        let held = PlanCost { flops: 0, bytes: each.bytes.saturating_mul(self.inner.len().saturating_sub(1)) };
        each.runs(batch).and(held)
    }
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let batch = self.shapes[0][0];
        for (i, t) in inputs.iter().enumerate() {
            if self.shapes.get(i) != Some(&t.shape) {
                return Err(RuntimeError::Input {
                    name: format!("#{i}"),
                    msg: format!("shape {:?} but the plan was compiled for {:?}", t.shape, self.shapes.get(i)),
                });
            }
        }
        run_frames_on(&mut self.inner, batch, |b| inputs.iter().map(|t| slice_batch(t, b)).collect())
    }
}

/// Runs frames `0..batch` (inputs made by `frame(b)`) on per-frame plans, frame `b` on
/// plan `b % plans.len()`, the plans at once when there are several, and concatenates each
/// output over the batch in frame order.
pub(crate) fn run_frames_on<F>(plans: &mut [Box<dyn Plan>], batch: usize, frame: F) -> Result<Vec<Tensor>>
where
    F: Fn(usize) -> Vec<Tensor> + Sync,
{
    use rayon::prelude::*;
    let workers = plans.len().max(1);
    let run_worker = |(w, plan): (usize, &mut Box<dyn Plan>)| -> Result<Vec<(usize, Vec<Tensor>)>> {
        (w..batch).step_by(workers).map(|b| Ok((b, plan.run(&frame(b))?))).collect()
    };
    let parts: Vec<Vec<(usize, Vec<Tensor>)>> = if workers > 1 {
        plans.par_iter_mut().enumerate().map(run_worker).collect::<Result<_>>()?
    } else {
        plans.iter_mut().enumerate().map(run_worker).collect::<Result<_>>()?
    };
    let mut done: Vec<(usize, Vec<Tensor>)> = parts.into_iter().flatten().collect();
    done.sort_by_key(|(b, _)| *b);
    let mut per_out: Vec<Vec<Tensor>> = Vec::new();
    for (_, outs) in done {
        if per_out.is_empty() {
            per_out = outs.iter().map(|_| Vec::with_capacity(batch)).collect();
        }
        for (acc, o) in per_out.iter_mut().zip(outs) {
            acc.push(o);
        }
    }
    Ok(per_out.into_iter().map(|parts| concat_batch(&parts)).collect())
}

/// Frame `b` of a batched tensor, keeping a leading dim of 1.
pub fn slice_batch(t: &Tensor, b: usize) -> Tensor {
    let per = t.numel() / t.shape[0].max(1);
    let mut shape = t.shape.clone();
    shape[0] = 1;
    let data = crate::map_data!(&t.data, v => v[b * per..(b + 1) * per].to_vec());
    Tensor::new(shape, data)
}

/// Concatenates tensors along axis 0.
pub fn concat_batch(parts: &[Tensor]) -> Tensor {
    let mut shape = parts[0].shape.clone();
    if shape.is_empty() {
        shape.push(1);
    }
    shape[0] = parts.iter().map(|p| p.shape.first().copied().unwrap_or(1)).sum();
    let mut data = parts[0].data.clone();
    for p in &parts[1..] {
        match (&mut data, &p.data) {
            (graph::TensorData::F32(a), graph::TensorData::F32(b)) => a.extend_from_slice(b),
            (graph::TensorData::F16(a), graph::TensorData::F16(b)) => a.extend_from_slice(b),
            (graph::TensorData::I32(a), graph::TensorData::I32(b)) => a.extend_from_slice(b),
            (graph::TensorData::I64(a), graph::TensorData::I64(b)) => a.extend_from_slice(b),
            (graph::TensorData::U8(a), graph::TensorData::U8(b)) => a.extend_from_slice(b),
            (graph::TensorData::Bool(a), graph::TensorData::Bool(b)) => a.extend_from_slice(b),
            _ => {}
        }
    }
    Tensor::new(shape, data)
}

/// Compiles a plan for `batch` frames of the given per-frame input shapes (each with a
/// leading batch dim of 1). Models with a dynamic batch dim get one batched plan; models
/// that fix it at 1 get per-frame plans run side by side on executors with several frame
/// workers (the CPU), or a batched prefix and a per-frame suffix (`batch::split`).
pub fn compile_batched(exec: &dyn Executor, graph: &Graph, frame_shapes: &[Vec<usize>], batch: usize) -> Result<Box<dyn Plan>> {
    let batched: Vec<Vec<usize>> = frame_shapes
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(b) = s.first_mut() {
                *b = batch;
            }
            s
        })
        .collect();
    if batch == 1 {
        // the shapes as given (a model may fix a leading dim other than 1)
        return exec.compile(graph, frame_shapes);
    }
    if batch_is_dynamic(graph) {
        return exec.compile(graph, &batched);
    }
    if let Some(b) = fixed_batch(graph).filter(|&b| b != 1) {
        return Err(RuntimeError::Input {
            name: graph.inputs.first().map(|i| i.name.clone()).unwrap_or_default(),
            msg: format!("the model fixes its batch at {b}; it runs batches of exactly {b}, not {batch} frames of 1"),
        });
    }
    // executors that run frames side by side (the CPU, one per core) do better with whole
    // frames at once than with a batched prefix: a frame keeps its core's cache, and the
    // small ops of one frame no longer leave the other cores idle
    let workers = exec.frame_workers().clamp(1, batch);
    if workers == 1 {
        if let Some(p) = batch::split(exec, graph, frame_shapes, batch)? {
            return Ok(Box::new(p));
        }
    }
    let inner = (0..workers).map(|_| exec.compile(graph, frame_shapes)).collect::<Result<Vec<_>>>()?;
    Ok(Box::new(PerFramePlan { inner, shapes: batched }))
}

/// What a plan cache may hold and what one plan may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanLimits {
    /// Bytes of every cached plan together (`PlanCost::bytes`); the least recently used
    /// plans go first, and a plan over it alone is refused.
    pub max_bytes: usize,
    /// FLOPs per batch item (one request's frame); a plan over it is refused before it ever
    /// runs.
    pub max_flops: u64,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits { max_bytes: usize::MAX, max_flops: u64::MAX }
    }
}

/// Compiled plans cached per (model, input shapes, batch): compiling (specialisation,
/// pipelines, bind groups, buffers) happens once per key. Bounded in bytes.
#[derive(Debug, Default)]
pub struct PlanCache {
    plans: std::collections::HashMap<PlanKey, (Box<dyn Plan>, u64)>,
    limits: PlanLimits,
    bytes: usize,
    clock: u64,
}

/// (model, per-frame input shapes, batch)
type PlanKey = (String, Vec<Vec<usize>>, usize);

impl PlanCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: PlanLimits) -> Self {
        PlanCache { limits, ..Self::default() }
    }

    /// New limits for plans compiled from now on (cached plans stay).
    pub fn set_limits(&mut self, limits: PlanLimits) {
        self.limits = limits;
    }

    /// The plan for `model` at the given per-frame shapes and batch, compiled on first use.
    /// A new plan over the limits is refused (`RuntimeError::Limit`) and not kept; to make
    /// room, the least recently used plans are dropped.
    pub fn get_or_compile(
        &mut self,
        exec: &dyn Executor,
        model: &str,
        graph: &Graph,
        frame_shapes: &[Vec<usize>],
        batch: usize,
    ) -> Result<&mut Box<dyn Plan>> {
        let key = (model.to_string(), frame_shapes.to_vec(), batch);
        self.clock += 1;
        if !self.plans.contains_key(&key) {
            let plan = compile_batched(exec, graph, frame_shapes, batch)?;
            let cost = plan.cost();
            let what = || format!("the plan for shapes {frame_shapes:?} at batch {batch}");
            let per_item = cost.flops / batch.max(1) as u64;
            if per_item > self.limits.max_flops {
                return Err(RuntimeError::Limit(format!(
                    "{} costs {:.1} GFLOP per item, over the limit of {:.1}",
                    what(),
                    per_item as f64 * 1e-9,
                    self.limits.max_flops as f64 * 1e-9
                )));
            }
            if cost.bytes > self.limits.max_bytes {
                return Err(RuntimeError::Limit(format!(
                    "{} holds {} MiB, over the plan cache's {} MiB",
                    what(),
                    cost.bytes >> 20,
                    self.limits.max_bytes >> 20
                )));
            }
            while self.bytes.saturating_add(cost.bytes) > self.limits.max_bytes {
                let Some(oldest) = self.plans.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()) else { break };
                if let Some((p, _)) = self.plans.remove(&oldest) {
                    self.bytes = self.bytes.saturating_sub(p.cost().bytes);
                }
            }
            self.bytes = self.bytes.saturating_add(cost.bytes);
            self.plans.insert(key.clone(), (plan, 0));
        }
        let clock = self.clock;
        let (plan, used) = self
            .plans
            .get_mut(&key)
            .ok_or_else(|| RuntimeError::Backend { backend: "cache", msg: "plan vanished (this is a bug)".into() })?;
        *used = clock;
        Ok(plan)
    }

    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Bytes the cached plans hold (`PlanCost::bytes`).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{DType, InputInfo, Node, Op};

    /// x [N, 64] times a constant [64, 64]: 8192 FLOPs per row.
    fn matmul() -> Graph {
        let mut g = Graph::default();
        let x = g.add_value("x", DType::F32);
        let w = g.add_const("w", Tensor::f32(vec![64, 64], vec![0.5; 64 * 64]));
        let y = g.add_value("y", DType::F32);
        g.inputs.push(InputInfo {
            value: x,
            name: "x".into(),
            dtype: DType::F32,
            dims: vec![Dim::Dynamic(Some("N".into())), Dim::Fixed(64)],
        });
        g.nodes.push(Node {
            name: "mm".into(),
            op: Op::MatMul { transpose_a: false, transpose_b: false },
            inputs: vec![x, w],
            outputs: vec![y],
        });
        g.outputs.push(y);
        g
    }

    #[test]
    fn the_plan_cache_is_bounded_in_bytes_and_refuses_costly_plans() {
        let exec = executor_for(Device::Cpu).expect("cpu executor");
        let g = matmul();
        let cost = |rows: usize| exec.compile(&g, &[vec![rows, 64]]).expect("compiles").cost();
        let (small, big) = (cost(1), cost(512));
        assert_eq!(small.flops, 2 * 64 * 64);
        assert!(big.bytes > small.bytes && small.bytes >= 2 * 64 * 64 * 4, "{small:?} {big:?}");

        // room for the big plan and one small one: compiling a third evicts the least recently used
        let mut cache = PlanCache::with_limits(PlanLimits { max_bytes: big.bytes + small.bytes + 1, max_flops: u64::MAX });
        cache.get_or_compile(exec.as_ref(), "m", &g, &[vec![512, 64]], 1).expect("big");
        cache.get_or_compile(exec.as_ref(), "m", &g, &[vec![1, 64]], 1).expect("small");
        cache.get_or_compile(exec.as_ref(), "m", &g, &[vec![1, 64]], 1).expect("small again");
        cache.get_or_compile(exec.as_ref(), "m", &g, &[vec![2, 64]], 1).expect("another small");
        assert!(cache.bytes() <= big.bytes + small.bytes + 1, "{} bytes", cache.bytes());
        assert_eq!(cache.len(), 2, "the big plan, least recently used, went");

        // one plan over the whole cache, or over the compute limit per item, is refused
        let mut tight = PlanCache::with_limits(PlanLimits { max_bytes: small.bytes, max_flops: 2 * 64 * 64 });
        assert!(matches!(tight.get_or_compile(exec.as_ref(), "m", &g, &[vec![512, 64]], 1), Err(RuntimeError::Limit(_))));
        assert!(tight.is_empty() && tight.bytes() == 0);
        let mut cheap = PlanCache::with_limits(PlanLimits { max_bytes: usize::MAX, max_flops: 64 * 64 });
        let e = cheap.get_or_compile(exec.as_ref(), "m", &g, &[vec![1, 64]], 1).expect_err("over the FLOP limit");
        assert!(e.to_string().contains("GFLOP per item"), "{e}");
    }
}
