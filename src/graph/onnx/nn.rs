//! Convolution, pooling, normalisation and resizing operators.
//!
//! 2-D ops map onto the IR's NCHW kernels. 1-D ops run as 2-D ops over a height of 1. 3-D ops
//! are lowered onto 2-D ones, so every executor that runs a 2-D convolution or pooling runs
//! them too:
//! - a convolution gathers the `kd` depth taps of every output depth into channels (an im2col
//!   along depth: `[N*D', C*kd, H, W]`) and runs one 2-D convolution over all output depths
//!   with the weight viewed as `[O, C/g*kd, kh, kw]`;
//! - a pooling pools height and width, then depth: max and average pooling are separable, and
//!   so is average pooling that leaves the padding out, since the window's valid part is a box.

use super::proto::NodeProto;
use super::*;

/// Spatial attributes of an N-D convolution or pooling as ONNX gives them.
struct Spatial {
    strides: Vec<usize>,
    dilations: Vec<usize>,
    /// all begins, then all ends
    pads: Vec<usize>,
    auto_pad: String,
}

/// Per-axis attributes of one of the two axes of a 2-D op.
type Axis2 = Option<usize>;

impl Spatial {
    /// The 2-D op's (strides, dilations, padding) for the N-D axes mapped to its height and
    /// width (`None`: an axis of size 1 added by the lowering).
    fn two_d(&self, axes: [Axis2; 2]) -> ([usize; 2], [usize; 2], Padding) {
        let r = self.strides.len();
        let pick = |v: &[usize], a: Axis2| a.map(|i| v[i]).unwrap_or(1);
        let strides = [pick(&self.strides, axes[0]), pick(&self.strides, axes[1])];
        let dilations = [pick(&self.dilations, axes[0]), pick(&self.dilations, axes[1])];
        let pad = |a: Axis2, end: bool| a.map(|i| self.pads[i + if end { r } else { 0 }]).unwrap_or(0);
        let padding = match self.auto_pad.as_str() {
            "SAME_UPPER" => Padding::SameUpper,
            "SAME_LOWER" => Padding::SameLower,
            "VALID" => Padding::Valid,
            _ => Padding::Explicit([pad(axes[0], false), pad(axes[1], false), pad(axes[0], true), pad(axes[1], true)]),
        };
        (strides, dilations, padding)
    }
}

impl Builder<'_> {
    fn spatial(&self, n: &NodeProto, rank: usize) -> Result<Spatial> {
        let per_axis = |name: &str, d: usize, len: usize| -> Result<Vec<usize>> {
            match ints(n, name) {
                None => Ok(vec![d; len]),
                Some(v) if v.len() == len && v.iter().all(|&x| x >= 0) => Ok(v.iter().map(|&x| x as usize).collect()),
                Some(v) => Err(self.err(n, format!("{name} {v:?} does not fit a {rank}-D op"))),
            }
        };
        let auto_pad = astr(n, "auto_pad", "NOTSET");
        if !matches!(auto_pad.as_str(), "NOTSET" | "" | "SAME_UPPER" | "SAME_LOWER" | "VALID") {
            return Err(self.err(n, format!("unknown auto_pad '{auto_pad}'")));
        }
        if rank == 3 && matches!(auto_pad.as_str(), "SAME_UPPER" | "SAME_LOWER") {
            return Err(self.err(n, "auto_pad SAME on a 3-D op is not supported; give pads"));
        }
        Ok(Spatial {
            strides: per_axis("strides", 1, rank)?,
            dilations: per_axis("dilations", 1, rank)?,
            pads: per_axis("pads", 0, 2 * rank)?,
            auto_pad,
        })
    }

    fn unsqueeze(&mut self, name: String, x: ValueId, axis: i64) -> ValueId {
        self.emit(name, Op::Unsqueeze { axes: vec![axis] }, vec![x], 1)[0]
    }

    fn reshape(&mut self, name: String, x: ValueId, target: ValueId) -> ValueId {
        self.emit(name, Op::Reshape { copy_zero: false }, vec![x, target], 1)[0]
    }

    /// A 2-D convolution node of `x` with an OIHW weight.
    fn conv2d_op(
        &mut self,
        name: &str,
        x: ValueId,
        w: ValueId,
        bias: Option<ValueId>,
        groups: usize,
        two: ([usize; 2], [usize; 2], Padding),
    ) -> (Op, Vec<ValueId>) {
        // OIHW -> HWIO
        let w_hwio = match self.const_of(w) {
            Some(t) => {
                let t = eval::transpose(&t.cast(DType::F32), &[2, 3, 1, 0]);
                self.konst(format!("{name}/w_hwio"), t)
            }
            None => self.emit(format!("{name}/w_hwio"), Op::Transpose { perm: vec![2, 3, 1, 0] }, vec![w], 1)[0],
        };
        let a = ConvAttrs {
            layout: Layout::Nchw,
            strides: two.0,
            dilations: two.1,
            padding: two.2,
            groups,
            has_bias: bias.is_some(),
            act: Activation::None,
            residual: None,
        };
        let mut inputs = vec![x, w_hwio];
        inputs.extend(bias);
        (Op::Conv2d(a), inputs)
    }

    pub(super) fn conv(&mut self, n: &NodeProto) -> Result<()> {
        let name = node_name(n);
        let x = self.req(n, 0)?;
        let w = self.req(n, 1)?;
        let bias = self.input(n, 2)?;
        let groups = ai(n, "group", 1).max(1) as usize;
        let wt = self.const_of(w).cloned();
        let rank = ints(n, "kernel_shape").map(|k| k.len()).or(wt.as_ref().map(|t| t.rank().saturating_sub(2))).unwrap_or(2);
        if let Some(t) = &wt {
            if t.rank() != rank + 2 {
                return Err(self.err(n, format!("weight {:?} does not fit a {rank}-D convolution", t.shape)));
            }
        }
        let sp = self.spatial(n, rank)?;
        match rank {
            2 => {
                let (op, inputs) = self.conv2d_op(&name, x, w, bias, groups, sp.two_d([Some(0), Some(1)]));
                self.emit_final(n, op, inputs);
            }
            1 => {
                let x4 = self.unsqueeze(format!("{name}/x4"), x, 2);
                let w4 = match wt {
                    Some(t) => {
                        let s = vec![t.shape[0], t.shape[1], 1, t.shape[2]];
                        self.konst(format!("{name}/w4"), t.reshaped(s))
                    }
                    None => self.unsqueeze(format!("{name}/w4"), w, 2),
                };
                let (op, inputs) = self.conv2d_op(&name, x4, w4, bias, groups, sp.two_d([None, Some(0)]));
                let y = self.emit(format!("{name}/conv2d"), op, inputs, 1)[0];
                self.emit_final(n, Op::Squeeze { axes: vec![2] }, vec![y]);
            }
            3 => {
                let t = wt.ok_or_else(|| self.err(n, "a 3-D convolution needs a constant weight"))?;
                let (o, cg, kd) = (t.shape[0], t.shape[1], t.shape[2]);
                let c = cg * groups;
                let (sd, dd, db, de) = (sp.strides[0], sp.dilations[0], sp.pads[0], sp.pads[3]);
                let xp = if db + de > 0 {
                    let pads =
                        self.konst(format!("{name}/dpads"), Tensor::i64(vec![10], vec![0, 0, db as i64, 0, 0, 0, 0, de as i64, 0, 0]));
                    self.emit(format!("{name}/dpad"), Op::Pad { mode: PadMode::Constant }, vec![x, pads], 1)[0]
                } else {
                    x
                };
                // the k-th depth tap of every output depth: xp[:, :, k*dd :: sd], as many as
                // there are output depths
                let mut taps = Vec::with_capacity(kd + 1);
                for k in 0..kd {
                    let back = ((kd - 1 - k) * dd) as i64;
                    let st = self.konst(format!("{name}/t{k}s"), Tensor::i64(vec![1], vec![(k * dd) as i64]));
                    let en = self.konst(format!("{name}/t{k}e"), Tensor::i64(vec![1], vec![if back == 0 { i64::MAX } else { -back }]));
                    let ax = self.konst(format!("{name}/t{k}a"), Tensor::i64(vec![1], vec![2]));
                    let step = self.konst(format!("{name}/t{k}st"), Tensor::i64(vec![1], vec![sd as i64]));
                    let sl = self.emit(format!("{name}/tap{k}"), Op::Slice, vec![xp, st, en, ax, step], 1)[0];
                    taps.push(self.unsqueeze(format!("{name}/tap{k}u"), sl, 3));
                }
                taps.push(self.konst(format!("{name}/taps_axis"), Tensor::i64(vec![], vec![3])));
                let cat = self.emit(format!("{name}/taps"), Op::Concat, taps, 1)[0]; // [N, C, D', kd, H, W]
                let tr = self.emit(format!("{name}/taps_t"), Op::Transpose { perm: vec![0, 2, 1, 3, 4, 5] }, vec![cat], 1)[0];
                let sx = self.shape_i64(x, &name);
                let t4 = self.build_shape(&format!("{name}/x4"), &[ShapePart::Const(vec![-1, (c * kd) as i64]), ShapePart::Dims(sx, 3, 5)]);
                let x4 = self.reshape(format!("{name}/x4"), tr, t4);
                let s4 = vec![o, cg * kd, t.shape[3], t.shape[4]];
                let w4 = self.konst(format!("{name}/w4"), t.reshaped(s4));
                let (op, inputs) = self.conv2d_op(&name, x4, w4, bias, groups, sp.two_d([Some(1), Some(2)]));
                let y = self.emit(format!("{name}/conv2d"), op, inputs, 1)[0]; // [N*D', O, H', W']
                let sy = self.shape_i64(y, &format!("{name}/y"));
                let t5 = self.build_shape(
                    &format!("{name}/y5"),
                    &[ShapePart::Dims(sx, 0, 1), ShapePart::Const(vec![-1, o as i64]), ShapePart::Dims(sy, 2, 4)],
                );
                let y5 = self.reshape(format!("{name}/y5"), y, t5);
                self.emit_final(n, Op::Transpose { perm: vec![0, 2, 1, 3, 4] }, vec![y5]);
            }
            r => return Err(self.err(n, format!("{r}-D convolution is not supported (1-D, 2-D and 3-D are)"))),
        }
        Ok(())
    }

    pub(super) fn pool(&mut self, n: &NodeProto, kind: PoolKind) -> Result<()> {
        let name = node_name(n);
        if self.output_used(n, 1) {
            return Err(self.err(n, "MaxPool's indices output is not supported"));
        }
        let k: Vec<usize> =
            ints(n, "kernel_shape").ok_or_else(|| self.err(n, "kernel_shape is required"))?.iter().map(|&v| v.max(1) as usize).collect();
        let rank = k.len();
        let sp = self.spatial(n, rank)?;
        let x = self.req(n, 0)?;
        let mk = |kernel: [usize; 2], two: ([usize; 2], [usize; 2], Padding)| {
            Op::Pool(PoolAttrs {
                kind,
                layout: Layout::Nchw,
                kernel,
                strides: two.0,
                dilations: two.1,
                padding: two.2,
                count_include_pad: ai(n, "count_include_pad", 0) != 0,
                ceil_mode: ai(n, "ceil_mode", 0) != 0,
            })
        };
        match rank {
            2 => self.emit_final(n, mk([k[0], k[1]], sp.two_d([Some(0), Some(1)])), vec![x]),
            1 => {
                let x4 = self.unsqueeze(format!("{name}/x4"), x, 2);
                let y = self.emit(format!("{name}/pool2d"), mk([1, k[0]], sp.two_d([None, Some(0)])), vec![x4], 1)[0];
                self.emit_final(n, Op::Squeeze { axes: vec![2] }, vec![y]);
            }
            3 => {
                let sx = self.shape_i64(x, &name);
                let t1 = self.build_shape(
                    &format!("{name}/hw"),
                    &[ShapePart::Dims(sx, 0, 1), ShapePart::Const(vec![-1]), ShapePart::Dims(sx, 3, 5)],
                );
                let x4 = self.reshape(format!("{name}/hw_in"), x, t1); // [N, C*D, H, W]
                let p1 = self.emit(format!("{name}/pool_hw"), mk([k[1], k[2]], sp.two_d([Some(1), Some(2)])), vec![x4], 1)[0];
                let t2 = self.build_shape(&format!("{name}/d"), &[ShapePart::Dims(sx, 0, 3), ShapePart::Const(vec![-1])]);
                let x5 = self.reshape(format!("{name}/d_in"), p1, t2); // [N, C, D, H'*W']
                let two = (
                    [sp.strides[0], 1],
                    [sp.dilations[0], 1],
                    match sp.auto_pad.as_str() {
                        "VALID" => Padding::Valid,
                        _ => Padding::Explicit([sp.pads[0], 0, sp.pads[3], 0]),
                    },
                );
                let p2 = self.emit(format!("{name}/pool_d"), mk([k[0], 1], two), vec![x5], 1)[0];
                let s1 = self.shape_i64(p1, &format!("{name}/hw_out"));
                let s2 = self.shape_i64(p2, &format!("{name}/d_out"));
                let t3 = self.build_shape(&format!("{name}/out"), &[ShapePart::Dims(s2, 0, 3), ShapePart::Dims(s1, 2, 4)]);
                self.emit_final(n, Op::Reshape { copy_zero: false }, vec![p2, t3]);
            }
            r => return Err(self.err(n, format!("{r}-D pooling is not supported (1-D, 2-D and 3-D are)"))),
        }
        Ok(())
    }

    pub(super) fn batch_norm(&mut self, n: &NodeProto) -> Result<()> {
        let name = node_name(n);
        if (1..n.output.len()).any(|i| self.output_used(n, i)) {
            return Err(self.err(n, "training-mode outputs (running mean and variance) are not supported in inference"));
        }
        if self.opset < 9 && ai(n, "spatial", 1) == 0 {
            return Err(self.err(n, "spatial = 0 (per-element statistics) is not supported"));
        }
        let x = self.req(n, 0)?;
        let eps = af(n, "epsilon", 1e-5);
        let p: Vec<ValueId> = (1..5).map(|i| self.req(n, i)).collect::<Result<_>>()?;
        let consts: Option<Vec<Vec<f32>>> = p.iter().map(|&v| self.const_of(v).map(|t| eval::f32_of(t).to_vec())).collect();
        let (av, bv) = match consts {
            Some(c) => {
                let (scale, bias, mean, var) = (&c[0], &c[1], &c[2], &c[3]);
                let ch = scale.len();
                if bias.len() != ch || mean.len() != ch || var.len() != ch {
                    return Err(self.err(n, "scale, bias, mean and var differ in length"));
                }
                let a: Vec<f32> = (0..ch).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
                let b: Vec<f32> = (0..ch).map(|i| bias[i] - mean[i] * a[i]).collect();
                (
                    self.konst(format!("{name}/scale"), Tensor::f32(vec![ch], a)),
                    self.konst(format!("{name}/shift"), Tensor::f32(vec![ch], b)),
                )
            }
            None => {
                // parameters computed by nodes: a = scale / sqrt(var + eps), b = bias - mean * a
                let e = self.konst(format!("{name}/eps"), Tensor::scalar_f32(eps));
                let ve = self.emit(format!("{name}/var_eps"), Op::Binary(BinOp::Add), vec![p[3], e], 1)[0];
                let sd = self.emit(format!("{name}/std"), Op::Unary(UnOp::Sqrt), vec![ve], 1)[0];
                let a = self.emit(format!("{name}/scale"), Op::Binary(BinOp::Div), vec![p[0], sd], 1)[0];
                let ma = self.emit(format!("{name}/mean_a"), Op::Binary(BinOp::Mul), vec![p[2], a], 1)[0];
                let b = self.emit(format!("{name}/shift"), Op::Binary(BinOp::Sub), vec![p[1], ma], 1)[0];
                (a, b)
            }
        };
        self.emit_final(n, Op::ChannelAffine, vec![x, av, bv]);
        Ok(())
    }

    /// InstanceNormalization: per (sample, channel) statistics over the spatial dims.
    pub(super) fn instance_norm(&mut self, n: &NodeProto) -> Result<()> {
        let name = node_name(n);
        let (x, scale, bias) = (self.req(n, 0)?, self.req(n, 1)?, self.req(n, 2)?);
        let eps = self.konst(format!("{name}/eps"), Tensor::scalar_f32(af(n, "epsilon", 1e-5)));
        // axes 2..rank, folded once the input shape is known
        let s = self.emit(format!("{name}/shape"), Op::Shape, vec![x], 1)[0];
        let r = self.emit(format!("{name}/rank"), Op::Size, vec![s], 1)[0];
        let two = self.konst(format!("{name}/two"), Tensor::i32(vec![], vec![2]));
        let one = self.konst(format!("{name}/one"), Tensor::i32(vec![], vec![1]));
        let axes = self.emit(format!("{name}/axes"), Op::Range, vec![two, r, one], 1)[0];
        let mean_op = Op::Reduce { op: ReduceOp::Mean, keep_dims: true };
        let mean = self.emit(format!("{name}/mean"), mean_op.clone(), vec![x, axes], 1)[0];
        let d = self.emit(format!("{name}/centred"), Op::Binary(BinOp::Sub), vec![x, mean], 1)[0];
        let d2 = self.emit(format!("{name}/sq"), Op::Binary(BinOp::Mul), vec![d, d], 1)[0];
        let var = self.emit(format!("{name}/var"), mean_op, vec![d2, axes], 1)[0];
        let ve = self.emit(format!("{name}/var_eps"), Op::Binary(BinOp::Add), vec![var, eps], 1)[0];
        let sd = self.emit(format!("{name}/std"), Op::Unary(UnOp::Sqrt), vec![ve], 1)[0];
        let y = self.emit(format!("{name}/normed"), Op::Binary(BinOp::Div), vec![d, sd], 1)[0];
        self.emit_final(n, Op::ChannelAffine, vec![y, scale, bias]);
        Ok(())
    }

    /// LRN across channels: x / (bias + alpha / size * sum of squares in the window)^beta,
    /// the window sum an average pooling over channels that counts the padding.
    pub(super) fn lrn(&mut self, n: &NodeProto) -> Result<()> {
        let name = node_name(n);
        let x = self.req(n, 0)?;
        let size = ai(n, "size", 0);
        if size < 1 {
            return Err(self.err(n, "size must be positive"));
        }
        let size = size as usize;
        let (alpha, beta, bias) = (af(n, "alpha", 1e-4), af(n, "beta", 0.75), af(n, "bias", 1.0));
        let sq = self.emit(format!("{name}/sq"), Op::Binary(BinOp::Mul), vec![x, x], 1)[0];
        let sx = self.shape_i64(x, &name);
        let t = self.build_shape(
            &format!("{name}/c"),
            &[ShapePart::Dims(sx, 0, 1), ShapePart::Const(vec![1]), ShapePart::Dims(sx, 1, 2), ShapePart::Const(vec![-1])],
        );
        let v = self.reshape(format!("{name}/c_in"), sq, t); // [N, 1, C, rest]
        let pool = Op::Pool(PoolAttrs {
            kind: PoolKind::Avg,
            layout: Layout::Nchw,
            kernel: [size, 1],
            strides: [1, 1],
            dilations: [1, 1],
            padding: Padding::Explicit([(size - 1) / 2, 0, size - 1 - (size - 1) / 2, 0]),
            count_include_pad: true,
            ceil_mode: false,
        });
        let avg = self.emit(format!("{name}/window"), pool, vec![v], 1)[0];
        let avg = self.reshape(format!("{name}/window_out"), avg, sx);
        let k_alpha = self.konst(format!("{name}/alpha"), Tensor::scalar_f32(alpha));
        let k_bias = self.konst(format!("{name}/bias"), Tensor::scalar_f32(bias));
        let k_beta = self.konst(format!("{name}/beta"), Tensor::scalar_f32(beta));
        let s = self.emit(format!("{name}/scaled"), Op::Binary(BinOp::Mul), vec![avg, k_alpha], 1)[0];
        let s = self.emit(format!("{name}/biased"), Op::Binary(BinOp::Add), vec![s, k_bias], 1)[0];
        let s = self.emit(format!("{name}/pow"), Op::Binary(BinOp::Pow), vec![s, k_beta], 1)[0];
        self.emit_final(n, Op::Binary(BinOp::Div), vec![x, s]);
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
        // Upsample (7-9) and Resize 10 place output pixels asymmetrically and floor
        let (coord, nearest) = if op == "Upsample" || self.opset < 11 {
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
        // scales: an attribute before opset 9, then input 1 (Upsample, Resize 10), then input 2
        // with sizes as input 3. Either may come from shape arithmetic that only folds once the
        // input shapes are fixed: then the raw tensor is the node's second input, and
        // `optimize::specialize` turns it into sizes or scales.
        let (scales_i, sizes_i) = if op == "Upsample" || self.opset < 11 { (1, usize::MAX) } else { (2, 3) };
        // an input that is absent, or constant and empty, is not given
        let given = |b: &Self, i: usize| -> Result<Option<ValueId>> {
            if i == usize::MAX {
                return Ok(None);
            }
            Ok(b.input(n, i)?.filter(|&v| b.const_of(v).is_none_or(|t| t.numel() > 0)))
        };
        let sizes = given(self, sizes_i)?;
        let scales = match find_attr(n, "scales") {
            Some(a) if self.opset < 9 => {
                let t = Tensor::f32(vec![a.floats.len()], a.floats.clone());
                Some(self.konst(format!("{name}/scales"), t))
            }
            _ => given(self, scales_i)?,
        };
        let base = Op::Resize { layout: Layout::Nchw, mode, coord, nearest, scales: None };
        match sizes.or(scales) {
            Some(target) => {
                if let Some(t) = self.const_of(target) {
                    eval::resize_target(&t.clone(), None).map_err(|e| self.err(n, e))?;
                }
                self.emit_final(n, base, vec![x, target]);
            }
            None => return Err(self.err(n, format!("{name}: needs scales or sizes"))),
        }
        Ok(())
    }
}
