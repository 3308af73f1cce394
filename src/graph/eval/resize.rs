//! Resize (nearest and linear, ONNX's coordinate modes and TF's) on f32 data.

use super::*;

/// Source coordinate of output index `o` for a resize of `inn` -> `outn`.
#[inline]
pub(crate) fn src_coord(o: usize, inn: usize, outn: usize, coord: CoordMode, ratio: Option<f32>) -> f32 {
    let scale = ratio.unwrap_or(inn as f32 / outn as f32);
    match coord {
        CoordMode::HalfPixel => (o as f32 + 0.5) * scale - 0.5,
        CoordMode::PytorchHalfPixel => {
            if outn > 1 {
                (o as f32 + 0.5) * scale - 0.5
            } else {
                0.0
            }
        }
        CoordMode::AlignCorners => {
            if outn > 1 {
                o as f32 * (inn as f32 - 1.0) / (outn as f32 - 1.0)
            } else {
                0.0
            }
        }
        CoordMode::Asymmetric => o as f32 * scale,
        CoordMode::TfHalfPixelForNn => (o as f32 + 0.5) * scale,
    }
}

/// Per output index: (lower index, upper index, fraction) for linear, or (index, index, 0) for nearest.
pub fn resize_taps(
    inn: usize,
    outn: usize,
    mode: ResizeMode,
    coord: CoordMode,
    nearest: NearestMode,
    ratio: Option<f32>,
) -> Vec<(usize, usize, f32)> {
    (0..outn)
        .map(|o| {
            let s = src_coord(o, inn, outn, coord, ratio);
            match mode {
                ResizeMode::Linear => {
                    let s = s.clamp(0.0, (inn - 1) as f32);
                    let lo = s.floor() as usize;
                    let hi = (lo + 1).min(inn - 1);
                    (lo, hi, s - lo as f32)
                }
                ResizeMode::Nearest => {
                    let i = match nearest {
                        NearestMode::Floor => s.floor(),
                        NearestMode::Ceil => s.ceil(),
                        NearestMode::RoundPreferFloor => {
                            if s.fract() == 0.5 {
                                s.floor()
                            } else {
                                s.round()
                            }
                        }
                        NearestMode::RoundPreferCeil => s.round(),
                    };
                    let i = (i.max(0.0) as usize).min(inn - 1);
                    (i, i, 0.0)
                }
            }
        })
        .collect()
}

/// What a resize's second input asks for: output sizes (integers) or scales (floats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResizeTarget {
    /// Output height and width.
    Size([usize; 2]),
    /// Height and width scales; the output is `floor(in * scale)`.
    Scales([f32; 2]),
}

/// Reads a resize's second input: 2 values (height, width), or one per dimension of a 4-D
/// input in `layout` (batch and channels must then be kept: sizes equal to the input's, when
/// `x` gives its shape, or scales of 1).
pub fn resize_target(t: &Tensor, x: Option<(&[usize], Layout)>) -> R<ResizeTarget> {
    let v = t.to_f64_vec();
    let layout = x.map_or(Layout::Nchw, |(_, l)| l);
    let (hw, kept) = match (v.len(), layout) {
        (2, _) => ([v[0], v[1]], [None, None]),
        (4, Layout::Nchw) => ([v[2], v[3]], [Some((0, v[0])), Some((1, v[1]))]),
        (4, Layout::Nhwc) => ([v[1], v[2]], [Some((0, v[0])), Some((3, v[3]))]),
        (k, _) => return Err(format!("resize needs 2 or 4 sizes or scales, got {k}")),
    };
    if t.dtype().is_float() {
        if kept.iter().flatten().any(|&(_, s)| s != 1.0) {
            return Err(format!("only spatial scales are supported, got {v:?}"));
        }
        if hw.iter().any(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(format!("resize scales must be positive, got {v:?}"));
        }
        return Ok(ResizeTarget::Scales([hw[0] as f32, hw[1] as f32]));
    }
    if let Some((shape, _)) = x {
        if let Some(&(i, s)) = kept.iter().flatten().find(|&&(i, s)| shape.get(i).is_none_or(|&d| d as f64 != s)) {
            return Err(format!("resize sizes {v:?} change dimension {i} ({:?} to {s})", shape.get(i)));
        }
    }
    if hw.iter().any(|&s| !(s >= 1.0 && s <= (1u64 << 30) as f64)) {
        return Err(format!("resize sizes must be positive, got {v:?}"));
    }
    Ok(ResizeTarget::Size([hw[0] as usize, hw[1] as usize]))
}

/// Resize on f32 data; `op` must be an [`Op::Resize`].
pub fn resize_f32(x: &[f32], in_shape: &[usize], out_shape: &[usize], op: &Op) -> R<Vec<f32>> {
    let mut out = vec![0f32; out_shape.iter().product()];
    resize_f32_into(x, in_shape, out_shape, op, &mut out)?;
    Ok(out)
}

/// [`resize_f32`] into `out` (`out_shape`'s elements).
pub fn resize_f32_into(x: &[f32], in_shape: &[usize], out_shape: &[usize], op: &Op, out: &mut [f32]) -> R<()> {
    let &Op::Resize { layout, mode, coord, nearest, scales } = op else {
        return Err("not a resize op".into());
    };
    let [n, c, h, w] = nchw_dims(in_shape, layout)?;
    let [_, _, oh, ow] = nchw_dims(out_shape, layout)?;
    if x.len() < n * c * h * w || out.len() != n * c * oh * ow {
        return Err(format!("resize of {in_shape:?} to {out_shape:?}: {} values in, {} out", x.len(), out.len()));
    }
    let ty = resize_taps(h, oh, mode, coord, nearest, scales.map(|s| 1.0 / s[0]));
    let tx = resize_taps(w, ow, mode, coord, nearest, scales.map(|s| 1.0 / s[1]));
    if layout == Layout::Nhwc {
        // a row of output pixels at a time, each from four runs of c channels (the same
        // operations as below, vectorised over the channels)
        let row = |(r, dst): (usize, &mut [f32])| {
            let (b, (y0, y1, fy)) = (r / oh, ty[r % oh]);
            let (r0, r1) = (&x[(b * h + y0) * w * c..(b * h + y0 + 1) * w * c], &x[(b * h + y1) * w * c..(b * h + y1 + 1) * w * c]);
            for (o, &(x0, x1, fx)) in dst.chunks_mut(c).zip(&tx) {
                let (a0, a1, b0, b1) = (&r0[x0 * c..][..c], &r0[x1 * c..][..c], &r1[x0 * c..][..c], &r1[x1 * c..][..c]);
                for ((((o, &p0), &p1), &q0), &q1) in o.iter_mut().zip(a0).zip(a1).zip(b0).zip(b1) {
                    let top = p0 + (p1 - p0) * fx;
                    let bot = q0 + (q1 - q0) * fx;
                    *o = top + (bot - top) * fy;
                }
            }
        };
        if c > 0 && ow > 0 {
            use rayon::prelude::*;
            if out.len() > PAR_MIN {
                out.par_chunks_mut(ow * c).enumerate().for_each(row);
            } else {
                out.chunks_mut(ow * c).enumerate().for_each(row);
            }
        }
        return Ok(());
    }
    let at = |b: usize, ch: usize, y: usize, xx: usize| x[((b * c + ch) * h + y) * w + xx];
    for b in 0..n {
        for (oy, &(y0, y1, fy)) in ty.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in tx.iter().enumerate() {
                for ch in 0..c {
                    let top = at(b, ch, y0, x0) + (at(b, ch, y0, x1) - at(b, ch, y0, x0)) * fx;
                    let bot = at(b, ch, y1, x0) + (at(b, ch, y1, x1) - at(b, ch, y1, x0)) * fx;
                    out[((b * c + ch) * oh + oy) * ow + ox] = top + (bot - top) * fy;
                }
            }
        }
    }
    Ok(())
}

/// The resize `op` with fixed scales.
pub fn resized_with(op: &Op, sc: [f32; 2]) -> Op {
    match op {
        &Op::Resize { layout, mode, coord, nearest, .. } => Op::Resize { layout, mode, coord, nearest, scales: Some(sc) },
        other => other.clone(),
    }
}
