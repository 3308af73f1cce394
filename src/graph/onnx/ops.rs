//! ONNX operators to IR nodes, one arm per operator (opsets 11 to 21).

use super::proto::NodeProto;
use super::*;

impl Builder<'_> {
    /// Converts one node. `Ok(false)`: unsupported op.
    pub(super) fn node(&mut self, n: &NodeProto) -> NodeResult {
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
                let to = ai(n, "to", 1) as i32;
                Some(Op::Cast(onnx_dtype(to).ok_or_else(|| self.err(n, format!("cast to unsupported type {to}")))?))
            }
            _ => None,
        };
        if let Some(op) = simple {
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
                if n.output.len() > 1 && !n.output[1].is_empty() {
                    return Err(self.err(n, "the dropout mask output is not supported in inference"));
                }
                let x = self.req(n, 0)?;
                self.alias(n, x);
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
            "Softmax" => {
                let legacy = self.opset < 13;
                let x = self.req(n, 0)?;
                self.emit_final(n, Op::Softmax { axis: ai(n, "axis", if legacy { 1 } else { -1 }), legacy }, vec![x]);
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
            "BatchNormalization" => {
                let x = self.req(n, 0)?;
                let get = |b: &Self, i: usize| -> Result<Vec<f32>> {
                    let v = b.req(n, i)?;
                    b.const_of(v)
                        .map(|t| t.cast(DType::F32).as_f32().unwrap_or(&[]).to_vec())
                        .ok_or_else(|| b.err(n, "scale, bias, mean and var must be constants"))
                };
                let (scale, bias, mean, var) = (get(self, 1)?, get(self, 2)?, get(self, 3)?, get(self, 4)?);
                let eps = af(n, "epsilon", 1e-5);
                let c = scale.len();
                if bias.len() != c || mean.len() != c || var.len() != c {
                    return Err(self.err(n, "scale, bias, mean and var differ in length"));
                }
                let a: Vec<f32> = (0..c).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
                let b: Vec<f32> = (0..c).map(|i| bias[i] - mean[i] * a[i]).collect();
                let av = self.konst(format!("{name}/scale"), Tensor::f32(vec![c], a));
                let bv = self.konst(format!("{name}/shift"), Tensor::f32(vec![c], b));
                self.emit_final(n, Op::ChannelAffine, vec![x, av, bv]);
            }
            "MaxPool" | "AveragePool" => {
                if n.output.len() > 1 && !n.output[1].is_empty() {
                    return Err(self.err(n, "MaxPool indices output is not supported"));
                }
                if self.pair(n, "dilations")? != [1, 1] {
                    return Err(self.err(n, "dilated pooling is not supported"));
                }
                let k = ints(n, "kernel_shape").ok_or_else(|| self.err(n, "kernel_shape is required"))?;
                if k.len() != 2 {
                    return Err(self.err(n, "only 2-D pooling is supported"));
                }
                let x = self.req(n, 0)?;
                let p = PoolAttrs {
                    kind: if op == "MaxPool" { PoolKind::Max } else { PoolKind::Avg },
                    layout: Layout::Nchw,
                    kernel: [k[0] as usize, k[1] as usize],
                    strides: self.pair(n, "strides")?,
                    padding: self.padding(n)?,
                    count_include_pad: ai(n, "count_include_pad", 0) != 0,
                    ceil_mode: ai(n, "ceil_mode", 0) != 0,
                };
                self.emit_final(n, Op::Pool(p), vec![x]);
            }
            "Resize" | "Upsample" => self.resize(n)?,
            "Concat" => {
                let inputs: Vec<ValueId> = (0..n.input.len()).filter_map(|i| self.input(n, i).transpose()).collect::<Result<_>>()?;
                let axis = self.scalar_i64(n, "axis", ai(n, "axis", 0));
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
                let (x, s) = (self.req(n, 0)?, self.req(n, 1)?);
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
                let pads = self.req(n, 1)?;
                let mut inputs = vec![x, pads];
                if let Some(v) = self.input(n, 2)? {
                    inputs.push(v);
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
                let (x, k) = (self.req(n, 0)?, self.req(n, 1)?);
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

    pub(super) fn conv(&mut self, n: &NodeProto) -> Result<()> {
        let name = node_name(n);
        let x = self.req(n, 0)?;
        let w = self.req(n, 1)?;
        let groups = ai(n, "group", 1) as usize;
        // OIHW -> HWIO
        let w_hwio = match self.const_of(w) {
            Some(t) => {
                if t.rank() != 4 {
                    return Err(self.err(n, format!("only 2-D convolution is supported (weight {:?})", t.shape)));
                }
                let t = eval::transpose(&t.cast(DType::F32), &[2, 3, 1, 0]);
                self.konst(format!("{name}/w_hwio"), t)
            }
            None => self.emit(format!("{name}/w_hwio"), Op::Transpose { perm: vec![2, 3, 1, 0] }, vec![w], 1)[0],
        };
        let bias = self.input(n, 2)?;
        let a = ConvAttrs {
            layout: Layout::Nchw,
            strides: self.pair(n, "strides")?,
            dilations: self.pair(n, "dilations")?,
            padding: self.padding(n)?,
            groups,
            has_bias: bias.is_some(),
            act: Activation::None,
            residual: None,
        };
        let mut inputs = vec![x, w_hwio];
        inputs.extend(bias);
        self.emit_final(n, Op::Conv2d(a), inputs);
        Ok(())
    }

    pub(super) fn resize(&mut self, n: &NodeProto) -> Result<()> {
        let name = node_name(n);
        let op = n.op_type();
        let x = self.req(n, 0)?;
        let mode = match astr(n, "mode", "nearest").as_str() {
            "nearest" => ResizeMode::Nearest,
            "linear" | "bilinear" => ResizeMode::Linear,
            other => return Err(self.err(n, format!("mode '{other}' is not supported"))),
        };
        let (coord, nearest) = if op == "Upsample" {
            (CoordMode::Asymmetric, NearestMode::Floor)
        } else {
            if ai(n, "antialias", 0) != 0 || find_attr(n, "axes").is_some() {
                return Err(self.err(n, "antialias and axes are not supported"));
            }
            let coord = match astr(n, "coordinate_transformation_mode", "half_pixel").as_str() {
                "half_pixel" => CoordMode::HalfPixel,
                "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
                "align_corners" => CoordMode::AlignCorners,
                "asymmetric" => CoordMode::Asymmetric,
                "tf_half_pixel_for_nn" => CoordMode::TfHalfPixelForNn,
                other => return Err(self.err(n, format!("coordinate_transformation_mode '{other}' is not supported"))),
            };
            let nearest = match astr(n, "nearest_mode", "round_prefer_floor").as_str() {
                "round_prefer_floor" => NearestMode::RoundPreferFloor,
                "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                "floor" => NearestMode::Floor,
                "ceil" => NearestMode::Ceil,
                other => return Err(self.err(n, format!("nearest_mode '{other}' is not supported"))),
            };
            (coord, nearest)
        };
        let (scales_i, sizes_i) = if op == "Upsample" { (1, usize::MAX) } else { (2, 3) };
        let f = |b: &Self, i: usize| -> Result<Option<Vec<f64>>> {
            match b.input(n, i)? {
                None => Ok(None),
                Some(v) => match b.const_of(v) {
                    Some(t) if t.numel() == 0 => Ok(None),
                    Some(t) => Ok(Some(t.to_f64_vec())),
                    None => Err(b.err(n, "scales and sizes must be constants")),
                },
            }
        };
        let sizes = if sizes_i == usize::MAX { None } else { f(self, sizes_i)? };
        let scales = f(self, scales_i)?;
        let base = Op::Resize { layout: Layout::Nchw, mode, coord, nearest, scales: None };
        if let Some(s) = sizes {
            if s.len() != 4 {
                return Err(self.err(n, "only 4-D NCHW resize is supported"));
            }
            let sz = self.ints_const(n, "hw", &[s[2] as i64, s[3] as i64]);
            self.emit_final(n, base, vec![x, sz]);
        } else if let Some(s) = scales {
            if s.len() != 4 || s[0] != 1.0 || s[1] != 1.0 {
                return Err(self.err(n, format!("only spatial scales on 4-D NCHW are supported, got {s:?}")));
            }
            let op = Op::Resize { layout: Layout::Nchw, mode, coord, nearest, scales: Some([s[2] as f32, s[3] as f32]) };
            self.emit_final(n, op, vec![x]);
        } else {
            return Err(self.err(n, format!("{name}: needs scales or sizes")));
        }
        Ok(())
    }
}
