//! GPU kernels: where each node runs (`classify`), and the recorded dispatch of each GPU node
//! (`build`). One Rust file per kernel family sits beside its WGSL file in `shaders/`.

mod conv;
mod copy;
mod dispatch;
mod elementwise;
mod index;
mod matmul;
mod pad;
mod pipelines;
mod reduce;
mod spatial;

use conv::*;
use copy::*;
pub(crate) use dispatch::Dispatch;
// the parameter blocks the tuned kernels (`gpu::tiles`, `gpu::subgroups`) read back
pub(crate) use conv::ConvP;
use elementwise::*;
use index::*;
pub(crate) use matmul::MmP;
use matmul::*;
use pad::*;
pub(crate) use pipelines::Pipelines;
pub use pipelines::{shader_source, shader_source_as, HALF_FILES, PREAMBLE, SHADERS};
pub(crate) use reduce::RdP;
use reduce::*;
use spatial::*;

use super::{gpu_dtype, gpu_err, GpuContext};
use crate::graph::eval::{conv_out_dim, nchw_dims, resize_taps};
use crate::graph::{
    numel, strides, Activation, BinOp, ConvAttrs, DType, Graph, Layout, Node, Op, Padding, PoolKind, ResidualAt, UnOp, ValueId,
};
use crate::runtime::Result;
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

/// Every kernel, written once: its selector, the WGSL file it lives in, and its entry point
/// (which is also its name in profiles and in `WALKOUT_GPU_DISABLE`).
macro_rules! kernels {
    ($($which:ident => $file:literal, $entry:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Which {
            $($which,)*
        }
        impl Which {
            const ALL: &'static [Which] = &[$(Which::$which,)*];
            fn file(self) -> &'static str {
                match self {
                    $(Which::$which => $file,)*
                }
            }
            pub(crate) fn entry(self) -> &'static str {
                match self {
                    $(Which::$which => $entry,)*
                }
            }
        }
    };
}

kernels! {
    BinaryF32 => "elementwise.wgsl", "binary_f32";
    BinaryI32 => "elementwise.wgsl", "binary_i32";
    UnaryF32 => "elementwise.wgsl", "unary_f32";
    Cast => "elementwise.wgsl", "cast_words";
    NotBool => "elementwise.wgsl", "not_bool";
    ChannelAffine => "elementwise.wgsl", "channel_affine";
    ConvGemm => "conv.wgsl", "conv_gemm";
    Depthwise => "conv.wgsl", "depthwise";
    ConvTranspose => "conv.wgsl", "conv_transpose";
    Pool => "spatial.wgsl", "pool";
    Resize => "spatial.wgsl", "resize";
    MatMul => "matmul.wgsl", "matmul";
    MatMulV4 => "matmul.wgsl", "matmul_v4";
    Reduce => "reduce.wgsl", "reduce";
    Softmax => "reduce.wgsl", "softmax";
    Copy => "copy.wgsl", "copy_strided";
    TopK => "index.wgsl", "topk";
    GatherNd => "index.wgsl", "gather_nd";
    ArgMax => "index.wgsl", "argmax";
    Select => "index.wgsl", "select_where";
    AddN => "index.wgsl", "addn";
    GatherAxis => "index.wgsl", "gather_axis";
    Pad => "pad.wgsl", "pad";
    BinaryHalf => "half.wgsl", "binary_half";
    UnaryHalf => "half.wgsl", "unary_half";
    CastToHalf => "half.wgsl", "cast_to_half";
    CastFromHalf => "half.wgsl", "cast_from_half";
}

/// A Rust uniform struct's layout, to check against its WGSL twin.
#[derive(Clone, Debug)]
pub struct UniformLayout {
    pub file: &'static str,
    pub name: &'static str,
    pub size: usize,
    pub fields: Vec<(&'static str, usize)>,
}

macro_rules! layout {
    ($file:expr, $t:ty, $name:literal, [$($f:ident),* $(,)?]) => {
        UniformLayout {
            file: $file,
            name: $name,
            size: std::mem::size_of::<$t>(),
            fields: vec![$((stringify!($f), std::mem::offset_of!($t, $f)),)*],
        }
    };
}

/// The layouts of every uniform struct the kernels upload (tests compare them with naga's
/// reflection of the WGSL).
pub fn uniform_layouts() -> Vec<UniformLayout> {
    use super::preprocess::PreP;
    let mut v = vec![
        layout!("elementwise.wgsl", ElemP, "ElemP", [n, rank, op, flags, p0, p1, pad0, pad1, shape, sa, sb]),
        layout!("half.wgsl", ElemP, "ElemP", [n, rank, op, flags, p0, p1, pad0, pad1, shape, sa, sb]),
        layout!(
            "spatial.wgsl",
            SpP,
            "SpP",
            [n, c, h, w, oh, ow, kh, kw, sy, sx, py, px, kind, include_pad, dy, dx, isn, isc, isy, isx, osn, osc, osy, osx]
        ),
        layout!("reduce.wgsl", RdP, "RdP", [outer, r, inner, op]),
        layout!("reduce_rows.wgsl", RdP, "RdP", [outer, r, inner, op]),
        layout!("copy.wgsl", CpP, "CpP", [n, rank, src_off, dst_off, shape, ss, ds, md]),
        layout!("index.wgsl", IxP, "IxP", [a, b, c, d, e, f, g, h, st]),
        layout!("pad.wgsl", PadP, "PadP", [n, rank, mode, fill, oshape, ishape, before, istride]),
        layout!("preprocess.wgsl", PreP, "PreP", [b, h, w, nchw, dtype, pad0, pad1, pad2, mean, inv_std]),
    ];
    // ConvP and MmP live in the preamble, and each file that uploads them is checked
    for file in ["conv.wgsl", "gemm.wgsl", "gemm_coop.wgsl", "depthwise.wgsl"] {
        v.push(layout!(
            file,
            ConvP,
            "ConvP",
            [
                n, cin, h, w, cout, oh, ow, kh, kw, sy, sx, dy, dx, py, px, groups, isn, isc, isy, isx, osn, osc, osy, osx, act, res_mode,
                has_bias, cpg, p0, p1, opg, pad
            ]
        ));
    }
    for file in ["matmul.wgsl", "gemm.wgsl", "gemm_coop.wgsl"] {
        v.push(layout!(file, MmP, "MmP", [m, n, k, batch, a_rs, a_cs, b_rs, b_cs, a_bs, b_bs, c_bs, pad]));
    }
    v
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

/// How a node runs.
#[derive(Debug)]
pub(crate) enum Kind {
    Gpu(Spec),
    View,
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Not a family of its own: the f16-storage kernels a backend must have to run a node on
    /// f16 values (`avail(Spec::Half)`).
    Half,
}

/// Elements below which an op whose inputs are already on the host stays on the host.
const SMALL: usize = 4096;

pub(super) fn shape(g: &Graph, v: usize) -> Option<&Vec<usize>> {
    g.values[v].shape.as_ref()
}

/// Decides where a node runs. `cpu_made[v]`: the value is produced by a CPU node. Nothing
/// on the GPU depends on a CPU node, so a plan is a GPU prefix (one submit) followed by a
/// CPU tail (after one readback).
pub(crate) fn classify(g: &Graph, n: &Node, cpu_made: &[bool], avail: &dyn Fn(Spec) -> bool) -> Kind {
    match classify_inner(g, n, cpu_made) {
        Kind::Gpu(spec) if disabled(&format!("{spec:?}").to_lowercase()) || !avail(spec) => Kind::Cpu,
        Kind::Gpu(_) if is_half(g, n) && !avail(Spec::Half) => Kind::Cpu,
        k => k,
    }
}

/// Whether a node reads or writes f16 values (its launch runs on the f16-storage kernels).
pub(crate) fn is_half(g: &Graph, n: &Node) -> bool {
    n.inputs.iter().chain(&n.outputs).any(|&v| g.values[v].dtype == DType::F16)
}

/// Ops with kernels on f16 storage (`HALF_FILES`): what a plan at precision f16 converts.
pub(crate) fn half_op(op: &Op) -> bool {
    match op {
        Op::Binary(b) => {
            !matches!(b, BinOp::Equal | BinOp::Less | BinOp::LessEqual | BinOp::Greater | BinOp::GreaterEqual | BinOp::And | BinOp::Or)
        }
        Op::Unary(u) => *u != UnOp::Not,
        Op::Conv2d(_) | Op::Pool(_) | Op::Resize { .. } | Op::Cast(_) => true,
        op => is_view(op) || is_copy(op),
    }
}

/// Ops whose output is a view of their input (the same storage).
pub(crate) fn is_view(op: &Op) -> bool {
    matches!(op, Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims | Op::Identity | Op::Unsqueeze { .. } | Op::Flatten { .. })
}

fn is_copy(op: &Op) -> bool {
    matches!(
        op,
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
    )
}

/// The values a node reads as data; the rest are shape arguments (constants once shapes are
/// fixed), which need not live on the device.
pub(crate) fn data_inputs(n: &Node) -> &[ValueId] {
    match &n.op {
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
    }
}

pub(super) fn classify_inner(g: &Graph, n: &Node, cpu_made: &[bool]) -> Kind {
    let data_in = data_inputs(n);
    if n.inputs.iter().any(|v| !data_in.contains(v) && !g.consts.contains_key(v)) {
        return Kind::Cpu;
    }
    let vals = || data_in.iter().chain(&n.outputs);
    // f16 values only where the op has an f16-storage kernel
    let dtype_ok = |d: DType| gpu_dtype(d) || d == DType::F16 && half_op(&n.op);
    if vals().any(|&v| shape(g, v).is_none() || !dtype_ok(g.values[v].dtype)) {
        return Kind::Cpu;
    }
    if is_view(&n.op) {
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
    // the ops with f16 kernels take f32 or f16 values, not both
    let float_only = f32_only || vals().all(|&v| g.values[v].dtype == DType::F16);
    match &n.op {
        Op::Conv2d(a) if float_only => {
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
        Op::Pool(_) if float_only && !small_tail => Kind::Gpu(Spec::Pool),
        Op::Resize { .. } if g.values[n.inputs[0]].dtype.is_float() && g.values[n.outputs[0]].dtype == g.values[n.inputs[0]].dtype => {
            Kind::Gpu(Spec::Resize)
        }
        Op::Binary(b) if !small_tail => {
            let dts: Vec<DType> = n.inputs.iter().map(|&v| g.values[v].dtype).collect();
            let rank_ok = shape(g, n.outputs[0]).is_some_and(|s| s.len() <= 8);
            let same = dts.iter().all(|&d| d == dts[0]);
            let float_op_ok = dts[0].is_float() || !matches!(b, BinOp::Pow);
            if rank_ok && same && float_op_ok {
                Kind::Gpu(Spec::Binary)
            } else {
                Kind::Cpu
            }
        }
        Op::Unary(UnOp::Not) if g.values[n.inputs[0]].dtype == DType::Bool => Kind::Gpu(Spec::Misc),
        Op::Unary(_) if float_only && !small_tail => Kind::Gpu(Spec::Unary),
        Op::ChannelAffine | Op::Pad { .. } | Op::Gather { .. } if misc_ok(g, n) => Kind::Gpu(Spec::Misc),
        Op::Cast(_) if !small_tail => Kind::Gpu(Spec::Cast),
        Op::MatMul { .. } if f32_only && matmul_layout(g, n).is_some() => Kind::Gpu(Spec::MatMul),
        Op::TopK { .. } | Op::GatherNd | Op::ArgMax { .. } | Op::Select | Op::AddN
            if index_params(g, n).is_some_and(|(w, _, _)| !disabled(name_of(w))) =>
        {
            Kind::Gpu(Spec::Index)
        }
        Op::ConvTranspose2d(_) if f32_only && n.inputs[1..].iter().all(|v| g.consts.contains_key(v)) => Kind::Gpu(Spec::ConvTranspose),
        Op::Reduce { .. } | Op::GlobalPool(_) | Op::Softmax { .. }
            if g.values[n.inputs[0]].dtype == DType::F32 && g.values[n.outputs[0]].dtype == DType::F32 && reduce_layout(g, n).is_some() =>
        {
            Kind::Gpu(Spec::Reduce)
        }
        op if is_copy(op) && copy_parts(g, n).is_some() => Kind::Gpu(Spec::Copy),
        _ => Kind::Cpu,
    }
}

/// A kernel launch, as any backend realises it: the kernel, and for each launch of it (a copy
/// has one per input or output) its parameter block (binding 0), the values or constant words
/// at its other bindings, and its workgroup counts.
#[derive(Debug)]
pub(crate) struct Launch {
    pub which: Which,
    pub parts: Vec<Part>,
    /// On the f16-storage variant of the kernel (`HALF_FILES`).
    pub half: bool,
}

#[derive(Debug)]
pub(crate) struct Part {
    pub params: Vec<u8>,
    pub args: Vec<(u32, Arg)>,
    pub groups: [u32; 3],
}

/// What a binding holds: a graph value's buffer, or words the launch carries itself.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Value(ValueId),
    Words(Vec<u32>),
}

impl Arg {
    /// The value, or one zero word where a kernel's optional operand is absent.
    fn value_or_dummy(v: Option<ValueId>) -> Arg {
        v.map(Arg::Value).unwrap_or(Arg::Words(vec![0]))
    }
}

impl Launch {
    fn one<T: Pod>(which: Which, p: &T, args: Vec<(u32, Arg)>, groups: [u32; 3]) -> Launch {
        Launch { which, parts: vec![Part { params: bytes(p), args, groups }], half: false }
    }

    pub fn kernel_name(&self) -> &'static str {
        name_of(self.which)
    }
}

pub(super) fn bytes<T: Pod>(p: &T) -> Vec<u8> {
    bytemuck::bytes_of(p).to_vec()
}

fn name_of(which: Which) -> &'static str {
    match which {
        Which::Cast => "cast",
        Which::Copy => "copy",
        Which::Select => "select",
        w => w.entry(),
    }
}

/// Kernels listed in `WALKOUT_GPU_DISABLE` (comma-separated names) are left to the CPU; a
/// debugging aid for bisecting a kernel.
pub(super) fn disabled(name: &str) -> bool {
    std::env::var("WALKOUT_GPU_DISABLE").is_ok_and(|v| v.split(',').any(|s| s.trim() == name))
}

/// 1-D launch of `n` threads in workgroups of 256, folded into 2-D past the dimension limit.
pub(crate) fn groups_1d(n: usize) -> [u32; 3] {
    groups_per_item(n.div_ceil(256))
}

/// One workgroup per item (a top-k row, an argmax output), on a 2-D grid:
/// item = x + y * groups_x.
pub(crate) fn groups_per_item(n: usize) -> [u32; 3] {
    let n = n.max(1);
    let x = n.min(4096);
    [x as u32, n.div_ceil(x) as u32, 1]
}

/// Broadcast strides of `s` against the output rank.
pub(super) fn bstrides(s: &[usize], rank: usize) -> [u32; 8] {
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
pub(super) fn nchw_strides(shape: &[usize], layout: Layout) -> [u32; 4] {
    let st = strides(shape);
    match layout {
        Layout::Nhwc => [st[0] as u32, st[3] as u32, st[1] as u32, st[2] as u32],
        Layout::Nchw => [st[0] as u32, st[1] as u32, st[2] as u32, st[3] as u32],
    }
}

/// The launch of a device node: its kernel, parameters and operands.
pub(crate) fn build(g: &Graph, n: &Node, spec: Spec, fused: Option<Activation>) -> Result<Launch> {
    let mut launch = build_inner(g, n, spec, fused)?;
    launch.half = is_half(g, n);
    Ok(launch)
}

fn build_inner(g: &Graph, n: &Node, spec: Spec, fused: Option<Activation>) -> Result<Launch> {
    let sh = |v: usize| g.values[v].shape.clone().unwrap_or_default();
    let out = n.outputs[0];
    let out_shape = sh(out);
    let total = numel(&out_shape);
    match spec {
        Spec::Binary => {
            let Op::Binary(b) = n.op else {
                return Err(gpu_err("not a binary op"));
            };
            let (sa, sb) = (sh(n.inputs[0]), sh(n.inputs[1]));
            let r0 = out_shape.len().max(1);
            let (rank, shape, sa, sb) = coalesce(&out_shape, &bstrides(&sa, r0), &bstrides(&sb, r0));
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
                sa,
                sb,
            };
            let which = match g.values[n.inputs[0]].dtype {
                DType::F32 => Which::BinaryF32,
                DType::F16 => Which::BinaryHalf,
                _ => Which::BinaryI32,
            };
            let args = vec![(1, Arg::Value(n.inputs[0])), (2, Arg::Value(n.inputs[1])), (3, Arg::Value(out))];
            Ok(Launch::one(which, &p, args, groups_1d(total)))
        }
        Spec::Unary | Spec::Cast => {
            let from = g.values[n.inputs[0]].dtype;
            let (which, op, flags, p0, p1) = match n.op {
                Op::Unary(u) => {
                    let (c, p0, p1) = un_code(u);
                    (if from == DType::F16 { Which::UnaryHalf } else { Which::UnaryF32 }, c, 0, p0, p1)
                }
                Op::Cast(DType::F16) if from == DType::F16 => return Err(gpu_err("a cast from f16 to f16 (this is a bug)")),
                Op::Cast(DType::F16) => (Which::CastToHalf, 0, dcode(from), 0.0, 0.0),
                Op::Cast(to) if from == DType::F16 => (Which::CastFromHalf, 0, dcode(to), 0.0, 0.0),
                Op::Cast(to) => (Which::Cast, 0, dcode(from) * 4 + dcode(to), 0.0, 0.0),
                _ => return Err(gpu_err("not a unary op")),
            };
            let p = ElemP { n: total as u32, rank: 1, op, flags, p0, p1, pad0: 0, pad1: 0, shape: [0; 8], sa: [0; 8], sb: [0; 8] };
            // the casts to and from f16 read or write words at their own bindings
            let (a_at, o_at) = match which {
                Which::CastToHalf => (4, 3),
                Which::CastFromHalf => (1, 5),
                _ => (1, 3),
            };
            Ok(Launch::one(which, &p, vec![(a_at, Arg::Value(n.inputs[0])), (o_at, Arg::Value(out))], groups_1d(total)))
        }
        Spec::Misc => misc(g, n),
        Spec::Half => Err(gpu_err("Spec::Half names a capability, not a kernel (this is a bug)")),
        Spec::Index => {
            let (which, p, extra) = index_params(g, n).ok_or_else(|| gpu_err("index op layout (this is a bug)"))?;
            let x = |i: usize| Arg::Value(n.inputs[i]);
            let (args, groups) = match which {
                Which::TopK => {
                    (vec![(1, x(0)), (3, Arg::Value(n.outputs[0])), (4, Arg::Value(n.outputs[1]))], groups_per_item(p.a as usize))
                }
                Which::GatherNd => (vec![(1, x(0)), (2, x(1)), (3, Arg::Value(out))], groups_1d(total)),
                Which::ArgMax => (vec![(1, x(0)), (3, Arg::Value(out))], groups_per_item(total)),
                Which::Select => (vec![(1, x(0)), (2, x(1)), (3, Arg::Value(out)), (5, x(2)), (6, Arg::Words(extra))], groups_1d(total)),
                _ => (
                    vec![
                        (1, x(0)),
                        (2, x(1)),
                        (3, Arg::Value(out)),
                        (5, Arg::value_or_dummy(n.inputs.get(2).copied())),
                        (6, Arg::value_or_dummy(n.inputs.get(3).copied())),
                    ],
                    groups_1d(total),
                ),
            };
            Ok(Launch::one(which, &p, args, groups))
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
            let args =
                vec![(1, Arg::Value(x)), (2, Arg::Value(w)), (3, Arg::value_or_dummy(n.inputs.get(2).copied())), (5, Arg::Value(out))];
            Ok(Launch::one(Which::ConvTranspose, &p, args, groups_1d(total)))
        }
        Spec::Copy => {
            let parts = copy_parts(g, n).ok_or_else(|| gpu_err("copy layout (this is a bug)"))?;
            if parts.is_empty() {
                return Err(gpu_err("copy with no parts"));
            }
            let parts = parts
                .into_iter()
                .map(|(src, dst, p)| Part {
                    params: bytes(&p),
                    args: vec![(1, Arg::Value(src)), (2, Arg::Value(dst))],
                    groups: groups_1d(p.n as usize),
                })
                .collect();
            Ok(Launch { which: Which::Copy, parts, half: false })
        }
        Spec::Reduce => {
            let (outer, r, inner, op) = reduce_layout(g, n).ok_or_else(|| gpu_err("reduce layout (this is a bug)"))?;
            let which = if matches!(n.op, Op::Softmax { .. }) { Which::Softmax } else { Which::Reduce };
            let p = RdP { outer: outer as u32, r: r as u32, inner: inner as u32, op };
            Ok(Launch::one(which, &p, vec![(1, Arg::Value(n.inputs[0])), (2, Arg::Value(out))], groups_1d(outer * inner)))
        }
        Spec::MatMul => {
            let p = matmul_layout(g, n).ok_or_else(|| gpu_err("matmul layout (this is a bug)"))?;
            let v4 = p.b_cs == 1 && p.b_rs == p.n && p.n % 4 == 0 && p.b_bs % 4 == 0;
            let which = if v4 { Which::MatMulV4 } else { Which::MatMul };
            let b_at = if v4 { 4 } else { 2 };
            let args = vec![(1, Arg::Value(n.inputs[0])), (b_at, Arg::Value(n.inputs[1])), (3, Arg::Value(out))];
            Ok(Launch::one(which, &p, args, [p.n.div_ceil(64), p.m.div_ceil(64), p.batch]))
        }
        Spec::Conv => {
            let Op::Conv2d(a) = &n.op else {
                return Err(gpu_err("not a conv"));
            };
            conv(g, n, a)
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
                    let (_, py) = conv_out_dim(h, pa.kernel[0], pa.strides[0], pa.dilations[0], &pa.padding, 0).map_err(gpu_err)?;
                    let (_, px) = conv_out_dim(w, pa.kernel[1], pa.strides[1], pa.dilations[1], &pa.padding, 1).map_err(gpu_err)?;
                    p.dy = pa.dilations[0] as u32;
                    p.dx = pa.dilations[1] as u32;
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
            let args = match which {
                Which::Pool => vec![(1, Arg::Value(n.inputs[0])), (3, Arg::Value(out))],
                _ => vec![(1, Arg::Value(n.inputs[0])), (2, Arg::Words(taps)), (3, Arg::Value(out))],
            };
            Ok(Launch::one(which, &p, args, groups_1d(total)))
        }
    }
}
