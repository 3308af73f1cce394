//! Data-movement reference kernels: concat, split, slices, gather, pad, tile, top-k,
//! select and transpose.

use super::*;

pub(crate) fn concat(ins: &[&Tensor], axis: usize, stack: bool) -> R<Tensor> {
    let dt = ins[0].dtype();
    if ins.iter().any(|t| t.dtype() != dt) {
        return Err("inputs differ in dtype".into());
    }
    let shape = &ins[0].shape;
    let outer: usize = shape[..axis].iter().product();
    let inners: Vec<usize> = ins.iter().map(|t| t.shape[axis..].iter().product()).collect();
    let mut out_shape = shape.clone();
    if stack {
        out_shape.insert(axis, ins.len());
    } else {
        out_shape[axis] = ins.iter().map(|t| t.shape[axis]).sum();
    }
    macro_rules! cat {
        ($variant:ident) => {{
            let mut v = Vec::with_capacity(numel(&out_shape));
            for o in 0..outer {
                for (t, &inner) in ins.iter().zip(&inners) {
                    if let TensorData::$variant(d) = &t.data {
                        v.extend_from_slice(&d[o * inner..(o + 1) * inner]);
                    }
                }
            }
            TensorData::$variant(v)
        }};
    }
    let data = match dt {
        DType::F32 => cat!(F32),
        DType::F16 => cat!(F16),
        DType::I32 => cat!(I32),
        DType::I64 => cat!(I64),
        DType::U8 => cat!(U8),
        DType::Bool => cat!(Bool),
    };
    Ok(Tensor::new(out_shape, data))
}

pub(crate) fn split(x: &Tensor, axis: usize, num: usize) -> Vec<Tensor> {
    split_parts(x, axis, &vec![x.shape[axis] / num; num])
}

pub fn split_sizes(dim: usize, sizes: &[usize], num: usize) -> R<Vec<usize>> {
    if sizes.is_empty() {
        if num == 0 {
            return Err("split into 0 parts".into());
        }
        // ONNX 18+: the last part may be smaller
        let part = dim.div_ceil(num);
        let mut v = vec![part; num];
        v[num - 1] = dim.saturating_sub(part * (num - 1));
        return Ok(v);
    }
    if sizes.iter().sum::<usize>() != dim {
        return Err(format!("split sizes {sizes:?} do not add up to {dim}"));
    }
    Ok(sizes.to_vec())
}

pub(crate) fn split_parts(x: &Tensor, axis: usize, parts: &[usize]) -> Vec<Tensor> {
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let mut start = 0;
    parts
        .iter()
        .map(|&part| {
            let mut shape = x.shape.clone();
            shape[axis] = part;
            let data = map_data!(&x.data, v => {
                let mut o = Vec::with_capacity(outer * part * inner);
                for a in 0..outer {
                    let base = (a * x.shape[axis] + start) * inner;
                    o.extend_from_slice(&v[base..base + part * inner]);
                }
                o
            });
            start += part;
            Tensor::new(shape, data)
        })
        .collect()
}

/// ONNX Slice resolved per input dim to (begin, step, len).
pub fn onnx_slice_dims(
    shape: &[usize],
    starts: Option<&Tensor>,
    ends: Option<&Tensor>,
    axes: Option<&Tensor>,
    steps: Option<&Tensor>,
) -> R<Vec<(i64, i64, usize)>> {
    let starts = const_ints(starts, "slice starts")?;
    let ends = const_ints(ends, "slice ends")?;
    let r = shape.len();
    let axes: Vec<i64> = match axes {
        Some(t) if t.numel() > 0 => const_ints(Some(t), "slice axes")?,
        _ => (0..starts.len() as i64).collect(),
    };
    let steps: Vec<i64> = match steps {
        Some(t) if t.numel() > 0 => const_ints(Some(t), "slice steps")?,
        _ => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("slice starts, ends, axes and steps differ in length".into());
    }
    let mut dims: Vec<(i64, i64, usize)> = shape.iter().map(|&d| (0, 1, d)).collect();
    for i in 0..starts.len() {
        let a = norm_axis(axes[i], r)?;
        let d = shape[a] as i64;
        let s = steps[i];
        if s == 0 {
            return Err("slice step 0".into());
        }
        let clampi = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
        let (b, e) = if s > 0 {
            let b = if starts[i] < 0 { starts[i] + d } else { starts[i] };
            let e = if ends[i] < 0 { ends[i] + d } else { ends[i] };
            (clampi(b, 0, d), clampi(e, 0, d))
        } else {
            let b = if starts[i] < 0 { starts[i] + d } else { starts[i] };
            let e = if ends[i] < 0 { ends[i].saturating_add(d) } else { ends[i] };
            (clampi(b, 0, d - 1), clampi(e, -1, d - 1))
        };
        let len = if s > 0 { (e - b + s - 1) / s } else { (b - e + (-s) - 1) / (-s) };
        dims[a] = (b, s, len.max(0) as usize);
    }
    Ok(dims)
}

pub(crate) fn gather(x: &Tensor, idx: &Tensor, axis: usize, out_shape: Vec<usize>) -> R<Tensor> {
    let ids = idx.to_i64_vec().ok_or("gather indices must be integers")?;
    let d = x.shape[axis] as i64;
    let ids: Vec<usize> = ids
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + d } else { i };
            if j < 0 || j >= d {
                Err(format!("gather index {i} out of range for dim {axis} of size {d}"))
            } else {
                Ok(j as usize)
            }
        })
        .collect::<R<_>>()?;
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let data = map_data!(&x.data, v => {
        let mut o = Vec::with_capacity(outer * ids.len() * inner);
        for a in 0..outer {
            for &j in &ids {
                let base = (a * d as usize + j) * inner;
                o.extend_from_slice(&v[base..base + inner]);
            }
        }
        o
    });
    Ok(Tensor::new(out_shape, data))
}

pub(crate) fn softmax(x: &Tensor, axis: usize, legacy: bool, log: bool) -> Tensor {
    let v = f32_of(x);
    let (outer, n, inner) = if legacy {
        (x.shape[..axis].iter().product::<usize>(), x.shape[axis..].iter().product::<usize>(), 1)
    } else {
        (x.shape[..axis].iter().product(), x.shape[axis], x.shape[axis + 1..].iter().product())
    };
    let mut out = vec![0f32; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let m = (0..n).map(|j| v[at(j)]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for j in 0..n {
                let e = (v[at(j)] - m).exp();
                out[at(j)] = e;
                sum += e;
            }
            if log {
                let ls = sum.ln();
                for j in 0..n {
                    out[at(j)] = v[at(j)] - m - ls;
                }
            } else {
                for j in 0..n {
                    out[at(j)] /= sum;
                }
            }
        }
    }
    Tensor::f32(x.shape.clone(), out).cast(x.dtype())
}

pub(crate) fn pad(x: &Tensor, p: &[i64], mode: PadMode, value: f64, out_shape: &[usize]) -> Tensor {
    let r = x.rank();
    let n = numel(out_shape);
    let st = strides(&x.shape);
    // source offset per output element, or None for the constant
    let mut idx = vec![0usize; r];
    let mut src: Vec<Option<usize>> = Vec::with_capacity(n);
    for _ in 0..n {
        let mut off = Some(0usize);
        for d in 0..r {
            let size = x.shape[d] as i64;
            let mut i = idx[d] as i64 - p[d];
            if i < 0 || i >= size {
                match mode {
                    PadMode::Constant => {
                        off = None;
                        break;
                    }
                    PadMode::Edge => i = i.clamp(0, size - 1),
                    PadMode::Reflect => {
                        if size == 1 {
                            i = 0;
                        } else {
                            let period = 2 * (size - 1);
                            i = i.rem_euclid(period);
                            if i >= size {
                                i = period - i;
                            }
                        }
                    }
                }
            }
            off = off.map(|o| o + i as usize * st[d]);
        }
        src.push(off);
        for d in (0..r).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let fill = Tensor::f32(vec![1], vec![value as f32]).cast(x.dtype());
    let data = match (&x.data, &fill.data) {
        (TensorData::F32(v), TensorData::F32(c)) => TensorData::F32(src.iter().map(|o| o.map_or(c[0], |o| v[o])).collect()),
        (TensorData::F16(v), TensorData::F16(c)) => TensorData::F16(src.iter().map(|o| o.map_or(c[0], |o| v[o])).collect()),
        (TensorData::I32(v), TensorData::I32(c)) => TensorData::I32(src.iter().map(|o| o.map_or(c[0], |o| v[o])).collect()),
        (TensorData::I64(v), TensorData::I64(c)) => TensorData::I64(src.iter().map(|o| o.map_or(c[0], |o| v[o])).collect()),
        (TensorData::U8(v), TensorData::U8(c)) => TensorData::U8(src.iter().map(|o| o.map_or(c[0], |o| v[o])).collect()),
        (TensorData::Bool(v), TensorData::Bool(c)) => TensorData::Bool(src.iter().map(|o| o.map_or(c[0], |o| v[o])).collect()),
        _ => TensorData::zeros(x.dtype(), n),
    };
    Tensor::new(out_shape.to_vec(), data)
}

/// Output size of a pooling window along one axis (ONNX ceil_mode aware).
pub(crate) fn pool_out_dim(input: usize, p: &PoolAttrs, axis: usize) -> R<usize> {
    let (out, _) = conv_out_dim(input, p.kernel[axis], p.strides[axis], p.dilations[axis], &p.padding, axis)?;
    if !p.ceil_mode {
        return Ok(out);
    }
    if let Padding::Explicit(pd) = &p.padding {
        let (b, e) = if axis == 0 { (pd[0], pd[2]) } else { (pd[1], pd[3]) };
        let span = input + b + e - ((p.kernel[axis] - 1) * p.dilations[axis] + 1);
        let mut o = span.div_ceil(p.strides[axis]) + 1;
        // the last window must start inside the input or the leading pad
        if (o - 1) * p.strides[axis] >= input + b {
            o -= 1;
        }
        return Ok(o);
    }
    Ok(out)
}

pub(crate) fn tile<T: Copy>(v: &[T], in_shape: &[usize], _reps: &[i64], out_shape: &[usize]) -> Vec<T> {
    let st = strides(in_shape);
    let n = numel(out_shape);
    let rank = out_shape.len();
    let mut idx = vec![0usize; rank];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let off: usize = (0..rank).map(|d| (idx[d] % in_shape[d]) * st[d]).sum();
        out.push(v[off]);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

pub(crate) fn gather_nd(p: &Tensor, ix: &Tensor, out_shape: Vec<usize>) -> R<Tensor> {
    let (offs, slice) = gather_nd_offsets(&p.shape, ix)?;
    let data = map_data!(&p.data, v => {
        let mut o = Vec::with_capacity(offs.len() * slice);
        for &off in &offs {
            o.extend_from_slice(&v[off..off + slice]);
        }
        o
    });
    Ok(Tensor::new(out_shape, data))
}

/// GatherNd's source offsets into `shape` (one per index row) and the length of each
/// gathered slice; an index outside its dimension is an error.
pub fn gather_nd_offsets(shape: &[usize], ix: &Tensor) -> R<(Vec<usize>, usize)> {
    let idx = ix.to_i64_vec().ok_or("indices must be integers")?;
    let k = *ix.shape.last().unwrap_or(&0);
    if k > shape.len() {
        return Err(format!("index rows of {k} for a rank-{} tensor", shape.len()));
    }
    let slice: usize = shape[k..].iter().product();
    let st = strides(shape);
    let rows = idx.len().checked_div(k).unwrap_or(0);
    let mut offs = Vec::with_capacity(rows);
    for r in 0..rows {
        let mut off = 0usize;
        for j in 0..k {
            let i = idx[r * k + j];
            if i < 0 || i as usize >= shape[j] {
                return Err(format!("index {i} out of range for dim {j} of size {}", shape[j]));
            }
            off += i as usize * st[j];
        }
        offs.push(off);
    }
    Ok((offs, slice))
}

/// Top-k along `axis`, sorted; ties broken by lower index (as TF.js and the ONNX spec).
/// Indices come back as i64.
pub fn topk_axis(x: &Tensor, k: usize, axis: usize, largest: bool) -> R<(Tensor, Tensor)> {
    let r = x.rank();
    if axis + 1 != r {
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(axis, r - 1);
        let (v, i) = topk_axis(&transpose(x, &perm), k, r - 1, largest)?;
        return Ok((transpose(&v, &perm), transpose(&i, &perm)));
    }
    let v = x.to_f64_vec();
    let last = *x.shape.last().ok_or("topk of a scalar")?;
    let rows = v.len().checked_div(last).unwrap_or(0);
    let mut vals = Vec::with_capacity(rows * k);
    let mut idx = Vec::with_capacity(rows * k);
    if k > last {
        return Err(format!("topk of {k} along an axis of {last}"));
    }
    // a total order, as sorting requires: NaN above every number, equal values (0 and -0
    // too) by index
    let ord = |x: f64, y: f64| match (x.is_nan(), y.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
    };
    for r in 0..rows {
        let row = &v[r * last..(r + 1) * last];
        let cmp = |&a: &usize, &b: &usize| {
            let o = if largest { ord(row[b], row[a]) } else { ord(row[a], row[b]) };
            o.then(a.cmp(&b))
        };
        let mut order: Vec<usize> = (0..last).collect();
        // the k first in linear time, then only those sorted (MoveNet: 6 of 4096)
        if k > 0 && k < last {
            order.select_nth_unstable_by(k - 1, cmp);
        }
        order[..k].sort_by(cmp);
        for &i in &order[..k] {
            vals.push(row[i]);
            idx.push(i as i64);
        }
    }
    let mut shape = x.shape.clone();
    *shape.last_mut().ok_or("topk of a scalar")? = k;
    let vt = Tensor::f32(shape.clone(), vals.iter().map(|&a| a as f32).collect());
    let vt = match x.dtype() {
        DType::I64 => Tensor::i64(shape.clone(), vals.iter().map(|&a| a as i64).collect()),
        dt => vt.cast(dt),
    };
    Ok((vt, Tensor::i64(shape, idx)))
}

pub(crate) fn select(c: &Tensor, a: &Tensor, b: &Tensor, out: &[usize]) -> R<Tensor> {
    let cv = c.cast(DType::Bool);
    let TensorData::Bool(cv) = &cv.data else {
        return Err("condition must be bool".into());
    };
    let b = b.cast(a.dtype());
    let offs = broadcast_offsets(out, &[&c.shape, &a.shape, &b.shape]);
    macro_rules! sel {
        ($variant:ident, $x:expr, $y:expr) => {
            TensorData::$variant((0..numel(out)).map(|i| if cv[offs[0][i]] { $x[offs[1][i]] } else { $y[offs[2][i]] }).collect())
        };
    }
    let data = match (&a.data, &b.data) {
        (TensorData::F32(x), TensorData::F32(y)) => sel!(F32, x, y),
        (TensorData::F16(x), TensorData::F16(y)) => sel!(F16, x, y),
        (TensorData::I32(x), TensorData::I32(y)) => sel!(I32, x, y),
        (TensorData::I64(x), TensorData::I64(y)) => sel!(I64, x, y),
        (TensorData::U8(x), TensorData::U8(y)) => sel!(U8, x, y),
        (TensorData::Bool(x), TensorData::Bool(y)) => sel!(Bool, x, y),
        _ => return Err("select operands differ in dtype".into()),
    };
    Ok(Tensor::new(out.to_vec(), data))
}

pub fn transpose(x: &Tensor, perm: &[usize]) -> Tensor {
    let out_shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let st = strides(&x.shape);
    let dims: Vec<(usize, usize)> = perm.iter().map(|&p| (x.shape[p], st[p])).collect();
    let n = x.numel();
    let rank = dims.len();
    let mut offs = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    let mut cur = 0usize;
    for _ in 0..n {
        offs.push(cur);
        for d in (0..rank).rev() {
            idx[d] += 1;
            cur += dims[d].1;
            if idx[d] < dims[d].0 {
                break;
            }
            cur -= dims[d].1 * idx[d];
            idx[d] = 0;
        }
    }
    let data = map_data!(&x.data, v => offs.iter().map(|&o| v[o]).collect());
    Tensor::new(out_shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TopK takes what a stable full sort takes: the largest (or smallest) first, ties by
    /// index, NaN above every number; k past the axis is an error, not a panic.
    #[test]
    fn topk_takes_what_a_full_sort_takes() {
        let row: Vec<f32> = vec![3.0, -1.0, 3.0, f32::NAN, 0.0, -0.0, 7.5, 3.0, -1.0, 2.0];
        let n = row.len();
        let x = Tensor::f32(vec![2, n], row.iter().chain(row.iter().rev()).copied().collect());
        let key = |v: f32| if v.is_nan() { f64::INFINITY } else { v as f64 };
        for largest in [true, false] {
            for k in [0, 1, 3, 6, n] {
                let (vals, idx) = topk_axis(&x, k, 1, largest).unwrap();
                for r in 0..2 {
                    let data: Vec<f32> = x.as_f32().unwrap()[r * n..(r + 1) * n].to_vec();
                    let mut order: Vec<usize> = (0..n).collect();
                    // NaN as +inf, above 7.5; the row has no infinity of its own
                    order.sort_by(|&a, &b| {
                        let (p, q) = (key(data[a]), key(data[b]));
                        (if largest { q.partial_cmp(&p) } else { p.partial_cmp(&q) }).unwrap().then(a.cmp(&b))
                    });
                    let got: Vec<i64> = idx.to_i64_vec().unwrap()[r * k..(r + 1) * k].to_vec();
                    let want: Vec<i64> = order[..k].iter().map(|&i| i as i64).collect();
                    assert_eq!(got, want, "largest {largest} k {k} row {r}");
                    let v = vals.as_f32().unwrap();
                    for (j, &i) in order[..k].iter().enumerate() {
                        assert!(v[r * k + j].to_bits() == data[i].to_bits() || (v[r * k + j].is_nan() && data[i].is_nan()));
                    }
                }
            }
        }
        assert!(topk_axis(&x, n + 1, 1, true).is_err());
    }
}
