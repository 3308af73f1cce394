//! walkout's own person re-identification network, trained with candle-nn on simulator crops.
//!
//! The network: four 3x3 convolutions with ReLU (strides 2, 2, 1, 2; 32, 64, 96, 128
//! channels) over a 64x32 crop, global average pooling and a linear layer to a 128-d
//! embedding. About 200k weights and 27 MFLOP per crop: small enough to train in minutes on
//! two cores and to run on every person of every camera.
//!
//! The loss: a normalised softmax over training identities (NormFace, Wang et al. 2017;
//! cosine logits at scale 16), the usual strong ReID baseline's classification term without
//! its extra tricks. Augmentation: jittered boxes (at collection), horizontal flips and
//! brightness and colour gain.
//!
//! The trained weights export as an ONNX graph (Conv, Relu, GlobalAveragePool, Flatten,
//! Gemm) that the repository loads like any user model; the head L2-normalises.

use super::data::{CropSet, Prng};
use crate::graph::onnx::proto::{
    self, tensor_proto, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, Linear, Optimizer, VarBuilder, VarMap};
use prost::Message;

/// (in, out, stride) of each convolution.
pub const CONVS: [(usize, usize, usize); 4] = [(3, 32, 2), (32, 64, 2), (64, 96, 1), (96, 128, 2)];
pub const EMBED: usize = 128;
pub const CROP_H: usize = 64;
pub const CROP_W: usize = 32;
/// Input normalisation: (pixel - MEAN) / STD on 0..255 values.
pub const MEAN: f32 = 127.5;
pub const STD: f32 = 64.0;
const SCALE: f64 = 16.0;

#[derive(Debug)]
pub struct ReidNet {
    convs: Vec<Conv2d>,
    fc: Linear,
}

impl ReidNet {
    pub fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        let convs = CONVS
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, stride))| {
                candle_nn::conv2d(cin, cout, 3, Conv2dConfig { padding: 1, stride, ..Default::default() }, vb.pp(format!("conv{i}")))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let fc = candle_nn::linear(CONVS[CONVS.len() - 1].1, EMBED, vb.pp("fc"))?;
        Ok(ReidNet { convs, fc })
    }

    /// [N, 3, 64, 32] normalised crops to [N, 128] embeddings (not normalised).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for c in &self.convs {
            x = c.forward(&x)?.relu()?;
        }
        let x = x.mean(D::Minus1)?.mean(D::Minus1)?;
        self.fc.forward(&x)
    }
}

fn l2_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let n = x.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-6, f64::MAX)?;
    x.broadcast_div(&n)
}

/// Training settings.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// A batch of crops as a normalised NCHW tensor, augmented when `rng` is given.
fn batch_tensor(set: &CropSet, idx: &[usize], mut rng: Option<&mut Prng>) -> candle_core::Result<Tensor> {
    let (h, w) = (set.height, set.width);
    let mut data = vec![0f32; idx.len() * 3 * h * w];
    for (bi, &i) in idx.iter().enumerate() {
        let px = set.crop(i);
        let (flip, gain) = match rng.as_deref_mut() {
            Some(r) => {
                let flip = r.below(2) == 1;
                let g = 1.0 + 0.2 * r.signed();
                (flip, [g * (1.0 + 0.06 * r.signed()), g * (1.0 + 0.06 * r.signed()), g * (1.0 + 0.06 * r.signed())])
            }
            None => (false, [1.0; 3]),
        };
        let out = &mut data[bi * 3 * h * w..(bi + 1) * 3 * h * w];
        for y in 0..h {
            for x in 0..w {
                let sx = if flip { w - 1 - x } else { x };
                for c in 0..3 {
                    let v = (px[(y * w + sx) * 3 + c] as f32 * gain[c]).min(255.0);
                    out[c * h * w + y * w + x] = (v - MEAN) / STD;
                }
            }
        }
    }
    Tensor::from_vec(data, (idx.len(), 3, h, w), &Device::Cpu)
}

/// Trains on `set`; returns the weights. `progress(epoch, loss, accuracy)` after each epoch.
pub fn train(set: &CropSet, cfg: &TrainConfig, mut progress: impl FnMut(usize, f32, f32)) -> candle_core::Result<VarMap> {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let net = ReidNet::new(vb.clone())?;
    let classes = vb.get_with_hints((set.identities, EMBED), "classes", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
    // seed candle's initialisers' draws deterministically: reinitialise every variable from
    // our own generator (candle's CPU RNG is not seedable)
    let mut rng = Prng(cfg.seed);
    {
        let data = vm.data().lock().map_err(|_| candle_core::Error::Msg("weights lock".into()))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let dims = var.dims().to_vec();
            let n: usize = dims.iter().product();
            let fan_in: usize = if dims.len() > 1 { dims[1..].iter().product() } else { 1 };
            let std = if name.ends_with("bias") { 0.0 } else { (2.0 / fan_in as f32).sqrt() };
            // a sum of 4 uniforms, scaled to unit variance: near-normal
            let v: Vec<f32> = (0..n).map(|_| std * (0..4).map(|_| rng.signed()).sum::<f32>() * (3.0f32 / 4.0).sqrt()).collect();
            var.set(&Tensor::from_vec(v, dims, &dev)?)?;
        }
    }
    let mut opt = candle_nn::AdamW::new(vm.all_vars(), candle_nn::ParamsAdamW { lr: cfg.lr, weight_decay: 5e-4, ..Default::default() })?;
    let mut order: Vec<usize> = (0..set.len()).collect();
    let steps_per_epoch = set.len().div_ceil(cfg.batch);
    let total = (steps_per_epoch * cfg.epochs).max(1);
    let mut step = 0usize;
    for epoch in 0..cfg.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let (mut loss_sum, mut correct, mut seen) = (0f32, 0usize, 0usize);
        for chunk in order.chunks(cfg.batch) {
            // cosine learning-rate decay
            let lr = cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos());
            opt.set_learning_rate(lr);
            step += 1;
            let x = batch_tensor(set, chunk, Some(&mut rng))?;
            let labels: Vec<u32> = chunk.iter().map(|&i| set.labels[i]).collect();
            let y = Tensor::from_vec(labels.clone(), chunk.len(), &dev)?;
            let e = l2_rows(&net.forward(&x)?)?;
            let logits = (e.matmul(&l2_rows(&classes)?.t()?)? * SCALE)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? * chunk.len() as f32;
            let pred: Vec<u32> = logits.argmax(1)?.to_vec1()?;
            correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
            seen += chunk.len();
        }
        progress(epoch, loss_sum / seen.max(1) as f32, correct as f32 / seen.max(1) as f32);
    }
    Ok(vm)
}

/// L2-normalised embeddings of every crop of `set` with the trained network.
pub fn embed(vm: &VarMap, set: &CropSet) -> candle_core::Result<Vec<Vec<f32>>> {
    let vb = VarBuilder::from_varmap(vm, DType::F32, &Device::Cpu);
    let net = ReidNet::new(vb)?;
    let mut out = Vec::with_capacity(set.len());
    let idx: Vec<usize> = (0..set.len()).collect();
    for chunk in idx.chunks(256) {
        let e = l2_rows(&net.forward(&batch_tensor(set, chunk, None)?)?)?;
        out.extend(e.to_vec2::<f32>()?);
    }
    Ok(out)
}

fn tensor_proto(name: &str, t: &Tensor) -> candle_core::Result<TensorProto> {
    let dims = t.dims().iter().map(|&d| d as i64).collect();
    let data: Vec<f32> = t.flatten_all()?.to_vec1()?;
    Ok(TensorProto {
        name: Some(name.to_string()),
        dims,
        data_type: Some(tensor_proto::DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    })
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(proto::attribute_proto::AttributeType::Ints as i32),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        r#type: Some(proto::attribute_proto::AttributeType::Int as i32),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(output.to_string()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(tensor_proto::DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The trained network as ONNX (opset 13) bytes: input `crops` [N, 3, 64, 32], output
/// `embedding` [N, 128].
pub fn to_onnx(vm: &VarMap) -> candle_core::Result<Vec<u8>> {
    let data = vm.data().lock().map_err(|_| candle_core::Error::Msg("weights lock".into()))?;
    let get = |n: &str| data.get(n).map(|v| v.as_tensor().clone()).ok_or_else(|| candle_core::Error::Msg(format!("no weight {n}")));
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut prev = "crops".to_string();
    for (i, &(_, _, stride)) in CONVS.iter().enumerate() {
        let (w, b) = (format!("conv{i}.weight"), format!("conv{i}.bias"));
        inits.push(tensor_proto(&w, &get(&w)?)?);
        inits.push(tensor_proto(&b, &get(&b)?)?);
        let conv = format!("conv{i}");
        nodes.push(node(
            "Conv",
            &[&prev, &w, &b],
            &conv,
            vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1]), ints("strides", &[stride as i64, stride as i64])],
        ));
        let relu = format!("relu{i}");
        nodes.push(node("Relu", &[&conv], &relu, vec![]));
        prev = relu;
    }
    nodes.push(node("GlobalAveragePool", &[&prev], "pool", vec![]));
    nodes.push(node("Flatten", &["pool"], "flat", vec![int("axis", 1)]));
    inits.push(tensor_proto("fc.weight", &get("fc.weight")?)?);
    inits.push(tensor_proto("fc.bias", &get("fc.bias")?)?);
    nodes.push(node("Gemm", &["flat", "fc.weight", "fc.bias"], "embedding", vec![int("transB", 1)]));
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        producer_name: Some("walkout train reid".into()),
        graph: Some(GraphProto {
            name: Some("walkout-reid".into()),
            node: nodes,
            initializer: inits,
            input: vec![value_info("crops", &[None, Some(3), Some(CROP_H as i64), Some(CROP_W as i64)])],
            output: vec![value_info("embedding", &[None, Some(EMBED as i64)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}
