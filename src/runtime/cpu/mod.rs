//! CPU executor on candle tensors. Every value in a plan is a `candle_core::Tensor`.
//! Convolutions run on walkout's own vector kernels (`simd`: AVX-512, AVX2 + FMA or
//! portable code, chosen at run time) with weights packed at plan time and bias,
//! activation and residual fused: dense ones as GEMM (1x1 directly, others after an NHWC
//! im2col per block of pixels), depthwise ones vectorised over channels; other ops use the
//! reference kernels in `graph::eval`.

mod arena;
mod chain;
mod fused;
mod kernels;
mod layout;
pub mod simd;

use arena::{Pool, Val};

pub use simd::Isa;

use super::{check_run_inputs, Executor, Plan, Result, RuntimeError};
use crate::graph::{self, optimize, ConvAttrs, DType, Graph, Layout, Op, Tensor, TensorData, ValueId};
use candle_core::{Device, Tensor as CTensor};

pub(crate) fn backend_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Backend { backend: "cpu", msg: e.to_string() }
}

/// The CPU executor. Uses every core through rayon.
#[derive(Debug)]
pub struct CpuExecutor {
    isa: Isa,
    /// Fuse inverted-residual blocks (`fused`) and chains of elementwise ops (`chain`); on
    /// by default (about 5% on MoveNet where memory is slow next to the cores),
    /// `WALKOUT_CPU_FUSE=0` turns both off.
    fuse: bool,
}

impl Default for CpuExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuExecutor {
    /// On the best vector path of this CPU (or `WALKOUT_CPU_ISA`'s).
    /// `WALKOUT_CPU_FUSE=0` turns block fusion off.
    pub fn new() -> Self {
        CpuExecutor { isa: Isa::detect(), fuse: fuse_default() }
    }

    /// On a given vector path; one this CPU does not run is an error.
    pub fn with_isa(isa: Isa) -> Result<Self> {
        if !isa.supported() {
            return Err(RuntimeError::Backend { backend: "cpu", msg: format!("this CPU does not run the {} path", isa.name()) });
        }
        Ok(CpuExecutor { isa, fuse: fuse_default() })
    }

    /// With inverted-residual blocks fused row by row (`fused`) and elementwise chains block
    /// by block (`chain`), or not.
    pub fn fusing(mut self, fuse: bool) -> Self {
        self.fuse = fuse;
        self
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }
}

/// Block fusion unless `WALKOUT_CPU_FUSE=0`.
fn fuse_default() -> bool {
    std::env::var("WALKOUT_CPU_FUSE").map_or(true, |v| v.trim() != "0")
}

impl Executor for CpuExecutor {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn adapter(&self) -> String {
        format!("CPU {}, {} threads", self.isa.name(), rayon::current_num_threads())
    }
    fn compile(&self, graph: &Graph, input_shapes: &[Vec<usize>]) -> Result<Box<dyn Plan>> {
        Ok(Box::new(CpuPlan::new(graph, input_shapes, self.isa, self.fuse)?))
    }
    fn frame_workers(&self) -> usize {
        rayon::current_num_threads().max(1)
    }
}

/// How one node runs.
#[derive(Debug)]
enum Step {
    /// Dense conv as GEMM on packed `[kh*kw*cin, cout]` weights.
    Conv {
        attrs: ConvAttrs,
        packed: simd::gemm::PackedB,
        geo: kernels::ConvGeo,
    },
    /// Depthwise conv (groups == cin == cout) on packed `[kh*kw, c]` weights.
    Depthwise {
        attrs: ConvAttrs,
        packed: simd::dw::PackedDw,
        geo: kernels::ConvGeo,
    },
    MatMul {
        ta: bool,
        tb: bool,
    },
    /// f32 elementwise ops straight on candle storage (no host copies).
    BinaryF32(graph::BinOp),
    /// An f32 reduction over contiguous axes, as `[outer, r, inner]` (no host copies).
    ReduceF32 {
        op: graph::ReduceOp,
        dims: [usize; 3],
    },
    /// A cast of i32, i64, u8 or f32 data to f32, into a pooled buffer (no host copies).
    CastF32,
    /// ArgMax of f32 data as `[outer, n, inner]` (no host copies), to `dtype`.
    ArgMaxF32 {
        dims: [usize; 3],
        dtype: DType,
    },
    /// f32 comparisons, to bool (u8) storage.
    CmpF32(graph::BinOp),
    /// GatherNd of f32 data, read in place (only the indices go to the host).
    GatherNdF32,
    /// A resize of f32 data with its target fixed at plan time (no host copies).
    ResizeF32(Op),
    /// Reshape-like ops: a candle view of the same storage.
    View,
    UnaryF32(graph::UnOp),
    /// Any op, through the reference kernels on host tensors.
    Generic,
    /// An inverted-residual block (`fused`): reads `x` (and the residual), writes the
    /// project conv's output.
    Block {
        block: Box<fused::Block>,
        x: ValueId,
        residual: Option<ValueId>,
        layout: Layout,
    },
    /// A chain of elementwise ops (`chain`), at its last node.
    Chain(Box<chain::Chain>),
    /// A node run as part of a block or a chain.
    Fused,
}

#[derive(Debug)]
struct CpuPlan {
    graph: Graph,
    shapes: Vec<Vec<usize>>,
    steps: Vec<Step>,
    /// For each step, values whose last use is that step (freed after it).
    frees: Vec<Vec<ValueId>>,
    /// Per value: held in NHWC between NCHW convs (`layout`).
    resident: Vec<bool>,
    slots: Vec<Option<Val>>,
    consts: Vec<Option<Val>>,
    /// Recycled f32 buffers of the kernels' outputs.
    pool: Pool,
    isa: Isa,
    /// Per-step seconds of the current run, while profiling.
    times: Option<Vec<f64>>,
}

/// Host tensor to candle (moves the data; bool becomes u8).
pub(crate) fn to_candle(t: Tensor) -> Result<CTensor> {
    let shape = t.shape.clone();
    let dev = &Device::Cpu;
    let r = match t.data {
        TensorData::F32(v) => CTensor::from_vec(v, shape, dev),
        TensorData::F16(v) => CTensor::from_vec(v, shape, dev),
        TensorData::I32(v) => CTensor::from_vec(v, shape, dev),
        TensorData::I64(v) => CTensor::from_vec(v, shape, dev),
        TensorData::U8(v) => CTensor::from_vec(v, shape, dev),
        TensorData::Bool(v) => CTensor::from_vec(v.into_iter().map(|b| b as u8).collect::<Vec<u8>>(), shape, dev),
    };
    r.map_err(backend_err)
}

/// Candle tensor to host, with the IR dtype (u8 storage of bool values becomes bool).
pub(crate) fn to_host(t: &CTensor, dtype: DType) -> Result<Tensor> {
    let shape = t.dims().to_vec();
    let flat = t.flatten_all().map_err(backend_err)?;
    let data = match t.dtype() {
        candle_core::DType::F32 => TensorData::F32(flat.to_vec1().map_err(backend_err)?),
        candle_core::DType::F16 => TensorData::F16(flat.to_vec1().map_err(backend_err)?),
        candle_core::DType::I32 => TensorData::I32(flat.to_vec1().map_err(backend_err)?),
        candle_core::DType::I64 => TensorData::I64(flat.to_vec1().map_err(backend_err)?),
        candle_core::DType::U8 => {
            let v: Vec<u8> = flat.to_vec1().map_err(backend_err)?;
            if dtype == DType::Bool {
                TensorData::Bool(v.into_iter().map(|b| b != 0).collect())
            } else {
                TensorData::U8(v)
            }
        }
        other => return Err(backend_err(format!("unexpected candle dtype {other:?}"))),
    };
    Ok(Tensor::new(shape, data))
}

impl CpuPlan {
    fn new(graph: &Graph, shapes: &[Vec<usize>], isa: Isa, fuse: bool) -> Result<Self> {
        let g = optimize::specialize(graph, shapes)?;
        let mut steps = Vec::with_capacity(g.nodes.len());
        for n in &g.nodes {
            steps.push(plan_step(&g, n, isa)?);
        }
        let outputs: std::collections::HashSet<ValueId> = g.outputs.iter().copied().collect();
        if fuse {
            fused::fuse_blocks(&g, &mut steps, &outputs);
            chain::fuse_chains(&g, &mut steps, &outputs);
            chain::fuse_sinks(&g, &mut steps, &outputs);
        }
        // liveness, on what each step reads
        let reads: Vec<Vec<ValueId>> = g
            .nodes
            .iter()
            .zip(&steps)
            .map(|(n, st)| match st {
                Step::Block { x, residual, .. } => std::iter::once(*x).chain(*residual).collect(),
                Step::Chain(c) => c.inputs.clone(),
                Step::Fused => Vec::new(),
                _ => n.inputs.clone(),
            })
            .collect();
        let mut last = vec![usize::MAX; g.values.len()];
        for (i, r) in reads.iter().enumerate() {
            for &v in r {
                last[v] = i;
            }
        }
        let resident = layout::resident(&g, &steps, &reads, &outputs);
        let mut frees = vec![Vec::new(); g.nodes.len()];
        for (v, &l) in last.iter().enumerate() {
            if l != usize::MAX && !outputs.contains(&v) && !g.consts.contains_key(&v) {
                frees[l].push(v);
            }
        }
        let mut consts = vec![None; g.values.len()];
        for (&v, t) in &g.consts {
            consts[v] = Some(Val::C(to_candle(t.clone())?));
        }

        Ok(CpuPlan {
            slots: vec![None; g.values.len()],
            graph: g,
            shapes: shapes.to_vec(),
            steps,
            frees,
            resident,
            consts,
            pool: Pool::default(),
            isa,
            times: None,
        })
    }
}

/// A computed value or constant.
fn value<'a>(g: &Graph, slots: &'a [Option<Val>], consts: &'a [Option<Val>], v: ValueId) -> Result<&'a Val> {
    slots[v]
        .as_ref()
        .or(consts[v].as_ref())
        .ok_or_else(|| backend_err(format!("value '{}' not computed (this is a bug)", g.values[v].name)))
}

/// Per value, the nodes that read it (once per input slot) and the node that writes it
/// (`usize::MAX` for inputs and constants).
pub(super) fn readers_and_producers(g: &Graph) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut readers = vec![Vec::new(); g.values.len()];
    let mut producer = vec![usize::MAX; g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        for &v in &n.inputs {
            readers[v].push(i);
        }
        for &v in &n.outputs {
            producer[v] = i;
        }
    }
    (readers, producer)
}

fn is_cmp(b: graph::BinOp) -> bool {
    use graph::BinOp::*;
    matches!(b, Equal | Less | LessEqual | Greater | GreaterEqual)
}

/// A value cast to f32 into a pooled buffer (i32 and u8 directly, others through candle).
fn cast_f32(pool: &mut Pool, x: &Val) -> Result<Val> {
    use candle_core::{CpuStorage, Storage};
    let Val::C(t) = x else { return Ok(x.clone()) };
    let t = t.contiguous().map_err(backend_err)?;
    let (st, layout) = t.storage_and_layout();
    let (a, b) = layout.contiguous_offsets().ok_or_else(|| backend_err("tensor is not contiguous"))?;
    let mut out = pool.take(b - a);
    match &*st {
        Storage::Cpu(CpuStorage::I32(v)) => out.iter_mut().zip(&v[a..b]).for_each(|(o, &x)| *o = x as f32),
        Storage::Cpu(CpuStorage::U8(v)) => out.iter_mut().zip(&v[a..b]).for_each(|(o, &x)| *o = x as f32),
        Storage::Cpu(CpuStorage::F32(v)) => out.copy_from_slice(&v[a..b]),
        _ => {
            pool.give(Val::F(std::sync::Arc::new(out), Vec::new()));
            return Ok(Val::C(t.to_dtype(candle_core::DType::F32).map_err(backend_err)?));
        }
    }
    Ok(Val::F(std::sync::Arc::new(out), t.dims().to_vec()))
}

/// `[outer, r, inner]` of a reduction (or, with `single`, an ArgMax) over constant,
/// contiguous axes of a known shape; None for any other.
fn reduce_dims(g: &Graph, n: &graph::Node, single: bool) -> Option<[usize; 3]> {
    let shape = g.values[n.inputs[0]].shape.as_ref()?;
    let axes: Vec<usize> = match n.inputs.get(1).map(|&a| g.consts.get(&a)) {
        Some(Some(t)) if single => vec![graph::eval::norm_axis(*t.to_i64_vec()?.first()?, shape.len()).ok()?],
        Some(Some(t)) if t.numel() > 0 => graph::eval::reduce_axes(&t.to_i64_vec()?, shape.len()).ok()?,
        Some(Some(_)) | None if !single => (0..shape.len()).collect(),
        _ => return None,
    };
    let (&a0, &a1) = (axes.iter().min()?, axes.iter().max()?);
    if a1 - a0 + 1 != axes.len() {
        return None;
    }
    Some([shape[..a0].iter().product(), shape[a0..=a1].iter().product(), shape[a1 + 1..].iter().product()])
}

fn plan_step(g: &Graph, n: &graph::Node, isa: Isa) -> Result<Step> {
    if n.outputs.iter().chain(&n.inputs).any(|&v| g.values[v].shape.is_none()) {
        // data-dependent shapes: the reference kernels decide at run time
        return Ok(Step::Generic);
    }
    Ok(match &n.op {
        Op::Conv2d(a) => {
            let w = g.consts.get(&n.inputs[1]);
            let bias =
                if a.has_bias { g.consts.get(&n.inputs[2]).map(|b| b.cast(DType::F32).as_f32().unwrap_or(&[]).to_vec()) } else { None };
            let (Some(w), true) = (w, !a.has_bias || bias.is_some()) else {
                return Ok(Step::Generic);
            };
            let (Some(in_shape), Some(out_shape)) = (g.values[n.inputs[0]].shape.clone(), g.values[n.outputs[0]].shape.clone()) else {
                // data-dependent shapes: the reference kernel decides at run time
                return Ok(Step::Generic);
            };
            let geo = kernels::ConvGeo::new(a, &in_shape, &w.shape, &out_shape).map_err(|m| RuntimeError::Graph(n.err(m)))?;
            let w32 = w.cast(DType::F32);
            let wf = w32.as_f32().unwrap_or(&[]);
            let err = |m: String| RuntimeError::Graph(n.err(m));
            if a.groups == 1 {
                // HWIO is already the [kh*kw*cin, cout] GEMM operand.
                let packed = kernels::pack_conv(isa, &geo, wf, bias.as_deref()).map_err(err)?;
                Step::Conv { attrs: a.clone(), packed, geo }
            } else if w.shape[2] == 1 && a.groups == w.shape[3] && geo.cin == geo.cout {
                let packed = kernels::pack_depthwise(isa, &geo, wf, bias.as_deref()).map_err(err)?;
                Step::Depthwise { attrs: a.clone(), packed, geo }
            } else {
                Step::Generic
            }
        }
        Op::MatMul { transpose_a, transpose_b } => Step::MatMul { ta: *transpose_a, tb: *transpose_b },
        Op::Cast(DType::F32) if matches!(g.values[n.inputs[0]].dtype, DType::I32 | DType::I64 | DType::U8 | DType::F32) => Step::CastF32,
        Op::Reduce { op, .. } if g.values[n.inputs[0]].dtype == DType::F32 => {
            reduce_dims(g, n, false).map_or(Step::Generic, |dims| Step::ReduceF32 { op: *op, dims })
        }
        Op::ArgMax { dtype, select_last: false, .. } if g.values[n.inputs[0]].dtype == DType::F32 => {
            reduce_dims(g, n, true).map_or(Step::Generic, |dims| Step::ArgMaxF32 { dims, dtype: *dtype })
        }
        Op::GatherNd if g.values[n.inputs[0]].dtype == DType::F32 => Step::GatherNdF32,
        Op::Resize { layout, .. } if g.values[n.inputs[0]].dtype == DType::F32 => {
            // as `graph::eval` runs it, a constant target's scales fixed in the op
            let in_shape = g.values[n.inputs[0]].shape.clone().unwrap_or_default();
            match n.inputs.get(1).map(|v| g.consts.get(v).map(|t| graph::eval::resize_target(t, Some((&in_shape, *layout))))) {
                None | Some(Some(Ok(graph::eval::ResizeTarget::Size(_)))) => Step::ResizeF32(n.op.clone()),
                Some(Some(Ok(graph::eval::ResizeTarget::Scales(sc)))) => Step::ResizeF32(graph::eval::resized_with(&n.op, sc)),
                _ => Step::Generic,
            }
        }
        Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims | Op::Identity | Op::Unsqueeze { .. } | Op::Flatten { .. } => Step::View,
        Op::Binary(b) if !is_cmp(*b) && n.inputs.iter().all(|&v| g.values[v].dtype == DType::F32) => Step::BinaryF32(*b),
        Op::Binary(b) if is_cmp(*b) && n.inputs.iter().all(|&v| g.values[v].dtype == DType::F32) => Step::CmpF32(*b),
        Op::Unary(u) if g.values[n.inputs[0]].dtype == DType::F32 => Step::UnaryF32(*u),
        _ => Step::Generic,
    })
}

impl Plan for CpuPlan {
    fn input_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    fn cost(&self) -> super::PlanCost {
        // constants twice (the graph's and the steps' repacked or candle copies), and the
        // intermediates at their peak: each lives from its step until its last use
        let consts = super::const_bytes(&self.graph);
        let g = &self.graph;
        let size = |v: usize| g.values[v].shape.as_ref().map_or(0, |s| crate::graph::numel(s).saturating_mul(g.values[v].dtype.size()));
        let mut live: usize = g.inputs.iter().map(|i| size(i.value)).fold(0, usize::saturating_add);
        let mut peak = live;
        for (n, frees) in g.nodes.iter().zip(&self.frees) {
            live = n.outputs.iter().map(|&o| size(o)).fold(live, usize::saturating_add);
            peak = peak.max(live);
            live = frees.iter().filter(|v| !g.consts.contains_key(v)).map(|&v| size(v)).fold(live, usize::saturating_sub);
        }
        super::PlanCost { flops: g.flops(), bytes: consts.saturating_mul(2).saturating_add(peak) }
    }

    fn profile(&mut self, inputs: &[Tensor]) -> Result<Option<super::Profile>> {
        self.times = Some(vec![0.0; self.steps.len()]);
        let r = self.run(inputs);
        let times = self.times.take().unwrap_or_default();
        r?;
        let kernels = self
            .steps
            .iter()
            .zip(&self.graph.nodes)
            .zip(times)
            .map(|((st, n), t)| super::KernelTime {
                node: n.name.clone(),
                kernel: match st {
                    Step::Conv { geo, .. } => format!("conv{}x{}_gemm", geo.kh, geo.kw),
                    Step::Depthwise { .. } => "depthwise".into(),
                    Step::Block { .. } => "block_1x1_dw_1x1".into(),
                    Step::Chain(_) => "elementwise_chain".into(),
                    Step::Fused => "fused".into(),
                    _ => n.op.name(),
                },
                ms: t * 1e3,
                flops: match st {
                    Step::Block { block, .. } => block.nodes.iter().map(|&j| super::node_flops(&self.graph, &self.graph.nodes[j])).sum(),
                    Step::Chain(c) => c.nodes.iter().map(|&j| super::node_flops(&self.graph, &self.graph.nodes[j])).sum(),
                    Step::Fused => 0,
                    _ => super::node_flops(&self.graph, n),
                },
                bytes: super::node_bytes(&self.graph, n),
            })
            .collect();
        Ok(Some(super::Profile { method: "host timer per step".into(), kernels, untimed: Vec::new() }))
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        // on a worker of the pool, not the caller's thread (`simd::in_pool`)
        simd::in_pool(|| self.run_here(inputs))
    }
}

impl CpuPlan {
    fn run_here(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        check_run_inputs(&self.graph, &self.shapes, inputs)?;
        for (info, t) in self.graph.inputs.iter().zip(inputs) {
            self.slots[info.value] = Some(Val::C(to_candle(t.clone())?));
        }
        let g = &self.graph;
        for i in 0..self.steps.len() {
            let t0 = self.times.as_ref().map(|_| std::time::Instant::now());
            let node = &g.nodes[i];
            let (slots, consts) = (&self.slots, &self.consts);
            let val = |v: ValueId| value(g, slots, consts, v);
            let out_shape = || g.values[node.outputs[0]].shape.clone().unwrap_or_default();
            // a value with whether it is held in NHWC (`layout`)
            let held = |v: ValueId| val(v).map(|x| (x, self.resident[v]));
            let opt = |v: Option<ValueId>| v.map(held).transpose();
            let out_res = node.outputs.first().is_some_and(|&o| self.resident[o]);
            let node_err = |e: String| RuntimeError::Graph(node.err(e));
            let outs: Vec<Val> = match &self.steps[i] {
                Step::Conv { attrs, packed, geo } => {
                    let k = |xs: &[f32], rs: Option<&[f32]>, out: &mut [f32]| kernels::conv_gemm(attrs, geo, xs, packed, rs, out);
                    let r = attrs.residual.map(|_| *node.inputs.last().unwrap_or(&0));
                    vec![layout::run_nhwc(&mut self.pool, attrs.layout, held(node.inputs[0])?, opt(r)?, out_shape(), out_res, k)
                        .map_err(node_err)?]
                }
                Step::Depthwise { attrs, packed, geo } => {
                    let k = |xs: &[f32], rs: Option<&[f32]>, out: &mut [f32]| kernels::depthwise(attrs, geo, xs, packed, rs, out);
                    let r = attrs.residual.map(|_| *node.inputs.last().unwrap_or(&0));
                    vec![layout::run_nhwc(&mut self.pool, attrs.layout, held(node.inputs[0])?, opt(r)?, out_shape(), out_res, k)
                        .map_err(node_err)?]
                }
                Step::MatMul { ta, tb } => {
                    let a = val(node.inputs[0])?.candle()?;
                    let b = val(node.inputs[1])?.candle()?;
                    let a = if *ta { a.t().map_err(backend_err)? } else { a };
                    let b = if *tb { b.t().map_err(backend_err)? } else { b };
                    let a =
                        if a.dtype() != candle_core::DType::F32 { a.to_dtype(candle_core::DType::F32).map_err(backend_err)? } else { a };
                    let b =
                        if b.dtype() != candle_core::DType::F32 { b.to_dtype(candle_core::DType::F32).map_err(backend_err)? } else { b };
                    vec![Val::C(
                        a.contiguous()
                            .map_err(backend_err)?
                            .broadcast_matmul(&b.contiguous().map_err(backend_err)?)
                            .map_err(backend_err)?,
                    )]
                }
                Step::BinaryF32(op) => {
                    let (a, b) = (val(node.inputs[0])?, val(node.inputs[1])?);
                    let shape = out_shape();
                    let mut out = self.pool.take(graph::numel(&shape));
                    a.with_f32(|x| b.with_f32(|y| graph::eval::binary_f32_op_into(*op, x, a.dims(), y, b.dims(), &shape, &mut out)))??;
                    vec![Val::F(std::sync::Arc::new(out), shape)]
                }
                Step::CastF32 => vec![cast_f32(&mut self.pool, val(node.inputs[0])?)?],
                Step::ReduceF32 { op, dims: [outer, r, inner] } => {
                    let x = val(node.inputs[0])?;
                    if graph::numel(x.dims()) != outer * r * inner {
                        return Err(node_err(format!("input shape {:?} is not the planned {outer}x{r}x{inner}", x.dims())));
                    }
                    let r = x.with_f32(|v| graph::eval::reduce_f32(v, *outer, *r, *inner, *op))?;
                    let mut out = self.pool.take(r.len());
                    out.copy_from_slice(&r);
                    vec![Val::F(std::sync::Arc::new(out), out_shape())]
                }
                Step::ArgMaxF32 { dims: [outer, r, inner], dtype } => {
                    let x = val(node.inputs[0])?;
                    if graph::numel(x.dims()) != outer * r * inner {
                        return Err(node_err(format!("input shape {:?} is not the planned {outer}x{r}x{inner}", x.dims())));
                    }
                    let idx = x.with_f32(|v| graph::eval::argmax_f32(v, *outer, *r, *inner))?;
                    vec![Val::C(to_candle(Tensor::i64(out_shape(), idx).cast(*dtype))?)]
                }
                Step::CmpF32(op) => {
                    let (a, b) = (val(node.inputs[0])?, val(node.inputs[1])?);
                    let shape = out_shape();
                    let (sa, sb) = (a.dims(), b.dims());
                    let v: Vec<u8> = a.with_f32(|x| {
                        b.with_f32(|y| {
                            use graph::BinOp::*;
                            macro_rules! m {
                                ($e:expr) => {
                                    graph::eval::binary_f32_with(|p: f32, q: f32| $e(p, q) as u8, x, sa, y, sb, &shape)
                                };
                            }
                            match op {
                                Equal => m!(|p, q| p == q),
                                Less => m!(|p, q| p < q),
                                LessEqual => m!(|p, q| p <= q),
                                Greater => m!(|p, q| p > q),
                                _ => m!(|p, q| p >= q),
                            }
                        })
                    })??;
                    vec![Val::C(CTensor::from_vec(v, shape, &Device::Cpu).map_err(backend_err)?)]
                }
                Step::GatherNdF32 => {
                    let p = val(node.inputs[0])?;
                    let ix = val(node.inputs[1])?.host(g.values[node.inputs[1]].dtype)?;
                    let (offs, slice) = graph::eval::gather_nd_offsets(p.dims(), &ix).map_err(node_err)?;
                    let shape = out_shape();
                    if offs.len() * slice != graph::numel(&shape) {
                        return Err(node_err(format!("gathers {} values for an output of {shape:?}", offs.len() * slice)));
                    }
                    let mut out = self.pool.take(offs.len() * slice);
                    let copy = |v: &[f32]| {
                        out.chunks_mut(slice.max(1)).zip(&offs).all(|(d, &o)| v.get(o..o + slice).map(|s| d.copy_from_slice(s)).is_some())
                    };
                    if !p.with_f32(copy)? {
                        return Err(node_err("gather offsets past the data (this is a bug)".into()));
                    }
                    vec![Val::F(std::sync::Arc::new(out), shape)]
                }
                Step::ResizeF32(op) => {
                    let (x, shape) = (val(node.inputs[0])?, out_shape());
                    let mut out = self.pool.take(graph::numel(&shape));
                    x.with_f32(|v| graph::eval::resize_f32_into(v, x.dims(), &shape, op, &mut out))?.map_err(node_err)?;
                    vec![Val::F(std::sync::Arc::new(out), shape)]
                }
                Step::View => vec![val(node.inputs[0])?.reshape(out_shape())?],
                Step::UnaryF32(op) => {
                    let x = val(node.inputs[0])?;
                    let mut out = self.pool.take(graph::numel(x.dims()));
                    match op {
                        graph::UnOp::Exp => x.with_f32(|s| simd::math::exp_into(self.isa, s, &mut out))?,
                        _ => x.with_f32(|s| graph::eval::unary_f32_into(*op, s, &mut out))?,
                    }
                    vec![Val::F(std::sync::Arc::new(out), x.dims().to_vec())]
                }
                Step::Fused => Vec::new(),
                Step::Chain(c) if !c.sink_values.is_empty() => {
                    let ins: Vec<&Val> = c.inputs.iter().map(|&v| val(v)).collect::<Result<_>>()?;
                    let ts = Val::with_f32_all(&ins, |xs| c.run_sinks(self.isa, xs))?.map_err(node_err)?;
                    ts.into_iter().map(|t| to_candle(t).map(Val::C)).collect::<Result<_>>()?
                }
                Step::Chain(c) => {
                    let shape = out_shape();
                    let mut out = self.pool.take(graph::numel(&shape));
                    let ins: Vec<&Val> = c.inputs.iter().map(|&v| val(v)).collect::<Result<_>>()?;
                    Val::with_f32_all(&ins, |xs| c.run(self.isa, xs, &mut out))?.map_err(node_err)?;
                    vec![Val::F(std::sync::Arc::new(out), shape)]
                }
                Step::Block { block, x, residual, layout } => {
                    let k = |xs: &[f32], rs: Option<&[f32]>, out: &mut [f32]| block.run(xs, rs, out);
                    vec![layout::run_nhwc(&mut self.pool, *layout, held(*x)?, opt(*residual)?, out_shape(), out_res, k).map_err(node_err)?]
                }
                Step::Generic => {
                    let hosts: Vec<Tensor> = node.inputs.iter().map(|&v| val(v)?.host(g.values[v].dtype)).collect::<Result<_>>()?;
                    let refs: Vec<&Tensor> = hosts.iter().collect();
                    let res = graph::eval::eval(node, &refs)?;
                    res.into_iter().map(|t| to_candle(t).map(Val::C)).collect::<Result<_>>()?
                }
            };
            // a chain with sinks writes their values, not its own
            let targets = match &self.steps[i] {
                Step::Chain(c) if !c.sink_values.is_empty() => &c.sink_values,
                _ => &node.outputs,
            };
            for (&o, t) in targets.iter().zip(outs) {
                self.slots[o] = Some(t);
            }
            for &v in &self.frees[i] {
                if let Some(x) = self.slots[v].take() {
                    self.pool.give(x);
                }
            }
            if let (Some(times), Some(t0)) = (self.times.as_mut(), t0) {
                times[i] = t0.elapsed().as_secs_f64();
            }
        }
        let mut res = Vec::with_capacity(g.outputs.len());
        for &o in &g.outputs {
            res.push(value(g, &self.slots, &self.consts, o)?.host(g.values[o].dtype)?);
        }
        for &o in &g.outputs {
            if let Some(x) = self.slots[o].take() {
                self.pool.give(x);
            }
        }
        // inputs that no step reads
        for info in &g.inputs {
            self.slots[info.value] = None;
        }
        Ok(res)
    }
}
