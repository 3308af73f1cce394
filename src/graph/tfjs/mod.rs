//! TF.js graph-model importer: `model.json` (modelTopology + weightsManifest) plus its
//! binary weight shards. float16 / uint8 / uint16 quantized weights are dequantized at load.

use super::*;
use base64::Engine;
use half::f16;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;

mod ops;

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
        let op = match ops::map_op(n, &a, &mut g, &mut inputs, &mut post) {
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
