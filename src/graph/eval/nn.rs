//! Neural-network reference kernels: convolutions, pooling, matmul, softmax, reductions,
//! argmax and non-max suppression (resize is in `resize`).

use super::*;

/// Transposed convolution (NCHW, weight [cin, cout/groups, kh, kw]) by scattering.
pub(crate) fn conv_transpose_ref(a: &ConvTransposeAttrs, ins: &[&Tensor], out_shape: &[usize]) -> R<Tensor> {
    let x = f32_of(ins[0]);
    let w = f32_of(ins[1]);
    let [n, cin, h, wd] = nchw_dims(&ins[0].shape, Layout::Nchw)?;
    let [_, cout, oh, ow] = nchw_dims(out_shape, Layout::Nchw)?;
    let (opg, kh, kw) = (ins[1].shape[1], ins[1].shape[2], ins[1].shape[3]);
    let ipg = cin / a.groups;
    let mut out = vec![0f32; n * cout * oh * ow];
    if let Some(b) = ins.get(2) {
        let b = f32_of(b);
        for bi in 0..n {
            for c in 0..cout {
                out[(bi * cout + c) * oh * ow..(bi * cout + c + 1) * oh * ow].fill(b[c]);
            }
        }
    }
    for bi in 0..n {
        for ci in 0..cin {
            let g = ci / ipg;
            for iy in 0..h {
                for ix in 0..wd {
                    let xv = x[((bi * cin + ci) * h + iy) * wd + ix];
                    for oc in 0..opg {
                        let co = g * opg + oc;
                        for ky in 0..kh {
                            let y = (iy * a.strides[0] + ky * a.dilations[0]) as isize - a.pads[0] as isize;
                            if y < 0 || y >= oh as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let xx = (ix * a.strides[1] + kx * a.dilations[1]) as isize - a.pads[1] as isize;
                                if xx < 0 || xx >= ow as isize {
                                    continue;
                                }
                                out[((bi * cout + co) * oh + y as usize) * ow + xx as usize] +=
                                    xv * w[((ci * opg + oc) * kh + ky) * kw + kx];
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Tensor::f32(out_shape.to_vec(), out))
}

/// ONNX NonMaxSuppression: per batch and class, greedy selection by score.
pub(crate) fn nms(ins: &[&Tensor], center: bool) -> R<Tensor> {
    let boxes = f32_of(ins[0]);
    let scores = f32_of(ins[1]);
    let (bs, nb) = (ins[0].shape.first().copied().unwrap_or(0), ins[0].shape.get(1).copied().unwrap_or(0));
    if ins[0].rank() != 3 || ins[0].shape[2] != 4 || ins[1].rank() != 3 || ins[1].shape[0] != bs || ins[1].shape[2] != nb {
        return Err(format!("boxes {:?} and scores {:?} do not fit [B,N,4] and [B,C,N]", ins[0].shape, ins[1].shape));
    }
    let nc = ins[1].shape[1];
    let scalar = |i: usize, d: f64| ins.get(i).and_then(|t| t.to_f64_vec().first().copied()).unwrap_or(d);
    let max_out = scalar(2, 0.0).max(0.0) as usize;
    let iou_t = scalar(3, 0.0) as f32;
    let score_t = ins.get(4).map(|t| t.to_f64_vec().first().copied().unwrap_or(f64::NEG_INFINITY) as f32);
    let corners = |b: usize, i: usize| -> [f32; 4] {
        let q = &boxes[(b * nb + i) * 4..(b * nb + i) * 4 + 4];
        if center {
            [q[1] - q[3] / 2.0, q[0] - q[2] / 2.0, q[1] + q[3] / 2.0, q[0] + q[2] / 2.0]
        } else {
            [q[0].min(q[2]), q[1].min(q[3]), q[0].max(q[2]), q[1].max(q[3])]
        }
    };
    let iou = |a: [f32; 4], b: [f32; 4]| {
        let ih = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
        let iw = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        let inter = ih * iw;
        let u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
        if u <= 0.0 {
            0.0
        } else {
            inter / u
        }
    };
    let mut sel: Vec<i64> = Vec::new();
    for b in 0..bs {
        for c in 0..nc {
            let sc = &scores[(b * nc + c) * nb..(b * nc + c + 1) * nb];
            let mut order: Vec<usize> = (0..nb).filter(|&i| score_t.is_none_or(|t| sc[i] > t)).collect();
            order.sort_by(|&x, &y| sc[y].partial_cmp(&sc[x]).unwrap_or(std::cmp::Ordering::Equal).then(x.cmp(&y)));
            let mut kept: Vec<usize> = Vec::new();
            for i in order {
                if kept.len() >= max_out {
                    break;
                }
                if kept.iter().all(|&k| iou(corners(b, k), corners(b, i)) <= iou_t) {
                    kept.push(i);
                }
            }
            for k in kept {
                sel.extend_from_slice(&[b as i64, c as i64, k as i64]);
            }
        }
    }
    let k = sel.len() / 3;
    Ok(Tensor::i64(vec![k, 3], sel))
}

pub(crate) fn reduce(x: &Tensor, axes: &[usize], op: ReduceOp, keep: bool) -> Tensor {
    if let (Some(v), Some(&a0), Some(&a1)) = (x.as_f32(), axes.first(), axes.last()) {
        if a1 - a0 + 1 == axes.len() {
            let outer: usize = x.shape[..a0].iter().product();
            let r: usize = x.shape[a0..=a1].iter().product();
            let inner: usize = x.shape[a1 + 1..].iter().product();
            return Tensor::f32(reduced_shape(&x.shape, axes, keep), reduce_f32(v, outer, r, inner, op));
        }
    }
    let v = x.to_f64_vec();
    let kept: Vec<usize> = x.shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let n_out = numel(&kept);
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => 0.0,
        ReduceOp::Prod => 1.0,
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
    };
    let mut acc = vec![init; n_out];
    let offs = broadcast_offsets(&x.shape, &[&kept]);
    for (i, &o) in offs[0].iter().enumerate() {
        let a = &mut acc[o];
        *a = match op {
            ReduceOp::Sum | ReduceOp::Mean => *a + v[i],
            ReduceOp::Prod => *a * v[i],
            ReduceOp::Max => a.max(v[i]),
            ReduceOp::Min => a.min(v[i]),
        };
    }
    if op == ReduceOp::Mean {
        let cnt = (numel(&x.shape) / n_out.max(1)) as f64;
        acc.iter_mut().for_each(|a| *a /= cnt);
    }
    let shape = reduced_shape(&x.shape, axes, keep);
    Tensor::f32(shape, acc.iter().map(|&a| a as f32).collect()).cast(x.dtype())
}

/// Reduces `[outer, r, inner]` f32 data over the middle dim.
pub fn reduce_f32(v: &[f32], outer: usize, r: usize, inner: usize, op: ReduceOp) -> Vec<f32> {
    use rayon::prelude::*;
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => 0.0,
        ReduceOp::Prod => 1.0,
        ReduceOp::Max => f32::NEG_INFINITY,
        ReduceOp::Min => f32::INFINITY,
    };
    let mut out = vec![init; outer * inner];
    let body = |o: usize, acc: &mut [f32]| {
        for j in 0..r {
            let row = &v[(o * r + j) * inner..(o * r + j + 1) * inner];
            match op {
                ReduceOp::Sum | ReduceOp::Mean => acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x),
                ReduceOp::Prod => acc.iter_mut().zip(row).for_each(|(a, &x)| *a *= x),
                ReduceOp::Max => acc.iter_mut().zip(row).for_each(|(a, &x)| *a = a.max(x)),
                ReduceOp::Min => acc.iter_mut().zip(row).for_each(|(a, &x)| *a = a.min(x)),
            }
        }
        if op == ReduceOp::Mean {
            acc.iter_mut().for_each(|a| *a /= r.max(1) as f32);
        }
    };
    if inner == 0 {
        return out;
    }
    // tasks of several outer rows each: MoveNet reduces [4096, 6, 17], where one task per
    // 17-value row costs more than the reduction
    let per = (PAR_MIN / (r * inner).max(1)).max(1);
    let rows = |(t, accs): (usize, &mut [f32])| {
        for (i, acc) in accs.chunks_mut(inner).enumerate() {
            body(t * per + i, acc);
        }
    };
    if v.len() > PAR_MIN && outer > 1 {
        out.par_chunks_mut(per * inner).enumerate().for_each(rows);
    } else {
        out.chunks_mut(per * inner).enumerate().for_each(rows);
    }
    out
}

/// The first index of the largest value along the middle dim of `[outer, n, inner]` f32
/// data (ArgMax without `select_last`), row by row so that the scan streams.
pub fn argmax_f32(v: &[f32], outer: usize, n: usize, inner: usize) -> Vec<i64> {
    use rayon::prelude::*;
    let mut idx = vec![0i64; outer * inner];
    if n == 0 || inner == 0 {
        return idx;
    }
    // the first greatest of rows lo..hi of each column: from row 0 it starts at row 0 (a
    // NaN there stays, as in one scan), elsewhere at -inf with no row (-1)
    let scan = |o: usize, lo: usize, hi: usize| -> (Vec<f32>, Vec<i64>) {
        let (mut best, mut bi, from) = if lo == 0 {
            (v[o * n * inner..(o * n + 1) * inner].to_vec(), vec![0i64; inner], 1)
        } else {
            (vec![f32::NEG_INFINITY; inner], vec![-1i64; inner], lo)
        };
        for j in from..hi {
            let row = &v[(o * n + j) * inner..(o * n + j + 1) * inner];
            for ((b, i), &x) in best.iter_mut().zip(bi.iter_mut()).zip(row) {
                if x > *b {
                    *b = x;
                    *i = j as i64;
                }
            }
        }
        (best, bi)
    };
    let threads = rayon::current_num_threads();
    for o in 0..outer {
        let dst = &mut idx[o * inner..(o + 1) * inner];
        if threads > 1 && n * inner > PAR_MIN && n >= 2 * threads {
            // ranges of rows side by side (MoveNet's [4096, 102]), merged in order: a later
            // range wins only where strictly greater, so the first greatest stays, as in
            // one scan
            let per = n.div_ceil(threads * 2);
            let parts: Vec<(Vec<f32>, Vec<i64>)> =
                (0..n.div_ceil(per)).into_par_iter().map(|t| scan(o, t * per, ((t + 1) * per).min(n))).collect();
            let mut parts = parts.into_iter();
            let Some((mut best, mut bi)) = parts.next() else { continue };
            for (b2, i2) in parts {
                for (((b, i), &x), &j) in best.iter_mut().zip(bi.iter_mut()).zip(&b2).zip(&i2) {
                    if j >= 0 && x > *b {
                        *b = x;
                        *i = j;
                    }
                }
            }
            dst.copy_from_slice(&bi);
        } else {
            dst.copy_from_slice(&scan(o, 0, n).1);
        }
    }
    idx
}

pub(crate) fn argmax(x: &Tensor, axis: usize, out_shape: Vec<usize>, select_last: bool) -> Tensor {
    if let (Some(v), false) = (x.as_f32(), select_last) {
        let outer: usize = x.shape[..axis].iter().product();
        let inner: usize = x.shape[axis + 1..].iter().product();
        return Tensor::i64(out_shape, argmax_f32(v, outer, x.shape[axis], inner));
    }
    let v = x.to_f64_vec();
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let n = x.shape[axis];
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let mut best = 0usize;
            for j in 1..n {
                let (a, b) = (v[(o * n + j) * inner + i], v[(o * n + best) * inner + i]);
                if a > b || (select_last && a == b) {
                    best = j;
                }
            }
            out.push(best as i64);
        }
    }
    Tensor::i64(out_shape, out)
}

pub(crate) fn matmul_ref(a: &Tensor, b: &Tensor, ta: bool, tb: bool, out_shape: Vec<usize>) -> R<Tensor> {
    let av = f32_of(a);
    let bv = f32_of(b);
    let (ar, br) = (a.rank(), b.rank());
    let (m, k) = if ta { (a.shape[ar - 1], a.shape[ar - 2]) } else { (a.shape[ar - 2], a.shape[ar - 1]) };
    let n = if tb { b.shape[br - 2] } else { b.shape[br - 1] };
    let batch_shape = &out_shape[..out_shape.len() - 2];
    let a_b: Vec<usize> = a.shape[..ar - 2].to_vec();
    let b_b: Vec<usize> = b.shape[..br - 2].to_vec();
    let offs = broadcast_offsets(batch_shape, &[&a_b, &b_b]);
    let nb = numel(batch_shape);
    let mut out = vec![0f32; nb * m * n];
    for bi in 0..nb {
        let ao = offs[0][bi] * m * k;
        let bo = offs[1][bi] * k * n;
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f32;
                for p in 0..k {
                    let x = if ta { av[ao + p * m + i] } else { av[ao + i * k + p] };
                    let y = if tb { bv[bo + j * k + p] } else { bv[bo + p * n + j] };
                    s += x * y;
                }
                out[bi * m * n + i * n + j] = s;
            }
        }
    }
    Ok(Tensor::f32(out_shape, out))
}

/// Direct convolution (reference).
pub(crate) fn conv2d_ref(a: &ConvAttrs, ins: &[&Tensor], out_shape: &[usize]) -> R<Tensor> {
    let x = f32_of(ins[0]);
    let w = f32_of(ins[1]);
    let [n, cin, h, wd] = nchw_dims(&ins[0].shape, a.layout)?;
    let ws = &ins[1].shape;
    let (kh, kw, cpg, cout) = (ws[0], ws[1], ws[2], ws[3]);
    let [_, _, oh, ow] = nchw_dims(out_shape, a.layout)?;
    let (_, pt) = conv_out_dim(h, kh, a.strides[0], a.dilations[0], &a.padding, 0)?;
    let (_, pl) = conv_out_dim(wd, kw, a.strides[1], a.dilations[1], &a.padding, 1)?;
    let opg = cout / a.groups;
    let xi = |b: usize, c: usize, y: usize, xx: usize| match a.layout {
        Layout::Nhwc => ((b * h + y) * wd + xx) * cin + c,
        Layout::Nchw => ((b * cin + c) * h + y) * wd + xx,
    };
    let oi = |b: usize, c: usize, y: usize, xx: usize| match a.layout {
        Layout::Nhwc => ((b * oh + y) * ow + xx) * cout + c,
        Layout::Nchw => ((b * cout + c) * oh + y) * ow + xx,
    };
    let mut k = 2;
    let bias = if a.has_bias {
        k += 1;
        Some(f32_of(ins[2]))
    } else {
        None
    };
    let res = a.residual.map(|_| f32_of(ins[k]));
    let mut out = vec![0f32; n * cout * oh * ow];
    for b in 0..n {
        for oc in 0..cout {
            let g = oc / opg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = bias.as_ref().map(|bv| bv[oc]).unwrap_or(0.0);
                    for ky in 0..kh {
                        let iy = (oy * a.strides[0] + ky * a.dilations[0]) as isize - pt as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * a.strides[1] + kx * a.dilations[1]) as isize - pl as isize;
                            if ix < 0 || ix >= wd as isize {
                                continue;
                            }
                            for ci in 0..cpg {
                                s += x[xi(b, g * cpg + ci, iy as usize, ix as usize)] * w[((ky * kw + kx) * cpg + ci) * cout + oc];
                            }
                        }
                    }
                    let o = oi(b, oc, oy, ox);
                    let v = match (a.residual, &res) {
                        (Some(ResidualAt::BeforeAct), Some(r)) => a.act.apply(s + r[o]),
                        (Some(ResidualAt::AfterAct), Some(r)) => a.act.apply(s) + r[o],
                        _ => a.act.apply(s),
                    };
                    out[o] = v;
                }
            }
        }
    }
    Ok(Tensor::f32(out_shape.to_vec(), out))
}

/// The input positions `lo..hi` (every `dil`-th) that output position `o`'s window covers
/// inside `0..n`, with the window starting at `o * stride - pad`.
fn window(o: usize, stride: usize, dil: usize, k: usize, pad: usize, n: usize) -> [usize; 2] {
    let dil = dil.max(1);
    let start = (o * stride) as isize - pad as isize;
    // the first tap at or after 0, and one past the last tap before n
    let first = if start < 0 { (-start) as usize } else { 0 };
    let first = first.div_ceil(dil) * dil;
    let lo = start + first as isize;
    let last = (0..k).rev().map(|t| start + (t * dil) as isize).find(|&i| i < n as isize);
    match last {
        Some(l) if l >= lo && first < k * dil => [lo as usize, l as usize + 1],
        _ => [0, 0],
    }
}

/// Max/average pooling on f32 data.
pub fn pool_f32(p: &PoolAttrs, x: &[f32], in_shape: &[usize], out_shape: &[usize]) -> R<Vec<f32>> {
    let [n, c, h, w] = nchw_dims(in_shape, p.layout)?;
    let [_, _, oh, ow] = nchw_dims(out_shape, p.layout)?;
    let (_, pt) = conv_out_dim(h, p.kernel[0], p.strides[0], p.dilations[0], &p.padding, 0)?;
    let (_, pl) = conv_out_dim(w, p.kernel[1], p.strides[1], p.dilations[1], &p.padding, 1)?;
    let (cs, ys, xs, bs) = match p.layout {
        Layout::Nhwc => (1, w * c, c, h * w * c),
        Layout::Nchw => (h * w, w, 1, c * h * w),
    };
    let at = |b: usize, ch: usize, y: usize, x: usize| b * bs + ch * cs + y * ys + x * xs;
    let out_at = |b: usize, ch: usize, oy: usize, ox: usize| match p.layout {
        Layout::Nhwc => ((b * oh + oy) * ow + ox) * c + ch,
        Layout::Nchw => ((b * c + ch) * oh + oy) * ow + ox,
    };
    if p.kind == PoolKind::Max {
        // separable: the max over each window's rows of the max over its columns (exact;
        // padding takes no part in either), kh + kw reads per output instead of kh * kw
        let rows: Vec<[usize; 2]> = (0..oh).map(|o| window(o, p.strides[0], p.dilations[0], p.kernel[0], pt, h)).collect();
        let cols: Vec<[usize; 2]> = (0..ow).map(|o| window(o, p.strides[1], p.dilations[1], p.kernel[1], pl, w)).collect();
        let (dy, dx) = (p.dilations[0].max(1), p.dilations[1].max(1));
        let mut across = vec![f32::NEG_INFINITY; n * c * h * ow];
        let mut out = vec![f32::NEG_INFINITY; n * c * oh * ow];
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for (ox, &[x0, x1]) in cols.iter().enumerate() {
                        across[((b * c + ch) * h + y) * ow + ox] =
                            (x0..x1).step_by(dx).map(|ix| x[at(b, ch, y, ix)]).fold(f32::NEG_INFINITY, f32::max);
                    }
                }
                for (oy, &[y0, y1]) in rows.iter().enumerate() {
                    for ox in 0..ow {
                        out[out_at(b, ch, oy, ox)] =
                            (y0..y1).step_by(dy).map(|y| across[((b * c + ch) * h + y) * ow + ox]).fold(f32::NEG_INFINITY, f32::max);
                    }
                }
            }
        }
        return Ok(out);
    }
    let mut out = vec![0f32; n * c * oh * ow];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut acc = if p.kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 };
                    let mut cnt = 0usize;
                    for ky in 0..p.kernel[0] {
                        let iy = (oy * p.strides[0] + ky * p.dilations[0]) as isize - pt as isize;
                        for kx in 0..p.kernel[1] {
                            let ix = (ox * p.strides[1] + kx * p.dilations[1]) as isize - pl as isize;
                            if iy < 0 || iy >= h as isize || ix < 0 || ix >= w as isize {
                                if p.count_include_pad {
                                    cnt += 1;
                                }
                                continue;
                            }
                            let v = x[b * bs + ch * cs + iy as usize * ys + ix as usize * xs];
                            cnt += 1;
                            if p.kind == PoolKind::Max {
                                acc = acc.max(v);
                            } else {
                                acc += v;
                            }
                        }
                    }
                    if p.kind == PoolKind::Avg {
                        acc /= cnt.max(1) as f32;
                    }
                    let o = match p.layout {
                        Layout::Nhwc => ((b * oh + oy) * ow + ox) * c + ch,
                        Layout::Nchw => ((b * c + ch) * oh + oy) * ow + ox,
                    };
                    out[o] = acc;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain scan the f32 path must equal: first maximum wins, NaN never replaces the
    /// running best.
    fn scan(v: &[f32], outer: usize, n: usize, inner: usize) -> Vec<i64> {
        let mut out = Vec::new();
        for o in 0..outer {
            for i in 0..inner {
                let (mut b, mut bi) = (v[o * n * inner + i], 0);
                for j in 1..n {
                    let x = v[(o * n + j) * inner + i];
                    if x > b {
                        b = x;
                        bi = j as i64;
                    }
                }
                out.push(bi);
            }
        }
        out
    }

    #[test]
    fn argmax_on_f32_equals_the_plain_scan() {
        // MoveNet's shape (4096 x 102), with ties, NaNs in the first row and later, and
        // -inf columns
        let (n, inner) = (4096, 102);
        let mut v: Vec<f32> = (0..n * inner).map(|k| ((k * 7919) % 1000) as f32 / 10.0).collect();
        for i in 0..inner {
            v[i * 3 % (n * inner)] = 100.0; // ties between rows 0.. and later rows
            v[(n - 1) * inner + i] = 100.0;
        }
        v[5] = f32::NAN;
        v[(n / 2) * inner + 6] = f32::NAN;
        for j in 0..n {
            v[j * inner + 7] = f32::NEG_INFINITY;
        }
        // NaNs starting the ranges that threads scan side by side (of 4096 / 6 and / 4 rows)
        for start in [683, 1024, 1366, 2048, 3072] {
            v[start * inner + 8] = f32::NAN;
        }
        let x = Tensor::f32(vec![n, inner], v.clone());
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let got = pool.install(|| argmax(&x, 0, vec![inner], false));
            assert_eq!(got.to_i64_vec().unwrap(), scan(&v, 1, n, inner), "{threads} threads");
        }
        // and over the last axis of a batch of short rows
        let x = Tensor::f32(vec![3, 5, 4], v[..60].to_vec());
        let got = argmax(&x, 1, vec![3, 4], false);
        assert_eq!(got.to_i64_vec().unwrap(), scan(&v[..60], 3, 5, 4));
    }

    #[test]
    fn reduce_in_blocks_of_rows_equals_the_plain_loop() {
        let (outer, r, inner) = (4096, 6, 17);
        let v: Vec<f32> = (0..outer * r * inner).map(|k| ((k * 31) % 997) as f32 - 400.0).collect();
        for op in [ReduceOp::Max, ReduceOp::Sum] {
            let got = reduce_f32(&v, outer, r, inner, op);
            for o in 0..outer {
                for i in 0..inner {
                    let xs = (0..r).map(|j| v[(o * r + j) * inner + i]);
                    let want = if op == ReduceOp::Max { xs.fold(f32::NEG_INFINITY, f32::max) } else { xs.sum() };
                    assert_eq!(got[o * inner + i], want, "{op:?} at {o},{i}");
                }
            }
        }
    }
}
