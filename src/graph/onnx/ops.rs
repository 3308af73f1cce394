//! ONNX operators to IR nodes, one arm per operator (opsets 1 to 21; where an operator changed
//! between versions, the arm reads `self.opset`).

use super::proto::NodeProto;
use super::*;

impl Builder<'_> {
    /// Converts one node. `Ok(false)`: unsupported op.
    pub(super) fn node(&mut self, n: &NodeProto) -> NodeResult {
        if self.sequence_op(n)? {
            return Ok(true);
        }
        let op = n.op_type().to_string();
        let name = node_name(n);
        let bin = |b| Op::Binary(b);
        let act = |a| Op::Unary(UnOp::Act(a));
        let simple: Option<Op> = match op.as_str() {
            "Add" => Some(bin(BinOp::Add)),
            "Sub" => Some(bin(BinOp::Sub)),
            "Mul" => Some(bin(BinOp::Mul)),
            "Div" => Some(bin(BinOp::Div)),
            "Pow" => Some(bin(BinOp::Pow)),
            // integer Mod takes the divisor's sign (fmod = 1, C's fmod, is not supported)
            "Mod" if ai(n, "fmod", 0) == 0 => Some(bin(BinOp::FloorMod)),
            "PRelu" => Some(bin(BinOp::PRelu)),
            "Equal" => Some(bin(BinOp::Equal)),
            "Less" => Some(bin(BinOp::Less)),
            "LessOrEqual" => Some(bin(BinOp::LessEqual)),
            "Greater" => Some(bin(BinOp::Greater)),
            "GreaterOrEqual" => Some(bin(BinOp::GreaterEqual)),
            "And" => Some(bin(BinOp::And)),
            "Or" => Some(bin(BinOp::Or)),
            "Not" => Some(Op::Unary(UnOp::Not)),
            "Abs" => Some(Op::Unary(UnOp::Abs)),
            "Neg" => Some(Op::Unary(UnOp::Neg)),
            "Exp" => Some(Op::Unary(UnOp::Exp)),
            "Log" => Some(Op::Unary(UnOp::Log)),
            "Sqrt" => Some(Op::Unary(UnOp::Sqrt)),
            "Reciprocal" => Some(Op::Unary(UnOp::Reciprocal)),
            "Floor" => Some(Op::Unary(UnOp::Floor)),
            "Ceil" => Some(Op::Unary(UnOp::Ceil)),
            "Tanh" => Some(Op::Unary(UnOp::Tanh)),
            "Erf" => Some(Op::Unary(UnOp::Erf)),
            "Relu" => Some(act(Activation::Relu)),
            "Sigmoid" => Some(act(Activation::Sigmoid)),
            "LeakyRelu" => Some(act(Activation::LeakyRelu(af(n, "alpha", 0.01)))),
            "HardSigmoid" => Some(act(Activation::HardSigmoid(af(n, "alpha", 0.2), af(n, "beta", 0.5)))),
            "HardSwish" => Some(act(Activation::HardSwish)),
            "Elu" => Some(act(Activation::Elu(af(n, "alpha", 1.0)))),
            "Selu" => Some(act(Activation::Selu(af(n, "alpha", 1.673_263_2), af(n, "gamma", 1.050_701)))),
            "Softplus" => Some(act(Activation::Softplus)),
            "Softsign" => Some(act(Activation::Softsign)),
            "Shrink" => Some(act(Activation::Shrink(af(n, "lambd", 0.5), af(n, "bias", 0.0)))),
            "Sign" => Some(act(Activation::Sign)),
            "Where" => Some(Op::Select),
            "GatherND" => {
                if ai(n, "batch_dims", 0) != 0 {
                    return Err(self.err(n, "batch_dims != 0 is not supported"));
                }
                Some(Op::GatherNd)
            }
            "Tile" => Some(Op::Tile),
            "Expand" => Some(Op::Expand),
            "Range" => Some(Op::Range),
            "Identity" => Some(Op::Identity),
            "MatMul" => Some(Op::MatMul { transpose_a: false, transpose_b: false }),
            "Gather" => Some(Op::Gather { axis: ai(n, "axis", 0) }),
            "Flatten" => Some(Op::Flatten { axis: ai(n, "axis", 1) }),
            "Transpose" => Some(Op::Transpose { perm: ints(n, "perm").unwrap_or_default().into_iter().map(|p| p as usize).collect() }),
            "NonMaxSuppression" => Some(Op::NonMaxSuppression { center_point_box: ai(n, "center_point_box", 0) != 0 }),
            "GlobalAveragePool" => Some(Op::GlobalPool(PoolKind::Avg)),
            "GlobalMaxPool" => Some(Op::GlobalPool(PoolKind::Max)),
            "Cast" => {
                // `to` is a type name before opset 6
                let to = match find_attr(n, "to").and_then(|a| a.s.as_ref()) {
                    Some(name) => onnx_type_code(&String::from_utf8_lossy(name)),
                    None => ai(n, "to", 1) as i32,
                };
                Some(Op::Cast(onnx_dtype(to).ok_or_else(|| self.err(n, format!("cast to unsupported type {to}")))?))
            }
            _ => None,
        };
        if let Some(op) = simple {
            if self.legacy_broadcast(n, &op)? {
                return Ok(true);
            }
            let inputs: Vec<ValueId> = (0..n.input.len()).filter_map(|i| self.input(n, i).transpose()).collect::<Result<_>>()?;
            self.emit_final(n, op, inputs);
            return Ok(true);
        }
        match op.as_str() {
            "Constant" => {
                let t = if let Some(a) = find_attr(n, "value") {
                    let tp = a.t.as_ref().ok_or_else(|| self.err(n, "value attribute without a tensor"))?;
                    self.tensor(tp, &name)?
                } else if let Some(v) = find_attr(n, "value_float").and_then(|a| a.f) {
                    Tensor::scalar_f32(v)
                } else if let Some(v) = find_attr(n, "value_int").and_then(|a| a.i) {
                    Tensor::i64(vec![], vec![v])
                } else if let Some(a) = find_attr(n, "value_floats") {
                    Tensor::f32(vec![a.floats.len()], a.floats.clone())
                } else if let Some(a) = find_attr(n, "value_ints") {
                    Tensor::i64(vec![a.ints.len()], a.ints.clone())
                } else {
                    return Err(self.err(n, "unsupported Constant attribute"));
                };
                let id = self.konst(n.output.first().cloned().unwrap_or(name), t);
                if let Some(o) = n.output.first() {
                    self.vals.insert(o.clone(), id);
                }
            }
            "ConstantOfShape" => {
                let value = match find_attr(n, "value").and_then(|a| a.t.as_ref()) {
                    Some(tp) => {
                        let t = self.tensor(tp, &name)?;
                        let dt = t.dtype();
                        t.reshaped(vec![]).cast(dt)
                    }
                    None => Tensor::scalar_f32(0.0),
                };
                let v = self.konst(format!("{name}/value"), value);
                let s = self.req(n, 0)?;
                self.emit_final(n, Op::Fill, vec![s, v]);
            }
            "Size" => {
                let x = self.req(n, 0)?;
                let s = self.emit(format!("{name}/i32"), Op::Size, vec![x], 1)[0];
                self.emit_final(n, Op::Cast(DType::I64), vec![s]);
            }
            "Dropout" => {
                let x = self.req(n, 0)?;
                self.alias(n, x);
                if self.output_used(n, 1) {
                    // inference: nothing is dropped, the mask is all true
                    let s = self.shape_i64(x, &name);
                    let t = self.konst(format!("{name}/true"), Tensor::new(vec![], TensorData::Bool(vec![true])));
                    let m = self.emit(format!("{name}/mask"), Op::Fill, vec![s, t], 1)[0];
                    self.g.values[m].name = n.output[1].clone();
                    self.vals.insert(n.output[1].clone(), m);
                }
            }
            "Min" | "Max" | "Sum" => {
                let inputs: Vec<ValueId> = (0..n.input.len()).filter_map(|i| self.input(n, i).transpose()).collect::<Result<_>>()?;
                if inputs.is_empty() {
                    return Err(self.err(n, "needs at least one input"));
                }
                if op == "Sum" {
                    self.emit_final(n, Op::AddN, inputs);
                } else {
                    let b = if op == "Min" { BinOp::Min } else { BinOp::Max };
                    let mut acc = inputs[0];
                    for (k, &v) in inputs[1..].iter().enumerate() {
                        if k + 2 == inputs.len() {
                            self.emit_final(n, Op::Binary(b), vec![acc, v]);
                            return Ok(true);
                        }
                        acc = self.emit(format!("{name}/{k}"), Op::Binary(b), vec![acc, v], 1)[0];
                    }
                    self.alias(n, acc);
                }
            }
            "Clip" => {
                let x = self.req(n, 0)?;
                let lim = |b: &Self, i: usize, attr: &str, d: f32| -> Result<Option<f32>> {
                    if b.opset < 11 {
                        return Ok(find_attr(n, attr).and_then(|a| a.f).or(Some(d)));
                    }
                    match b.input(n, i)? {
                        None => Ok(Some(d)),
                        Some(v) => Ok(b.const_of(v).map(|t| t.to_f64_vec().first().copied().unwrap_or(d as f64) as f32)),
                    }
                };
                let lo = lim(self, 1, "min", f32::NEG_INFINITY)?;
                let hi = lim(self, 2, "max", f32::INFINITY)?;
                match (lo, hi) {
                    (Some(lo), Some(hi)) => {
                        let a = if lo == 0.0 && hi == 6.0 { Activation::Relu6 } else { Activation::Clip(lo, hi) };
                        self.emit_final(n, Op::Unary(UnOp::Act(a)), vec![x]);
                    }
                    _ => {
                        // runtime bounds: max(min(x, hi), lo)
                        let mut v = x;
                        if let Some(lo_v) = self.input(n, 1)? {
                            v = self.emit(format!("{name}/lo"), Op::Binary(BinOp::Max), vec![v, lo_v], 1)[0];
                        }
                        if let Some(hi_v) = self.input(n, 2)? {
                            v = self.emit(format!("{name}/hi"), Op::Binary(BinOp::Min), vec![v, hi_v], 1)[0];
                        }
                        self.alias(n, v);
                    }
                }
            }
            "Softmax" | "LogSoftmax" => {
                let legacy = self.opset < 13;
                let x = self.req(n, 0)?;
                let op = Op::Softmax { axis: ai(n, "axis", if legacy { 1 } else { -1 }), legacy, log: op == "LogSoftmax" };
                self.emit_final(n, op, vec![x]);
            }
            "Conv" => self.conv(n)?,
            "ConvTranspose" => {
                let x = self.req(n, 0)?;
                let w = self.req(n, 1)?;
                if find_attr(n, "output_shape").is_some() || astr(n, "auto_pad", "NOTSET") != "NOTSET" {
                    return Err(self.err(n, "output_shape and auto_pad are not supported; give pads"));
                }
                let p = ints(n, "pads").unwrap_or_else(|| vec![0; 4]);
                if p.len() != 4 {
                    return Err(self.err(n, "only 2-D ConvTranspose is supported"));
                }
                let a = ConvTransposeAttrs {
                    strides: self.pair(n, "strides")?,
                    dilations: self.pair(n, "dilations")?,
                    pads: [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize],
                    output_padding: match ints(n, "output_padding") {
                        Some(v) if v.len() == 2 => [v[0] as usize, v[1] as usize],
                        _ => [0, 0],
                    },
                    groups: ai(n, "group", 1) as usize,
                };
                let mut inputs = vec![x, w];
                if let Some(bv) = self.input(n, 2)? {
                    inputs.push(bv);
                }
                self.emit_final(n, Op::ConvTranspose2d(a), inputs);
            }
            "Gemm" => {
                let (a, b) = (self.req(n, 0)?, self.req(n, 1)?);
                let alpha = af(n, "alpha", 1.0);
                let beta = af(n, "beta", 1.0);
                let mm = Op::MatMul { transpose_a: ai(n, "transA", 0) != 0, transpose_b: ai(n, "transB", 0) != 0 };
                let c = self.input(n, 2)?;
                if alpha == 1.0 && c.is_none() {
                    self.emit_final(n, mm, vec![a, b]);
                    return Ok(true);
                }
                let mut y = self.emit(format!("{name}/matmul"), mm, vec![a, b], 1)[0];
                if alpha != 1.0 {
                    let k = self.konst(format!("{name}/alpha"), Tensor::scalar_f32(alpha));
                    y = self.emit(format!("{name}/scale"), Op::Binary(BinOp::Mul), vec![y, k], 1)[0];
                }
                match c {
                    Some(mut c) => {
                        if beta != 1.0 {
                            let k = self.konst(format!("{name}/beta"), Tensor::scalar_f32(beta));
                            c = self.emit(format!("{name}/beta_c"), Op::Binary(BinOp::Mul), vec![c, k], 1)[0];
                        }
                        self.emit_final(n, Op::Binary(BinOp::Add), vec![y, c]);
                    }
                    None => self.alias(n, y),
                }
            }
            "BatchNormalization" => self.batch_norm(n)?,
            "InstanceNormalization" => self.instance_norm(n)?,
            "LRN" => self.lrn(n)?,
            "MaxPool" => self.pool(n, PoolKind::Max)?,
            "AveragePool" => self.pool(n, PoolKind::Avg)?,
            "Resize" | "Upsample" => self.resize(n)?,
            "Concat" => {
                let inputs: Vec<ValueId> = (0..n.input.len()).filter_map(|i| self.input(n, i).transpose()).collect::<Result<_>>()?;
                // axis defaults to 1 before opset 4
                let axis = self.scalar_i64(n, "axis", ai(n, "axis", if self.opset < 4 { 1 } else { 0 }));
                let mut all = inputs;
                all.push(axis);
                self.emit_final(n, Op::Concat, all);
            }
            "Split" => {
                let x = self.req(n, 0)?;
                let sizes = if self.opset >= 13 { self.const_ints(n, 1, "split")? } else { ints(n, "split") };
                let num = n.output.len();
                let sizes: Vec<usize> = sizes.unwrap_or_default().iter().map(|&s| s.max(0) as usize).collect();
                self.emit_final(n, Op::SplitV { axis: ai(n, "axis", 0), sizes, num }, vec![x]);
            }
            "Slice" if self.opset < 10 => {
                // starts, ends and axes are attributes before opset 10
                let x = self.req(n, 0)?;
                let starts = ints(n, "starts").ok_or_else(|| self.err(n, "starts is required"))?;
                let ends = ints(n, "ends").ok_or_else(|| self.err(n, "ends is required"))?;
                let axes = ints(n, "axes").unwrap_or_else(|| (0..starts.len() as i64).collect());
                let (st, en, ax) =
                    (self.ints_const(n, "starts", &starts), self.ints_const(n, "ends", &ends), self.ints_const(n, "axes", &axes));
                self.emit_final(n, Op::Slice, vec![x, st, en, ax]);
            }
            "Slice" => {
                let inputs: Vec<ValueId> = (0..n.input.len().min(5))
                    .map(|i| match self.input(n, i)? {
                        Some(v) => Ok(v),
                        None => Ok(self.konst(format!("{name}/empty{i}"), Tensor::i64(vec![0], vec![]))),
                    })
                    .collect::<Result<_>>()?;
                self.emit_final(n, Op::Slice, inputs);
            }
            "Reshape" => {
                let x = self.req(n, 0)?;
                // the target shape is an attribute before opset 5
                let s = match ints(n, "shape") {
                    Some(v) if self.opset < 5 => self.ints_const(n, "shape", &v),
                    _ => self.req(n, 1)?,
                };
                let copy_zero = ai(n, "allowzero", 0) == 0;
                self.emit_final(n, Op::Reshape { copy_zero }, vec![x, s]);
            }
            "Squeeze" | "Unsqueeze" => {
                let x = self.req(n, 0)?;
                let axes = if self.opset >= 13 { self.const_ints(n, 1, "axes")? } else { ints(n, "axes") };
                let axes = axes.unwrap_or_default();
                if op == "Squeeze" {
                    self.emit_final(n, Op::Squeeze { axes }, vec![x]);
                } else {
                    if axes.is_empty() {
                        return Err(self.err(n, "Unsqueeze needs axes"));
                    }
                    self.emit_final(n, Op::Unsqueeze { axes }, vec![x]);
                }
            }
            "Shape" => {
                let x = self.req(n, 0)?;
                let start = ai(n, "start", 0);
                let end = find_attr(n, "end").and_then(|a| a.i);
                if start == 0 && end.is_none() {
                    let s = self.emit(format!("{name}/i32"), Op::Shape, vec![x], 1)[0];
                    self.emit_final(n, Op::Cast(DType::I64), vec![s]);
                } else {
                    let s = self.emit(format!("{name}/full"), Op::Shape, vec![x], 1)[0];
                    let s = self.emit(format!("{name}/i64"), Op::Cast(DType::I64), vec![s], 1)[0];
                    let st = self.ints_const(n, "start", &[start]);
                    let en = self.ints_const(n, "end", &[end.unwrap_or(i64::MAX)]);
                    self.emit_final(n, Op::Slice, vec![s, st, en]);
                }
            }
            "Pad" => {
                let x = self.req(n, 0)?;
                if self.input(n, 3)?.is_some() {
                    return Err(self.err(n, "the axes input of Pad is not supported"));
                }
                let mode = match astr(n, "mode", "constant").as_str() {
                    "constant" => PadMode::Constant,
                    "reflect" => PadMode::Reflect,
                    "edge" => PadMode::Edge,
                    other => return Err(self.err(n, format!("pad mode '{other}' is not supported"))),
                };
                let mut inputs = if self.opset < 11 {
                    // pads (`paddings` in opset 1) and value are attributes before opset 11
                    let p = ints(n, "pads").or_else(|| ints(n, "paddings")).ok_or_else(|| self.err(n, "pads is required"))?;
                    let pads = self.ints_const(n, "pads", &p);
                    let value = self.konst(format!("{name}/value"), Tensor::scalar_f32(af(n, "value", 0.0)));
                    vec![x, pads, value]
                } else {
                    vec![x, self.req(n, 1)?]
                };
                if self.opset >= 11 {
                    if let Some(v) = self.input(n, 2)? {
                        inputs.push(v);
                    }
                }
                self.emit_final(n, Op::Pad { mode }, inputs);
            }
            "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceL2" | "ReduceProd" => {
                let x = self.req(n, 0)?;
                let axes_as_input = if op == "ReduceSum" { self.opset >= 13 } else { self.opset >= 18 };
                let axes = if axes_as_input { self.const_ints(n, 1, "axes")? } else { ints(n, "axes") };
                let keep_dims = ai(n, "keepdims", 1) != 0;
                let axes = axes.unwrap_or_default();
                if axes.is_empty() && ai(n, "noop_with_empty_axes", 0) != 0 {
                    self.alias(n, x);
                    return Ok(true);
                }
                let av = self.ints_const(n, "axes", &axes);
                let rop = match op.as_str() {
                    "ReduceMean" => ReduceOp::Mean,
                    "ReduceMax" => ReduceOp::Max,
                    "ReduceMin" => ReduceOp::Min,
                    "ReduceProd" => ReduceOp::Prod,
                    _ => ReduceOp::Sum,
                };
                if op == "ReduceL2" {
                    let sq = self.emit(format!("{name}/sq"), Op::Binary(BinOp::Mul), vec![x, x], 1)[0];
                    let s = self.emit(format!("{name}/sum"), Op::Reduce { op: ReduceOp::Sum, keep_dims }, vec![sq, av], 1)[0];
                    self.emit_final(n, Op::Unary(UnOp::Sqrt), vec![s]);
                } else {
                    self.emit_final(n, Op::Reduce { op: rop, keep_dims }, vec![x, av]);
                }
            }
            "ArgMax" => {
                let x = self.req(n, 0)?;
                let axis = self.scalar_i64(n, "axis", ai(n, "axis", 0));
                let op =
                    Op::ArgMax { dtype: DType::I64, keep_dims: ai(n, "keepdims", 1) != 0, select_last: ai(n, "select_last_index", 0) != 0 };
                self.emit_final(n, op, vec![x, axis]);
            }
            "TopK" => {
                let x = self.req(n, 0)?;
                // k is an attribute before opset 10
                let k = if self.opset < 10 { self.ints_const(n, "k", &[ai(n, "k", 1)]) } else { self.req(n, 1)? };
                if ai(n, "sorted", 1) == 0 {
                    // unsorted output order is implementation-defined; sorted is a valid answer
                }
                let op = Op::TopK { axis: ai(n, "axis", -1), largest: ai(n, "largest", 1) != 0, index: DType::I64 };
                self.emit_final(n, op, vec![x, k]);
            }
            "LpNormalization" => {
                let x = self.req(n, 0)?;
                let p = ai(n, "p", 2);
                let axis = self.ints_const(n, "axis", &[ai(n, "axis", -1)]);
                let norm = match p {
                    2 => {
                        let sq = self.emit(format!("{name}/sq"), Op::Binary(BinOp::Mul), vec![x, x], 1)[0];
                        let s = self.emit(format!("{name}/sum"), Op::Reduce { op: ReduceOp::Sum, keep_dims: true }, vec![sq, axis], 1)[0];
                        self.emit(format!("{name}/norm"), Op::Unary(UnOp::Sqrt), vec![s], 1)[0]
                    }
                    1 => {
                        let ab = self.emit(format!("{name}/abs"), Op::Unary(UnOp::Abs), vec![x], 1)[0];
                        self.emit(format!("{name}/norm"), Op::Reduce { op: ReduceOp::Sum, keep_dims: true }, vec![ab, axis], 1)[0]
                    }
                    _ => return Err(self.err(n, format!("p = {p} is not supported (1 or 2)"))),
                };
                self.emit_final(n, Op::Binary(BinOp::Div), vec![x, norm]);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Binary ops before opset 7 broadcast only with `broadcast=1`, and with `axis` they line
    /// `B` up with `A` from that axis. PRelu before opset 7 applies a 1-D slope per channel.
    /// Returns whether the node was emitted here.
    fn legacy_broadcast(&mut self, n: &NodeProto, op: &Op) -> Result<bool> {
        if self.opset >= 7 || !matches!(op, Op::Binary(_)) {
            return Ok(false);
        }
        let name = node_name(n);
        let (a, b) = (self.req(n, 0)?, self.req(n, 1)?);
        let axis = if matches!(op, Op::Binary(BinOp::PRelu)) {
            match self.const_of(b) {
                Some(t) if t.rank() == 1 && t.numel() > 1 => 1,
                _ => return Ok(false),
            }
        } else {
            match find_attr(n, "axis").and_then(|a| a.i) {
                Some(ax) if ai(n, "broadcast", 0) != 0 => ax,
                _ => return Ok(false),
            }
        };
        let bb = self.emit(format!("{name}/align"), Op::AlignTo { axis }, vec![a, b], 1)[0];
        self.emit_final(n, op.clone(), vec![a, bb]);
        Ok(true)
    }
}

/// ONNX element type codes by their TensorProto names (Cast's `to` before opset 6).
fn onnx_type_code(name: &str) -> i32 {
    match name.to_ascii_uppercase().as_str() {
        "FLOAT" => 1,
        "UINT8" => 2,
        "INT8" => 3,
        "INT16" => 5,
        "INT32" => 6,
        "INT64" => 7,
        "BOOL" => 9,
        "FLOAT16" => 10,
        "DOUBLE" => 11,
        _ => 0,
    }
}
