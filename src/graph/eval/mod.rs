//! Reference kernels on host tensors and per-op shape inference, split by op family
//! (`shape` helpers, `infer`, `elementwise`, `array`, `nn`). Used for constant folding and by
//! the CPU executor for ops without a dedicated fast kernel.

mod array;
mod elementwise;
mod infer;
mod nn;
mod resize;
mod shape;

pub use array::*;
pub use elementwise::*;
pub use infer::*;
pub use nn::*;
pub use resize::*;
pub use shape::*;

use super::tensor::{numel, strides};
use super::*;
use crate::map_data;
use half::f16;

type R<T> = std::result::Result<T, String>;

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Evaluates one node on host tensors.
pub fn eval(node: &Node, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    eval_inner(node, ins).map_err(|m| node.err(m))
}

pub(crate) fn f32_of(t: &Tensor) -> std::borrow::Cow<'_, [f32]> {
    match &t.data {
        TensorData::F32(v) => std::borrow::Cow::Borrowed(v),
        _ => std::borrow::Cow::Owned(t.cast(DType::F32).as_f32().map(|s| s.to_vec()).unwrap_or_default()),
    }
}

pub(crate) fn eval_inner(node: &Node, ins: &[&Tensor]) -> R<Vec<Tensor>> {
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
        op @ Op::Resize { layout, .. } => {
            let x = f32_of(ins[0]);
            // run-time scales: the coordinate transform uses the scale itself
            let op = match ins.get(1).map(|t| resize_target(t, Some((&ins[0].shape, *layout)))).transpose()? {
                Some(ResizeTarget::Scales(sc)) => &resized_with(op, sc),
                _ => op,
            };
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
        Op::Softmax { axis, legacy, log } => one(softmax(ins[0], norm_axis(*axis, ins[0].rank())?, *legacy, *log)),
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
        Op::AlignTo { .. } => one(ins[1].clone().reshaped(out_shape)),
        Op::Choose => {
            let n = (ins.len() - 1) as i64;
            let i = ins[0].to_i64_vec().and_then(|v| v.first().copied()).ok_or("the index must be an integer")?;
            let i = if i < 0 { i + n } else { i };
            if i < 0 || i >= n {
                return Err(format!("index {i} out of range for {n} candidates"));
            }
            one(ins[1 + i as usize].clone())
        }
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
