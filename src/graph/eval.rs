//! Reference kernels on host tensors and per-op shape inference. Used for constant folding
//! and by the CPU executor for ops without a dedicated fast kernel.

use super::tensor::{numel, strides};
use super::*;
use crate::map_data;
use half::f16;

type R<T> = std::result::Result<T, String>;

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
fn broadcast_offsets(out: &[usize], ins: &[&[usize]]) -> Vec<Vec<usize>> {
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

fn norm_axis(axis: i64, rank: usize) -> R<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank as i64 {
        return Err(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(a as usize)
}

fn const_ints(c: Option<&Tensor>, what: &str) -> R<Vec<i64>> {
    let t = c.ok_or_else(|| format!("{what} must be a constant once input shapes are fixed"))?;
    t.to_i64_vec().ok_or_else(|| format!("{what} must be an integer tensor, got {}", t.dtype()))
}

fn const_scalar_f64(c: Option<&Tensor>, what: &str) -> R<f64> {
    let t = c.ok_or_else(|| format!("{what} must be a constant"))?;
    t.to_f64_vec().first().copied().ok_or_else(|| format!("{what} is empty"))
}

/// Output spatial size and leading padding for one dimension.
pub fn conv_out_dim(input: usize, k: usize, stride: usize, dil: usize, pad: &Padding, axis: usize) -> R<(usize, usize)> {
    let ek = (k - 1) * dil + 1;
    match pad {
        Padding::Valid => {
            if input < ek {
                return Err(format!("input size {input} smaller than kernel extent {ek}"));
            }
            Ok(((input - ek) / stride + 1, 0))
        }
        Padding::SameUpper | Padding::SameLower => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + ek).saturating_sub(input);
            let before = if matches!(pad, Padding::SameUpper) { total / 2 } else { total.div_ceil(2) };
            Ok((out, before))
        }
        Padding::Explicit(p) => {
            let (b, e) = if axis == 0 { (p[0], p[2]) } else { (p[1], p[3]) };
            let padded = input + b + e;
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

fn gather_slice<T: Copy>(x: &[T], shape: &[usize], dims: &[(i64, i64, usize)]) -> Vec<T> {
    let st = strides(shape);
    let sizes: Vec<usize> = dims.iter().map(|d| d.2).collect();
    let n = numel(&sizes);
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let rank = dims.len();
    let mut idx = vec![0usize; rank];
    loop {
        let mut off = 0i64;
        for k in 0..rank {
            off += (dims[k].0 + dims[k].1 * idx[k] as i64) * st[k] as i64;
        }
        out.push(x[off as usize]);
        let mut k = rank;
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
    let known: usize = out.iter().product();
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

// ---------------------------------------------------------------------------------------------
// Shape inference

/// Output dtypes and shapes of a node, given input dtypes/shapes and constant inputs.
pub fn infer(node: &Node, ins: &[(DType, Vec<usize>)], consts: &[Option<&Tensor>]) -> Result<Vec<(DType, Vec<usize>)>> {
    infer_inner(node, ins, consts).map_err(|m| node.err(m))
}

fn want(ins: &[(DType, Vec<usize>)], n: usize) -> R<()> {
    if ins.len() < n {
        return Err(format!("expects {n} inputs, got {}", ins.len()));
    }
    Ok(())
}

fn infer_inner(node: &Node, ins: &[(DType, Vec<usize>)], consts: &[Option<&Tensor>]) -> R<Vec<(DType, Vec<usize>)>> {
    let c = |i: usize| consts.get(i).copied().flatten();
    let one = |dt: DType, s: Vec<usize>| Ok(vec![(dt, s)]);
    match &node.op {
        Op::Conv2d(a) => {
            want(ins, 2)?;
            let [n, cin, h, w] = nchw_dims(&ins[0].1, a.layout)?;
            let ws = &ins[1].1;
            if ws.len() != 4 {
                return Err(format!("weight must be 4-D HWIO, got {ws:?}"));
            }
            if a.groups == 0 || cin % a.groups != 0 || ws[2] * a.groups != cin {
                return Err(format!("input has {cin} channels but weight {ws:?} expects {} x {} groups", ws[2], a.groups));
            }
            if !ws[3].is_multiple_of(a.groups) {
                return Err(format!("output channels {} not divisible by groups {}", ws[3], a.groups));
            }
            let (oh, _) = conv_out_dim(h, ws[0], a.strides[0], a.dilations[0], &a.padding, 0)?;
            let (ow, _) = conv_out_dim(w, ws[1], a.strides[1], a.dilations[1], &a.padding, 1)?;
            let out = make_4d(n, ws[3], oh, ow, a.layout);
            let mut k = 2;
            if a.has_bias {
                want(ins, k + 1)?;
                if numel(&ins[k].1) != ws[3] {
                    return Err(format!("bias has {} elements, expected {}", numel(&ins[k].1), ws[3]));
                }
                k += 1;
            }
            if a.residual.is_some() {
                want(ins, k + 1)?;
                if ins[k].1 != out {
                    return Err(format!("residual shape {:?} differs from output {:?}", ins[k].1, out));
                }
            }
            one(DType::F32, out)
        }
        Op::Pool(p) => {
            let [n, ch, h, w] = nchw_dims(&ins[0].1, p.layout)?;
            let oh = pool_out_dim(h, p, 0)?;
            let ow = pool_out_dim(w, p, 1)?;
            one(ins[0].0, make_4d(n, ch, oh, ow, p.layout))
        }
        Op::Resize { layout, scales: Some(sc), .. } => {
            let [n, ch, h, w] = nchw_dims(&ins[0].1, *layout)?;
            let oh = (h as f32 * sc[0]).floor() as usize;
            let ow = (w as f32 * sc[1]).floor() as usize;
            if oh == 0 || ow == 0 {
                return Err(format!("scales {sc:?} give an empty output"));
            }
            one(ins[0].0, make_4d(n, ch, oh, ow, *layout))
        }
        Op::Resize { layout, .. } => {
            want(ins, 2)?;
            let [n, ch, _, _] = nchw_dims(&ins[0].1, *layout)?;
            let size = const_ints(c(1), "resize size")?;
            if size.len() != 2 || size.iter().any(|&s| s <= 0) {
                return Err(format!("resize size must be 2 positive values, got {size:?}"));
            }
            one(ins[0].0, make_4d(n, ch, size[0] as usize, size[1] as usize, *layout))
        }
        Op::Binary(b) => {
            want(ins, 2)?;
            let s = broadcast_shapes(&[&ins[0].1, &ins[1].1])?;
            let dt = match b {
                BinOp::Equal | BinOp::Less | BinOp::LessEqual | BinOp::Greater | BinOp::GreaterEqual => DType::Bool,
                _ => ins[0].0,
            };
            one(dt, s)
        }
        Op::Unary(_) | Op::Identity => one(ins[0].0, ins[0].1.clone()),
        Op::AddN => {
            let shapes: Vec<&[usize]> = ins.iter().map(|i| i.1.as_slice()).collect();
            one(ins[0].0, broadcast_shapes(&shapes)?)
        }
        Op::Cast(dt) => one(*dt, ins[0].1.clone()),
        Op::Shape => one(DType::I32, vec![ins[0].1.len()]),
        Op::Size => one(DType::I32, vec![]),
        Op::Reshape { copy_zero } => {
            want(ins, 2)?;
            let t = const_ints(c(1), "reshape target")?;
            one(ins[0].0, resolve_reshape(&ins[0].1, &t, *copy_zero)?)
        }
        Op::ChannelAffine => {
            want(ins, 3)?;
            let c = ins[0].1.get(1).copied().ok_or("channel affine needs rank >= 2")?;
            if numel(&ins[1].1) != c || numel(&ins[2].1) != c {
                return Err(format!("scale/bias sizes do not match {c} channels"));
            }
            one(ins[0].0, ins[0].1.clone())
        }
        Op::GlobalPool(_) => {
            let s = &ins[0].1;
            if s.len() < 3 {
                return Err(format!("global pooling needs rank >= 3, got {s:?}"));
            }
            one(ins[0].0, s.iter().enumerate().map(|(i, &d)| if i < 2 { d } else { 1 }).collect())
        }
        Op::StridedSlice(m) => {
            want(ins, 4)?;
            let p =
                strided_slice_plan(&ins[0].1, &const_ints(c(1), "begin")?, &const_ints(c(2), "end")?, &const_ints(c(3), "strides")?, m)?;
            one(ins[0].0, p.out_shape)
        }
        Op::Pack { axis } => {
            for i in ins {
                if i.1 != ins[0].1 {
                    return Err(format!("pack inputs differ in shape: {:?} vs {:?}", ins[0].1, i.1));
                }
            }
            let mut s = ins[0].1.clone();
            let a = norm_axis(*axis, s.len() + 1)?;
            s.insert(a, ins.len());
            one(ins[0].0, s)
        }
        Op::Unpack { axis, num } => {
            let mut s = ins[0].1.clone();
            let a = norm_axis(*axis, s.len())?;
            if s[a] != *num {
                return Err(format!("unpack of {num} along axis {a} of shape {s:?}"));
            }
            s.remove(a);
            Ok(vec![(ins[0].0, s); *num])
        }
        Op::Concat => {
            let k = ins.len() - 1;
            let axis = const_ints(c(k), "concat axis")?[0];
            let mut s = ins[0].1.clone();
            let a = norm_axis(axis, s.len())?;
            s[a] = 0;
            for i in &ins[..k] {
                if i.1.len() != s.len() || i.1.iter().enumerate().any(|(d, &v)| d != a && v != s[d]) {
                    return Err(format!("concat inputs {:?} and {:?} differ off axis {a}", ins[0].1, i.1));
                }
                s[a] += i.1[a];
            }
            one(ins[0].0, s)
        }
        Op::Split { num } => {
            want(ins, 2)?;
            let axis = const_ints(c(0), "split axis")?[0];
            let mut s = ins[1].1.clone();
            let a = norm_axis(axis, s.len())?;
            if !s[a].is_multiple_of(*num) {
                return Err(format!("cannot split dim {} of size {} into {num}", a, s[a]));
            }
            s[a] /= num;
            Ok(vec![(ins[1].0, s); *num])
        }
        Op::Squeeze { axes } => {
            let s = &ins[0].1;
            let axes: Vec<usize> = if axes.is_empty() {
                (0..s.len()).filter(|&i| s[i] == 1).collect()
            } else {
                axes.iter().map(|&a| norm_axis(a, s.len())).collect::<R<_>>()?
            };
            for &a in &axes {
                if s[a] != 1 {
                    return Err(format!("cannot squeeze dim {a} of size {} in {s:?}", s[a]));
                }
            }
            let out = s.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect();
            one(ins[0].0, out)
        }
        Op::ExpandDims => {
            let axis = const_ints(c(1), "expand axis")?[0];
            let mut s = ins[0].1.clone();
            let a = norm_axis(axis, s.len() + 1)?;
            s.insert(a, 1);
            one(ins[0].0, s)
        }
        Op::Tile => {
            let m = const_ints(c(1), "tile multiples")?;
            if m.len() != ins[0].1.len() {
                return Err(format!("{} multiples for rank {}", m.len(), ins[0].1.len()));
            }
            one(ins[0].0, ins[0].1.iter().zip(&m).map(|(&d, &k)| d * k.max(0) as usize).collect())
        }
        Op::Fill => {
            let s = const_ints(c(0), "fill shape")?;
            one(ins[1].0, s.iter().map(|&d| d.max(0) as usize).collect())
        }
        Op::Range => {
            let dt = &ins[0].0;
            let start = const_scalar_f64(c(0), "range start")?;
            let limit = const_scalar_f64(c(1), "range limit")?;
            let delta = const_scalar_f64(c(2), "range delta")?;
            if delta == 0.0 {
                return Err("range delta is 0".into());
            }
            let n = ((limit - start) / delta).ceil().max(0.0) as usize;
            one(*dt, vec![n])
        }
        Op::GatherNd => {
            want(ins, 2)?;
            let p = &ins[0].1;
            let ix = &ins[1].1;
            let k = *ix.last().ok_or("indices must have rank >= 1")?;
            if k > p.len() {
                return Err(format!("index depth {k} exceeds params rank {}", p.len()));
            }
            let mut s = ix[..ix.len() - 1].to_vec();
            s.extend_from_slice(&p[k..]);
            one(ins[0].0, s)
        }
        Op::TopK { axis, index, .. } => {
            let k = const_ints(c(1), "k")?[0];
            let mut s = ins[0].1.clone();
            let a = norm_axis(*axis, s.len())?;
            if k < 0 || k as usize > s[a] {
                return Err(format!("k = {k} out of range for dim {a} of size {}", s[a]));
            }
            s[a] = k as usize;
            Ok(vec![(ins[0].0, s.clone()), (*index, s)])
        }
        Op::Select => {
            want(ins, 3)?;
            one(ins[1].0, broadcast_shapes(&[&ins[0].1, &ins[1].1, &ins[2].1])?)
        }
        Op::Reduce { keep_dims, .. } => {
            let s = &ins[0].1;
            let axes = match c(1) {
                Some(t) if t.numel() > 0 => reduce_axes(&const_ints(Some(t), "reduction axes")?, s.len())?,
                _ if ins.len() > 1 && c(1).is_none() => return Err("reduction axes must be constant".into()),
                _ => (0..s.len()).collect(),
            };
            one(ins[0].0, reduced_shape(s, &axes, *keep_dims))
        }
        Op::ArgMax { dtype, keep_dims, .. } => {
            let s = &ins[0].1;
            let a = norm_axis(const_ints(c(1), "argmax axis")?[0], s.len())?;
            let mut o = s.clone();
            if *keep_dims {
                o[a] = 1;
            } else {
                o.remove(a);
            }
            one(*dtype, o)
        }
        Op::Gather { axis } => {
            want(ins, 2)?;
            let s = &ins[0].1;
            let a = norm_axis(*axis, s.len())?;
            let mut o = s[..a].to_vec();
            o.extend_from_slice(&ins[1].1);
            o.extend_from_slice(&s[a + 1..]);
            one(ins[0].0, o)
        }
        Op::Slice => {
            want(ins, 3)?;
            let dims = onnx_slice_dims(&ins[0].1, c(1), c(2), c(3), c(4))?;
            one(ins[0].0, dims.iter().map(|d| d.2).collect())
        }
        Op::Softmax { axis, .. } => {
            norm_axis(*axis, ins[0].1.len())?;
            one(ins[0].0, ins[0].1.clone())
        }
        Op::Pad { .. } => {
            let s = &ins[0].1;
            let p = const_ints(c(1), "pads")?;
            if p.len() != 2 * s.len() {
                return Err(format!("{} pads for rank {}", p.len(), s.len()));
            }
            let r = s.len();
            let o: Vec<i64> = (0..r).map(|i| s[i] as i64 + p[i] + p[r + i]).collect();
            if o.iter().any(|&d| d < 0) {
                return Err(format!("pads {p:?} make a negative size"));
            }
            one(ins[0].0, o.into_iter().map(|d| d as usize).collect())
        }
        Op::Expand => {
            let t = const_ints(c(1), "expand shape")?;
            let t: Vec<usize> = t.iter().map(|&d| d.max(0) as usize).collect();
            one(ins[0].0, broadcast_shapes(&[&ins[0].1, &t])?)
        }
        Op::Unsqueeze { axes } => {
            let r = ins[0].1.len() + axes.len();
            let mut ax: Vec<usize> = axes.iter().map(|&a| norm_axis(a, r)).collect::<R<_>>()?;
            ax.sort_unstable();
            let mut it = ins[0].1.iter();
            let o = (0..r).map(|i| if ax.contains(&i) { 1 } else { *it.next().unwrap_or(&1) }).collect();
            one(ins[0].0, o)
        }
        Op::Flatten { axis } => {
            let s = &ins[0].1;
            let a = if *axis < 0 { *axis + s.len() as i64 } else { *axis };
            if a < 0 || a as usize > s.len() {
                return Err(format!("flatten axis {axis} out of range for rank {}", s.len()));
            }
            let a = a as usize;
            one(ins[0].0, vec![s[..a].iter().product(), s[a..].iter().product()])
        }
        Op::SplitV { axis, sizes, num } => {
            let s = &ins[0].1;
            let a = norm_axis(*axis, s.len())?;
            let parts = split_sizes(s[a], sizes, *num)?;
            Ok(parts
                .iter()
                .map(|&p| {
                    let mut o = s.clone();
                    o[a] = p;
                    (ins[0].0, o)
                })
                .collect())
        }
        Op::ConvTranspose2d(a) => {
            want(ins, 2)?;
            let [n, cin, h, w] = nchw_dims(&ins[0].1, Layout::Nchw)?;
            let ws = &ins[1].1;
            if ws.len() != 4 || ws[0] != cin || a.groups == 0 || cin % a.groups != 0 {
                return Err(format!("weight {ws:?} does not fit {cin} input channels in {} groups", a.groups));
            }
            let od = |i: usize, k: usize, ax: usize| -> R<usize> {
                let v = (i as i64 - 1) * a.strides[ax] as i64 - (a.pads[ax] + a.pads[ax + 2]) as i64
                    + (a.dilations[ax] * (k - 1)) as i64
                    + a.output_padding[ax] as i64
                    + 1;
                if v <= 0 {
                    return Err("empty output".into());
                }
                Ok(v as usize)
            };
            one(DType::F32, vec![n, ws[1] * a.groups, od(h, ws[2], 0)?, od(w, ws[3], 1)?])
        }
        Op::NonMaxSuppression { .. } => Err("output shape depends on the data".into()),
        Op::MatMul { transpose_a, transpose_b } => {
            want(ins, 2)?;
            let (a, b) = (&ins[0].1, &ins[1].1);
            if a.len() < 2 || b.len() < 2 {
                return Err("matmul operands must have rank >= 2".into());
            }
            let (m, ka) = if *transpose_a { (a[a.len() - 1], a[a.len() - 2]) } else { (a[a.len() - 2], a[a.len() - 1]) };
            let (kb, n) = if *transpose_b { (b[b.len() - 1], b[b.len() - 2]) } else { (b[b.len() - 2], b[b.len() - 1]) };
            if ka != kb {
                return Err(format!("matmul inner dims differ: {a:?} x {b:?}"));
            }
            let mut s = broadcast_shapes(&[&a[..a.len() - 2], &b[..b.len() - 2]])?;
            s.push(m);
            s.push(n);
            one(ins[0].0, s)
        }
        Op::Transpose { perm } => {
            let s = &ins[0].1;
            let perm = &full_perm(perm, s.len());
            if perm.len() != s.len() || (0..s.len()).any(|i| !perm.contains(&i)) {
                return Err(format!("perm {perm:?} for rank {}", s.len()));
            }
            one(ins[0].0, perm.iter().map(|&p| s[p]).collect())
        }
    }
}

pub fn full_perm(perm: &[usize], rank: usize) -> Vec<usize> {
    if perm.is_empty() {
        (0..rank).rev().collect()
    } else {
        perm.to_vec()
    }
}

fn channel_affine(x: &Tensor, scale: &[f32], bias: &[f32]) -> Tensor {
    let v = f32_of(x);
    let c = x.shape[1];
    let inner: usize = x.shape[2..].iter().product();
    let out = v
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let ch = (i / inner) % c;
            a * scale[ch] + bias[ch]
        })
        .collect();
    Tensor::f32(x.shape.clone(), out).cast(x.dtype())
}

fn reduce_axes(axes: &[i64], rank: usize) -> R<Vec<usize>> {
    let mut v: Vec<usize> = axes.iter().map(|&a| norm_axis(a, rank)).collect::<R<_>>()?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn reduced_shape(s: &[usize], axes: &[usize], keep: bool) -> Vec<usize> {
    let mut o = Vec::new();
    for (i, &d) in s.iter().enumerate() {
        if axes.contains(&i) {
            if keep {
                o.push(1);
            }
        } else {
            o.push(d);
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Evaluates one node on host tensors.
pub fn eval(node: &Node, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    eval_inner(node, ins).map_err(|m| node.err(m))
}

fn f32_of(t: &Tensor) -> std::borrow::Cow<'_, [f32]> {
    match &t.data {
        TensorData::F32(v) => std::borrow::Cow::Borrowed(v),
        _ => std::borrow::Cow::Owned(t.cast(DType::F32).as_f32().map(|s| s.to_vec()).unwrap_or_default()),
    }
}

fn eval_inner(node: &Node, ins: &[&Tensor]) -> R<Vec<Tensor>> {
    if let Op::NonMaxSuppression { center_point_box } = node.op {
        return Ok(vec![nms(ins, center_point_box)?]);
    }
    let shapes: Vec<(DType, Vec<usize>)> = ins.iter().map(|t| (t.dtype(), t.shape.clone())).collect();
    let consts: Vec<Option<&Tensor>> = ins.iter().map(|t| Some(*t)).collect();
    let outs = infer_inner(node, &shapes, &consts)?;
    let out_shape = outs[0].1.clone();
    let one = |t: Tensor| Ok(vec![t]);
    match &node.op {
        Op::Conv2d(a) => one(conv2d_ref(a, ins, &out_shape)?),
        Op::Pool(p) => {
            let x = f32_of(ins[0]);
            one(Tensor::f32(out_shape.clone(), pool_f32(p, &x, &ins[0].shape, &out_shape)?).cast(ins[0].dtype()))
        }
        op @ Op::Resize { .. } => {
            let x = f32_of(ins[0]);
            let y = resize_f32(&x, &ins[0].shape, &out_shape, op)?;
            one(Tensor::f32(out_shape, y).cast(ins[0].dtype()))
        }
        Op::Binary(b) => one(binary(*b, ins[0], ins[1])?),
        Op::Unary(u) => one(unary(*u, ins[0])?),
        Op::AddN => {
            let mut acc = ins[0].clone();
            for t in &ins[1..] {
                acc = binary(BinOp::Add, &acc, t)?;
            }
            one(acc)
        }
        Op::Cast(dt) => one(ins[0].cast(*dt)),
        Op::Shape => one(Tensor::i32(out_shape, ins[0].shape.iter().map(|&d| d as i32).collect())),
        Op::Size => one(Tensor::i32(vec![], vec![ins[0].numel() as i32])),
        Op::ChannelAffine => one(channel_affine(ins[0], &f32_of(ins[1]), &f32_of(ins[2]))),
        Op::GlobalPool(kind) => {
            let op = if *kind == PoolKind::Max { ReduceOp::Max } else { ReduceOp::Mean };
            let axes: Vec<usize> = (2..ins[0].rank()).collect();
            one(reduce(ins[0], &axes, op, true))
        }
        Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims | Op::Identity => one(ins[0].clone().reshaped(out_shape)),
        Op::StridedSlice(m) => {
            let ints = |i: usize| ins[i].to_i64_vec().ok_or("slice args must be integers");
            let p = strided_slice_plan(&ins[0].shape, &ints(1)?, &ints(2)?, &ints(3)?, m)?;
            let shape = &ins[0].shape;
            let data = map_data!(&ins[0].data, v => gather_slice(v, shape, &p.dims));
            one(Tensor::new(p.out_shape, data))
        }
        Op::Pack { axis } => {
            let a = norm_axis(*axis, ins[0].rank() + 1)?;
            let mut t = concat(ins, a, true)?;
            t.shape = out_shape;
            one(t)
        }
        Op::Unpack { axis, num } => {
            let a = norm_axis(*axis, ins[0].rank())?;
            let parts = split(ins[0], a, *num);
            Ok(parts.into_iter().map(|p| p.reshaped(outs[0].1.clone())).collect())
        }
        Op::Concat => {
            let k = ins.len() - 1;
            let axis = ins[k].to_i64_vec().ok_or("axis must be an integer")?[0];
            let a = norm_axis(axis, ins[0].rank())?;
            one(concat(&ins[..k], a, false)?)
        }
        Op::Split { num } => {
            let axis = ins[0].to_i64_vec().ok_or("axis must be an integer")?[0];
            let a = norm_axis(axis, ins[1].rank())?;
            Ok(split(ins[1], a, *num))
        }
        Op::Tile => {
            let reps = ins[1].to_i64_vec().ok_or("multiples must be integers")?;
            let x = ins[0];
            let in_shape = &x.shape;
            let dims: Vec<(i64, i64, usize)> = vec![];
            let _ = dims;
            let data = map_data!(&x.data, v => tile(v, in_shape, &reps, &out_shape));
            one(Tensor::new(out_shape, data))
        }
        Op::Fill => {
            let n = numel(&out_shape);
            let data = map_data!(&ins[1].data, v => vec![v[0]; n]);
            one(Tensor::new(out_shape, data))
        }
        Op::Range => {
            let dt = &ins[0].dtype();
            let s = ins[0].to_f64_vec()[0];
            let d = ins[2].to_f64_vec()[0];
            let n = out_shape[0];
            let v: Vec<f64> = (0..n).map(|i| s + d * i as f64).collect();
            let t = Tensor::new(vec![n], TensorData::F32(v.iter().map(|&x| x as f32).collect()));
            one(match dt {
                DType::I32 => Tensor::i32(vec![n], v.iter().map(|&x| x as i32).collect()),
                DType::I64 => Tensor::i64(vec![n], v.iter().map(|&x| x as i64).collect()),
                _ => t.cast(*dt),
            })
        }
        Op::GatherNd => one(gather_nd(ins[0], ins[1], out_shape)?),
        Op::TopK { axis, largest, index } => {
            let k = ins[1].to_i64_vec().ok_or("k must be an integer")?[0] as usize;
            let a = norm_axis(*axis, ins[0].rank())?;
            let (v, i) = topk_axis(ins[0], k, a, *largest)?;
            Ok(vec![v, i.cast(*index)])
        }
        Op::Select => one(select(ins[0], ins[1], ins[2], &out_shape)?),
        Op::Reduce { op, keep_dims } => {
            let axes = match ins.get(1) {
                Some(t) if t.numel() > 0 => reduce_axes(&t.to_i64_vec().ok_or("axes must be integers")?, ins[0].rank())?,
                _ => (0..ins[0].rank()).collect(),
            };
            one(reduce(ins[0], &axes, *op, *keep_dims))
        }
        Op::ArgMax { dtype, select_last, .. } => {
            let a = norm_axis(ins[1].to_i64_vec().ok_or("axis must be an integer")?[0], ins[0].rank())?;
            one(argmax(ins[0], a, out_shape, *select_last).cast(*dtype))
        }
        Op::Gather { axis } => one(gather(ins[0], ins[1], norm_axis(*axis, ins[0].rank())?, out_shape)?),
        Op::Slice => {
            let dims = onnx_slice_dims(&ins[0].shape, ins.get(1).copied(), ins.get(2).copied(), ins.get(3).copied(), ins.get(4).copied())?;
            let shape = &ins[0].shape;
            let data = map_data!(&ins[0].data, v => gather_slice(v, shape, &dims));
            one(Tensor::new(out_shape, data))
        }
        Op::Softmax { axis, legacy } => one(softmax(ins[0], norm_axis(*axis, ins[0].rank())?, *legacy)),
        Op::Pad { mode } => {
            let p = ins[1].to_i64_vec().ok_or("pads must be integers")?;
            let value = ins.get(2).map(|t| t.to_f64_vec().first().copied().unwrap_or(0.0)).unwrap_or(0.0);
            one(pad(ins[0], &p, *mode, value, &out_shape))
        }
        Op::Expand => {
            let offs = broadcast_offsets(&out_shape, &[&ins[0].shape]);
            let data = map_data!(&ins[0].data, v => offs[0].iter().map(|&o| v[o]).collect());
            one(Tensor::new(out_shape, data))
        }
        Op::Unsqueeze { .. } | Op::Flatten { .. } => one(ins[0].clone().reshaped(out_shape)),
        Op::SplitV { axis, sizes, num } => {
            let a = norm_axis(*axis, ins[0].rank())?;
            let parts = split_sizes(ins[0].shape[a], sizes, *num)?;
            Ok(split_parts(ins[0], a, &parts))
        }
        Op::ConvTranspose2d(a) => one(conv_transpose_ref(a, ins, &out_shape)?),
        Op::NonMaxSuppression { center_point_box } => one(nms(ins, *center_point_box)?),
        Op::MatMul { transpose_a, transpose_b } => one(matmul_ref(ins[0], ins[1], *transpose_a, *transpose_b, out_shape)?),
        Op::Transpose { perm } => one(transpose(ins[0], &full_perm(perm, ins[0].rank()))),
    }
}

macro_rules! zip_num {
    ($a:expr, $b:expr, $sa:expr, $sb:expr, $out:expr, |$x:ident, $y:ident| $e:expr) => {{
        let offs = broadcast_offsets($out, &[$sa, $sb]);
        offs[0]
            .iter()
            .zip(&offs[1])
            .map(|(&i, &j)| {
                let $x = $a[i];
                let $y = $b[j];
                $e
            })
            .collect::<Vec<_>>()
    }};
}

/// Broadcasting binary op. Both inputs are promoted to the first input's dtype.
pub fn binary(op: BinOp, a: &Tensor, b: &Tensor) -> R<Tensor> {
    let out = broadcast_shapes(&[&a.shape, &b.shape])?;
    let b = if b.dtype() != a.dtype() { b.cast(a.dtype()) } else { b.clone() };
    let (sa, sb) = (&a.shape[..], &b.shape[..]);
    use BinOp::*;
    let cmp = matches!(op, Equal | Less | LessEqual | Greater | GreaterEqual);
    if cmp {
        let x = a.to_f64_vec();
        let y = b.to_f64_vec();
        let v = zip_num!(x, y, sa, sb, &out, |p, q| match op {
            Equal => p == q,
            Less => p < q,
            LessEqual => p <= q,
            Greater => p > q,
            _ => p >= q,
        });
        return Ok(Tensor::new(out, TensorData::Bool(v)));
    }
    let data = match (&a.data, &b.data) {
        (TensorData::F32(x), TensorData::F32(y)) => TensorData::F32(binary_f32(op, x, sa, y, sb, &out)),
        (TensorData::F16(x), TensorData::F16(y)) => {
            TensorData::F16(zip_num!(x, y, sa, sb, &out, |p, q| f16::from_f32(bin_f32(op, p.to_f32(), q.to_f32()))))
        }
        (TensorData::I32(x), TensorData::I32(y)) => {
            TensorData::I32(zip_num!(x, y, sa, sb, &out, |p, q| bin_i64(op, p as i64, q as i64) as i32))
        }
        (TensorData::I64(x), TensorData::I64(y)) => TensorData::I64(zip_num!(x, y, sa, sb, &out, |p, q| bin_i64(op, p, q))),
        (TensorData::U8(x), TensorData::U8(y)) => {
            TensorData::U8(zip_num!(x, y, sa, sb, &out, |p, q| bin_i64(op, p as i64, q as i64) as u8))
        }
        (TensorData::Bool(x), TensorData::Bool(y)) => TensorData::Bool(zip_num!(x, y, sa, sb, &out, |p, q| match op {
            And | Mul | Min => p && q,
            Or | Add | Max => p || q,
            _ => p != q,
        })),
        _ => return Err(format!("unsupported operand types {} and {}", a.dtype(), b.dtype())),
    };
    Ok(Tensor::new(out, data))
}

/// Broadcasting f32 binary op: rows of the innermost dim, split across threads when large.
pub fn binary_f32(op: BinOp, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize]) -> Vec<f32> {
    use rayon::prelude::*;
    let n = numel(out);
    if sa == sb {
        let f = |(&p, &q): (&f32, &f32)| bin_f32(op, p, q);
        return if n > PAR_MIN { a.par_iter().zip(b).map(f).collect() } else { a.iter().zip(b).map(f).collect() };
    }
    let rank = out.len().max(1);
    let out: Vec<usize> = if out.is_empty() { vec![1] } else { out.to_vec() };
    let bstrides = |s: &[usize]| {
        let st = strides(s);
        let off = rank - s.len();
        let mut v = vec![0usize; rank];
        for i in 0..s.len() {
            if s[i] != 1 {
                v[off + i] = st[i];
            }
        }
        v
    };
    let (ta, tb) = (bstrides(sa), bstrides(sb));
    let inner = out[rank - 1];
    let (ia, ib) = (ta[rank - 1], tb[rank - 1]);
    let mut res = vec![0f32; n];
    if n == 0 {
        return res;
    }
    let row = |r: usize, dst: &mut [f32]| {
        let (mut oa, mut ob) = (0usize, 0usize);
        let mut rem = r;
        for d in (0..rank - 1).rev() {
            let i = rem % out[d];
            rem /= out[d];
            oa += i * ta[d];
            ob += i * tb[d];
        }
        match (ia, ib) {
            (1, 1) => dst.iter_mut().zip(&a[oa..oa + inner]).zip(&b[ob..ob + inner]).for_each(|((o, &p), &q)| *o = bin_f32(op, p, q)),
            (1, 0) => {
                let q = b[ob];
                dst.iter_mut().zip(&a[oa..oa + inner]).for_each(|(o, &p)| *o = bin_f32(op, p, q))
            }
            (0, 1) => {
                let p = a[oa];
                dst.iter_mut().zip(&b[ob..ob + inner]).for_each(|(o, &q)| *o = bin_f32(op, p, q))
            }
            _ => dst.iter_mut().for_each(|o| *o = bin_f32(op, a[oa], b[ob])),
        }
    };
    if n > PAR_MIN {
        res.par_chunks_mut(inner).enumerate().for_each(|(r, dst)| row(r, dst));
    } else {
        res.chunks_mut(inner).enumerate().for_each(|(r, dst)| row(r, dst));
    }
    res
}

/// Element count above which elementwise kernels split work across threads.
pub const PAR_MIN: usize = 1 << 15;

#[inline(always)]
pub fn bin_f32(op: BinOp, p: f32, q: f32) -> f32 {
    use BinOp::*;
    match op {
        Add => p + q,
        Sub => p - q,
        Mul => p * q,
        Div => p / q,
        FloorDiv => (p / q).floor(),
        Max => p.max(q),
        Min => p.min(q),
        Pow => p.powf(q),
        SquaredDifference => (p - q) * (p - q),
        PRelu => {
            if p < 0.0 {
                p * q
            } else {
                p
            }
        }
        And => ((p != 0.0) && (q != 0.0)) as u8 as f32,
        Or => ((p != 0.0) || (q != 0.0)) as u8 as f32,
        _ => f32::NAN,
    }
}

fn bin_i64(op: BinOp, p: i64, q: i64) -> i64 {
    use BinOp::*;
    match op {
        Add => p.wrapping_add(q),
        Sub => p.wrapping_sub(q),
        Mul => p.wrapping_mul(q),
        Div => {
            if q == 0 {
                0
            } else {
                p.wrapping_div(q)
            }
        }
        FloorDiv => {
            if q == 0 {
                0
            } else {
                p.div_euclid(q) - if q < 0 && p.rem_euclid(q) != 0 { 1 } else { 0 }
            }
        }
        Max => p.max(q),
        Min => p.min(q),
        Pow => (p as f64).powf(q as f64) as i64,
        SquaredDifference => (p - q) * (p - q),
        PRelu => {
            if p < 0 {
                p * q
            } else {
                p
            }
        }
        And => ((p != 0) && (q != 0)) as i64,
        Or => ((p != 0) || (q != 0)) as i64,
        _ => 0,
    }
}

#[inline(always)]
pub fn un_f32(op: UnOp, x: f32) -> f32 {
    match op {
        UnOp::Abs => x.abs(),
        UnOp::Neg => -x,
        UnOp::Exp => x.exp(),
        UnOp::Log => x.ln(),
        UnOp::Sqrt => x.sqrt(),
        UnOp::Rsqrt => 1.0 / x.sqrt(),
        UnOp::Reciprocal => 1.0 / x,
        UnOp::Floor => x.floor(),
        UnOp::Ceil => x.ceil(),
        UnOp::Tanh => x.tanh(),
        UnOp::Erf => erf(x),
        UnOp::Not => (x == 0.0) as u8 as f32,
        UnOp::Act(a) => a.apply(x),
    }
}

/// Error function (Abramowitz-Stegun 7.1.26 refined; |err| < 1.2e-7 via erfc series).
pub fn erf(x: f32) -> f32 {
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = 1.0
        - t * (-x * x - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    (if x >= 0.0 { y } else { -y }) as f32
}

pub fn unary_f32(op: UnOp, v: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    if v.len() > PAR_MIN {
        v.par_iter().map(|&a| un_f32(op, a)).collect()
    } else {
        v.iter().map(|&a| un_f32(op, a)).collect()
    }
}

pub fn unary(op: UnOp, x: &Tensor) -> R<Tensor> {
    let data = match &x.data {
        TensorData::F32(v) => TensorData::F32(unary_f32(op, v)),
        TensorData::F16(v) => TensorData::F16(v.iter().map(|&a| f16::from_f32(un_f32(op, a.to_f32()))).collect()),
        TensorData::Bool(v) if op == UnOp::Not => TensorData::Bool(v.iter().map(|&a| !a).collect()),
        TensorData::I32(v) => match op {
            UnOp::Abs => TensorData::I32(v.iter().map(|a| a.wrapping_abs()).collect()),
            UnOp::Neg => TensorData::I32(v.iter().map(|a| a.wrapping_neg()).collect()),
            _ => return Err(format!("{op:?} on i32")),
        },
        TensorData::I64(v) => match op {
            UnOp::Abs => TensorData::I64(v.iter().map(|a| a.wrapping_abs()).collect()),
            UnOp::Neg => TensorData::I64(v.iter().map(|a| a.wrapping_neg()).collect()),
            _ => return Err(format!("{op:?} on i64")),
        },
        _ => return Err(format!("{op:?} on {}", x.dtype())),
    };
    Ok(Tensor::new(x.shape.clone(), data))
}

fn concat(ins: &[&Tensor], axis: usize, stack: bool) -> R<Tensor> {
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

fn split(x: &Tensor, axis: usize, num: usize) -> Vec<Tensor> {
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

fn split_parts(x: &Tensor, axis: usize, parts: &[usize]) -> Vec<Tensor> {
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

fn gather(x: &Tensor, idx: &Tensor, axis: usize, out_shape: Vec<usize>) -> R<Tensor> {
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

fn softmax(x: &Tensor, axis: usize, legacy: bool) -> Tensor {
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
            for j in 0..n {
                out[at(j)] /= sum;
            }
        }
    }
    Tensor::f32(x.shape.clone(), out).cast(x.dtype())
}

fn pad(x: &Tensor, p: &[i64], mode: PadMode, value: f64, out_shape: &[usize]) -> Tensor {
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

/// Transposed convolution (NCHW, weight [cin, cout/groups, kh, kw]) by scattering.
fn conv_transpose_ref(a: &ConvTransposeAttrs, ins: &[&Tensor], out_shape: &[usize]) -> R<Tensor> {
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
fn nms(ins: &[&Tensor], center: bool) -> R<Tensor> {
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

/// Output size of a pooling window along one axis (ONNX ceil_mode aware).
fn pool_out_dim(input: usize, p: &PoolAttrs, axis: usize) -> R<usize> {
    let (out, _) = conv_out_dim(input, p.kernel[axis], p.strides[axis], 1, &p.padding, axis)?;
    if !p.ceil_mode {
        return Ok(out);
    }
    if let Padding::Explicit(pd) = &p.padding {
        let (b, e) = if axis == 0 { (pd[0], pd[2]) } else { (pd[1], pd[3]) };
        let span = input + b + e - p.kernel[axis];
        let mut o = span.div_ceil(p.strides[axis]) + 1;
        // the last window must start inside the input or the leading pad
        if (o - 1) * p.strides[axis] >= input + b {
            o -= 1;
        }
        return Ok(o);
    }
    Ok(out)
}

fn tile<T: Copy>(v: &[T], in_shape: &[usize], _reps: &[i64], out_shape: &[usize]) -> Vec<T> {
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

fn gather_nd(p: &Tensor, ix: &Tensor, out_shape: Vec<usize>) -> R<Tensor> {
    let idx = ix.to_i64_vec().ok_or("indices must be integers")?;
    let k = *ix.shape.last().unwrap_or(&0);
    let slice: usize = p.shape[k..].iter().product();
    let st = strides(&p.shape);
    let rows = idx.len().checked_div(k).unwrap_or(0);
    let mut offs = Vec::with_capacity(rows);
    for r in 0..rows {
        let mut off = 0usize;
        for j in 0..k {
            let i = idx[r * k + j];
            if i < 0 || i as usize >= p.shape[j] {
                return Err(format!("index {i} out of range for dim {j} of size {}", p.shape[j]));
            }
            off += i as usize * st[j];
        }
        offs.push(off);
    }
    let data = map_data!(&p.data, v => {
        let mut o = Vec::with_capacity(rows * slice);
        for &off in &offs {
            o.extend_from_slice(&v[off..off + slice]);
        }
        o
    });
    Ok(Tensor::new(out_shape, data))
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
    for r in 0..rows {
        let row = &v[r * last..(r + 1) * last];
        let mut order: Vec<usize> = (0..last).collect();
        order.sort_by(|&a, &b| {
            let o = if largest { row[b].partial_cmp(&row[a]) } else { row[a].partial_cmp(&row[b]) };
            o.unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
        });
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

fn select(c: &Tensor, a: &Tensor, b: &Tensor, out: &[usize]) -> R<Tensor> {
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

fn reduce(x: &Tensor, axes: &[usize], op: ReduceOp, keep: bool) -> Tensor {
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
    if v.len() > PAR_MIN && outer > 1 {
        out.par_chunks_mut(inner).enumerate().for_each(|(o, acc)| body(o, acc));
    } else {
        out.chunks_mut(inner).enumerate().for_each(|(o, acc)| body(o, acc));
    }
    out
}

fn argmax(x: &Tensor, axis: usize, out_shape: Vec<usize>, select_last: bool) -> Tensor {
    if let (Some(v), false) = (x.as_f32(), select_last) {
        let outer: usize = x.shape[..axis].iter().product();
        let inner: usize = x.shape[axis + 1..].iter().product();
        let n = x.shape[axis];
        let mut idx = vec![0i64; outer * inner];
        for o in 0..outer {
            let mut best: Vec<f32> = v[o * n * inner..(o * n + 1) * inner].to_vec();
            let bi = &mut idx[o * inner..(o + 1) * inner];
            for j in 1..n {
                let row = &v[(o * n + j) * inner..(o * n + j + 1) * inner];
                for ((b, i), &x) in best.iter_mut().zip(bi.iter_mut()).zip(row) {
                    if x > *b {
                        *b = x;
                        *i = j as i64;
                    }
                }
            }
        }
        return Tensor::i64(out_shape, idx);
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

fn matmul_ref(a: &Tensor, b: &Tensor, ta: bool, tb: bool, out_shape: Vec<usize>) -> R<Tensor> {
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
fn conv2d_ref(a: &ConvAttrs, ins: &[&Tensor], out_shape: &[usize]) -> R<Tensor> {
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

/// Max/average pooling on f32 data.
pub fn pool_f32(p: &PoolAttrs, x: &[f32], in_shape: &[usize], out_shape: &[usize]) -> R<Vec<f32>> {
    let [n, c, h, w] = nchw_dims(in_shape, p.layout)?;
    let [_, _, oh, ow] = nchw_dims(out_shape, p.layout)?;
    let (_, pt) = conv_out_dim(h, p.kernel[0], p.strides[0], 1, &p.padding, 0)?;
    let (_, pl) = conv_out_dim(w, p.kernel[1], p.strides[1], 1, &p.padding, 1)?;
    let (cs, ys, xs, bs) = match p.layout {
        Layout::Nhwc => (1, w * c, c, h * w * c),
        Layout::Nchw => (h * w, w, 1, c * h * w),
    };
    let mut out = vec![0f32; n * c * oh * ow];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut acc = if p.kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 };
                    let mut cnt = 0usize;
                    for ky in 0..p.kernel[0] {
                        let iy = (oy * p.strides[0] + ky) as isize - pt as isize;
                        for kx in 0..p.kernel[1] {
                            let ix = (ox * p.strides[1] + kx) as isize - pl as isize;
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

/// Source coordinate of output index `o` for a resize of `inn` -> `outn`.
#[inline]
fn src_coord(o: usize, inn: usize, outn: usize, coord: CoordMode, ratio: Option<f32>) -> f32 {
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

/// Resize on f32 data; `op` must be an [`Op::Resize`].
pub fn resize_f32(x: &[f32], in_shape: &[usize], out_shape: &[usize], op: &Op) -> R<Vec<f32>> {
    let &Op::Resize { layout, mode, coord, nearest, scales } = op else {
        return Err("not a resize op".into());
    };
    let [n, c, h, w] = nchw_dims(in_shape, layout)?;
    let [_, _, oh, ow] = nchw_dims(out_shape, layout)?;
    let ty = resize_taps(h, oh, mode, coord, nearest, scales.map(|s| 1.0 / s[0]));
    let tx = resize_taps(w, ow, mode, coord, nearest, scales.map(|s| 1.0 / s[1]));
    let mut out = vec![0f32; n * c * oh * ow];
    let at = |b: usize, ch: usize, y: usize, xx: usize| match layout {
        Layout::Nhwc => x[((b * h + y) * w + xx) * c + ch],
        Layout::Nchw => x[((b * c + ch) * h + y) * w + xx],
    };
    for b in 0..n {
        for (oy, &(y0, y1, fy)) in ty.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in tx.iter().enumerate() {
                for ch in 0..c {
                    let top = at(b, ch, y0, x0) + (at(b, ch, y0, x1) - at(b, ch, y0, x0)) * fx;
                    let bot = at(b, ch, y1, x0) + (at(b, ch, y1, x1) - at(b, ch, y1, x0)) * fx;
                    let o = match layout {
                        Layout::Nhwc => ((b * oh + oy) * ow + ox) * c + ch,
                        Layout::Nchw => ((b * c + ch) * oh + oy) * ow + ox,
                    };
                    out[o] = top + (bot - top) * fy;
                }
            }
        }
    }
    Ok(out)
}
