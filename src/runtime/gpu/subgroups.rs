//! Subgroup reductions for the wgpu executor (`shaders/reduce_rows.wgsl`): reductions, global
//! pooling and softmax along a contiguous axis of at least [`MIN_ROW`] elements run one
//! workgroup per row with subgroup operations, where the adapter offers SUBGROUP, instead of
//! one thread per row (`reduce.wgsl`). `WALKOUT_GPU_SUBGROUPS=0` keeps the portable kernels.
//! The OpenCL executor keeps the portable kernels.

use super::kernels::{Arg, Dispatch, Launch, RdP, Which};
use super::tiles::{compile, Tuned};
use super::{gpu_err, GpuContext};
use crate::runtime::Result;
use std::sync::Arc;

/// Rows shorter than this stay one thread per row.
pub const MIN_ROW: u32 = 128;

/// The two row kernels, compiled when the device has SUBGROUP.
#[derive(Debug)]
pub(crate) struct RowKernels {
    reduce: Arc<Tuned>,
    softmax: Arc<Tuned>,
}

impl RowKernels {
    /// Compiles the row kernels on a device that has SUBGROUP.
    pub(crate) fn new(device: &wgpu::Device) -> std::result::Result<RowKernels, String> {
        let src = super::kernels::shader_source("reduce_rows.wgsl").ok_or("reduce_rows.wgsl is not in SHADERS")?;
        let reduce = compile(device, "reduce_rows.wgsl", "reduce_rows", &src)?;
        let softmax = compile(device, "reduce_rows.wgsl", "softmax_rows", &src)?;
        Ok(RowKernels { reduce, softmax })
    }
}

fn enabled() -> bool {
    std::env::var("WALKOUT_GPU_SUBGROUPS").map(|v| v.trim() != "0").unwrap_or(true)
}

/// The subgroup dispatch of a portable Reduce or Softmax launch along a contiguous axis, or
/// None to keep the portable kernel.
pub(crate) fn upgrade(
    ctx: &GpuContext,
    g: &crate::graph::Graph,
    launch: &Launch,
    buf_of: &[Option<usize>],
    buffers: &[wgpu::Buffer],
) -> Result<Option<Dispatch>> {
    let Some(rows) = ctx.rows.as_ref() else { return Ok(None) };
    if !matches!(launch.which, Which::Reduce | Which::Softmax) || launch.parts.len() != 1 || !enabled() {
        return Ok(None);
    }
    let part = &launch.parts[0];
    let p: RdP = bytemuck::try_pod_read_unaligned(&part.params).map_err(gpu_err)?;
    let (outer, r, inner) = (p.outer, p.r, p.inner);
    if inner != 1 || r < MIN_ROW {
        return Ok(None);
    }
    let (k, name) = match launch.which {
        Which::Softmax => (rows.softmax.clone(), "softmax_rows"),
        _ => (rows.reduce.clone(), "reduce_rows"),
    };
    let x = outer.clamp(1, 65_535);
    let groups = [x, outer.div_ceil(x).max(1), 1];
    let args: Vec<(u32, Arg)> = part.args.clone();
    Dispatch::realize_tuned(ctx, g, launch, (k, name), &args, 0, groups, (buf_of, buffers)).map(Some)
}
