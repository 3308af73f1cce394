//! ONNX importer: `ModelProto` (prost types generated from `proto/onnx.proto`) into the IR.
//! Opsets 1 to 21 of the default domain: where an operator's semantics changed between
//! versions (attributes that became inputs, legacy broadcasting, Softmax's 2-D coercion), the
//! arm reads the model's opset the way onnxruntime's per-version kernels do. Initializers
//! (inline or external data files); symbolic dims; graph inputs that are also initializers
//! become constants. Doubles are narrowed to f32. Convolutions stay NCHW; weights are stored
//! HWIO as the IR requires; 1-D and 3-D convolution and pooling are lowered onto the 2-D ops
//! (`nn`). Sequences whose length is known when the model loads are resolved into their
//! tensors (`seq`).

mod nn;
mod ops;
mod seq;

use super::*;
use prost::Message;
use std::collections::HashMap;
use std::path::Path;

/// prost types for `onnx.proto`.
#[allow(clippy::all, missing_debug_implementations, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use proto::{AttributeProto, ModelProto, NodeProto, TensorProto};

/// Supported opsets of the default ONNX domain.
pub const OPSETS: std::ops::RangeInclusive<i64> = 1..=21;

/// Loads an `.onnx` file; external data files are resolved next to it.
pub fn load(path: &Path) -> Result<Graph> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| GraphError::Io { path: p.clone(), msg: e.to_string() })?;
    from_bytes(&bytes, path.parent().unwrap_or(Path::new(".")), &p)
}

/// Parses an ONNX model from memory.
pub fn from_bytes(bytes: &[u8], dir: &Path, path: &str) -> Result<Graph> {
    let malformed = |msg: String| GraphError::Malformed { path: path.to_string(), msg };
    let model = ModelProto::decode(bytes).map_err(|e| malformed(format!("invalid protobuf: {e}")))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.as_deref().unwrap_or("").is_empty() || o.domain.as_deref() == Some("ai.onnx"))
        .and_then(|o| o.version)
        .ok_or_else(|| malformed("no opset import for the default ONNX domain".into()))?;
    if !OPSETS.contains(&opset) {
        return Err(malformed(format!("opset {opset} is outside the supported range {}..={}", OPSETS.start(), OPSETS.end())));
    }
    let graph = model.graph.ok_or_else(|| malformed("model has no graph".into()))?;
    // names some node or the graph reads: optional outputs that nothing reads are ignored
    let used: std::collections::HashSet<String> =
        graph.node.iter().flat_map(|n| n.input.iter().cloned()).chain(graph.output.iter().filter_map(|o| o.name.clone())).collect();
    let mut b = Builder {
        g: Graph { source: path.to_string(), ..Default::default() },
        vals: HashMap::new(),
        opset,
        path,
        dir,
        used,
        declared: HashMap::new(),
        seqs: HashMap::new(),
    };

    for init in &graph.initializer {
        let name = init.name.clone().unwrap_or_default();
        let t = b.tensor(init, &name)?;
        let id = b.g.add_const(name.clone(), t);
        b.vals.insert(name, id);
    }
    for inp in &graph.input {
        let name = inp.name.clone().unwrap_or_default();
        if b.vals.contains_key(&name) {
            continue; // an initializer: a constant for inference
        }
        let (dtype, dims) = value_type(inp).ok_or_else(|| malformed(format!("input '{name}' has no tensor type")))?;
        let dtype = onnx_dtype(dtype).ok_or_else(|| malformed(format!("input '{name}' has unsupported element type {dtype}")))?;
        let id = b.g.add_value(name.clone(), dtype);
        b.declared.insert(id, dims.clone());
        b.g.inputs.push(InputInfo { value: id, name: name.clone(), dtype, dims });
        b.vals.insert(name, id);
    }
    let mut unsupported = Vec::new();
    for node in &graph.node {
        let name = node_name(node);
        let domain = node.domain.as_deref().unwrap_or("");
        if !domain.is_empty() && domain != "ai.onnx" {
            unsupported.push(format!("{domain}::{} (node '{name}')", node.op_type()));
            b.placeholder_outputs(node);
            continue;
        }
        if !unsupported.is_empty() && node.input.iter().any(|i| !i.is_empty() && !b.vals.contains_key(i)) {
            b.placeholder_outputs(node);
            continue;
        }
        let first = b.g.nodes.len();
        match b.node(node) {
            Ok(true) => b.fold_new_nodes(first)?,
            Ok(false) => {
                unsupported.push(format!("{} (node '{name}')", node.op_type()));
                b.placeholder_outputs(node);
            }
            Err(e) => return Err(e),
        }
    }
    if !unsupported.is_empty() {
        return Err(GraphError::UnsupportedOps(unsupported));
    }
    for out in &graph.output {
        let name = out.name.clone().unwrap_or_default();
        if b.seqs.contains_key(&name) {
            return Err(malformed(format!("output '{name}' is a sequence; sequence outputs are not supported")));
        }
        let id = *b.vals.get(&name).ok_or_else(|| malformed(format!("output '{name}' is not produced by any node")))?;
        b.g.outputs.push(id);
    }
    Ok(b.g)
}

/// Decodes a TensorProto (inline or external data next to `path`). Doubles are narrowed to f32.
fn decode_tensor(t: &TensorProto, dir: &Path, path: &str, name: &str) -> Result<Tensor> {
    let werr = |msg: String| GraphError::Weight { path: path.to_string(), name: name.to_string(), msg };
    let dt = t.data_type.unwrap_or(0);
    let dtype = match dt {
        11 => DType::F32, // double, narrowed
        d => onnx_dtype(d).ok_or_else(|| werr(format!("unsupported element type {d}")))?,
    };
    let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let n = numel(&shape);
    let raw: Option<Vec<u8>> = if t.data_location == Some(1) {
        let kv: HashMap<&str, &str> =
            t.external_data.iter().map(|e| (e.key.as_deref().unwrap_or(""), e.value.as_deref().unwrap_or(""))).collect();
        let loc = kv.get("location").ok_or_else(|| werr("external data without a location".into()))?;
        let file = confined_file(dir, loc).map_err(|m| werr(format!("missing external data file {}: {m}", dir.join(loc).display())))?;
        let bytes = std::fs::read(&file).map_err(|e| werr(format!("missing external data file {}: {e}", file.display())))?;
        let off: usize = kv.get("offset").and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = kv.get("length").and_then(|s| s.parse().ok()).unwrap_or(bytes.len().saturating_sub(off));
        let chunk = bytes.get(off..off + len).ok_or_else(|| werr(format!("external data {} is truncated", file.display())))?;
        Some(chunk.to_vec())
    } else {
        t.raw_data.clone().filter(|r| !r.is_empty() || n == 0)
    };
    if let Some(raw) = raw {
        if dt == 11 {
            if raw.len() != n * 8 {
                return Err(werr(format!("{} bytes for {n} doubles", raw.len())));
            }
            let v = raw.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32).collect();
            return Ok(Tensor::f32(shape, v));
        }
        return Tensor::from_le_bytes(dtype, shape, &raw)
            .ok_or_else(|| werr(format!("{} bytes of data for {n} elements of {dtype}", raw.len())));
    }
    let data = match dtype {
        DType::F32 if dt == 11 => TensorData::F32(t.double_data.iter().map(|&x| x as f32).collect()),
        DType::F32 => TensorData::F32(t.float_data.clone()),
        DType::I32 => TensorData::I32(t.int32_data.clone()),
        DType::I64 => TensorData::I64(t.int64_data.clone()),
        DType::U8 => TensorData::U8(t.int32_data.iter().map(|&x| x as u8).collect()),
        DType::Bool => TensorData::Bool(t.int32_data.iter().map(|&x| x != 0).collect()),
        DType::F16 => TensorData::F16(t.int32_data.iter().map(|&x| half::f16::from_bits(x as u16)).collect()),
    };
    if data.len() != n {
        return Err(werr(format!("{} values for shape {shape:?}", data.len())));
    }
    Ok(Tensor::new(shape, data))
}

/// Reads a serialised TensorProto (`input_0.pb` of the ONNX backend's model tests).
pub fn read_tensor(file: &Path) -> Result<Tensor> {
    let p = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| GraphError::Io { path: p.clone(), msg: e.to_string() })?;
    let t = TensorProto::decode(bytes.as_slice())
        .map_err(|e| GraphError::Malformed { path: p.clone(), msg: format!("invalid TensorProto: {e}") })?;
    let name = t.name.clone().unwrap_or_default();
    decode_tensor(&t, file.parent().unwrap_or(Path::new(".")), &p, &name)
}

fn node_name(n: &NodeProto) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => n.output.first().cloned().unwrap_or_else(|| n.op_type().to_string()),
    }
}

fn value_type(v: &proto::ValueInfoProto) -> Option<(i32, Vec<Dim>)> {
    let tt = match v.r#type.as_ref()?.value.as_ref()? {
        proto::type_proto::Value::TensorType(t) => t,
        _ => return None,
    };
    let dims = tt
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(proto::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => Dim::Fixed(*v as usize),
                    Some(proto::tensor_shape_proto::dimension::Value::DimParam(p)) => Dim::Dynamic(Some(p.clone())),
                    _ => Dim::Dynamic(None),
                })
                .collect()
        })
        .unwrap_or_default();
    Some((tt.elem_type?, dims))
}

fn onnx_dtype(t: i32) -> Option<DType> {
    Some(match t {
        1 => DType::F32,
        2 => DType::U8,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        10 => DType::F16,
        11 => DType::F32, // double, narrowed
        _ => return None,
    })
}

fn find_attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

fn ai(n: &NodeProto, name: &str, d: i64) -> i64 {
    find_attr(n, name).and_then(|a| a.i).unwrap_or(d)
}
fn af(n: &NodeProto, name: &str, d: f32) -> f32 {
    find_attr(n, name).and_then(|a| a.f).unwrap_or(d)
}
fn ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    find_attr(n, name).map(|a| a.ints.clone())
}
fn astr(n: &NodeProto, name: &str, d: &str) -> String {
    find_attr(n, name).and_then(|a| a.s.as_ref()).map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_else(|| d.to_string())
}

struct Builder<'a> {
    g: Graph,
    vals: HashMap<String, ValueId>,
    opset: i64,
    path: &'a str,
    dir: &'a Path,
    /// Tensor names that some node or a graph output reads.
    used: std::collections::HashSet<String>,
    /// Declared dims of graph inputs.
    declared: HashMap<ValueId, Vec<Dim>>,
    /// Sequences by name: their candidate tensors and the value holding their order.
    seqs: HashMap<String, seq::Seq>,
}

type NodeResult = Result<bool>;

/// A piece of a shape for [`Builder::build_shape`].
pub(super) enum ShapePart {
    /// dims `a..b` of a value made by [`Builder::shape_i64`]
    Dims(ValueId, i64, i64),
    Const(Vec<i64>),
}

impl Builder<'_> {
    pub(super) fn err(&self, n: &NodeProto, msg: impl std::fmt::Display) -> GraphError {
        GraphError::Node { node: node_name(n), op: n.op_type().to_string(), msg: msg.to_string() }
    }

    pub(super) fn placeholder_outputs(&mut self, n: &NodeProto) {
        for o in &n.output {
            let id = self.g.add_value(o.clone(), DType::F32);
            self.vals.insert(o.clone(), id);
        }
    }

    /// Decodes a TensorProto (inline or external data).
    pub(super) fn tensor(&self, t: &TensorProto, name: &str) -> Result<Tensor> {
        decode_tensor(t, self.dir, self.path, name)
    }

    pub(super) fn input(&self, n: &NodeProto, i: usize) -> Result<Option<ValueId>> {
        match n.input.get(i).map(|s| s.as_str()) {
            None | Some("") => Ok(None),
            Some(s) => self.vals.get(s).copied().map(Some).ok_or_else(|| self.err(n, format!("reads unknown tensor '{s}'"))),
        }
    }
    pub(super) fn req(&self, n: &NodeProto, i: usize) -> Result<ValueId> {
        self.input(n, i)?.ok_or_else(|| self.err(n, format!("input {i} is required")))
    }
    pub(super) fn const_of(&self, v: ValueId) -> Option<&Tensor> {
        self.g.consts.get(&v)
    }
    pub(super) fn const_ints(&self, n: &NodeProto, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
        match self.input(n, i)? {
            None => Ok(None),
            Some(v) => self.const_of(v).and_then(|t| t.to_i64_vec()).map(Some).ok_or_else(|| self.not_known(n, v, what)),
        }
    }
    /// Folds the IR nodes from `first` on whose inputs are all small constants (exporters
    /// write `Constant -> Cast -> Unsqueeze` chains for axes, splits and scales), so that what
    /// later nodes need at load time is known. Larger constant subgraphs, and everything that
    /// depends on input shapes, fold in `optimize::specialize`.
    fn fold_new_nodes(&mut self, first: usize) -> Result<()> {
        const SMALL: usize = 1 << 12;
        let mut i = first;
        while i < self.g.nodes.len() {
            let n = &self.g.nodes[i];
            let args: Option<Vec<&Tensor>> = n.inputs.iter().map(|v| self.g.consts.get(v).filter(|t| t.numel() <= SMALL)).collect();
            let foldable = !n.inputs.is_empty() && !matches!(n.op, Op::NonMaxSuppression { .. });
            match args {
                Some(args) if foldable => {
                    // a small constant may still expand (ConstantOfShape, Tile): check first
                    let shapes: Vec<(DType, Vec<usize>)> = args.iter().map(|t| (t.dtype(), t.shape.clone())).collect();
                    let consts: Vec<Option<&Tensor>> = args.iter().map(|&t| Some(t)).collect();
                    if eval::infer(n, &shapes, &consts)?.iter().any(|(_, s)| numel(s) > SMALL) {
                        i += 1;
                        continue;
                    }
                    let outs = eval::eval(n, &args)?;
                    let n = self.g.nodes.remove(i);
                    for (o, t) in n.outputs.into_iter().zip(outs) {
                        self.g.values[o].dtype = t.dtype();
                        self.g.values[o].shape = Some(t.shape.clone());
                        self.g.consts.insert(o, t);
                    }
                }
                _ => i += 1,
            }
        }
        Ok(())
    }
    /// The error for an input that must be known when the model loads but is computed from
    /// the data: it names the node, the value and what computes it.
    pub(super) fn not_known(&self, n: &NodeProto, v: ValueId, what: &str) -> GraphError {
        let value = &self.g.values[v].name;
        let by = match self.g.nodes.iter().find(|p| p.outputs.contains(&v)) {
            Some(p) => format!("computed by node '{}' ({})", p.name, p.op.name()),
            None if self.g.inputs.iter().any(|i| i.value == v) => "a model input".to_string(),
            None => "not a constant".to_string(),
        };
        self.err(n, format!("{what} must be a constant integer tensor known when the model loads; '{value}' is {by}"))
    }
    pub(super) fn konst(&mut self, name: String, t: Tensor) -> ValueId {
        self.g.add_const(name, t)
    }
    pub(super) fn ints_const(&mut self, n: &NodeProto, suffix: &str, v: &[i64]) -> ValueId {
        self.konst(format!("{}/{suffix}", node_name(n)), Tensor::i64(vec![v.len()], v.to_vec()))
    }
    pub(super) fn scalar_i64(&mut self, n: &NodeProto, suffix: &str, v: i64) -> ValueId {
        self.konst(format!("{}/{suffix}", node_name(n)), Tensor::i64(vec![], vec![v]))
    }

    /// Adds an IR node; returns its outputs.
    pub(super) fn emit(&mut self, name: String, op: Op, inputs: Vec<ValueId>, n_out: usize) -> Vec<ValueId> {
        let outs: Vec<ValueId> = (0..n_out).map(|i| self.g.add_value(format!("{name}:{i}"), DType::F32)).collect();
        self.g.nodes.push(Node { name, op, inputs, outputs: outs.clone() });
        outs
    }
    /// Adds an IR node that produces the ONNX node's outputs.
    pub(super) fn emit_final(&mut self, n: &NodeProto, op: Op, inputs: Vec<ValueId>) {
        let outs: Vec<ValueId> = n.output.iter().map(|o| self.g.add_value(o.clone(), DType::F32)).collect();
        for (o, &id) in n.output.iter().zip(&outs) {
            self.vals.insert(o.clone(), id);
        }
        self.g.nodes.push(Node { name: node_name(n), op, inputs, outputs: outs });
    }
    /// Binds the ONNX node's first output to an existing value.
    pub(super) fn alias(&mut self, n: &NodeProto, v: ValueId) {
        let id = self.emit(node_name(n), Op::Identity, vec![v], 1)[0];
        if let Some(o) = n.output.first() {
            self.g.values[id].name = o.clone();
            self.vals.insert(o.clone(), id);
        }
    }

    /// Whether some node or a graph output reads the node's output `i`.
    pub(super) fn output_used(&self, n: &NodeProto, i: usize) -> bool {
        n.output.get(i).is_some_and(|o| !o.is_empty() && self.used.contains(o))
    }

    /// `Shape(v)` as int64.
    pub(super) fn shape_i64(&mut self, v: ValueId, name: &str) -> ValueId {
        let s = self.emit(format!("{name}/shape"), Op::Shape, vec![v], 1)[0];
        self.emit(format!("{name}/shape64"), Op::Cast(DType::I64), vec![s], 1)[0]
    }

    /// A shape built from pieces of other values' shapes and constants, folded once the input
    /// shapes are known.
    pub(super) fn build_shape(&mut self, name: &str, parts: &[ShapePart]) -> ValueId {
        let mut vals = Vec::with_capacity(parts.len() + 1);
        for (k, p) in parts.iter().enumerate() {
            vals.push(match p {
                ShapePart::Dims(shape, a, b) => {
                    let st = self.konst(format!("{name}/s{k}"), Tensor::i64(vec![1], vec![*a]));
                    let en = self.konst(format!("{name}/e{k}"), Tensor::i64(vec![1], vec![*b]));
                    self.emit(format!("{name}/part{k}"), Op::Slice, vec![*shape, st, en], 1)[0]
                }
                ShapePart::Const(v) => self.konst(format!("{name}/c{k}"), Tensor::i64(vec![v.len()], v.clone())),
            });
        }
        vals.push(self.konst(format!("{name}/axis"), Tensor::i64(vec![], vec![0])));
        self.emit(format!("{name}/target"), Op::Concat, vals, 1)[0]
    }

    pub(super) fn pair(&self, n: &NodeProto, name: &str) -> Result<[usize; 2]> {
        match ints(n, name) {
            None => Ok([1, 1]),
            Some(v) if v.len() == 2 => Ok([v[0] as usize, v[1] as usize]),
            Some(v) => Err(self.err(n, format!("only 2-D spatial ops are supported ({name} {v:?})"))),
        }
    }
}
