//! Inverted-residual blocks (MobileNetV2's expand 1x1 -> depthwise -> project 1x1) run as
//! one step, row by row, so the expanded and depthwise activations never leave the cache.
//!
//! The output rows are split into a few contiguous ranges, one task each. A task walks its
//! rows in order: the expanded input rows the depthwise filter needs are computed once into
//! a ring of `(kh-1)*dil+1` rows (only a range's first window is computed twice, by two
//! tasks), the depthwise row goes to a row buffer, and the projection writes the output row
//! with its residual. Unfused, MoveNet's largest expanded activation (128x128x144) makes a
//! 9.4 MB round trip through memory twice.

use super::kernels::{clamp_of, ConvGeo};
use super::simd::{self, dw, gemm::PackedB, Epilogue};
use crate::graph::{ConvAttrs, ResidualAt};
use rayon::prelude::*;

/// Whether a conv can be part of a block: a clamp activation, and no residual unless
/// `residual_ok`. NCHW blocks run in NHWC like single convs (`layout::run_nhwc`).
pub(super) fn fusable(a: &ConvAttrs, residual_ok: bool) -> bool {
    clamp_of(a.act).is_some() && (residual_ok || a.residual.is_none())
}

/// One pointwise conv of a block.
#[derive(Debug)]
pub(super) struct Pointwise {
    pub packed: PackedB,
    pub clamp: (f32, f32),
}

#[derive(Debug)]
pub(super) struct Block {
    pub expand: Option<Pointwise>,
    pub dw: dw::PackedDw,
    pub dw_clamp: (f32, f32),
    pub geo: dw::Geo,
    pub project: Pointwise,
    pub residual: Option<ResidualAt>,
    /// The graph nodes it replaces (expand, depthwise, project), for profiles.
    pub nodes: Vec<usize>,
}

pub(super) fn dw_geo(g: &ConvGeo) -> dw::Geo {
    dw::Geo { n: g.n, h: g.h, w: g.w, c: g.cin, oh: g.oh, ow: g.ow, kh: g.kh, kw: g.kw, stride: g.stride, dil: g.dil, pad: g.pad }
}

/// A raw pointer that may cross threads; tasks write disjoint rows.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: each task writes only its own output rows.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// Through a method, so closures capture the whole (Send) wrapper.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

impl Block {
    /// Input channels (of the expand, or of the depthwise without one).
    fn cin(&self) -> usize {
        self.expand.as_ref().map_or(self.geo.c, |e| e.packed.k())
    }

    /// `out = project(dw(expand(x))) (+ residual)`, NHWC.
    pub fn run(&self, x: &[f32], res: Option<&[f32]>, out: &mut [f32]) -> Result<(), String> {
        let g = &self.geo;
        let cout = self.project.packed.n();
        let rows = g.n * g.oh;
        let row_out = g.ow * cout;
        if x.len() < g.n * g.h * g.w * self.cin() || out.len() < rows * row_out || res.is_some_and(|r| r.len() < rows * row_out) {
            return Err("fused block operands are smaller than its geometry".into());
        }
        if self.project.packed.k() != g.c || self.expand.as_ref().is_some_and(|e| e.packed.n() != g.c) {
            return Err("fused block channels do not chain".into());
        }
        // ranges of at least 16 rows: each recomputes its first window's expanded rows
        let tasks = (rayon::current_num_threads() * 2).min(rows / 16).max(1);
        let per = rows.div_ceil(tasks);
        let o = Out(out.as_mut_ptr());
        let task = |t: usize| -> Result<(), String> {
            let r0 = t * per;
            let r1 = (r0 + per).min(rows);
            // SAFETY: rows r0..r1 of out are this task's alone, and in bounds (checked).
            let dst = unsafe { std::slice::from_raw_parts_mut(o.ptr().add(r0 * row_out), (r1 - r0) * row_out) };
            self.rows(x, res, r0, r1, dst)
        };
        if tasks == 1 {
            task(0)
        } else {
            (0..tasks).into_par_iter().map(task).collect::<Result<(), String>>()
        }
    }

    /// Output rows `r0..r1` (over batch and height) into `dst`.
    fn rows(&self, x: &[f32], res: Option<&[f32]>, r0: usize, r1: usize, dst: &mut [f32]) -> Result<(), String> {
        let g = &self.geo;
        let (c, cin, cout) = (g.c, self.cin(), self.project.packed.n());
        let span = (g.kh - 1) * g.dil[0] + 1;
        let in_row = g.w * c;
        let mut ring = vec![0f32; if self.expand.is_some() { span * in_row } else { 0 }];
        let mut tags: Vec<Option<(usize, usize)>> = vec![None; span];
        let mut dbuf = vec![0f32; g.ow * c];
        let none = |(lo, hi): (f32, f32)| Epilogue { lo, hi, residual: None, residual_first: true };
        for r in r0..r1 {
            let (b, oy) = (r / g.oh, r % g.oh);
            let iy0 = (oy * g.stride[0]) as isize - g.pad[0] as isize;
            let mut src: Vec<(usize, *const f32)> = Vec::with_capacity(g.kh);
            for ky in 0..g.kh {
                let iy = iy0 + (ky * g.dil[0]) as isize;
                if iy < 0 || iy as usize >= g.h {
                    continue;
                }
                let iy = iy as usize;
                let xrow = &x[(b * g.h + iy) * g.w * cin..(b * g.h + iy + 1) * g.w * cin];
                match &self.expand {
                    Some(e) => {
                        let slot = iy % span;
                        if tags[slot] != Some((b, iy)) {
                            let dst = &mut ring[slot * in_row..(slot + 1) * in_row];
                            simd::gemm::gemm_seq(&e.packed, g.w, xrow, cin, dst, &none(e.clamp))?;
                            tags[slot] = Some((b, iy));
                        }
                        src.push((ky, ring[slot * in_row..].as_ptr()));
                    }
                    None => src.push((ky, xrow.as_ptr())),
                }
            }
            // SAFETY: each pointer starts a whole input row (w * c values) of the ring or
            // of x, and dbuf holds ow * c values.
            unsafe { dw::row_from(&self.dw, g, &src, dbuf.as_mut_ptr(), std::ptr::null(), &none(self.dw_clamp)) };
            let row_out = g.ow * cout;
            let out = &mut dst[(r - r0) * row_out..(r - r0 + 1) * row_out];
            let (lo, hi) = self.project.clamp;
            let ep = Epilogue {
                lo,
                hi,
                residual: res.map(|rs| &rs[r * row_out..(r + 1) * row_out]),
                residual_first: !matches!(self.residual, Some(ResidualAt::AfterAct)),
            };
            simd::gemm::gemm_seq(&self.project.packed, g.ow, &dbuf, c, out, &ep)?;
        }
        Ok(())
    }
}
