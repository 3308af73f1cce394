//! Shape helpers shared by shape inference, the reference kernels and both executors:
//! broadcasting, convolution output sizes, strided slices, reshapes, axes.

use super::*;

// ---------------------------------------------------------------------------------------------
// Shape helpers

/// Numpy-style broadcast of several shapes.
pub fn broadcast_shapes(shapes: &[&[usize]]) -> R<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(format!("shapes {:?} do not broadcast", shapes));
            }
        }
    }
    Ok(out)
}

/// For each output element, the flat offset into each input (broadcasting).
pub(crate) fn broadcast_offsets(out: &[usize], ins: &[&[usize]]) -> Vec<Vec<usize>> {
    let rank = out.len();
    let n = numel(out);
    ins.iter()
        .map(|s| {
            if s.iter().product::<usize>() == n && s.len() <= rank && numel(s) == n && s == &&out[rank - s.len()..] {
                return (0..n).collect();
            }
            let st = strides(s);
            let off = rank - s.len();
            let mut bst = vec![0usize; rank];
            for i in 0..s.len() {
                if s[i] != 1 {
                    bst[off + i] = st[i];
                }
            }
            let mut idx = vec![0usize; rank];
            let mut res = Vec::with_capacity(n);
            let mut cur = 0usize;
            for _ in 0..n {
                res.push(cur);
                // increment
                for d in (0..rank).rev() {
                    idx[d] += 1;
                    cur += bst[d];
                    if idx[d] < out[d] {
                        break;
                    }
                    cur -= bst[d] * idx[d];
                    idx[d] = 0;
                }
            }
            res
        })
        .collect()
}

pub(crate) fn norm_axis(axis: i64, rank: usize) -> R<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank as i64 {
        return Err(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(a as usize)
}

pub(crate) fn const_ints(c: Option<&Tensor>, what: &str) -> R<Vec<i64>> {
    let t = c.ok_or_else(|| format!("{what} must be a constant once input shapes are fixed"))?;
    t.to_i64_vec().ok_or_else(|| format!("{what} must be an integer tensor, got {}", t.dtype()))
}

pub(crate) fn const_scalar_f64(c: Option<&Tensor>, what: &str) -> R<f64> {
    let t = c.ok_or_else(|| format!("{what} must be a constant"))?;
    t.to_f64_vec().first().copied().ok_or_else(|| format!("{what} is empty"))
}

/// Output spatial size and leading padding for one dimension.
pub fn conv_out_dim(input: usize, k: usize, stride: usize, dil: usize, pad: &Padding, axis: usize) -> R<(usize, usize)> {
    if k == 0 || stride == 0 || dil == 0 || input == 0 {
        return Err(format!("kernel {k}, stride {stride}, dilation {dil} and input {input} must all be at least 1"));
    }
    let ek = (k - 1).checked_mul(dil).and_then(|e| e.checked_add(1)).ok_or_else(|| format!("kernel {k} dilated by {dil} is too large"))?;
    match pad {
        Padding::Valid => {
            if input < ek {
                return Err(format!("input size {input} smaller than kernel extent {ek}"));
            }
            Ok(((input - ek) / stride + 1, 0))
        }
        Padding::SameUpper | Padding::SameLower => {
            let out = input.div_ceil(stride);
            let total = ((out - 1).saturating_mul(stride).saturating_add(ek)).saturating_sub(input);
            let before = if matches!(pad, Padding::SameUpper) { total / 2 } else { total.div_ceil(2) };
            Ok((out, before))
        }
        Padding::Explicit(p) => {
            let (b, e) = if axis == 0 { (p[0], p[2]) } else { (p[1], p[3]) };
            let padded = input.checked_add(b).and_then(|v| v.checked_add(e)).ok_or_else(|| format!("pads {b} and {e} are too large"))?;
            if padded < ek {
                return Err(format!("padded size {padded} smaller than kernel extent {ek}"));
            }
            Ok(((padded - ek) / stride + 1, b))
        }
    }
}

/// (n, c, h, w) of a 4-D tensor in the given layout.
pub fn nchw_dims(shape: &[usize], layout: Layout) -> R<[usize; 4]> {
    if shape.len() != 4 {
        return Err(format!("expected a 4-D tensor, got shape {shape:?}"));
    }
    Ok(match layout {
        Layout::Nhwc => [shape[0], shape[3], shape[1], shape[2]],
        Layout::Nchw => [shape[0], shape[1], shape[2], shape[3]],
    })
}

pub fn make_4d(n: usize, c: usize, h: usize, w: usize, layout: Layout) -> Vec<usize> {
    match layout {
        Layout::Nhwc => vec![n, h, w, c],
        Layout::Nchw => vec![n, c, h, w],
    }
}

/// Resolved strided slice: per input dim (begin, stride, size), and the final output shape.
#[derive(Debug)]
pub struct SlicePlan {
    pub dims: Vec<(i64, i64, usize)>,
    pub out_shape: Vec<usize>,
}

pub fn strided_slice_plan(shape: &[usize], begin: &[i64], end: &[i64], stride: &[i64], m: &SliceMasks) -> R<SlicePlan> {
    let n = begin.len();
    if end.len() != n || stride.len() != n {
        return Err("begin, end and strides differ in length".into());
    }
    let rank = shape.len();
    let mut dims = Vec::with_capacity(rank);
    let mut out_shape = Vec::new();
    let mut d = 0usize; // input dim
    let bit = |mask: u32, i: usize| (mask >> i) & 1 == 1;
    let has_ellipsis = m.ellipsis != 0;
    for i in 0..n {
        if bit(m.ellipsis, i) {
            // number of spec entries after this one that consume input dims
            let after = (i + 1..n).filter(|&j| !bit(m.new_axis, j)).count();
            let full = rank.saturating_sub(d + after);
            for _ in 0..full {
                dims.push((0, 1, shape[d]));
                out_shape.push(shape[d]);
                d += 1;
            }
            continue;
        }
        if bit(m.new_axis, i) {
            out_shape.push(1);
            continue;
        }
        if d >= rank {
            return Err(format!("slice spec has more dims than the input rank {rank}"));
        }
        let size = shape[d] as i64;
        let s = stride[i];
        if s == 0 {
            return Err("stride 0".into());
        }
        if bit(m.shrink_axis, i) {
            let mut b = begin[i];
            if b < 0 {
                b += size;
            }
            if b < 0 || b >= size {
                return Err(format!("shrink index {} out of range for dim {d} of size {size}", begin[i]));
            }
            dims.push((b, 1, 1));
            d += 1;
            continue;
        }
        let (lo, hi) = if s > 0 { (0, size) } else { (-1, size - 1) };
        let b = if bit(m.begin, i) {
            if s > 0 {
                0
            } else {
                size - 1
            }
        } else {
            let b = if begin[i] < 0 { begin[i] + size } else { begin[i] };
            b.clamp(lo, hi)
        };
        let e = if bit(m.end, i) {
            if s > 0 {
                size
            } else {
                -1
            }
        } else {
            let e = if end[i] < 0 { end[i] + size } else { end[i] };
            e.clamp(lo, hi)
        };
        let len = if s > 0 { (e - b + s - 1) / s } else { (b - e + (-s) - 1) / (-s) };
        let len = len.max(0) as usize;
        dims.push((b, s, len));
        out_shape.push(len);
        d += 1;
    }
    let _ = has_ellipsis;
    while d < rank {
        dims.push((0, 1, shape[d]));
        out_shape.push(shape[d]);
        d += 1;
    }
    Ok(SlicePlan { dims, out_shape })
}

pub(crate) fn gather_slice<T: Copy>(x: &[T], shape: &[usize], dims: &[(i64, i64, usize)]) -> Vec<T> {
    let st = strides(shape);
    let sizes: Vec<usize> = dims.iter().map(|d| d.2).collect();
    let n = numel(&sizes);
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    // trailing dims taken whole are contiguous: they go with the dim before them as runs
    // of `run` values (MoveNet's whole-tensor slices of [64, 64, 1, 17] are one copy)
    let mut t = dims.len();
    let mut run = 1;
    while t > 0 && dims[t - 1].0 == 0 && dims[t - 1].1 == 1 && dims[t - 1].2 == shape[t - 1] {
        run *= shape[t - 1];
        t -= 1;
    }
    if t == 0 {
        out.extend_from_slice(&x[..n]);
        return out;
    }
    let (b0, s0, n0) = dims[t - 1];
    let lst = st[t - 1] as i64;
    // an odometer over the outer dims; the last is copied as one run when its stride is 1
    let outer = t - 1;
    let mut idx = vec![0usize; outer];
    loop {
        let mut off = b0 * lst;
        for k in 0..outer {
            off += (dims[k].0 + dims[k].1 * idx[k] as i64) * st[k] as i64;
        }
        if s0 == 1 {
            out.extend_from_slice(&x[off as usize..off as usize + n0 * run]);
        } else {
            for j in 0..n0 as i64 {
                let at = (off + j * s0 * lst) as usize;
                out.extend_from_slice(&x[at..at + run]);
            }
        }
        let mut k = outer;
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < sizes[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// Resolves a reshape target with at most one -1 (and ONNX's 0 = copy when `copy_zero`).
pub fn resolve_reshape(in_shape: &[usize], target: &[i64], copy_zero: bool) -> R<Vec<usize>> {
    let total = numel(in_shape);
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        if t == -1 {
            if infer.is_some() {
                return Err("more than one -1 in reshape target".into());
            }
            infer = Some(i);
            out.push(1);
        } else if t == 0 && copy_zero {
            out.push(*in_shape.get(i).ok_or("0 in reshape target beyond input rank")?);
        } else if t < 0 {
            return Err(format!("invalid reshape dim {t}"));
        } else {
            out.push(t as usize);
        }
    }
    let known = crate::graph::numel(&out);
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {in_shape:?} into {target:?}"));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!("cannot reshape {in_shape:?} ({total} elements) into {target:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output element by its index formula.
    fn naive(x: &[i64], shape: &[usize], dims: &[(i64, i64, usize)]) -> Vec<i64> {
        let st = strides(shape);
        let sizes: Vec<usize> = dims.iter().map(|d| d.2).collect();
        (0..numel(&sizes))
            .map(|mut f| {
                let mut off = 0i64;
                for k in (0..dims.len()).rev() {
                    let i = (f % sizes[k]) as i64;
                    f /= sizes[k];
                    off += (dims[k].0 + dims[k].1 * i) * st[k] as i64;
                }
                x[off as usize]
            })
            .collect()
    }

    #[test]
    fn slices_match_the_index_formula() {
        let shape = [4, 5, 3, 6];
        let x: Vec<i64> = (0..numel(&shape) as i64).collect();
        for dims in [
            // whole tensor; whole trailing dims after a ranged one; after a strided one
            vec![(0, 1, 4), (0, 1, 5), (0, 1, 3), (0, 1, 6)],
            vec![(1, 1, 2), (0, 1, 5), (0, 1, 3), (0, 1, 6)],
            vec![(0, 1, 4), (4, -2, 3), (0, 1, 3), (0, 1, 6)],
            vec![(3, -1, 4), (0, 1, 5), (1, 1, 2), (0, 1, 6)],
            // a ranged last dim, reversed and strided
            vec![(0, 1, 4), (0, 1, 5), (0, 1, 3), (5, -2, 3)],
            vec![(2, 1, 1), (1, 2, 2), (2, -1, 2), (1, 1, 4)],
        ] {
            assert_eq!(gather_slice(&x, &shape, &dims), naive(&x, &shape, &dims), "{dims:?}");
        }
    }
}
