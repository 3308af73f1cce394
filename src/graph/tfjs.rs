//! TF.js graph-model importer: `model.json` (modelTopology + weightsManifest) plus its
//! binary weight shards. float16 / uint8 / uint16 quantized weights are dequantized at load.

use super::*;
use base64::Engine;
use half::f16;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;

#[derive(Deserialize)]
struct ModelJson {
    #[serde(rename = "modelTopology")]
    topology: Topology,
    #[serde(rename = "weightsManifest", default)]
    manifest: Vec<WeightGroup>,
    #[serde(default)]
    signature: Option<Json>,
}

#[derive(Deserialize)]
struct Topology {
    #[serde(default)]
    node: Vec<TfNode>,
}

#[derive(Deserialize, Clone)]
struct TfNode {
    name: String,
    op: String,
    #[serde(default)]
    input: Vec<String>,
    #[serde(default)]
    attr: HashMap<String, Json>,
}

#[derive(Deserialize)]
struct WeightGroup {
    paths: Vec<String>,
    weights: Vec<WeightSpec>,
}

#[derive(Deserialize)]
struct WeightSpec {
    name: String,
    shape: Vec<i64>,
    dtype: String,
    #[serde(default)]
    quantization: Option<Quant>,
}

#[derive(Deserialize)]
struct Quant {
    dtype: String,
    #[serde(default)]
    scale: Option<f32>,
    #[serde(default)]
    min: Option<f32>,
}

fn tf_dtype(s: &str) -> Option<DType> {
    Some(match s {
        "DT_FLOAT" | "float32" => DType::F32,
        "DT_HALF" | "float16" => DType::F16,
        "DT_INT32" | "int32" => DType::I32,
        "DT_INT64" | "int64" => DType::I64,
        "DT_UINT8" | "uint8" => DType::U8,
        "DT_BOOL" | "bool" => DType::Bool,
        _ => return None,
    })
}

struct Attrs<'a> {
    node: &'a TfNode,
}

impl<'a> Attrs<'a> {
    fn get(&self, k: &str) -> Option<&'a Json> {
        self.node.attr.get(k)
    }
    fn int(&self, k: &str) -> Option<i64> {
        let v = self.get(k)?.get("i")?;
        v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64())
    }
    fn float(&self, k: &str) -> Option<f32> {
        self.get(k)?.get("f")?.as_f64().map(|f| f as f32)
    }
    fn bool(&self, k: &str) -> bool {
        self.get(k).and_then(|v| v.get("b")).and_then(|b| b.as_bool()).unwrap_or(false)
    }
    fn string(&self, k: &str) -> Option<String> {
        let s = self.get(k)?.get("s")?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
        String::from_utf8(bytes).ok()
    }
    fn ints(&self, k: &str) -> Vec<i64> {
        self.get(k)
            .and_then(|v| v.get("list"))
            .and_then(|l| l.get("i"))
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().and_then(|s| s.parse().ok()).or_else(|| x.as_i64())).collect())
            .unwrap_or_default()
    }
    fn strings(&self, k: &str) -> Vec<String> {
        self.get(k)
            .and_then(|v| v.get("list"))
            .and_then(|l| l.get("s"))
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .filter_map(|b| String::from_utf8(b).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
    fn dtype(&self, k: &str) -> Option<DType> {
        tf_dtype(self.get(k)?.get("type")?.as_str()?)
    }
}

/// Loads a TF.js graph model from its `model.json`; shards are resolved next to it.
pub fn load(model_json: &Path) -> Result<Graph> {
    let path = model_json.display().to_string();
    let text = std::fs::read(model_json).map_err(|e| GraphError::Io { path: path.clone(), msg: e.to_string() })?;
    let dir = model_json.parent().unwrap_or(Path::new("."));
    let shard = |p: &str| -> Result<Vec<u8>> {
        let f = confined_file(dir, p).map_err(|msg| GraphError::Io { path: path.clone(), msg: format!("weight shard: {msg}") })?;
        std::fs::read(&f).map_err(|e| GraphError::Io { path: f.display().to_string(), msg: format!("weight shard: {e}") })
    };
    from_parts(&text, &shard, &path)
}

/// Builds a TF.js graph model from the bytes of its `model.json`; `shard` gives the bytes of a
/// weight shard named in the manifest (a file next to it for `load`). `path` names the model
/// in errors.
pub fn from_parts(model_json: &[u8], shard: &dyn Fn(&str) -> Result<Vec<u8>>, path: &str) -> Result<Graph> {
    let m: ModelJson =
        serde_json::from_slice(model_json).map_err(|e| GraphError::Malformed { path: path.to_string(), msg: e.to_string() })?;
    let weights = read_weights(&m.manifest, shard, path)?;
    build_graph(m, weights, path)
}

fn read_weights(groups: &[WeightGroup], shard: &dyn Fn(&str) -> Result<Vec<u8>>, path: &str) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for g in groups {
        let mut buf = Vec::new();
        for p in &g.paths {
            buf.extend_from_slice(&shard(p)?);
        }
        let mut off = 0usize;
        for w in &g.weights {
            let shape: Vec<usize> = w.shape.iter().map(|&d| d.max(0) as usize).collect();
            let n = numel(&shape);
            let werr = |msg: String| GraphError::Weight { path: path.to_string(), name: w.name.clone(), msg };
            let dtype = tf_dtype(&w.dtype).ok_or_else(|| werr(format!("unsupported weight dtype '{}'", w.dtype)))?;
            let (store, bytes) = match &w.quantization {
                Some(q) => match q.dtype.as_str() {
                    "float16" => ("float16", 2 * n),
                    "uint8" => ("uint8", n),
                    "uint16" => ("uint16", 2 * n),
                    other => return Err(werr(format!("unsupported quantization '{other}'"))),
                },
                None => ("raw", n * dtype.size()),
            };
            if off + bytes > buf.len() {
                return Err(werr(format!(
                    "truncated weight shard(s) {}: need bytes {}..{}, have {}",
                    g.paths.join(", "),
                    off,
                    off + bytes,
                    buf.len()
                )));
            }
            let raw = &buf[off..off + bytes];
            off += bytes;
            let t = match store {
                "float16" => {
                    let v: Vec<f32> = raw.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect();
                    Tensor::f32(shape, v).cast(dtype)
                }
                "uint8" | "uint16" => {
                    let scale = q_param(w, |q| q.scale).ok_or_else(|| werr("quantization without scale".into()))?;
                    let min = q_param(w, |q| q.min).ok_or_else(|| werr("quantization without min".into()))?;
                    let v: Vec<f32> = if store == "uint8" {
                        raw.iter().map(|&b| b as f32 * scale + min).collect()
                    } else {
                        raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as f32 * scale + min).collect()
                    };
                    let t = Tensor::f32(shape, v);
                    if dtype.is_float() {
                        t.cast(dtype)
                    } else {
                        Tensor::f32(t.shape.clone(), t.as_f32().unwrap_or(&[]).iter().map(|x| x.round()).collect()).cast(dtype)
                    }
                }
                _ => Tensor::from_le_bytes(dtype, shape, raw).ok_or_else(|| werr("bad byte count".into()))?,
            };
            out.insert(w.name.clone(), t);
        }
    }
    Ok(out)
}

fn q_param(w: &WeightSpec, f: impl Fn(&Quant) -> Option<f32>) -> Option<f32> {
    w.quantization.as_ref().and_then(f)
}

/// Number of outputs a TF op produces.
fn output_count(n: &TfNode) -> usize {
    let a = Attrs { node: n };
    match n.op.as_str() {
        "Unpack" => a.int("num").unwrap_or(1) as usize,
        "Split" | "SplitV" => a.int("num_split").unwrap_or(1) as usize,
        "TopKV2" => 2,
        _ => 1,
    }
}

fn split_ref(s: &str) -> (&str, usize) {
    match s.rsplit_once(':') {
        Some((n, i)) if i.chars().all(|c| c.is_ascii_digit()) => (n, i.parse().unwrap_or(0)),
        _ => (s, 0),
    }
}

fn topo_sort(nodes: Vec<TfNode>, path: &str) -> Result<Vec<TfNode>> {
    let index: HashMap<String, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
    let mut state = vec![0u8; nodes.len()]; // 0 new, 1 visiting, 2 done
    let mut order = Vec::with_capacity(nodes.len());
    for start in 0..nodes.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((i, k)) = stack.pop() {
            let deps: Vec<usize> =
                nodes[i].input.iter().filter(|s| !s.starts_with('^')).filter_map(|s| index.get(split_ref(s).0).copied()).collect();
            if k < deps.len() {
                stack.push((i, k + 1));
                let d = deps[k];
                match state[d] {
                    0 => {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => return Err(GraphError::Malformed { path: path.into(), msg: format!("cycle through node '{}'", nodes[d].name) }),
                    _ => {}
                }
            } else {
                state[i] = 2;
                order.push(i);
            }
        }
    }
    let mut slots: Vec<Option<TfNode>> = nodes.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

fn padding_of(a: &Attrs, node: &TfNode) -> std::result::Result<Padding, String> {
    match a.string("padding").as_deref() {
        Some("SAME") => Ok(Padding::SameUpper),
        Some("VALID") => Ok(Padding::Valid),
        Some("EXPLICIT") => {
            let p = a.ints("explicit_paddings");
            if p.len() != 8 {
                return Err(format!("node '{}': explicit_paddings needs 8 values", node.name));
            }
            // NHWC pairs: [n0,n1,h0,h1,w0,w1,c0,c1]
            Ok(Padding::Explicit([p[2] as usize, p[4] as usize, p[3] as usize, p[5] as usize]))
        }
        other => Err(format!("node '{}': unsupported padding {other:?}", node.name)),
    }
}

fn hw_pair(v: &[i64], default: usize) -> [usize; 2] {
    if v.len() == 4 {
        [v[1] as usize, v[2] as usize]
    } else {
        [default, default]
    }
}

fn build_graph(m: ModelJson, mut weights: HashMap<String, Tensor>, path: &str) -> Result<Graph> {
    let nodes = topo_sort(m.topology.node, path)?;
    let mut g = Graph { source: path.to_string(), ..Default::default() };
    let mut outs: HashMap<String, Vec<ValueId>> = HashMap::new();
    let mut unsupported: Vec<String> = Vec::new();
    let malformed = |msg: String| GraphError::Malformed { path: path.to_string(), msg };

    for n in &nodes {
        let a = Attrs { node: n };
        if n.op == "Const" {
            let t = weights.remove(&n.name).ok_or_else(|| GraphError::Weight {
                path: path.to_string(),
                name: n.name.clone(),
                msg: "missing from the weights manifest".into(),
            })?;
            let id = g.add_const(n.name.clone(), t);
            outs.insert(n.name.clone(), vec![id]);
            continue;
        }
        if n.op == "Placeholder" {
            let dtype = a.dtype("dtype").ok_or_else(|| malformed(format!("placeholder '{}' without a supported dtype", n.name)))?;
            let dims: Vec<Dim> = a
                .get("shape")
                .and_then(|s| s.get("shape"))
                .and_then(|s| s.get("dim"))
                .and_then(|d| d.as_array())
                .map(|d| {
                    d.iter()
                        .map(|x| {
                            let v = x
                                .get("size")
                                .and_then(|s| s.as_str().and_then(|s| s.parse::<i64>().ok()).or_else(|| s.as_i64()))
                                .unwrap_or(-1);
                            if v < 0 {
                                Dim::Dynamic(None)
                            } else {
                                Dim::Fixed(v as usize)
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let id = g.add_value(n.name.clone(), dtype);
            g.inputs.push(InputInfo { value: id, name: n.name.clone(), dtype, dims });
            outs.insert(n.name.clone(), vec![id]);
            continue;
        }
        let mut inputs = Vec::new();
        let mut missing = None;
        for s in n.input.iter().filter(|s| !s.starts_with('^')) {
            let (src, idx) = split_ref(s);
            match outs.get(src).and_then(|o| o.get(idx)) {
                Some(&v) => inputs.push(v),
                None => missing = Some(s.clone()),
            }
        }
        if let Some(s) = missing {
            if !unsupported.is_empty() {
                // possibly downstream of an unsupported op: keep collecting, report all at the end
                let ids = (0..output_count(n)).map(|i| g.add_value(format!("{}:{i}", n.name), DType::F32)).collect();
                outs.insert(n.name.clone(), ids);
                continue;
            }
            return Err(malformed(format!("node '{}' reads unknown tensor '{s}'", n.name)));
        }
        let mut post = Vec::new();
        let op = match map_op(n, &a, &mut g, &mut inputs, &mut post) {
            Ok(Some(op)) => op,
            Ok(None) => {
                unsupported.push(format!("{} (node '{}')", n.op, n.name));
                let ids = (0..output_count(n)).map(|i| g.add_value(format!("{}:{i}", n.name), DType::F32)).collect();
                outs.insert(n.name.clone(), ids);
                continue;
            }
            Err(msg) => return Err(malformed(msg)),
        };
        // an op that TF fuses (or lays out differently) becomes a chain: the main node, then
        // each `post` op on the previous value (and its extra inputs); the last one is the node
        let (mut op, mut inputs, mut step) = (op, inputs, 0);
        for (next, extra) in post {
            let v = g.add_value(format!("{}/{step}", n.name), DType::F32);
            g.nodes.push(Node { name: format!("{}/{step}", n.name), op, inputs, outputs: vec![v] });
            op = next;
            inputs = std::iter::once(v).chain(extra).collect();
            step += 1;
        }
        let count = output_count(n);
        let ids: Vec<ValueId> =
            (0..count).map(|i| g.add_value(if i == 0 { n.name.clone() } else { format!("{}:{i}", n.name) }, DType::F32)).collect();
        g.nodes.push(Node { name: n.name.clone(), op, inputs, outputs: ids.clone() });
        outs.insert(n.name.clone(), ids);
    }
    if !unsupported.is_empty() {
        return Err(GraphError::UnsupportedOps(unsupported));
    }
    // Outputs: from the signature, else sinks.
    let mut out_names: Vec<String> = Vec::new();
    if let Some(sig) = &m.signature {
        if let Some(o) = sig.get("outputs").and_then(|o| o.as_object()) {
            let mut v: Vec<(&String, &Json)> = o.iter().collect();
            v.sort_by_key(|(k, _)| (*k).clone());
            for (_, spec) in v {
                if let Some(name) = spec.get("name").and_then(|n| n.as_str()) {
                    out_names.push(name.to_string());
                }
            }
        }
    }
    if out_names.is_empty() {
        let used: std::collections::HashSet<ValueId> = g.nodes.iter().flat_map(|n| n.inputs.iter().copied()).collect();
        for n in &g.nodes {
            for &o in &n.outputs {
                if !used.contains(&o) {
                    out_names.push(g.values[o].name.clone());
                }
            }
        }
    }
    for name in out_names {
        let (src, idx) = split_ref(&name);
        let id = outs
            .get(src)
            .and_then(|o| o.get(idx))
            .copied()
            .ok_or_else(|| malformed(format!("output '{name}' not produced by any node")))?;
        g.outputs.push(id);
    }
    if g.inputs.is_empty() {
        return Err(malformed("model has no Placeholder input".into()));
    }
    Ok(g)
}

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
fn map_op(
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
