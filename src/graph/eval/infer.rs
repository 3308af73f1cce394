//! Per-op shape inference: output dtypes and shapes from input dtypes, shapes and constants.

use super::*;

// ---------------------------------------------------------------------------------------------
// Shape inference

/// Output dtypes and shapes of a node, given input dtypes/shapes and constant inputs.
/// Elements one tensor may have (4 GiB of f32): a larger shape is a malformed or hostile
/// model, refused before anything is allocated for it.
pub const MAX_ELEMENTS: usize = 1 << 30;

pub fn infer(node: &Node, ins: &[(DType, Vec<usize>)], consts: &[Option<&Tensor>]) -> Result<Vec<(DType, Vec<usize>)>> {
    if ins.is_empty() || ins.len() < node.inputs.len() {
        return Err(node.err(format!("{} of {} inputs have shapes", ins.len(), node.inputs.len())));
    }
    let outs = infer_inner(node, ins, consts).map_err(|m| node.err(m))?;
    for (_, s) in &outs {
        if s.iter().any(|&d| d > MAX_ELEMENTS) || s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(node.err(format!("output shape {s:?} is over {MAX_ELEMENTS} elements")));
        }
    }
    Ok(outs)
}

pub(crate) fn want(ins: &[(DType, Vec<usize>)], n: usize) -> R<()> {
    if ins.len() < n {
        return Err(format!("expects {n} inputs, got {}", ins.len()));
    }
    Ok(())
}

pub(crate) fn infer_inner(node: &Node, ins: &[(DType, Vec<usize>)], consts: &[Option<&Tensor>]) -> R<Vec<(DType, Vec<usize>)>> {
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
            let [n, ch, h, w] = nchw_dims(&ins[0].1, *layout)?;
            let t = c(1).ok_or("resize sizes (or scales) must be a constant once input shapes are fixed")?;
            let [oh, ow] = match resize_target(t, Some((&ins[0].1, *layout)))? {
                ResizeTarget::Size(s) => s,
                ResizeTarget::Scales(sc) => [(h as f32 * sc[0]).floor() as usize, (w as f32 * sc[1]).floor() as usize],
            };
            if oh == 0 || ow == 0 {
                return Err("resize gives an empty output".into());
            }
            one(ins[0].0, make_4d(n, ch, oh, ow, *layout))
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
            let o: Vec<i64> = (0..r).map(|i| (s[i] as i64).checked_add(p[i]).and_then(|d| d.checked_add(p[r + i])).unwrap_or(-1)).collect();
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
        Op::Choose => {
            if ins.len() < 2 {
                return Err("nothing to choose from".into());
            }
            let pick = match c(0) {
                Some(t) => {
                    let i = t.to_i64_vec().and_then(|v| v.first().copied()).ok_or("the index must be an integer")?;
                    let n = (ins.len() - 1) as i64;
                    let i = if i < 0 { i + n } else { i };
                    if i < 0 || i >= n {
                        return Err(format!("index {i} out of range for {n} candidates"));
                    }
                    &ins[1 + i as usize]
                }
                None if ins[1..].iter().all(|s| s == &ins[1]) => &ins[1],
                None => return Err("output shape depends on the data".into()),
            };
            one(pick.0, pick.1.clone())
        }
        Op::AlignTo { axis } => {
            want(ins, 2)?;
            let (ra, b) = (ins[0].1.len(), &ins[1].1);
            let a = if *axis < 0 { *axis + ra as i64 } else { *axis };
            if a < 0 || a as usize + b.len() > ra {
                return Err(format!("cannot align a rank-{} tensor with a rank-{ra} one at axis {axis}", b.len()));
            }
            let mut o = b.clone();
            o.resize(ra - a as usize, 1);
            one(ins[1].0, o)
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

pub(crate) fn channel_affine(x: &Tensor, scale: &[f32], bias: &[f32]) -> Tensor {
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

pub(crate) fn reduce_axes(axes: &[i64], rank: usize) -> R<Vec<usize>> {
    let mut v: Vec<usize> = axes.iter().map(|&a| norm_axis(a, rank)).collect::<R<_>>()?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

pub(crate) fn reduced_shape(s: &[usize], axes: &[usize], keep: bool) -> Vec<usize> {
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
