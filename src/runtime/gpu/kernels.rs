//! Kernel selection, uniform layouts and dispatch recording for the WGSL kernels in
//! `shaders/`.

use super::{gpu_dtype, gpu_err, GpuContext};
use crate::graph::eval::{conv_out_dim, nchw_dims, resize_taps};
use crate::graph::{numel, strides, Activation, BinOp, ConvAttrs, DType, Graph, Layout, Node, Op, Padding, PoolKind, ResidualAt, UnOp};
use crate::runtime::Result;
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

/// WGSL sources, one file per kernel family (validated with naga in tests).
pub const SHADERS: [(&str, &str); 8] = [
    ("elementwise.wgsl", include_str!("../../../shaders/elementwise.wgsl")),
    ("conv.wgsl", include_str!("../../../shaders/conv.wgsl")),
    ("spatial.wgsl", include_str!("../../../shaders/spatial.wgsl")),
    ("matmul.wgsl", include_str!("../../../shaders/matmul.wgsl")),
    ("reduce.wgsl", include_str!("../../../shaders/reduce.wgsl")),
    ("copy.wgsl", include_str!("../../../shaders/copy.wgsl")),
    ("index.wgsl", include_str!("../../../shaders/index.wgsl")),
    ("pad.wgsl", include_str!("../../../shaders/pad.wgsl")),
];

pub(crate) struct Pipelines {
    binary_f32: wgpu::ComputePipeline,
    binary_i32: wgpu::ComputePipeline,
    unary_f32: wgpu::ComputePipeline,
    cast: wgpu::ComputePipeline,
    conv_gemm: wgpu::ComputePipeline,
    depthwise: wgpu::ComputePipeline,
    pool: wgpu::ComputePipeline,
    resize: wgpu::ComputePipeline,
    matmul: wgpu::ComputePipeline,
    matmul_v4: wgpu::ComputePipeline,
    reduce: wgpu::ComputePipeline,
    softmax: wgpu::ComputePipeline,
    copy: wgpu::ComputePipeline,
    conv_transpose: wgpu::ComputePipeline,
    topk: wgpu::ComputePipeline,
    gather_nd: wgpu::ComputePipeline,
    argmax: wgpu::ComputePipeline,
    select_where: wgpu::ComputePipeline,
    addn: wgpu::ComputePipeline,
    not_bool: wgpu::ComputePipeline,
    channel_affine: wgpu::ComputePipeline,
    pad: wgpu::ComputePipeline,
    gather_axis: wgpu::ComputePipeline,
}

impl Pipelines {
    fn get(&self, which: Which) -> &wgpu::ComputePipeline {
        match which {
            Which::BinaryF32 => &self.binary_f32,
            Which::BinaryI32 => &self.binary_i32,
            Which::UnaryF32 => &self.unary_f32,
            Which::Cast => &self.cast,
            Which::ConvGemm => &self.conv_gemm,
            Which::Depthwise => &self.depthwise,
            Which::Pool => &self.pool,
            Which::Resize => &self.resize,
            Which::MatMul => &self.matmul,
            Which::MatMulV4 => &self.matmul_v4,
            Which::Reduce => &self.reduce,
            Which::Softmax => &self.softmax,
            Which::Copy => &self.copy,
            Which::ConvTranspose => &self.conv_transpose,
            Which::TopK => &self.topk,
            Which::GatherNd => &self.gather_nd,
            Which::ArgMax => &self.argmax,
            Which::Select => &self.select_where,
            Which::AddN => &self.addn,
            Which::NotBool => &self.not_bool,
            Which::ChannelAffine => &self.channel_affine,
            Which::Pad => &self.pad,
            Which::GatherAxis => &self.gather_axis,
        }
    }

    pub fn new(device: &wgpu::Device) -> Pipelines {
        let module = |i: usize| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(SHADERS[i].0),
                source: wgpu::ShaderSource::Wgsl(SHADERS[i].1.into()),
            })
        };
        let (ew, cv, sp, mm, rd, cp) = (module(0), module(1), module(2), module(3), module(4), module(5));
        let ix = module(6);
        let pd = module(7);
        let pipe = |m: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: m,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        Pipelines {
            binary_f32: pipe(&ew, "binary_f32"),
            binary_i32: pipe(&ew, "binary_i32"),
            unary_f32: pipe(&ew, "unary_f32"),
            cast: pipe(&ew, "cast_words"),
            conv_gemm: pipe(&cv, "conv_gemm"),
            depthwise: pipe(&cv, "depthwise"),
            pool: pipe(&sp, "pool"),
            resize: pipe(&sp, "resize"),
            matmul: pipe(&mm, "matmul"),
            matmul_v4: pipe(&mm, "matmul_v4"),
            reduce: pipe(&rd, "reduce"),
            softmax: pipe(&rd, "softmax"),
            copy: pipe(&cp, "copy_strided"),
            conv_transpose: pipe(&cv, "conv_transpose"),
            topk: pipe(&ix, "topk"),
            gather_nd: pipe(&ix, "gather_nd"),
            argmax: pipe(&ix, "argmax"),
            select_where: pipe(&ix, "select_where"),
            addn: pipe(&ix, "addn"),
            not_bool: pipe(&ew, "not_bool"),
            channel_affine: pipe(&ew, "channel_affine"),
            pad: pipe(&pd, "pad"),
            gather_axis: pipe(&ix, "gather_axis"),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ElemP {
    n: u32,
    rank: u32,
    op: u32,
    flags: u32,
    p0: f32,
    p1: f32,
    pad0: u32,
    pad1: u32,
    shape: [u32; 8],
    sa: [u32; 8],
    sb: [u32; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
struct ConvP {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sy: u32,
    sx: u32,
    dy: u32,
    dx: u32,
    py: u32,
    px: u32,
    groups: u32,
    isn: u32,
    isc: u32,
    isy: u32,
    isx: u32,
    osn: u32,
    osc: u32,
    osy: u32,
    osx: u32,
    act: u32,
    res_mode: u32,
    has_bias: u32,
    cpg: u32,
    p0: f32,
    p1: f32,
    opg: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
struct MmP {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u32,
    a_cs: u32,
    b_rs: u32,
    b_cs: u32,
    a_bs: u32,
    b_bs: u32,
    c_bs: u32,
    pad: u32,
}

/// The (n, c, y, x) input and output strides shared by the conv and spatial uniforms.
macro_rules! impl_set_strides {
    ($t:ty) => {
        impl $t {
            fn set_strides(&mut self, is: [u32; 4], os: [u32; 4]) {
                [self.isn, self.isc, self.isy, self.isx] = is;
                [self.osn, self.osc, self.osy, self.osx] = os;
            }
        }
    };
}
impl_set_strides!(ConvP);
impl_set_strides!(SpP);

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
struct SpP {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sy: u32,
    sx: u32,
    py: u32,
    px: u32,
    kind: u32,
    include_pad: u32,
    pad0: u32,
    pad1: u32,
    isn: u32,
    isc: u32,
    isy: u32,
    isx: u32,
    osn: u32,
    osc: u32,
    osy: u32,
    osx: u32,
}

/// How a node runs.
#[derive(Debug)]
pub(crate) enum Kind {
    Gpu(Spec),
    View,
    Cpu,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Spec {
    Binary,
    Unary,
    Cast,
    Conv,
    Pool,
    Resize,
    MatMul,
    Reduce,
    Copy,
    ConvTranspose,
    Index,
    Misc,
}

/// Elements below which an op whose inputs are already on the host stays on the host.
const SMALL: usize = 4096;

fn shape(g: &Graph, v: usize) -> Option<&Vec<usize>> {
    g.values[v].shape.as_ref()
}

/// Decides where a node runs. `cpu_made[v]`: the value is produced by a CPU node. Nothing
/// on the GPU depends on a CPU node, so a plan is a GPU prefix (one submit) followed by a
/// CPU tail (after one readback).
pub(crate) fn classify(g: &Graph, n: &Node, cpu_made: &[bool]) -> Kind {
    match classify_inner(g, n, cpu_made) {
        Kind::Gpu(spec) if disabled(&format!("{spec:?}").to_lowercase()) => Kind::Cpu,
        k => k,
    }
}

fn classify_inner(g: &Graph, n: &Node, cpu_made: &[bool]) -> Kind {
    // shape arguments (constants once shapes are fixed) need not live on the GPU
    let data_in: &[usize] = match &n.op {
        Op::StridedSlice(_)
        | Op::Slice
        | Op::Tile
        | Op::Expand
        | Op::Reshape { .. }
        | Op::Reduce { .. }
        | Op::Resize { .. }
        | Op::ExpandDims
        | Op::TopK { .. }
        | Op::ArgMax { .. }
        | Op::Pad { .. }
        | Op::Gather { .. }
        | Op::ChannelAffine => &n.inputs[..1],
        Op::Concat => &n.inputs[..n.inputs.len() - 1],
        Op::Split { .. } => &n.inputs[1..],
        _ => &n.inputs,
    };
    if n.inputs.iter().any(|v| !data_in.contains(v) && !g.consts.contains_key(v)) {
        return Kind::Cpu;
    }
    let vals = || data_in.iter().chain(&n.outputs);
    if vals().any(|&v| shape(g, v).is_none() || !gpu_dtype(g.values[v].dtype)) {
        return Kind::Cpu;
    }
    if matches!(n.op, Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims | Op::Identity | Op::Unsqueeze { .. } | Op::Flatten { .. }) {
        // a view of something on the host stays on the host
        return if cpu_made[n.inputs[0]] { Kind::Cpu } else { Kind::View };
    }
    let out_n = shape(g, n.outputs[0]).map(|s| numel(s)).unwrap_or(0);
    if n.inputs.iter().any(|&v| cpu_made[v]) {
        return Kind::Cpu;
    }
    let _ = (out_n, SMALL);
    let small_tail = false;
    let f32_only = vals().all(|&v| g.values[v].dtype == DType::F32);
    match &n.op {
        Op::Conv2d(a) if f32_only => {
            let w = shape(g, n.inputs[1]);
            let ok = w.is_some_and(|w| w.len() == 4)
                && g.consts.contains_key(&n.inputs[1])
                && (!a.has_bias || g.consts.contains_key(&n.inputs[2]));
            if ok {
                Kind::Gpu(Spec::Conv)
            } else {
                Kind::Cpu
            }
        }
        Op::Pool(_) if f32_only && !small_tail => Kind::Gpu(Spec::Pool),
        Op::Resize { .. } if g.values[n.inputs[0]].dtype == DType::F32 && g.values[n.outputs[0]].dtype == DType::F32 => {
            Kind::Gpu(Spec::Resize)
        }
        Op::Binary(b) if !small_tail => {
            let dts: Vec<DType> = n.inputs.iter().map(|&v| g.values[v].dtype).collect();
            let rank_ok = shape(g, n.outputs[0]).is_some_and(|s| s.len() <= 8);
            let same = dts.iter().all(|&d| d == dts[0]);
            let float_op_ok = dts[0] == DType::F32 || !matches!(b, BinOp::Pow);
            if rank_ok && same && float_op_ok {
                Kind::Gpu(Spec::Binary)
            } else {
                Kind::Cpu
            }
        }
        Op::Unary(UnOp::Not) if g.values[n.inputs[0]].dtype == DType::Bool => Kind::Gpu(Spec::Misc),
        Op::Unary(_) if f32_only && !small_tail => Kind::Gpu(Spec::Unary),
        Op::ChannelAffine | Op::Pad { .. } | Op::Gather { .. } if misc_ok(g, n) => Kind::Gpu(Spec::Misc),
        Op::Cast(_) if !small_tail => Kind::Gpu(Spec::Cast),
        Op::MatMul { .. } if f32_only && matmul_layout(g, n).is_some() => Kind::Gpu(Spec::MatMul),
        Op::TopK { .. } | Op::GatherNd | Op::ArgMax { .. } | Op::Select | Op::AddN
            if index_params(g, n).is_some_and(|(w, _, _)| !disabled(Dispatch::name_of(w))) =>
        {
            Kind::Gpu(Spec::Index)
        }
        Op::ConvTranspose2d(_) if f32_only && n.inputs[1..].iter().all(|v| g.consts.contains_key(v)) => Kind::Gpu(Spec::ConvTranspose),
        Op::Reduce { .. } | Op::GlobalPool(_) | Op::Softmax { .. }
            if g.values[n.inputs[0]].dtype == DType::F32 && g.values[n.outputs[0]].dtype == DType::F32 && reduce_layout(g, n).is_some() =>
        {
            Kind::Gpu(Spec::Reduce)
        }
        Op::StridedSlice(_)
        | Op::Slice
        | Op::Transpose { .. }
        | Op::Concat
        | Op::Pack { .. }
        | Op::Unpack { .. }
        | Op::Split { .. }
        | Op::SplitV { .. }
        | Op::Tile
        | Op::Expand
            if copy_parts(g, n).is_some() =>
        {
            Kind::Gpu(Spec::Copy)
        }
        _ => Kind::Cpu,
    }
}

/// A recorded dispatch: pipeline, bind group and workgroup counts.
#[derive(Debug)]
pub(crate) struct Dispatch {
    which: Which,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
    /// Further launches of the same pipeline (one per input or output of a copy).
    more: Vec<(wgpu::BindGroup, [u32; 3])>,
}

#[derive(Debug, Clone, Copy)]
enum Which {
    BinaryF32,
    BinaryI32,
    UnaryF32,
    Cast,
    ConvGemm,
    Depthwise,
    Pool,
    Resize,
    MatMul,
    MatMulV4,
    Reduce,
    Softmax,
    Copy,
    ConvTranspose,
    TopK,
    GatherNd,
    ArgMax,
    Select,
    AddN,
    NotBool,
    ChannelAffine,
    Pad,
    GatherAxis,
}

/// Kernels listed in `WALKOUT_GPU_DISABLE` (comma-separated names) are left to the CPU; a
/// debugging aid for bisecting a kernel.
fn disabled(name: &str) -> bool {
    std::env::var("WALKOUT_GPU_DISABLE").is_ok_and(|v| v.split(',').any(|s| s.trim() == name))
}

impl Dispatch {
    pub fn kernel_name(&self) -> &'static str {
        Self::name_of(self.which)
    }

    fn name_of(which: Which) -> &'static str {
        match which {
            Which::BinaryF32 => "binary_f32",
            Which::BinaryI32 => "binary_i32",
            Which::UnaryF32 => "unary_f32",
            Which::Cast => "cast",
            Which::ConvGemm => "conv_gemm",
            Which::Depthwise => "depthwise",
            Which::Pool => "pool",
            Which::Resize => "resize",
            Which::MatMul => "matmul",
            Which::MatMulV4 => "matmul_v4",
            Which::Reduce => "reduce",
            Which::Softmax => "softmax",
            Which::Copy => "copy",
            Which::ConvTranspose => "conv_transpose",
            Which::TopK => "topk",
            Which::GatherNd => "gather_nd",
            Which::ArgMax => "argmax",
            Which::Select => "select",
            Which::AddN => "addn",
            Which::NotBool => "not_bool",
            Which::ChannelAffine => "channel_affine",
            Which::Pad => "pad",
            Which::GatherAxis => "gather_axis",
        }
    }

    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>) {
        let pipe = ctx.pipes.get(self.which);
        pass.set_pipeline(pipe);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.dispatch_workgroups(self.groups[0], self.groups[1], self.groups[2]);
        for (bg, gr) in &self.more {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(gr[0], gr[1], gr[2]);
        }
    }
}

/// 1-D launch of `n` threads in workgroups of 256, folded into 2-D past the dimension limit.
fn groups_1d(n: usize) -> [u32; 3] {
    let g = n.div_ceil(256).max(1);
    let x = g.min(4096);
    [x as u32, g.div_ceil(x) as u32, 1]
}

fn act_code(a: Activation) -> (u32, f32, f32) {
    match a {
        Activation::None => (0, 0.0, 0.0),
        Activation::Relu => (1, 0.0, 0.0),
        Activation::Relu6 => (2, 0.0, 0.0),
        Activation::Clip(lo, hi) => (3, lo, hi),
        Activation::Sigmoid => (4, 0.0, 0.0),
        Activation::LeakyRelu(al) => (5, al, 0.0),
        Activation::HardSigmoid(al, be) => (6, al, be),
        Activation::HardSwish => (7, 0.0, 0.0),
    }
}

fn bin_code(b: BinOp) -> u32 {
    use BinOp::*;
    match b {
        Add => 0,
        Sub => 1,
        Mul => 2,
        Div => 3,
        FloorDiv => 4,
        Max => 5,
        Min => 6,
        Pow => 7,
        SquaredDifference => 8,
        PRelu => 9,
        Equal => 10,
        Less => 11,
        LessEqual => 12,
        Greater => 13,
        GreaterEqual => 14,
        And => 15,
        Or => 16,
    }
}

fn un_code(u: UnOp) -> (u32, f32, f32) {
    match u {
        UnOp::Abs => (0, 0.0, 0.0),
        UnOp::Neg => (1, 0.0, 0.0),
        UnOp::Exp => (2, 0.0, 0.0),
        UnOp::Log => (3, 0.0, 0.0),
        UnOp::Sqrt => (4, 0.0, 0.0),
        UnOp::Rsqrt => (5, 0.0, 0.0),
        UnOp::Reciprocal => (6, 0.0, 0.0),
        UnOp::Floor => (7, 0.0, 0.0),
        UnOp::Ceil => (8, 0.0, 0.0),
        UnOp::Tanh => (9, 0.0, 0.0),
        UnOp::Not => (10, 0.0, 0.0),
        UnOp::Erf => (11, 0.0, 0.0),
        UnOp::Act(a) => {
            let (c, p0, p1) = act_code(a);
            (100 + c, p0, p1)
        }
    }
}

fn dcode(d: DType) -> u32 {
    match d {
        DType::F32 => 0,
        DType::I32 | DType::I64 => 1,
        _ => 2,
    }
}

/// Broadcast strides of `s` against the output rank.
fn bstrides(s: &[usize], rank: usize) -> [u32; 8] {
    let st = strides(s);
    let mut out = [0u32; 8];
    let off = rank - s.len();
    for i in 0..s.len() {
        if s[i] != 1 {
            out[off + i] = st[i] as u32;
        }
    }
    out
}

/// (n, c, y, x) element strides of a 4-D tensor in a layout.
fn nchw_strides(shape: &[usize], layout: Layout) -> [u32; 4] {
    let st = strides(shape);
    match layout {
        Layout::Nhwc => [st[0] as u32, st[3] as u32, st[1] as u32, st[2] as u32],
        Layout::Nchw => [st[0] as u32, st[1] as u32, st[2] as u32, st[3] as u32],
    }
}

/// Bind group of `(binding, buffer)` entries; auto layouts only hold the bindings an entry
/// point uses.
fn bind(ctx: &GpuContext, which: Which, entries: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
    let pipe = ctx.pipes.get(which);
    let layout = pipe.get_bind_group_layout(0);
    let e: Vec<wgpu::BindGroupEntry> =
        entries.iter().map(|(i, b)| wgpu::BindGroupEntry { binding: *i, resource: b.as_entire_binding() }).collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &e })
}

fn uniform<T: Pod>(ctx: &GpuContext, v: &T) -> wgpu::Buffer {
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("params"),
        contents: bytemuck::bytes_of(v),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

fn storage(ctx: &GpuContext, words: &[u32]) -> wgpu::Buffer {
    let data: Vec<u32> = if words.is_empty() { vec![0] } else { words.to_vec() };
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("aux"),
        contents: bytemuck::cast_slice(&data),
        usage: wgpu::BufferUsages::STORAGE,
    })
}

/// Builds the uniform buffer and bind group of a GPU node.
pub(crate) fn build(
    ctx: &GpuContext,
    g: &Graph,
    n: &Node,
    spec: Spec,
    fused: Option<Activation>,
    buf_of: &[Option<usize>],
    buffers: &[wgpu::Buffer],
) -> Result<Dispatch> {
    let buf = |v: usize| -> Result<&wgpu::Buffer> {
        buf_of[v].map(|b| &buffers[b]).ok_or_else(|| gpu_err(format!("value '{}' has no GPU buffer (this is a bug)", g.values[v].name)))
    };
    let sh = |v: usize| g.values[v].shape.clone().unwrap_or_default();
    let out = n.outputs[0];
    let out_shape = sh(out);
    let total = numel(&out_shape);
    match spec {
        Spec::Binary => {
            let Op::Binary(b) = n.op else {
                return Err(gpu_err("not a binary op"));
            };
            let rank = out_shape.len().max(1);
            let mut shape = [1u32; 8];
            for (i, &d) in out_shape.iter().enumerate() {
                shape[i] = d as u32;
            }
            let (sa, sb) = (sh(n.inputs[0]), sh(n.inputs[1]));
            let p = ElemP {
                n: total as u32,
                rank: rank as u32,
                op: bin_code(b),
                flags: fused.map(|a| act_code(a).0).unwrap_or(0),
                p0: fused.map(|a| act_code(a).1).unwrap_or(0.0),
                p1: fused.map(|a| act_code(a).2).unwrap_or(0.0),
                pad0: 0,
                pad1: 0,
                shape,
                sa: bstrides(&sa, rank),
                sb: bstrides(&sb, rank),
            };
            let which = if g.values[n.inputs[0]].dtype == DType::F32 { Which::BinaryF32 } else { Which::BinaryI32 };
            let u = uniform(ctx, &p);
            let bg = bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, buf(n.inputs[1])?), (3, buf(out)?)]);
            Ok(Dispatch { which, bind: bg, groups: groups_1d(total), more: Vec::new() })
        }
        Spec::Unary | Spec::Cast => {
            let (which, op, flags, p0, p1) = match n.op {
                Op::Unary(u) => {
                    let (c, p0, p1) = un_code(u);
                    (Which::UnaryF32, c, 0, p0, p1)
                }
                Op::Cast(to) => (Which::Cast, 0, dcode(g.values[n.inputs[0]].dtype) * 4 + dcode(to), 0.0, 0.0),
                _ => return Err(gpu_err("not a unary op")),
            };
            let p = ElemP { n: total as u32, rank: 1, op, flags, p0, p1, pad0: 0, pad1: 0, shape: [0; 8], sa: [0; 8], sb: [0; 8] };
            let u = uniform(ctx, &p);
            let bg = bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (3, buf(out)?)]);
            Ok(Dispatch { which, bind: bg, groups: groups_1d(total), more: Vec::new() })
        }
        Spec::Misc => misc(ctx, g, n, &buf),
        Spec::Index => {
            let (which, p, extra) = index_params(g, n).ok_or_else(|| gpu_err("index op layout (this is a bug)"))?;
            let u = uniform(ctx, &p);
            let ex = storage(ctx, &extra);
            let dummy = storage(ctx, &[0]);
            let (bg, groups) = match which {
                Which::TopK => (
                    bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (3, buf(n.outputs[0])?), (4, buf(n.outputs[1])?)]),
                    [p.a.div_ceil(64).max(1), 1, 1],
                ),
                Which::GatherNd => {
                    (bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, buf(n.inputs[1])?), (3, buf(out)?)]), groups_1d(total))
                }
                Which::ArgMax => (bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (3, buf(out)?)]), groups_1d(total)),
                Which::Select => (
                    bind(
                        ctx,
                        which,
                        &[(0, &u), (1, buf(n.inputs[0])?), (2, buf(n.inputs[1])?), (3, buf(out)?), (5, buf(n.inputs[2])?), (6, &ex)],
                    ),
                    groups_1d(total),
                ),
                _ => {
                    let z = match n.inputs.get(2) {
                        Some(&v) => buf(v)?,
                        None => &dummy,
                    };
                    let w = match n.inputs.get(3) {
                        Some(&v) => buf(v)?,
                        None => &dummy,
                    };
                    (
                        bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, buf(n.inputs[1])?), (3, buf(out)?), (5, z), (6, w)]),
                        groups_1d(total),
                    )
                }
            };
            Ok(Dispatch { which, bind: bg, groups, more: Vec::new() })
        }
        Spec::ConvTranspose => {
            let Op::ConvTranspose2d(a) = &n.op else {
                return Err(gpu_err("not a transposed conv"));
            };
            let (x, w) = (n.inputs[0], n.inputs[1]);
            let (xs, ws) = (sh(x), sh(w));
            let is = nchw_strides(&xs, Layout::Nchw);
            let os = nchw_strides(&out_shape, Layout::Nchw);
            let mut p = ConvP {
                n: xs[0] as u32,
                cin: xs[1] as u32,
                h: xs[2] as u32,
                w: xs[3] as u32,
                cout: out_shape[1] as u32,
                oh: out_shape[2] as u32,
                ow: out_shape[3] as u32,
                kh: ws[2] as u32,
                kw: ws[3] as u32,
                sy: a.strides[0] as u32,
                sx: a.strides[1] as u32,
                dy: a.dilations[0] as u32,
                dx: a.dilations[1] as u32,
                py: a.pads[0] as u32,
                px: a.pads[1] as u32,
                groups: a.groups as u32,
                has_bias: (n.inputs.len() > 2) as u32,
                cpg: (xs[1] / a.groups.max(1)) as u32,
                opg: ws[1] as u32,
                ..Default::default()
            };
            p.set_strides(is, os);
            let u = uniform(ctx, &p);
            let dummy = storage(ctx, &[0]);
            let bias_b = match n.inputs.get(2) {
                Some(&b) => buf(b)?,
                None => &dummy,
            };
            let which = Which::ConvTranspose;
            let bg = bind(ctx, which, &[(0, &u), (1, buf(x)?), (2, buf(w)?), (3, bias_b), (5, buf(out)?)]);
            Ok(Dispatch { which, bind: bg, groups: groups_1d(total), more: Vec::new() })
        }
        Spec::Copy => {
            let parts = copy_parts(g, n).ok_or_else(|| gpu_err("copy layout (this is a bug)"))?;
            let mut all = Vec::with_capacity(parts.len());
            for (src, dst, p) in parts {
                let u = uniform(ctx, &p);
                let bg = bind(ctx, Which::Copy, &[(0, &u), (1, buf(src)?), (2, buf(dst)?)]);
                all.push((bg, groups_1d(p.n as usize)));
            }
            let mut it = all.into_iter();
            let (bind0, g0) = it.next().ok_or_else(|| gpu_err("copy with no parts"))?;
            Ok(Dispatch { which: Which::Copy, bind: bind0, groups: g0, more: it.collect() })
        }
        Spec::Reduce => {
            let (outer, r, inner, op) = reduce_layout(g, n).ok_or_else(|| gpu_err("reduce layout (this is a bug)"))?;
            let which = if matches!(n.op, Op::Softmax { .. }) { Which::Softmax } else { Which::Reduce };
            let u = uniform(ctx, &[outer as u32, r as u32, inner as u32, op]);
            let bg = bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, buf(out)?)]);
            Ok(Dispatch { which, bind: bg, groups: groups_1d(outer * inner), more: Vec::new() })
        }
        Spec::MatMul => {
            let p = matmul_layout(g, n).ok_or_else(|| gpu_err("matmul layout (this is a bug)"))?;
            let v4 = p.b_cs == 1 && p.b_rs == p.n && p.n % 4 == 0 && p.b_bs % 4 == 0;
            let which = if v4 { Which::MatMulV4 } else { Which::MatMul };
            let u = uniform(ctx, &p);
            let bg = if v4 {
                bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (3, buf(out)?), (4, buf(n.inputs[1])?)])
            } else {
                bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, buf(n.inputs[1])?), (3, buf(out)?)])
            };
            Ok(Dispatch { which, bind: bg, groups: [p.n.div_ceil(64), p.m.div_ceil(64), p.batch], more: Vec::new() })
        }
        Spec::Conv => {
            let Op::Conv2d(a) = &n.op else {
                return Err(gpu_err("not a conv"));
            };
            conv(ctx, g, n, a, &buf)
        }
        Spec::Pool | Spec::Resize => {
            let in_shape = sh(n.inputs[0]);
            let (layout, which) = match &n.op {
                Op::Pool(p) => (p.layout, Which::Pool),
                Op::Resize { layout, .. } => (*layout, Which::Resize),
                _ => return Err(gpu_err("not a spatial op")),
            };
            let [nb, c, h, w] = nchw_dims(&in_shape, layout).map_err(gpu_err)?;
            let [_, _, oh, ow] = nchw_dims(&out_shape, layout).map_err(gpu_err)?;
            let is = nchw_strides(&in_shape, layout);
            let os = nchw_strides(&out_shape, layout);
            let mut p = SpP { n: nb as u32, c: c as u32, h: h as u32, w: w as u32, oh: oh as u32, ow: ow as u32, ..Default::default() };
            p.set_strides(is, os);
            let taps: Vec<u32> = match &n.op {
                Op::Pool(pa) => {
                    let (_, py) = conv_out_dim(h, pa.kernel[0], pa.strides[0], 1, &pa.padding, 0).map_err(gpu_err)?;
                    let (_, px) = conv_out_dim(w, pa.kernel[1], pa.strides[1], 1, &pa.padding, 1).map_err(gpu_err)?;
                    p.kh = pa.kernel[0] as u32;
                    p.kw = pa.kernel[1] as u32;
                    p.sy = pa.strides[0] as u32;
                    p.sx = pa.strides[1] as u32;
                    p.py = py as u32;
                    p.px = px as u32;
                    p.kind = if pa.kind == PoolKind::Max { 0 } else { 1 };
                    p.include_pad = pa.count_include_pad as u32;
                    vec![0]
                }
                Op::Resize { mode, coord, nearest, scales, .. } => {
                    let ty = resize_taps(h, oh, *mode, *coord, *nearest, scales.map(|s| 1.0 / s[0]));
                    let tx = resize_taps(w, ow, *mode, *coord, *nearest, scales.map(|s| 1.0 / s[1]));
                    ty.iter().chain(&tx).flat_map(|&(lo, hi, f)| [(lo as f32).to_bits(), (hi as f32).to_bits(), f.to_bits()]).collect()
                }
                _ => vec![0],
            };
            let u = uniform(ctx, &p);
            let t = storage(ctx, &taps);
            let bg = match which {
                Which::Pool => bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (3, buf(out)?)]),
                _ => bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, &t), (3, buf(out)?)]),
            };
            Ok(Dispatch { which, bind: bg, groups: groups_1d(total), more: Vec::new() })
        }
    }
}

fn conv<'a>(ctx: &GpuContext, g: &Graph, n: &Node, a: &ConvAttrs, buf: &dyn Fn(usize) -> Result<&'a wgpu::Buffer>) -> Result<Dispatch> {
    let sh = |v: usize| g.values[v].shape.clone().unwrap_or_default();
    let (x, w) = (n.inputs[0], n.inputs[1]);
    let in_shape = sh(x);
    let out_shape = sh(n.outputs[0]);
    let ws = sh(w);
    let [nb, cin, h, wd] = nchw_dims(&in_shape, a.layout).map_err(gpu_err)?;
    let [_, cout, oh, ow] = nchw_dims(&out_shape, a.layout).map_err(gpu_err)?;
    let (_, py) = conv_out_dim(h, ws[0], a.strides[0], a.dilations[0], &a.padding, 0).map_err(gpu_err)?;
    let (_, px) = conv_out_dim(wd, ws[1], a.strides[1], a.dilations[1], &a.padding, 1).map_err(gpu_err)?;
    let _ = Padding::Valid;
    let is = nchw_strides(&in_shape, a.layout);
    let os = nchw_strides(&out_shape, a.layout);
    let (act, p0, p1) = act_code(a.act);
    let mut k = 2;
    let bias = if a.has_bias {
        k += 1;
        Some(n.inputs[2])
    } else {
        None
    };
    let res = a.residual.map(|_| n.inputs[k]);
    let mut p = ConvP {
        n: nb as u32,
        cin: cin as u32,
        h: h as u32,
        w: wd as u32,
        cout: cout as u32,
        oh: oh as u32,
        ow: ow as u32,
        kh: ws[0] as u32,
        kw: ws[1] as u32,
        sy: a.strides[0] as u32,
        sx: a.strides[1] as u32,
        dy: a.dilations[0] as u32,
        dx: a.dilations[1] as u32,
        py: py as u32,
        px: px as u32,
        groups: a.groups as u32,
        act,
        res_mode: match a.residual {
            None => 0,
            Some(ResidualAt::BeforeAct) => 1,
            Some(ResidualAt::AfterAct) => 2,
        },
        has_bias: bias.is_some() as u32,
        cpg: ws[2] as u32,
        p0,
        p1,
        opg: (cout / a.groups.max(1)) as u32,
        pad: 0,
        ..Default::default()
    };
    p.set_strides(is, os);
    let depthwise = ws[2] == 1 && a.groups == cout && cout == cin;
    let u = uniform(ctx, &p);
    let dummy = storage(ctx, &[0]);
    let bias_b = match bias {
        Some(b) => buf(b)?,
        None => &dummy,
    };
    let res_b = match res {
        Some(r) => buf(r)?,
        None => &dummy,
    };
    let which = if depthwise { Which::Depthwise } else { Which::ConvGemm };
    let bg = bind(ctx, which, &[(0, &u), (1, buf(x)?), (2, buf(w)?), (3, bias_b), (4, res_b), (5, buf(n.outputs[0])?)]);
    let groups = if depthwise {
        groups_1d(numel(&out_shape))
    } else {
        let m = nb * oh * ow;
        let opg = cout / a.groups.max(1);
        [opg.div_ceil(64) as u32, m.div_ceil(64) as u32, a.groups as u32]
    };
    Ok(Dispatch { which, bind: bg, groups, more: Vec::new() })
}

/// GEMM geometry of a MatMul node, when its batch broadcast is simple (each operand has the
/// full batch or none).
fn matmul_layout(g: &Graph, n: &Node) -> Option<MmP> {
    let Op::MatMul { transpose_a, transpose_b } = n.op else { return None };
    let a = g.values[n.inputs[0]].shape.as_ref()?;
    let b = g.values[n.inputs[1]].shape.as_ref()?;
    let o = g.values[n.outputs[0]].shape.as_ref()?;
    if a.len() < 2 || b.len() < 2 || o.len() < 2 {
        return None;
    }
    let (ar, br, or) = (a.len(), b.len(), o.len());
    let (m, k) = if transpose_a { (a[ar - 1], a[ar - 2]) } else { (a[ar - 2], a[ar - 1]) };
    let nn = if transpose_b { b[br - 2] } else { b[br - 1] };
    let batch: usize = o[..or - 2].iter().product();
    let full = |s: &[usize]| -> Option<bool> {
        let bs = &s[..s.len() - 2];
        let p: usize = bs.iter().product();
        if p == 1 {
            Some(false)
        } else if p == batch && bs.len() == or - 2 && bs == &o[..or - 2] {
            Some(true)
        } else {
            None
        }
    };
    let (fa, fb) = (full(a)?, full(b)?);
    let (a_rs, a_cs) = if transpose_a { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if transpose_b { (1, k) } else { (nn, 1) };
    Some(MmP {
        m: m as u32,
        n: nn as u32,
        k: k as u32,
        batch: batch as u32,
        a_rs: a_rs as u32,
        a_cs: a_cs as u32,
        b_rs: b_rs as u32,
        b_cs: b_cs as u32,
        a_bs: if fa { (m * k) as u32 } else { 0 },
        b_bs: if fb { (k * nn) as u32 } else { 0 },
        c_bs: (m * nn) as u32,
        pad: 0,
    })
}

/// `[outer, r, inner]` view and op code of a reduction (contiguous axes), global pooling or
/// softmax node.
fn reduce_layout(g: &Graph, n: &Node) -> Option<(usize, usize, usize, u32)> {
    let s = g.values[n.inputs[0]].shape.as_ref()?;
    let split = |a0: usize, a1: usize| -> (usize, usize, usize) {
        (s[..a0].iter().product(), s[a0..=a1].iter().product(), s[a1 + 1..].iter().product())
    };
    let norm = |a: i64| -> Option<usize> {
        let r = s.len() as i64;
        let v = if a < 0 { a + r } else { a };
        (0..r).contains(&v).then_some(v as usize)
    };
    match &n.op {
        Op::GlobalPool(k) => {
            if s.len() < 3 {
                return None;
            }
            let (o, r, i) = split(2, s.len() - 1);
            Some((o, r, i, if *k == PoolKind::Max { 2 } else { 1 }))
        }
        Op::Softmax { axis, legacy } => {
            let a = norm(*axis)?;
            let (o, r, i) = if *legacy { split(a, s.len() - 1) } else { split(a, a) };
            Some((o, r, i, 0))
        }
        Op::Reduce { op, .. } => {
            let axes: Vec<usize> = match n.inputs.get(1) {
                Some(v) => {
                    let t = g.consts.get(v)?;
                    if t.numel() == 0 {
                        (0..s.len()).collect()
                    } else {
                        let mut a: Vec<usize> = t.to_i64_vec()?.into_iter().map(norm).collect::<Option<_>>()?;
                        a.sort_unstable();
                        a.dedup();
                        a
                    }
                }
                None => (0..s.len()).collect(),
            };
            let (a0, a1) = (*axes.first()?, *axes.last()?);
            if a1 - a0 + 1 != axes.len() {
                return None;
            }
            let (o, r, i) = split(a0, a1);
            let code = match op {
                crate::graph::ReduceOp::Sum => 0,
                crate::graph::ReduceOp::Mean => 1,
                crate::graph::ReduceOp::Max => 2,
                crate::graph::ReduceOp::Min => 3,
                crate::graph::ReduceOp::Prod => 4,
            };
            Some((o, r, i, code))
        }
        _ => None,
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct CpP {
    n: u32,
    rank: u32,
    src_off: u32,
    dst_off: u32,
    shape: [u32; 8],
    ss: [i32; 8],
    ds: [u32; 8],
    md: [u32; 8],
}

/// One strided copy: iterate `shape`; source offset and strides (signed), destination
/// offset and strides, optional modulo per dim.
fn cp(shape: &[usize], src_off: i64, ss: &[i64], dst_off: usize, ds: &[usize], md: &[usize]) -> Option<CpP> {
    if shape.len() > 8 || src_off < 0 {
        return None;
    }
    let mut p =
        CpP { n: numel(shape) as u32, rank: shape.len() as u32, src_off: src_off as u32, dst_off: dst_off as u32, ..Default::default() };
    for d in 0..shape.len() {
        p.shape[d] = shape[d] as u32;
        p.ss[d] = ss[d] as i32;
        p.ds[d] = ds[d] as u32;
        p.md[d] = md.get(d).copied().unwrap_or(0) as u32;
    }
    Some(p)
}

/// The strided copies (source value, destination value, params) a data-movement node is.
fn copy_parts(g: &Graph, n: &Node) -> Option<Vec<(usize, usize, CpP)>> {
    use crate::graph::eval;
    let shp = |v: usize| g.values[v].shape.clone();
    let ints = |v: usize| g.consts.get(&v).and_then(|t| t.to_i64_vec());
    let st = |s: &[usize]| strides(s).into_iter().map(|x| x as i64).collect::<Vec<i64>>();
    let data: Vec<usize> = match &n.op {
        Op::StridedSlice(_) | Op::Slice | Op::Tile | Op::Expand => vec![n.inputs[0]],
        Op::Concat => n.inputs[..n.inputs.len() - 1].to_vec(),
        Op::Split { .. } => vec![n.inputs[1]],
        _ => n.inputs.clone(),
    };
    if data.iter().chain(&n.outputs).any(|&v| !gpu_dtype(g.values[v].dtype) || shp(v).is_none_or(|s| s.len() > 8)) {
        return None;
    }
    let out = n.outputs[0];
    match &n.op {
        Op::StridedSlice(m) => {
            let x = shp(n.inputs[0])?;
            let plan = eval::strided_slice_plan(&x, &ints(n.inputs[1])?, &ints(n.inputs[2])?, &ints(n.inputs[3])?, m).ok()?;
            let ist = st(&x);
            let it: Vec<usize> = plan.dims.iter().map(|d| d.2).collect();
            let off: i64 = plan.dims.iter().zip(&ist).map(|(d, s)| d.0 * s).sum();
            let ss: Vec<i64> = plan.dims.iter().zip(&ist).map(|(d, s)| d.1 * s).collect();
            Some(vec![(n.inputs[0], out, cp(&it, off, &ss, 0, &strides(&it), &[])?)])
        }
        Op::Slice => {
            let x = shp(n.inputs[0])?;
            let dims = eval::onnx_slice_dims(
                &x,
                n.inputs.get(1).and_then(|v| g.consts.get(v)),
                n.inputs.get(2).and_then(|v| g.consts.get(v)),
                n.inputs.get(3).and_then(|v| g.consts.get(v)),
                n.inputs.get(4).and_then(|v| g.consts.get(v)),
            )
            .ok()?;
            let ist = st(&x);
            let it: Vec<usize> = dims.iter().map(|d| d.2).collect();
            let off: i64 = dims.iter().zip(&ist).map(|(d, s)| d.0 * s).sum();
            let ss: Vec<i64> = dims.iter().zip(&ist).map(|(d, s)| d.1 * s).collect();
            Some(vec![(n.inputs[0], out, cp(&it, off, &ss, 0, &strides(&it), &[])?)])
        }
        Op::Transpose { perm } => {
            let x = shp(n.inputs[0])?;
            let perm = eval::full_perm(perm, x.len());
            let ist = st(&x);
            let it: Vec<usize> = perm.iter().map(|&p| x[p]).collect();
            let ss: Vec<i64> = perm.iter().map(|&p| ist[p]).collect();
            Some(vec![(n.inputs[0], out, cp(&it, 0, &ss, 0, &strides(&it), &[])?)])
        }
        Op::Tile | Op::Expand => {
            let x = shp(n.inputs[0])?;
            let o = shp(out)?;
            let off = o.len() - x.len();
            let ist = st(&x);
            let mut ss = vec![0i64; o.len()];
            let mut md = vec![0usize; o.len()];
            for d in 0..x.len() {
                if matches!(n.op, Op::Tile) {
                    ss[off + d] = ist[d];
                    md[off + d] = x[d];
                } else if x[d] != 1 {
                    ss[off + d] = ist[d];
                }
            }
            Some(vec![(n.inputs[0], out, cp(&o, 0, &ss, 0, &strides(&o), &md)?)])
        }
        Op::Concat | Op::Pack { .. } => {
            let o = shp(out)?;
            let ost = strides(&o);
            let k = if matches!(n.op, Op::Concat) { n.inputs.len() - 1 } else { n.inputs.len() };
            let axis = match n.op {
                Op::Concat => {
                    let a = ints(*n.inputs.last()?)?[0];
                    if a < 0 {
                        a + o.len() as i64
                    } else {
                        a
                    }
                }
                Op::Pack { axis } => {
                    if axis < 0 {
                        axis + o.len() as i64
                    } else {
                        axis
                    }
                }
                _ => return None,
            } as usize;
            let mut parts = Vec::with_capacity(k);
            let mut start = 0usize;
            for &v in &n.inputs[..k] {
                let mut it = shp(v)?;
                if matches!(n.op, Op::Pack { .. }) {
                    it.insert(axis, 1);
                }
                let len = it[axis];
                parts.push((v, out, cp(&it, 0, &st(&it), start * ost[axis], &ost, &[])?));
                start += len;
            }
            Some(parts)
        }
        Op::Split { .. } | Op::SplitV { .. } | Op::Unpack { .. } => {
            let xv = if matches!(n.op, Op::Split { .. }) { n.inputs[1] } else { n.inputs[0] };
            let x = shp(xv)?;
            let ist = st(&x);
            let axis = match &n.op {
                Op::Split { .. } => ints(n.inputs[0])?[0],
                Op::SplitV { axis, .. } | Op::Unpack { axis, .. } => *axis,
                _ => return None,
            };
            let axis = if axis < 0 { axis + x.len() as i64 } else { axis } as usize;
            let mut parts = Vec::with_capacity(n.outputs.len());
            let mut start = 0i64;
            for &o in &n.outputs {
                let mut it = shp(o)?;
                if matches!(n.op, Op::Unpack { .. }) {
                    it.insert(axis, 1);
                }
                let len = it[axis] as i64;
                parts.push((xv, o, cp(&it, start * ist[axis], &ist, 0, &strides(&it), &[])?));
                start += len;
            }
            Some(parts)
        }
        _ => None,
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct IxP {
    a: u32,
    b: u32,
    c: u32,
    d: u32,
    e: u32,
    f: u32,
    g: u32,
    h: u32,
    st: [u32; 8],
}

/// Kernel, uniforms and an auxiliary word table for the index-driven ops (int32 indices,
/// f32 or i32 data).
fn index_params(g: &Graph, n: &Node) -> Option<(Which, IxP, Vec<u32>)> {
    let shp = |v: usize| g.values[v].shape.clone();
    let dt = |v: usize| g.values[v].dtype;
    let data_ok = |v: usize| matches!(dt(v), DType::F32 | DType::I32 | DType::I64);
    let int_ok = |d: DType| matches!(d, DType::I32 | DType::I64);
    match &n.op {
        Op::TopK { axis, largest, index } => {
            let x = shp(n.inputs[0])?;
            let r = x.len();
            let a = if *axis < 0 { *axis + r as i64 } else { *axis };
            let k = g.consts.get(&n.inputs[1])?.to_i64_vec()?.first().copied()? as usize;
            if r == 0 || a != r as i64 - 1 || !int_ok(*index) || !data_ok(n.inputs[0]) || k == 0 || k > 64 {
                return None;
            }
            let nlast = x[r - 1];
            let p = IxP {
                a: (numel(&x) / nlast.max(1)) as u32,
                b: nlast as u32,
                c: k as u32,
                d: *largest as u32,
                e: int_ok(dt(n.inputs[0])) as u32,
                ..Default::default()
            };
            Some((Which::TopK, p, vec![0]))
        }
        Op::GatherNd => {
            let (ps, is) = (shp(n.inputs[0])?, shp(n.inputs[1])?);
            let k = *is.last()?;
            if !int_ok(dt(n.inputs[1])) || !data_ok(n.inputs[0]) || k == 0 || k > 8 || k > ps.len() {
                return None;
            }
            let pst = strides(&ps);
            let mut st = [0u32; 8];
            for j in 0..k {
                st[j] = pst[j] as u32;
            }
            let p = IxP {
                a: (numel(&is) / k) as u32,
                b: k as u32,
                c: ps[k..].iter().product::<usize>() as u32,
                d: numel(&ps) as u32,
                st,
                ..Default::default()
            };
            Some((Which::GatherNd, p, vec![0]))
        }
        Op::ArgMax { dtype, select_last, .. } => {
            let x = shp(n.inputs[0])?;
            let a = g.consts.get(&n.inputs[1])?.to_i64_vec()?.first().copied()?;
            let a = if a < 0 { a + x.len() as i64 } else { a } as usize;
            if !int_ok(*dtype) || !data_ok(n.inputs[0]) || a >= x.len() {
                return None;
            }
            let p = IxP {
                a: x[..a].iter().product::<usize>() as u32,
                b: x[a] as u32,
                c: x[a + 1..].iter().product::<usize>() as u32,
                e: int_ok(dt(n.inputs[0])) as u32,
                f: *select_last as u32,
                ..Default::default()
            };
            Some((Which::ArgMax, p, vec![0]))
        }
        Op::Select => {
            let o = shp(n.outputs[0])?;
            if o.len() > 8 || dt(n.inputs[0]) != DType::Bool || dt(n.inputs[1]) != dt(n.inputs[2]) || !data_ok(n.inputs[1]) {
                return None;
            }
            let rank = o.len().max(1);
            let (c, a, b) = (bstrides(&shp(n.inputs[0])?, rank), bstrides(&shp(n.inputs[1])?, rank), bstrides(&shp(n.inputs[2])?, rank));
            let mut st = [1u32; 8];
            for (i, &d) in o.iter().enumerate() {
                st[i] = d as u32;
            }
            let table: Vec<u32> = (0..rank).flat_map(|d| [c[d], a[d], b[d]]).collect();
            Some((Which::Select, IxP { a: numel(&o) as u32, b: o.len() as u32, st, ..Default::default() }, table))
        }
        Op::AddN => {
            let o = shp(n.outputs[0])?;
            let same = n.inputs.iter().all(|&v| shp(v).as_ref() == Some(&o) && dt(v) == dt(n.outputs[0]));
            if !(2..=4).contains(&n.inputs.len()) || !same || !data_ok(n.outputs[0]) {
                return None;
            }
            Some((
                Which::AddN,
                IxP { a: numel(&o) as u32, b: n.inputs.len() as u32, c: int_ok(dt(n.outputs[0])) as u32, ..Default::default() },
                vec![0],
            ))
        }
        _ => None,
    }
}

/// Whether a ChannelAffine, Pad or Gather node fits its kernel (constant side inputs).
fn misc_ok(g: &Graph, n: &Node) -> bool {
    let konst = |i: usize| n.inputs.get(i).is_none_or(|v| g.consts.contains_key(v));
    let rank = g.values[n.inputs[0]].shape.as_ref().map_or(0, |s| s.len());
    match &n.op {
        Op::ChannelAffine => rank >= 2 && g.values[n.inputs[0]].dtype == DType::F32 && konst(1) && konst(2),
        Op::Pad { .. } => rank <= 8 && konst(1) && konst(2),
        Op::Gather { .. } => konst(1),
        _ => false,
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
struct PadP {
    n: u32,
    rank: u32,
    mode: u32,
    fill: u32,
    oshape: [u32; 8],
    ishape: [u32; 8],
    before: [i32; 8],
    istride: [u32; 8],
}

fn misc<'a>(ctx: &GpuContext, g: &Graph, n: &Node, buf: &dyn Fn(usize) -> Result<&'a wgpu::Buffer>) -> Result<Dispatch> {
    let sh = |v: usize| g.values[v].shape.clone().unwrap_or_default();
    let out = n.outputs[0];
    let out_shape = sh(out);
    let total = numel(&out_shape);
    let konst = |i: usize| g.consts.get(&n.inputs[i]).ok_or_else(|| gpu_err("constant side input expected (this is a bug)"));
    let (which, u, aux): (Which, wgpu::Buffer, Option<wgpu::Buffer>) = match &n.op {
        Op::Unary(UnOp::Not) => {
            let p = ElemP {
                n: total as u32,
                rank: 1,
                op: 0,
                flags: 0,
                p0: 0.0,
                p1: 0.0,
                pad0: 0,
                pad1: 0,
                shape: [0; 8],
                sa: [0; 8],
                sb: [0; 8],
            };
            (Which::NotBool, uniform(ctx, &p), None)
        }
        Op::ChannelAffine => {
            let x = sh(n.inputs[0]);
            let c = x[1];
            let inner: usize = x[2..].iter().product();
            let sc = konst(1)?.cast(DType::F32);
            let sf = konst(2)?.cast(DType::F32);
            let words: Vec<u32> = sc.as_f32().unwrap_or(&[]).iter().chain(sf.as_f32().unwrap_or(&[])).map(|v| v.to_bits()).collect();
            let p = ElemP {
                n: total as u32,
                rank: c as u32,
                op: 0,
                flags: inner.max(1) as u32,
                p0: 0.0,
                p1: 0.0,
                pad0: 0,
                pad1: 0,
                shape: [0; 8],
                sa: [0; 8],
                sb: [0; 8],
            };
            (Which::ChannelAffine, uniform(ctx, &p), Some(storage(ctx, &words)))
        }
        Op::Pad { mode } => {
            let x = sh(n.inputs[0]);
            let pads = konst(1)?.to_i64_vec().ok_or_else(|| gpu_err("pads must be integers"))?;
            let fill_t = match n.inputs.get(2) {
                Some(_) => konst(2)?.cast(g.values[n.inputs[0]].dtype),
                None => crate::graph::Tensor::zeros(g.values[n.inputs[0]].dtype, vec![1]),
            };
            let fill = super::to_words(&fill_t).and_then(|w| w.first().copied()).unwrap_or(0);
            let ist = strides(&x);
            let mut p = PadP { n: total as u32, rank: x.len() as u32, fill, ..Default::default() };
            p.mode = match mode {
                crate::graph::PadMode::Constant => 0,
                crate::graph::PadMode::Edge => 1,
                crate::graph::PadMode::Reflect => 2,
            };
            for d in 0..x.len() {
                p.oshape[d] = out_shape[d] as u32;
                p.ishape[d] = x[d] as u32;
                p.before[d] = pads[d] as i32;
                p.istride[d] = ist[d] as u32;
            }
            (Which::Pad, uniform(ctx, &p), None)
        }
        Op::Gather { axis } => {
            let x = sh(n.inputs[0]);
            let a = if *axis < 0 { *axis + x.len() as i64 } else { *axis } as usize;
            let d = x[a] as i64;
            let idx = konst(1)?.to_i64_vec().ok_or_else(|| gpu_err("gather indices must be integers"))?;
            let words: Vec<u32> = idx.iter().map(|&i| (if i < 0 { i + d } else { i }).clamp(0, d - 1) as u32).collect();
            let p = IxP {
                a: x[..a].iter().product::<usize>() as u32,
                b: idx.len() as u32,
                c: x[a + 1..].iter().product::<usize>() as u32,
                d: d as u32,
                ..Default::default()
            };
            (Which::GatherAxis, uniform(ctx, &p), Some(storage(ctx, &words)))
        }
        _ => return Err(gpu_err("not a misc op")),
    };
    let bg = match which {
        Which::ChannelAffine => bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, aux.as_ref().unwrap_or(&u)), (3, buf(out)?)]),
        Which::GatherAxis => bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, aux.as_ref().unwrap_or(&u)), (3, buf(out)?)]),
        Which::Pad => bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (2, buf(out)?)]),
        _ => bind(ctx, which, &[(0, &u), (1, buf(n.inputs[0])?), (3, buf(out)?)]),
    };
    Ok(Dispatch { which, bind: bg, groups: groups_1d(total), more: Vec::new() })
}
