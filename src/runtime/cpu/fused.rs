//! Inverted-residual blocks (MobileNetV2's expand 1x1 -> depthwise -> project 1x1) run as
//! one step, row by row, so the expanded and depthwise activations never leave the cache.
//! The expand may also be a dense conv over a window (MoveNet's 3x3 stride-2 stem before
//! its first depthwise, im2col'd a row at a time), and a narrowing pointwise conv that alone
//! reads the projection (a head's last conv) may follow it as the block's tail.
//!
//! The output rows are split into a few contiguous ranges, one task each. A task walks its
//! rows in order: the expanded input rows the depthwise filter needs are computed once into
//! a ring of `(kh-1)*dil+1` rows (only a range's first window is computed twice, by two
//! tasks), the depthwise row goes to a row buffer, and the projection writes the output row
//! with its residual. Unfused, MoveNet's largest expanded activation (128x128x144) makes a
//! 9.4 MB round trip through memory twice.

use super::kernels::{clamp_of, im2col_rows, ConvGeo};
use super::simd::{self, dw, gemm::PackedB, Epilogue};
use super::{readers_and_producers, Step};
use crate::graph::{self, ConvAttrs, Graph, ResidualAt, ValueId};
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
    /// The expand's geometry when it is not pointwise (a stem's 3x3 conv, im2col'd a row
    /// at a time): its output is the depthwise's input.
    pub expand_geo: Option<ConvGeo>,
    pub dw: dw::PackedDw,
    pub dw_clamp: (f32, f32),
    pub geo: dw::Geo,
    pub project: Pointwise,
    pub residual: Option<ResidualAt>,
    /// A narrowing pointwise conv that alone reads the projection (a head's last conv), run
    /// on each projected row while it is in cache: the block's output is then the tail's.
    pub tail: Option<Tail>,
    /// The graph nodes it replaces (expand, depthwise, project, tail), for profiles.
    pub nodes: Vec<usize>,
}

/// The pointwise conv after a block's projection.
#[derive(Debug)]
pub(super) struct Tail {
    pub conv: Pointwise,
    /// A sigmoid after the clamp (the heads' score maps), on the vector `exp`.
    pub sigmoid: bool,
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

/// Input pixels of the depthwise under which a block is not fused (a stride-2 block on a
/// 64x64 input is: its expanded input is the large activation).
const MIN_FUSED_PIXELS: usize = 64 * 64;

/// Replaces each expand 1x1 -> depthwise -> project 1x1 chain (the expand optional) whose
/// intermediates nothing else reads by one `Step::Block` at the project conv.
pub(super) fn fuse_blocks(g: &Graph, steps: &mut [Step], outputs: &std::collections::HashSet<ValueId>) {
    let (readers, producer) = readers_and_producers(g);
    let private = |v: ValueId, reader: usize| readers[v] == [reader] && !outputs.contains(&v);
    for i in 0..steps.len() {
        // small maps gain little (their activations stay in cache anyway) and pay for the
        // rows that neighbouring ranges both expand
        let Step::Depthwise { attrs: da, geo: dg, .. } = &steps[i] else { continue };
        if dg.h * dg.w < MIN_FUSED_PIXELS {
            continue;
        }
        let dn = &g.nodes[i];
        let (d_in, d_out) = (dn.inputs[0], dn.outputs[0]);
        let dlayout = da.layout;
        if !fusable(da, false) || readers[d_out].len() != 1 || !private(d_out, readers[d_out][0]) {
            continue;
        }
        let k = readers[d_out][0];
        let pointwise = |st: &Step, residual_ok: bool| matches!(st, Step::Conv { attrs, geo, .. } if geo.kh == 1 && geo.kw == 1 && geo.stride == [1, 1] && geo.pad == [0, 0] && attrs.layout == dlayout && fusable(attrs, residual_ok));
        if !pointwise(&steps[k], true) || g.nodes[k].inputs[0] != d_out {
            continue;
        }
        let j = producer[d_in];
        // or a dense conv over a window (a stem), im2col'd a row at a time
        let dense = |st: &Step| matches!(st, Step::Conv { attrs, .. } if attrs.layout == dlayout && fusable(attrs, false));
        let with_expand = j != usize::MAX && (pointwise(&steps[j], false) || dense(&steps[j])) && private(d_in, i);
        let x = if with_expand { g.nodes[j].inputs[0] } else { d_in };
        let (residual, residual_at) = match &steps[k] {
            Step::Conv { attrs, .. } if attrs.residual.is_some() => (g.nodes[k].inputs.last().copied(), attrs.residual),
            _ => (None, None),
        };
        let take = |st: &mut Step| match std::mem::replace(st, Step::Fused) {
            Step::Conv { attrs, packed, .. } => {
                Some(Pointwise { packed, clamp: clamp_of(attrs.act).unwrap_or((f32::NEG_INFINITY, f32::INFINITY)) })
            }
            _ => None,
        };
        let (Some(project), Step::Depthwise { attrs, packed, geo }) = (take(&mut steps[k]), std::mem::replace(&mut steps[i], Step::Fused))
        else {
            continue;
        };
        let expand_geo = match steps.get(j) {
            Some(Step::Conv { geo, .. }) if with_expand && !(geo.kh == 1 && geo.kw == 1 && geo.stride == [1, 1] && geo.pad == [0, 0]) => {
                Some(geo.clone())
            }
            _ => None,
        };
        let expand = if with_expand { take(&mut steps[j]) } else { None };
        // a narrowing pointwise conv alone reading the projection (a head's last conv) runs
        // on each projected row while it is in cache, so the projection never goes to
        // memory (widening ones, the next block's expand, stay with their own block)
        let p_out = g.nodes[k].outputs[0];
        let t = readers[p_out].first().copied().filter(|&t| {
            private(p_out, t)
                && g.nodes[t].inputs[0] == p_out
                && matches!(&steps[t], Step::Conv { attrs, geo, .. } if geo.kh == 1 && geo.kw == 1 && geo.stride == [1, 1] && geo.pad == [0, 0] && attrs.layout == dlayout && attrs.residual.is_none() && geo.cout <= geo.cin && (clamp_of(attrs.act).is_some() || attrs.act == graph::Activation::Sigmoid))
        });
        let tail = t.and_then(|t| match std::mem::replace(&mut steps[t], Step::Fused) {
            Step::Conv { attrs, packed, .. } => Some(Tail {
                conv: Pointwise { packed, clamp: clamp_of(attrs.act).unwrap_or((f32::NEG_INFINITY, f32::INFINITY)) },
                sigmoid: attrs.act == graph::Activation::Sigmoid,
            }),
            _ => None,
        });
        let nodes = [with_expand.then_some(j), Some(i), Some(k), t].into_iter().flatten().collect();
        let block = Block {
            expand,
            expand_geo,
            dw: packed,
            dw_clamp: clamp_of(attrs.act).unwrap_or((f32::NEG_INFINITY, f32::INFINITY)),
            geo: dw_geo(&geo),
            project,
            residual: residual_at,
            tail,
            nodes,
        };
        steps[t.unwrap_or(k)] = Step::Block { block: Box::new(block), x, residual, layout: dlayout };
    }
}

impl Block {
    /// Input channels (of a pointwise expand, or of the depthwise without one).
    fn cin(&self) -> usize {
        self.expand.as_ref().map_or(self.geo.c, |e| e.packed.k())
    }

    /// Values the block's input must hold.
    fn x_len(&self) -> usize {
        let g = &self.geo;
        match &self.expand_geo {
            Some(e) => e.n * e.h * e.w * e.cin,
            None => g.n * g.h * g.w * self.cin(),
        }
    }

    /// Output channels (of the tail, or of the projection without one).
    pub fn cout(&self) -> usize {
        self.tail.as_ref().map_or(self.project.packed.n(), |t| t.conv.packed.n())
    }

    /// `out = tail(project(dw(expand(x))) (+ residual))`, NHWC.
    pub fn run(&self, x: &[f32], res: Option<&[f32]>, out: &mut [f32]) -> Result<(), String> {
        let g = &self.geo;
        let rows = g.n * g.oh;
        let row_out = g.ow * self.cout();
        let row_proj = g.ow * self.project.packed.n();
        if x.len() < self.x_len() || out.len() < rows * row_out || res.is_some_and(|r| r.len() < rows * row_proj) {
            return Err("fused block operands are smaller than its geometry".into());
        }
        if self.project.packed.k() != g.c
            || self.expand.as_ref().is_some_and(|e| e.packed.n() != g.c)
            || self.expand_geo.as_ref().is_some_and(|e| self.expand.is_none() || (e.n, e.oh, e.ow, e.cout) != (g.n, g.h, g.w, g.c))
            || self.tail.as_ref().is_some_and(|t| t.conv.packed.k() != self.project.packed.n())
        {
            return Err("fused block channels do not chain".into());
        }
        // ranges of at least 16 rows: each recomputes its first window's expanded rows
        let threads = rayon::current_num_threads();
        let tasks = if threads > 1 { (threads * 2).min(rows / 16).max(1) } else { 1 };
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

    /// Output rows `r0..r1` (over batch and height) into `dst`, with this thread's scratch
    /// rows (kept between runs: a ring of 221 KB allocated per run came from fresh pages).
    fn rows(&self, x: &[f32], res: Option<&[f32]>, r0: usize, r1: usize, dst: &mut [f32]) -> Result<(), String> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Option<simd::buf::Buf>> = const { std::cell::RefCell::new(None) };
        }
        let mut scratch = SCRATCH.with(|s| s.borrow_mut().take());
        let r = self.rows_in(x, res, r0, r1, dst, &mut scratch);
        SCRATCH.with(|s| *s.borrow_mut() = scratch);
        r
    }

    fn rows_in(
        &self,
        x: &[f32],
        res: Option<&[f32]>,
        r0: usize,
        r1: usize,
        dst: &mut [f32],
        scratch: &mut Option<simd::buf::Buf>,
    ) -> Result<(), String> {
        let g = &self.geo;
        let (c, cin, cproj) = (g.c, self.cin(), self.project.packed.n());
        let span = (g.kh - 1) * g.dil[0] + 1;
        let in_row = g.w * c;
        let row_proj = g.ow * cproj;
        // ring of expanded rows, depthwise row, projected row (before a tail), im2col rows
        let lens = [
            if self.expand.is_some() { span * in_row } else { 0 },
            g.ow * c,
            if self.tail.is_some() { row_proj } else { 0 },
            match (&self.expand, &self.expand_geo) {
                (Some(e), Some(_)) => g.w * e.packed.k(),
                _ => 0,
            },
        ];
        // each part starts on a cache line (the buffer is aligned, the parts whole lines)
        let line = |n: usize| n.div_ceil(16) * 16;
        let need: usize = lens.iter().map(|&n| line(n)).sum();
        let buf = match scratch {
            Some(b) if b.capacity() >= need => b,
            _ => scratch.insert(simd::buf::Buf::zeros(need)),
        };
        buf.set_len(need);
        let (ring, rest) = buf.split_at_mut(line(lens[0]));
        let (dbuf, rest) = rest.split_at_mut(line(lens[1]));
        let (pbuf, rest) = rest.split_at_mut(line(lens[2]));
        let (ring, dbuf, pbuf, cols) = (&mut ring[..lens[0]], &mut dbuf[..lens[1]], &mut pbuf[..lens[2]], &mut rest[..lens[3]]);
        let mut tags: Vec<Option<(usize, usize)>> = vec![None; span];
        // the filter rows inside the image for the current output row: (ky, row start)
        let mut src: Vec<(usize, *const f32)> = Vec::with_capacity(g.kh);
        let row_out = g.ow * self.cout();
        let none = |(lo, hi): (f32, f32)| Epilogue { lo, hi, residual: None, residual_first: true };
        for r in r0..r1 {
            let (b, oy) = (r / g.oh, r % g.oh);
            let iy0 = (oy * g.stride[0]) as isize - g.pad[0] as isize;
            src.clear();
            for ky in 0..g.kh {
                let iy = iy0 + (ky * g.dil[0]) as isize;
                if iy < 0 || iy as usize >= g.h {
                    continue;
                }
                let iy = iy as usize;
                let xrow = || &x[(b * g.h + iy) * g.w * cin..(b * g.h + iy + 1) * g.w * cin];
                match &self.expand {
                    Some(e) => {
                        let slot = iy % span;
                        if tags[slot] != Some((b, iy)) {
                            let dst = &mut ring[slot * in_row..(slot + 1) * in_row];
                            match &self.expand_geo {
                                None => simd::gemm::gemm_seq(&e.packed, g.w, xrow(), cin, dst, &none(e.clamp))?,
                                Some(eg) => {
                                    im2col_rows(x, eg, (b * g.h + iy) * g.w, g.w, cols);
                                    simd::gemm::gemm_seq(&e.packed, g.w, cols, e.packed.k(), dst, &none(e.clamp))?;
                                }
                            }
                            tags[slot] = Some((b, iy));
                        }
                        src.push((ky, ring[slot * in_row..].as_ptr()));
                    }
                    None => src.push((ky, xrow().as_ptr())),
                }
            }
            // SAFETY: each pointer starts a whole input row (w * c values) of the ring or
            // of x, and dbuf holds ow * c values.
            unsafe { dw::row_from(&self.dw, g, &src, dbuf.as_mut_ptr(), std::ptr::null(), &none(self.dw_clamp)) };
            let out = &mut dst[(r - r0) * row_out..(r - r0 + 1) * row_out];
            let (lo, hi) = self.project.clamp;
            let ep = Epilogue {
                lo,
                hi,
                residual: res.map(|rs| &rs[r * row_proj..(r + 1) * row_proj]),
                residual_first: !matches!(self.residual, Some(ResidualAt::AfterAct)),
            };
            match &self.tail {
                None => simd::gemm::gemm_seq(&self.project.packed, g.ow, dbuf, c, out, &ep)?,
                Some(t) => {
                    simd::gemm::gemm_seq(&self.project.packed, g.ow, dbuf, c, pbuf, &ep)?;
                    simd::gemm::gemm_seq(&t.conv.packed, g.ow, pbuf, cproj, out, &none(t.conv.clamp))?;
                    if t.sigmoid {
                        simd::math::sigmoid_in_place(t.conv.packed.isa(), out);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 37 + seed * 11) % 23) as f32 - 11.0) / 10.0).collect()
    }

    /// A block with an expand (pointwise, or a stem's 3x3 stride-2 conv), a stride, a
    /// residual and a tail (with a sigmoid) gives what its convs give one at a time, on
    /// every path.
    #[test]
    fn a_block_with_its_tail_matches_its_convs_one_at_a_time() {
        for isa in [simd::Isa::Avx512, simd::Isa::Avx2, simd::Isa::Portable].into_iter().filter(|i| i.supported()) {
            for (stride, residual, sigmoid, nt, stem) in
                [(1, true, true, 1, false), (2, false, false, 17, false), (1, false, true, 3, false), (1, false, false, 2, true)]
            {
                let (h, w, c, cp) = (9, 11, 24, 7);
                let cin = if stem { 3 } else { 5 };
                // the stem's input, twice the block's size less one, padded by one
                let eg = ConvGeo {
                    n: 2,
                    h: 2 * h - 1,
                    w: 2 * w - 1,
                    cin,
                    oh: h,
                    ow: w,
                    cout: c,
                    kh: 3,
                    kw: 3,
                    stride: [2, 2],
                    dil: [1, 1],
                    pad: [1, 1],
                };
                let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
                let g = dw::Geo { n: 2, h, w, c, oh, ow, kh: 3, kw: 3, stride: [stride, stride], dil: [1, 1], pad: [1, 1] };
                let ke = if stem { 9 * cin } else { cin };
                let (we, wd, wp, wt) = (data(ke * c, 1), data(9 * c, 2), data(c * cp, 3), data(cp * nt, 4));
                let (be, bd, bp, bt) = (data(c, 5), data(c, 6), data(cp, 7), data(nt, 8));
                let pack = |w: &[f32], k: usize, n: usize, b: &[f32]| PackedB::new(isa, w, k, n, Some(b)).unwrap();
                let x = if stem { data(2 * eg.h * eg.w * cin, 9) } else { data(2 * h * w * cin, 9) };
                let res = data(2 * oh * ow * cp, 10);
                let relu6 = Epilogue { lo: 0.0, hi: 6.0, residual: None, residual_first: true };
                // one at a time
                let mut e = vec![0f32; 2 * h * w * c];
                if stem {
                    let fill = |r0: usize, rows: usize, cols: &mut [f32]| im2col_rows(&x, &eg, r0, rows, cols);
                    simd::gemm::gemm_with(&pack(&we, ke, c, &be), 2 * h * w, fill, &mut e, &relu6).unwrap();
                } else {
                    simd::gemm::gemm(&pack(&we, cin, c, &be), 2 * h * w, &x, cin, &mut e, &relu6).unwrap();
                }
                let mut d = vec![0f32; 2 * oh * ow * c];
                dw::depthwise(&dw::PackedDw::new(isa, &wd, 9, c, Some(&bd)).unwrap(), &g, &e, &mut d, &relu6).unwrap();
                let mut p = vec![0f32; 2 * oh * ow * cp];
                let ep = Epilogue { lo: 0.0, hi: 6.0, residual: residual.then_some(&res[..]), residual_first: true };
                simd::gemm::gemm(&pack(&wp, c, cp, &bp), 2 * oh * ow, &d, c, &mut p, &ep).unwrap();
                let mut want = vec![0f32; 2 * oh * ow * nt];
                simd::gemm::gemm(&pack(&wt, cp, nt, &bt), 2 * oh * ow, &p, cp, &mut want, &Epilogue::none()).unwrap();
                if sigmoid {
                    want.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
                }
                // fused
                let block = Block {
                    expand: Some(Pointwise { packed: pack(&we, ke, c, &be), clamp: (0.0, 6.0) }),
                    expand_geo: stem.then(|| eg.clone()),
                    dw: dw::PackedDw::new(isa, &wd, 9, c, Some(&bd)).unwrap(),
                    dw_clamp: (0.0, 6.0),
                    geo: g.clone(),
                    project: Pointwise { packed: pack(&wp, c, cp, &bp), clamp: (0.0, 6.0) },
                    residual: residual.then_some(ResidualAt::BeforeAct),
                    tail: Some(Tail {
                        conv: Pointwise { packed: pack(&wt, cp, nt, &bt), clamp: (f32::NEG_INFINITY, f32::INFINITY) },
                        sigmoid,
                    }),
                    nodes: Vec::new(),
                };
                let mut got = vec![f32::NAN; 2 * oh * ow * nt];
                block.run(&x, residual.then_some(&res[..]), &mut got).unwrap();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{isa:?} stride {stride} at {i}: {a} vs {b}");
                }
                // a residual shorter than the projection's rows is refused, not read past
                assert!(residual || block.run(&x, Some(&res[..res.len() - 1]), &mut got).is_err());
            }
        }
    }
}
