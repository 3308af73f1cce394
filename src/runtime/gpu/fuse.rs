//! Depthwise + pointwise fusion on wgpu (`dwpw_tiled` in `shaders/gemm.wgsl`): a depthwise
//! convolution whose only reader is a 1x1 convolution (stride 1, one group) is computed inside
//! that convolution's tiled GEMM, as its A operand is fetched, instead of being written to
//! memory and read back. At large batch the depthwise output is the largest tensor of a
//! MobileNet block, so this saves its write and its read. The depthwise sums run in the
//! portable kernels' order, so in f32 the pair gives what the two kernels give; at precision
//! f16 the depthwise result is not rounded to f16 between them.
//!
//! Fusion is opt-in (`WALKOUT_GPU_FUSE=1`, or `GpuExecutor::with_fusion`): on lavapipe the
//! fused kernel is slower (MoveNet 1,530 against 1,140 ms), since there arithmetic, not memory,
//! is the bottleneck, and each pointwise tile along N recomputes its depthwise operand; its
//! worth on a real GPU at large batch is for `benches/gpu-device-check` to measure. Even when
//! on, a pair stays unfused with the portable kernels (`WALKOUT_GPU_TILES=portable`) or the
//! cooperative-matrix ones (`=coop`), where the depthwise has a residual, where the tensors
//! differ in storage, and on adapters that bind fewer than 10 storage buffers per stage.

use super::kernels::{disabled, ConvP, Dispatch, Launch, Which};
use super::tiles::{self, Family, Forced, Gemm};
use super::{gpu_err, GpuContext};
use crate::graph::{Graph, ValueId};
use crate::runtime::Result;
use std::collections::HashMap;

/// Whether an executor fuses by default: `WALKOUT_GPU_FUSE=1`.
pub(crate) fn from_env() -> bool {
    std::env::var("WALKOUT_GPU_FUSE").is_ok_and(|v| v.trim() == "1")
}

fn params(launch: &Launch) -> Option<ConvP> {
    bytemuck::try_pod_read_unaligned(&launch.parts.first()?.params).ok()
}

fn arg(launch: &Launch, binding: u32) -> Option<&super::kernels::Arg> {
    launch.parts.first()?.args.iter().find(|(i, _)| *i == binding).map(|(_, a)| a)
}

/// The pairs to fuse, as pointwise node -> depthwise node: a portable depthwise launch with
/// no residual whose output only a 1x1 ConvGemm launch (stride 1, one group, no padding) reads,
/// neither a graph output nor read by the host, on the same storage.
pub(crate) fn pairs(g: &Graph, launches: &[Option<Launch>], need_host: &[bool]) -> HashMap<usize, usize> {
    let mut out = HashMap::new();
    if disabled("dwpw") {
        return out;
    }
    let uses = g.use_counts();
    let producer: HashMap<ValueId, usize> = g.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |&o| (o, i))).collect();
    for (j, pw) in launches.iter().enumerate() {
        let Some(pw) = pw.as_ref().filter(|l| l.which == Which::ConvGemm && l.parts.len() == 1) else { continue };
        let Some(p) = params(pw) else { continue };
        let pointwise = (p.kh, p.kw, p.sy, p.sx, p.groups, p.py, p.px) == (1, 1, 1, 1, 1, 0, 0);
        let Some(&super::kernels::Arg::Value(x)) = arg(pw, 1) else { continue };
        let Some(&i) = producer.get(&x) else { continue };
        let Some(dw) = launches[i].as_ref().filter(|l| l.which == Which::Depthwise && l.parts.len() == 1) else { continue };
        let Some(d) = params(dw) else { continue };
        let alone = uses[x] == 1 && !need_host[x] && !g.outputs.contains(&x);
        // the depthwise output is the pointwise input in the same pixel order
        let same = d.n == p.n && d.oh == p.oh && d.ow == p.ow && d.cout == p.cin && dw.half == pw.half;
        if pointwise && alone && same && d.res_mode == 0 {
            out.insert(j, i);
        }
    }
    out
}

/// The fused dispatch of a pair, or None to run the two launches as they are.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dispatch(
    ctx: &GpuContext,
    forced: Option<Forced>,
    g: &Graph,
    dw: &Launch,
    pw: &Launch,
    buf_of: &[Option<usize>],
    buffers: &[wgpu::Buffer],
) -> Result<Option<Dispatch>> {
    // `dwpw_tiled` binds 10 storage buffers (WebGPU's default limit is 8)
    let binds_enough = ctx.device.limits().max_storage_buffers_per_shader_stage >= 10;
    if !binds_enough || matches!(tiles::effective(forced)?, Some(Forced::Portable | Forced::Coop)) {
        return Ok(None);
    }
    let (Some(d), Some(p)) = (params(dw), params(pw)) else { return Ok(None) };
    let gemm = Gemm {
        family: Family::DwPw,
        m: p.n * p.oh * p.ow,
        n: p.opg,
        k: p.cpg,
        z: 1,
        // vec4 along the depthwise channels: NHWC input with channels a multiple of 4
        a_vec: d.isc == 1 && d.cout.is_multiple_of(4) && [d.isn, d.isy, d.isx].iter().all(|s| s.is_multiple_of(4)),
        b_vec: p.cout.is_multiple_of(4) && p.opg.is_multiple_of(4),
        half: pw.half,
    };
    let Some(t) = tiles::choose(ctx, forced, &gemm)? else { return Ok(None) };
    let dw_arg = |b: u32| arg(dw, b).cloned().ok_or_else(|| gpu_err("a depthwise launch without its operands (this is a bug)"));
    let x = dw_arg(1)?;
    let mut args: Vec<(u32, super::kernels::Arg)> =
        tiles::tuned_args(pw).into_iter().map(|(b, a)| if b == 1 || b == 6 { (b, x.clone()) } else { (b, a) }).collect();
    args.push((14, super::kernels::Arg::Words(bytemuck::cast_slice::<ConvP, u32>(std::slice::from_ref(&d)).to_vec())));
    args.push((15, dw_arg(2)?));
    args.push((16, dw_arg(3)?));
    let tuned = ctx.tiles.get(&ctx.device, &gemm, t)?;
    Dispatch::realize_tuned(ctx, g, pw, (tuned, Family::DwPw.entry()), &args, 0, gemm.groups(&t), (buf_of, buffers)).map(Some)
}
