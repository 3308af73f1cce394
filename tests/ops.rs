#![allow(clippy::unwrap_used)]
//! Reference kernels on small hand-computed cases (values worked out by hand from the TF
//! and ONNX operator definitions).

use walkout::graph::eval::{eval, strided_slice_plan};
use walkout::graph::*;

fn node(op: Op, n_in: usize, n_out: usize) -> Node {
    Node { name: "t".into(), op, inputs: (0..n_in).collect(), outputs: (0..n_out).map(|i| 100 + i).collect() }
}

fn run(op: Op, ins: &[Tensor]) -> Vec<Tensor> {
    let refs: Vec<&Tensor> = ins.iter().collect();
    eval(&node(op, ins.len(), 2), &refs).expect("eval")
}

fn ints(v: &[i32]) -> Tensor {
    Tensor::i32(vec![v.len()], v.to_vec())
}

#[test]
fn strided_slice_masks() {
    // x: [2,3,4], x[1:, ::-1, 2] with shrink on the last axis
    let m = SliceMasks { begin: 0b010, end: 0b010, shrink_axis: 0b100, ..Default::default() };
    let p = strided_slice_plan(&[2, 3, 4], &[1, 0, 2], &[2, 0, 3], &[1, -1, 1], &m).unwrap();
    assert_eq!(p.out_shape, vec![1, 3]);
    let x = Tensor::f32(vec![2, 3, 4], (0..24).map(|v| v as f32).collect());
    let out = run(Op::StridedSlice(m), &[x, ints(&[1, 0, 2]), ints(&[2, 0, 3]), ints(&[1, -1, 1])]);
    assert_eq!(out[0].as_f32().unwrap(), &[22.0, 18.0, 14.0]);
    // new axis in the middle: x[:, newaxis, 1]
    let m = SliceMasks { begin: 0b001, end: 0b001, new_axis: 0b010, shrink_axis: 0b100, ..Default::default() };
    let p = strided_slice_plan(&[2, 3, 4], &[0, 0, 1], &[0, 0, 2], &[1, 1, 1], &m).unwrap();
    assert_eq!(p.out_shape, vec![2, 1, 4]);
}

#[test]
fn floor_div_rounds_toward_negative_infinity() {
    let out = run(Op::Binary(BinOp::FloorDiv), &[ints(&[7, -7, 7, -7]), ints(&[2, 2, -2, -2])]);
    assert_eq!(out[0].data, TensorData::I32(vec![3, -4, -4, 3]));
}

#[test]
fn topk_breaks_ties_by_lower_index() {
    let x = Tensor::f32(vec![1, 5], vec![0.5, 0.9, 0.5, 0.1, 0.9]);
    let op = Op::TopK { axis: -1, largest: true, index: DType::I32 };
    let out = run(op, &[x, Tensor::i32(vec![], vec![3])]);
    assert_eq!(out[0].as_f32().unwrap(), &[0.9, 0.9, 0.5]);
    assert_eq!(out[1].data, TensorData::I32(vec![1, 4, 0]));
}

#[test]
fn broadcasting_and_select() {
    let a = Tensor::f32(vec![2, 1], vec![1.0, 2.0]);
    let b = Tensor::f32(vec![3], vec![10.0, 20.0, 30.0]);
    let out = run(Op::Binary(BinOp::Add), &[a.clone(), b.clone()]);
    assert_eq!(out[0].shape, vec![2, 3]);
    assert_eq!(out[0].as_f32().unwrap(), &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    let c = Tensor::new(vec![3], TensorData::Bool(vec![true, false, true]));
    let out = run(Op::Select, &[c, b, Tensor::scalar_f32(0.0)]);
    assert_eq!(out[0].as_f32().unwrap(), &[10.0, 0.0, 30.0]);
}

#[test]
fn resize_bilinear_half_pixel() {
    // 1x2 -> 1x4 half-pixel: src x = (o+0.5)/2-0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped
    let x = Tensor::f32(vec![1, 1, 2, 1], vec![0.0, 4.0]);
    let op = Op::Resize {
        layout: Layout::Nhwc,
        mode: ResizeMode::Linear,
        coord: CoordMode::HalfPixel,
        nearest: NearestMode::Floor,
        scales: None,
    };
    let out = run(op, &[x, ints(&[1, 4])]);
    assert_eq!(out[0].as_f32().unwrap(), &[0.0, 1.0, 3.0, 4.0]);
}

#[test]
fn conv_same_padding_and_fused_epilogue() {
    // 1x3x3x1 input, 3x3 ones kernel, SAME: each output sums its neighbourhood
    let x = Tensor::f32(vec![1, 3, 3, 1], (1..=9).map(|v| v as f32).collect());
    let w = Tensor::f32(vec![3, 3, 1, 1], vec![1.0; 9]);
    let bias = Tensor::f32(vec![1], vec![-20.0]);
    let res = Tensor::f32(vec![1, 3, 3, 1], vec![1.0; 9]);
    let attrs = ConvAttrs {
        layout: Layout::Nhwc,
        strides: [1, 1],
        dilations: [1, 1],
        padding: Padding::SameUpper,
        groups: 1,
        has_bias: true,
        act: Activation::Relu,
        residual: Some(ResidualAt::AfterAct),
    };
    let out = run(Op::Conv2d(attrs), &[x, w, bias, res]);
    // sums: 12 21 16 / 27 45 33 / 24 39 28 ; minus 20, relu, plus 1
    assert_eq!(out[0].as_f32().unwrap(), &[1.0, 2.0, 1.0, 8.0, 26.0, 14.0, 5.0, 20.0, 9.0]);
}

#[test]
fn reshape_infers_one_dim() {
    let x = Tensor::f32(vec![2, 6], vec![0.0; 12]);
    let out = run(Op::Reshape { copy_zero: false }, &[x, ints(&[3, -1])]);
    assert_eq!(out[0].shape, vec![3, 4]);
}
