//! The mapping of TF ops to IR ops.

use super::*;

/// The activation a fused TF op names.
fn fused_act(f: &str, a: &Attrs) -> Option<Activation> {
    Some(match f {
        "Relu" => Activation::Relu,
        "Relu6" => Activation::Relu6,
        "Sigmoid" => Activation::Sigmoid,
        "LeakyRelu" => Activation::LeakyRelu(a.float("leakyrelu_alpha").unwrap_or(0.2)),
        _ => return None,
    })
}

/// A constant input, or an error naming the node and the value that is not constant.
fn const_input<'g>(g: &'g Graph, n: &TfNode, v: ValueId, what: &str) -> std::result::Result<&'g Tensor, String> {
    g.consts
        .get(&v)
        .ok_or_else(|| format!("node '{}' ({}): {what} must be constant, but '{}' is computed at run time", n.name, n.op, g.values[v].name))
}

/// Maps one TF node to an IR op. `Ok(None)` means unsupported. Ops that TF fuses or lays out
/// differently push the ops that finish them onto `post` (each applied to the previous
/// value, with its extra inputs).
pub(super) fn map_op(
    n: &TfNode,
    a: &Attrs,
    g: &mut Graph,
    inputs: &mut Vec<ValueId>,
    post: &mut Vec<(Op, Vec<ValueId>)>,
) -> std::result::Result<Option<Op>, String> {
    let need = |k: usize| -> std::result::Result<(), String> {
        if inputs.len() < k {
            Err(format!("node '{}' ({}) needs {k} inputs, has {}", n.name, n.op, inputs.len()))
        } else {
            Ok(())
        }
    };
    let bin = |b| Some(Op::Binary(b));
    let un = |u| Some(Op::Unary(u));
    Ok(match n.op.as_str() {
        "Add" | "AddV2" | "BiasAdd" => bin(BinOp::Add),
        "Sub" => bin(BinOp::Sub),
        "Mul" => bin(BinOp::Mul),
        "RealDiv" | "Div" => bin(BinOp::Div),
        "FloorDiv" => bin(BinOp::FloorDiv),
        "FloorMod" => bin(BinOp::FloorMod),
        "Maximum" => bin(BinOp::Max),
        "Minimum" => bin(BinOp::Min),
        "Pow" => bin(BinOp::Pow),
        "SquaredDifference" => bin(BinOp::SquaredDifference),
        "Equal" => bin(BinOp::Equal),
        "Less" => bin(BinOp::Less),
        "LessEqual" => bin(BinOp::LessEqual),
        "Greater" => bin(BinOp::Greater),
        "GreaterEqual" => bin(BinOp::GreaterEqual),
        "LogicalAnd" => bin(BinOp::And),
        "LogicalOr" => bin(BinOp::Or),
        "Abs" => un(UnOp::Abs),
        "Neg" => un(UnOp::Neg),
        "Exp" => un(UnOp::Exp),
        "Log" => un(UnOp::Log),
        "Sqrt" => un(UnOp::Sqrt),
        "Rsqrt" => un(UnOp::Rsqrt),
        "Reciprocal" => un(UnOp::Reciprocal),
        "Floor" => un(UnOp::Floor),
        "Ceil" => un(UnOp::Ceil),
        "Tanh" => un(UnOp::Tanh),
        "LogicalNot" => un(UnOp::Not),
        "Sigmoid" => un(UnOp::Act(Activation::Sigmoid)),
        "Relu" => un(UnOp::Act(Activation::Relu)),
        "Relu6" => un(UnOp::Act(Activation::Relu6)),
        "LeakyRelu" => un(UnOp::Act(Activation::LeakyRelu(a.float("alpha").unwrap_or(0.2)))),
        "AddN" => Some(Op::AddN),
        "Identity" | "StopGradient" | "Snapshot" => Some(Op::Identity),
        "Cast" => Some(Op::Cast(a.dtype("DstT").ok_or_else(|| format!("node '{}': Cast to unsupported dtype", n.name))?)),
        "Shape" => Some(Op::Shape),
        "Size" => Some(Op::Size),
        "Reshape" => Some(Op::Reshape { copy_zero: false }),
        "StridedSlice" => Some(Op::StridedSlice(SliceMasks {
            begin: a.int("begin_mask").unwrap_or(0) as u32,
            end: a.int("end_mask").unwrap_or(0) as u32,
            ellipsis: a.int("ellipsis_mask").unwrap_or(0) as u32,
            new_axis: a.int("new_axis_mask").unwrap_or(0) as u32,
            shrink_axis: a.int("shrink_axis_mask").unwrap_or(0) as u32,
        })),
        "Pack" => Some(Op::Pack { axis: a.int("axis").unwrap_or(0) }),
        "Unpack" => Some(Op::Unpack { axis: a.int("axis").unwrap_or(0), num: a.int("num").unwrap_or(1) as usize }),
        "ConcatV2" => Some(Op::Concat),
        "Split" => Some(Op::Split { num: a.int("num_split").unwrap_or(1) as usize }),
        "Squeeze" => Some(Op::Squeeze { axes: a.ints("squeeze_dims") }),
        "ExpandDims" => Some(Op::ExpandDims),
        "Tile" => Some(Op::Tile),
        "Fill" => Some(Op::Fill),
        "Range" => Some(Op::Range),
        "GatherNd" => Some(Op::GatherNd),
        "TopKV2" => Some(Op::TopK { axis: -1, largest: true, index: DType::I32 }),
        "Select" | "SelectV2" => Some(Op::Select),
        "Sum" | "Max" | "Min" | "Mean" | "Prod" => Some(Op::Reduce {
            op: match n.op.as_str() {
                "Sum" => ReduceOp::Sum,
                "Max" => ReduceOp::Max,
                "Min" => ReduceOp::Min,
                "Mean" => ReduceOp::Mean,
                _ => ReduceOp::Prod,
            },
            keep_dims: a.bool("keep_dims"),
        }),
        "ArgMax" => Some(Op::ArgMax { dtype: a.dtype("output_type").unwrap_or(DType::I64), keep_dims: false, select_last: false }),
        "MatMul" => Some(Op::MatMul { transpose_a: a.bool("transpose_a"), transpose_b: a.bool("transpose_b") }),
        "_FusedMatMul" => {
            // MatMul, then BiasAdd, then an activation
            need(2)?;
            for f in a.strings("fused_ops") {
                match f.as_str() {
                    "BiasAdd" => {
                        need(3)?;
                        post.push((Op::Binary(BinOp::Add), vec![inputs[2]]));
                    }
                    other => post.push((
                        Op::Unary(UnOp::Act(match fused_act(other, a) {
                            Some(act) => act,
                            None => return Ok(None),
                        })),
                        vec![],
                    )),
                }
            }
            inputs.truncate(2);
            Some(Op::MatMul { transpose_a: a.bool("transpose_a"), transpose_b: a.bool("transpose_b") })
        }
        "Pad" | "PadV2" | "MirrorPad" => {
            // paddings [rank, 2] -> all begins, then all ends
            need(2)?;
            let p = const_input(g, n, inputs[1], "paddings")?;
            let v = p.to_i64_vec().ok_or_else(|| format!("node '{}': paddings must be integers", n.name))?;
            if p.shape.len() != 2 || p.shape[1] != 2 {
                return Err(format!("node '{}': paddings must be [rank, 2], got {:?}", n.name, p.shape));
            }
            let pads: Vec<i64> = v.iter().step_by(2).chain(v.iter().skip(1).step_by(2)).copied().collect();
            inputs[1] = g.add_const(format!("{}/pads", n.name), Tensor::i64(vec![pads.len()], pads));
            let mode = match (n.op.as_str(), a.string("mode").as_deref()) {
                ("MirrorPad", Some("REFLECT")) => PadMode::Reflect,
                ("MirrorPad", _) => return Ok(None),
                _ => PadMode::Constant,
            };
            inputs.truncate(if n.op == "PadV2" { 3 } else { 2 });
            Some(Op::Pad { mode })
        }
        "GatherV2" => {
            need(3)?;
            if a.int("batch_dims").unwrap_or(0) != 0 {
                return Ok(None);
            }
            let axis = const_input(g, n, inputs[2], "axis")?.to_i64_vec().and_then(|v| v.first().copied()).unwrap_or(0);
            inputs.truncate(2);
            Some(Op::Gather { axis })
        }
        "Conv2DBackpropInput" => {
            // inputs: output shape, filter [kh, kw, cout, cin], x (NHWC). walkout's transposed
            // convolution is NCHW with ONNX's [cin, cout, kh, kw] weight: transpose in and out.
            need(3)?;
            if a.string("data_format").as_deref().unwrap_or("NHWC") != "NHWC" {
                return Err(format!("node '{}': only NHWC is supported", n.name));
            }
            let w = const_input(g, n, inputs[1], "filter")?;
            if w.shape.len() != 4 {
                return Err(format!("node '{}': filter must be 4-D, got {:?}", n.name, w.shape));
            }
            let k = [w.shape[0], w.shape[1]];
            let wt = crate::graph::eval::transpose(&w.cast(DType::F32), &[3, 2, 0, 1]);
            let wid = g.add_const(format!("{}/filter_iohw", n.name), wt);
            let strides = hw_pair(&a.ints("strides"), 1);
            let dilations = hw_pair(&a.ints("dilations"), 1);
            // TF sizes the output in * stride (SAME) or (in - 1) * stride + k (VALID): the
            // pads and output padding that give that follow from k and the stride alone
            let same = matches!(a.string("padding").as_deref(), Some("SAME"));
            let (mut pads, mut out_pad) = ([0usize; 4], [0usize; 2]);
            for i in 0..2 {
                let ke = dilations[i] * (k[i] - 1) + 1;
                let total = if same { ke as i64 - strides[i] as i64 } else { 0 };
                if total >= 0 {
                    pads[i] = total as usize / 2;
                    pads[i + 2] = total as usize - total as usize / 2;
                } else {
                    out_pad[i] = (-total) as usize;
                }
                if !same && ke < strides[i] {
                    out_pad[i] = strides[i] - ke;
                }
            }
            let x = inputs[2];
            let xt = g.add_value(format!("{}/nchw", n.name), DType::F32);
            g.nodes.push(Node {
                name: format!("{}/nchw", n.name),
                op: Op::Transpose { perm: vec![0, 3, 1, 2] },
                inputs: vec![x],
                outputs: vec![xt],
            });
            *inputs = vec![xt, wid];
            post.push((Op::Transpose { perm: vec![0, 2, 3, 1] }, vec![]));
            Some(Op::ConvTranspose2d(ConvTransposeAttrs { strides, dilations, pads, output_padding: out_pad, groups: 1 }))
        }
        "BatchMatMul" | "BatchMatMulV2" => Some(Op::MatMul { transpose_a: a.bool("adj_x"), transpose_b: a.bool("adj_y") }),
        "Transpose" => {
            need(2)?;
            let perm = g
                .consts
                .get(&inputs[1])
                .and_then(|t| t.to_i64_vec())
                .ok_or_else(|| format!("node '{}': Transpose needs a constant perm", n.name))?;
            inputs.truncate(1);
            Some(Op::Transpose { perm: perm.into_iter().map(|p| p as usize).collect() })
        }
        "MaxPool" | "AvgPool" => {
            if a.string("data_format").as_deref().unwrap_or("NHWC") != "NHWC" {
                return Err(format!("node '{}': only NHWC pooling is supported", n.name));
            }
            Some(Op::Pool(PoolAttrs {
                kind: if n.op == "MaxPool" { PoolKind::Max } else { PoolKind::Avg },
                layout: Layout::Nhwc,
                kernel: hw_pair(&a.ints("ksize"), 1),
                strides: hw_pair(&a.ints("strides"), 1),
                dilations: [1, 1],
                padding: padding_of(a, n)?,
                count_include_pad: false,
                ceil_mode: false,
            }))
        }
        "ResizeBilinear" | "ResizeNearestNeighbor" => {
            let align = a.bool("align_corners");
            let half = a.bool("half_pixel_centers");
            let linear = n.op == "ResizeBilinear";
            Some(Op::Resize {
                layout: Layout::Nhwc,
                mode: if linear { ResizeMode::Linear } else { ResizeMode::Nearest },
                coord: match (align, half, linear) {
                    (true, _, _) => CoordMode::AlignCorners,
                    (false, true, true) => CoordMode::HalfPixel,
                    (false, true, false) => CoordMode::TfHalfPixelForNn,
                    _ => CoordMode::Asymmetric,
                },
                nearest: if align { NearestMode::RoundPreferCeil } else { NearestMode::Floor },
                scales: None,
            })
        }
        "Conv2D" | "_FusedConv2D" | "DepthwiseConv2dNative" | "FusedDepthwiseConv2dNative" => {
            need(2)?;
            if a.string("data_format").as_deref().unwrap_or("NHWC") != "NHWC" {
                return Err(format!("node '{}': only NHWC convolution is supported", n.name));
            }
            let depthwise = n.op.contains("Depthwise");
            let fused = a.strings("fused_ops");
            let mut has_bias = false;
            let mut act = Activation::None;
            for f in &fused {
                match f.as_str() {
                    "BiasAdd" => has_bias = true,
                    "Relu" => act = Activation::Relu,
                    "Relu6" => act = Activation::Relu6,
                    "Sigmoid" => act = Activation::Sigmoid,
                    "LeakyRelu" => act = Activation::LeakyRelu(a.float("leakyrelu_alpha").unwrap_or(0.2)),
                    _ => return Ok(None),
                }
            }
            if has_bias {
                need(3)?;
                inputs.truncate(3);
            } else {
                inputs.truncate(2);
            }
            let mut groups = 1;
            if depthwise {
                // [kh, kw, cin, mult] -> HWIO [kh, kw, 1, cin*mult], grouped by cin.
                let w = g.consts.get(&inputs[1]).ok_or_else(|| format!("node '{}': depthwise filter must be constant", n.name))?;
                let s = w.shape.clone();
                if s.len() != 4 {
                    return Err(format!("node '{}': depthwise filter must be 4-D, got {s:?}", n.name));
                }
                groups = s[2];
                let t = w.clone().reshaped(vec![s[0], s[1], 1, s[2] * s[3]]);
                inputs[1] = g.add_const(format!("{}/filter_hwio", n.name), t);
            }
            Some(Op::Conv2d(ConvAttrs {
                layout: Layout::Nhwc,
                strides: hw_pair(&a.ints("strides"), 1),
                dilations: hw_pair(&a.ints("dilations"), 1),
                padding: padding_of(a, n)?,
                groups,
                has_bias,
                act,
                residual: None,
            }))
        }
        _ => None,
    })
}
