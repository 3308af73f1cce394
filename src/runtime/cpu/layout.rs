//! NCHW graphs (PyTorch's exports) on the NHWC conv kernels. A value that an NCHW conv
//! writes and that only NCHW convs read (as input or residual) stays in NHWC between them:
//! it is "resident", held in NHWC order under its logical NCHW shape. A chain of convs then
//! transposes once on the way in and once on the way out, not around every conv.

use super::arena::{Pool, Val};
use super::Step;
use crate::graph::{Graph, Layout, ValueId};
use std::collections::HashSet;
use std::sync::Arc;

/// The layout a conv-like step computes in, or None for any other step.
pub(super) fn conv_layout(st: &Step) -> Option<Layout> {
    match st {
        Step::Conv { attrs, .. } | Step::Depthwise { attrs, .. } => Some(attrs.layout),
        Step::Block { layout, .. } => Some(*layout),
        _ => None,
    }
}

/// Per value: whether it is resident (written by an NCHW conv step, read only by NCHW conv
/// steps, and not a graph output). `reads[i]` are the values step `i` reads.
pub(super) fn resident(g: &Graph, steps: &[Step], reads: &[Vec<ValueId>], outputs: &HashSet<ValueId>) -> Vec<bool> {
    let nchw = |i: usize| conv_layout(&steps[i]) == Some(Layout::Nchw);
    let mut res = vec![false; g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        if nchw(i) {
            if let Some(&o) = n.outputs.first() {
                res[o] = !outputs.contains(&o);
            }
        }
    }
    let mut read = vec![false; g.values.len()];
    for (i, r) in reads.iter().enumerate() {
        for &v in r {
            read[v] = true;
            if !nchw(i) {
                res[v] = false;
            }
        }
    }
    for (v, r) in res.iter_mut().enumerate() {
        *r &= read[v];
    }
    res
}

/// `[n, c, h*w]` of a logical NCHW shape.
fn nchw3(s: &[usize]) -> Result<[usize; 3], String> {
    match s {
        [n, c, h, w] => Ok([*n, *c, h * w]),
        _ => Err(format!("expected an NCHW value, got shape {s:?}")),
    }
}

/// Runs an NHWC kernel `k(x, residual, out)` for a conv-like step of `layout`. For NCHW,
/// `x` and the residual are transposed into pooled buffers unless resident (the flag beside
/// each), and the output is transposed back unless `out_resident`.
pub(super) fn run_nhwc(
    pool: &mut Pool,
    layout: Layout,
    x: (&Val, bool),
    res: Option<(&Val, bool)>,
    out_shape: Vec<usize>,
    out_resident: bool,
    k: impl Fn(&[f32], Option<&[f32]>, &mut [f32]) -> Result<(), String>,
) -> Result<Val, String> {
    let e = |e: crate::runtime::RuntimeError| e.to_string();
    let nchw = layout == Layout::Nchw;
    let mut out = pool.take(crate::graph::numel(&out_shape));
    let mut to_nhwc = |v: &Val, resident: bool| -> Result<Option<super::simd::buf::Buf>, String> {
        if !nchw || resident {
            return Ok(None);
        }
        let [n, c, hw] = nchw3(v.dims())?;
        let mut t = pool.take(n * c * hw);
        v.with_f32(|s| transpose_channels(s, n, c, hw, true, &mut t)).map_err(e)?;
        Ok(Some(t))
    };
    let xt = to_nhwc(x.0, x.1)?;
    let rt = match res {
        Some((r, resident)) => to_nhwc(r, resident)?,
        None => None,
    };
    let run = |xs: &[f32], out: &mut [f32]| -> Result<(), String> {
        match (res, &rt) {
            (_, Some(r)) => k(xs, Some(r), out),
            (Some((r, _)), None) => r.with_f32(|rs| k(xs, Some(rs), out)).map_err(e)?,
            (None, None) => k(xs, None, out),
        }
    };
    match &xt {
        Some(xs) => run(xs, &mut out)?,
        None => x.0.with_f32(|xs| run(xs, &mut out)).map_err(e)??,
    }
    for b in [xt, rt].into_iter().flatten() {
        pool.give(Val::F(Arc::new(b), Vec::new()));
    }
    if !nchw || out_resident {
        return Ok(Val::F(Arc::new(out), out_shape));
    }
    let [n, c, hw] = nchw3(&out_shape)?;
    let mut back = pool.take(out.len());
    transpose_channels(&out, n, c, hw, false, &mut back);
    pool.give(Val::F(Arc::new(out), Vec::new()));
    Ok(Val::F(Arc::new(back), out_shape))
}

/// NCHW <-> NHWC copy of `[n, c, hw]` and `[n, hw, c]`, in 16x16 tiles so that both sides
/// are read and written a cache line at a time.
pub(super) fn transpose_channels(src: &[f32], n: usize, c: usize, hw: usize, to_nhwc: bool, dst: &mut [f32]) {
    const T: usize = 16;
    for b in 0..n {
        let (s, d) = (&src[b * c * hw..(b + 1) * c * hw], &mut dst[b * c * hw..(b + 1) * c * hw]);
        for c0 in (0..c).step_by(T) {
            let c1 = (c0 + T).min(c);
            for p0 in (0..hw).step_by(T) {
                let p1 = (p0 + T).min(hw);
                if to_nhwc {
                    for p in p0..p1 {
                        for ch in c0..c1 {
                            d[p * c + ch] = s[ch * hw + p];
                        }
                    }
                } else {
                    for ch in c0..c1 {
                        for p in p0..p1 {
                            d[ch * hw + p] = s[p * c + ch];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiled_transposes_match_the_index_formula_and_invert() {
        for (n, c, hw) in [(1, 3, 5), (2, 17, 33), (1, 40, 256), (3, 1, 1)] {
            let src: Vec<f32> = (0..n * c * hw).map(|i| i as f32).collect();
            let mut t = vec![0.0; src.len()];
            transpose_channels(&src, n, c, hw, true, &mut t);
            for b in 0..n {
                for ch in 0..c {
                    for p in 0..hw {
                        assert_eq!(t[b * c * hw + p * c + ch], src[b * c * hw + ch * hw + p]);
                    }
                }
            }
            let mut back = vec![0.0; src.len()];
            transpose_channels(&t, n, c, hw, false, &mut back);
            assert_eq!(back, src, "{n}x{c}x{hw}");
        }
    }
}
