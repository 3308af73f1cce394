//! Model IR. Importers ([`tfjs`]) produce a [`Graph`]; [`optimize`] specialises it to fixed
//! input shapes (shape inference + constant folding) and fuses conv epilogues; executors in
//! `crate::runtime` compile the result into a plan.

pub mod eval;
pub mod onnx;
pub mod optimize;
pub mod tensor;
pub mod tfjs;

pub use tensor::{numel, strides, DType, Tensor, TensorData};

use std::collections::HashMap;

/// Errors raised while importing, checking or evaluating a graph. Each names the file,
/// node or op concerned.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("{path}: malformed model: {msg}")]
    Malformed { path: String, msg: String },
    #[error("{path}: weight '{name}': {msg}")]
    Weight { path: String, name: String, msg: String },
    #[error("unsupported op(s): {}", .0.join("; "))]
    UnsupportedOps(Vec<String>),
    #[error("node '{node}' ({op}): {msg}")]
    Node { node: String, op: String, msg: String },
    #[error("input '{name}': {msg}")]
    Input { name: String, msg: String },
}

pub type Result<T> = std::result::Result<T, GraphError>;

/// A file a model names (a weight shard, an external data file), confined to the model's
/// folder: a relative path of plain components whose canonical form stays inside `dir` (no
/// `..`, no symlink out) and is a regular file (no device).
pub fn confined_file(dir: &std::path::Path, rel: &str) -> std::result::Result<std::path::PathBuf, String> {
    use std::path::{Component, Path};
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("'{rel}' is not a plain path inside the model's folder"));
    }
    let base = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    let f = dir.join(p).canonicalize().map_err(|e| format!("{}: {e}", dir.join(p).display()))?;
    if !f.starts_with(&base) {
        return Err(format!("'{rel}' leads outside the model's folder"));
    }
    if !f.is_file() {
        return Err(format!("'{rel}' is not a regular file"));
    }
    Ok(f)
}

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// Unknown until the plan is compiled; may carry a symbolic name.
    Dynamic(Option<String>),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Dynamic(Some(s)) => f.write_str(s),
            Dim::Dynamic(None) => f.write_str("?"),
        }
    }
}

pub fn fmt_dims(d: &[Dim]) -> String {
    format!("[{}]", d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
}

/// Index of a value (an edge) in [`Graph::values`].
pub type ValueId = usize;

/// A value: produced by one node output, a graph input or a constant.
#[derive(Clone, Debug)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: DType,
    /// Known shape, if any; `None` before shape inference.
    pub shape: Option<Vec<usize>>,
}

/// A graph input with its declared (possibly dynamic) shape.
#[derive(Clone, Debug)]
pub struct InputInfo {
    pub value: ValueId,
    pub name: String,
    pub dtype: DType,
    pub dims: Vec<Dim>,
}

/// Data layout of 4-D image tensors for spatial ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// Spatial padding rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Padding {
    /// TF/ONNX SAME_UPPER: output = ceil(in / stride), extra padding at the end.
    SameUpper,
    /// ONNX SAME_LOWER: extra padding at the start.
    SameLower,
    Valid,
    /// [top, left, bottom, right]
    Explicit([usize; 4]),
}

/// Activation fused into a producing kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    None,
    Relu,
    Relu6,
    Clip(f32, f32),
    Sigmoid,
    LeakyRelu(f32),
    /// max(0, min(1, alpha * x + beta))
    HardSigmoid(f32, f32),
    /// x * HardSigmoid(x, 1/6, 1/2)
    HardSwish,
    /// x if x > 0 else alpha * (exp(x) - 1)
    Elu(f32),
    /// gamma * (x if x > 0 else alpha * (exp(x) - 1))
    Selu(f32, f32),
    /// ln(1 + exp(x))
    Softplus,
    /// x / (1 + |x|)
    Softsign,
    /// ONNX Shrink(lambd, bias): x - bias if x > lambd, x + bias if x < -lambd, else 0
    Shrink(f32, f32),
    /// -1, 0 or 1
    Sign,
}

impl Activation {
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::Clip(lo, hi) => x.max(lo).min(hi),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::LeakyRelu(a) => {
                if x < 0.0 {
                    a * x
                } else {
                    x
                }
            }
            Activation::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Elu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Activation::Selu(a, g) => g * if x > 0.0 { x } else { a * x.exp_m1() },
            Activation::Softplus => {
                // ln(1 + e^x) without overflow
                x.max(0.0) + (-x.abs()).exp().ln_1p()
            }
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Shrink(l, b) => {
                if x > l {
                    x - b
                } else if x < -l {
                    x + b
                } else {
                    0.0
                }
            }
            Activation::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
        }
    }
}

/// Convolution attributes. Weights are always HWIO: `[kh, kw, cin / groups, cout]`.
/// Inputs: x, w, [bias], [residual].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAttrs {
    pub layout: Layout,
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub padding: Padding,
    pub groups: usize,
    pub has_bias: bool,
    pub act: Activation,
    /// A residual tensor (same shape as the output) is added; before or after `act`.
    pub residual: Option<ResidualAt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResidualAt {
    BeforeAct,
    AfterAct,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PoolAttrs {
    pub kind: PoolKind,
    pub layout: Layout,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub padding: Padding,
    pub count_include_pad: bool,
    /// Output size rounds up (ONNX ceil_mode).
    pub ceil_mode: bool,
}

/// ConvTranspose attributes (NCHW). Weight keeps ONNX's `[cin, cout / groups, kh, kw]`.
/// Inputs: x, w, [bias].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTransposeAttrs {
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// [top, left, bottom, right]
    pub pads: [usize; 4],
    pub output_padding: [usize; 2],
    pub groups: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    Nearest,
    Linear,
}

/// Coordinate transformation of resize ops (ONNX naming; TF flags map onto it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    /// Remainder with the sign of the divisor (TF FloorMod, ONNX Mod with fmod = 0).
    FloorMod,
    Max,
    Min,
    Pow,
    SquaredDifference,
    /// x if x >= 0 else x * slope
    PRelu,
    Equal,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnOp {
    Abs,
    Neg,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Reciprocal,
    Floor,
    Ceil,
    Tanh,
    Erf,
    Not,
    Act(Activation),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

/// TF StridedSlice masks.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SliceMasks {
    pub begin: u32,
    pub end: u32,
    pub ellipsis: u32,
    pub new_axis: u32,
    pub shrink_axis: u32,
}

/// IR operations. Shape-like arguments that TF and ONNX pass as tensors stay tensor inputs
/// (folded to constants once input shapes are fixed).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Inputs: x, w, [bias], [residual].
    Conv2d(ConvAttrs),
    Pool(PoolAttrs),
    /// Inputs: x, size (int [2]: out H, W) unless `scales` ([h, w]) is given.
    Resize {
        layout: Layout,
        mode: ResizeMode,
        coord: CoordMode,
        nearest: NearestMode,
        scales: Option<[f32; 2]>,
    },
    ConvTranspose2d(ConvTransposeAttrs),
    Binary(BinOp),
    Unary(UnOp),
    /// Sum of N same-shaped inputs (TF AddN).
    AddN,
    Cast(DType),
    /// Output: int32 [rank].
    Shape,
    /// Output: int32 scalar.
    Size,
    /// Inputs: x, shape (int). `-1` infers one dim; with `copy_zero` (ONNX) a 0 copies the
    /// input dim.
    Reshape {
        copy_zero: bool,
    },
    /// Inputs: x, begin, end, strides.
    StridedSlice(SliceMasks),
    Pack {
        axis: i64,
    },
    Unpack {
        axis: i64,
        num: usize,
    },
    /// Inputs: tensors..., axis (int scalar) last.
    Concat,
    /// Inputs: axis (int scalar), x. Splits evenly into `num` parts.
    Split {
        num: usize,
    },
    Squeeze {
        axes: Vec<i64>,
    },
    /// Inputs: x, axis (int scalar).
    ExpandDims,
    /// Inputs: x, multiples.
    Tile,
    /// Inputs: shape, value (scalar).
    Fill,
    /// Inputs: start, limit, delta (scalars); output dtype is start's.
    Range,
    /// Inputs: params, indices (last dim indexes the leading dims of params).
    GatherNd,
    /// Inputs: x, k (int scalar). Outputs: values, indices (`index` dtype).
    TopK {
        axis: i64,
        largest: bool,
        index: DType,
    },
    /// Inputs: cond, a, b (broadcasting).
    Select,
    /// Inputs: x, axes (int). keep_dims.
    Reduce {
        op: ReduceOp,
        keep_dims: bool,
    },
    /// Inputs: x, axis (int scalar).
    ArgMax {
        dtype: DType,
        keep_dims: bool,
        select_last: bool,
    },
    /// Inputs: x, indices. Negative indices count from the end.
    Gather {
        axis: i64,
    },
    /// ONNX Slice. Inputs: x, starts, ends, [axes], [steps].
    Slice,
    /// Softmax along `axis`; `legacy` (opset < 13) flattens dims from `axis` on; `log` gives
    /// LogSoftmax (x - max - ln(sum(exp(x - max)))).
    Softmax {
        axis: i64,
        legacy: bool,
        log: bool,
    },
    /// Inputs: index (int scalar), candidates. The candidate at the index (a sequence element
    /// picked at run time); its shape is data-dependent when the candidates' shapes differ.
    Choose,
    /// Inputs: a, b. `b` reshaped to line up with `a` from `axis` on (trailing dims of 1), as
    /// ONNX opsets before 7 broadcast with `broadcast=1, axis=k`.
    AlignTo {
        axis: i64,
    },
    /// Inputs: x, pads (int `[2 * rank]`: all begins then all ends), [value].
    Pad {
        mode: PadMode,
    },
    /// Inputs: x, shape. Numpy broadcast of x to shape.
    Expand,
    Unsqueeze {
        axes: Vec<i64>,
    },
    Flatten {
        axis: i64,
    },
    /// Splits x along `axis` into parts of the given sizes (equal parts when empty).
    SplitV {
        axis: i64,
        sizes: Vec<usize>,
        num: usize,
    },
    /// Inputs: boxes [B,N,4], scores [B,C,N], [max_per_class], [iou_threshold],
    /// [score_threshold]. Output: int64 [K, 3] (batch, class, box); K is data-dependent.
    NonMaxSuppression {
        center_point_box: bool,
    },
    Identity,
    /// Inputs: a, b. Batched matmul with broadcasting.
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// Empty `perm` reverses the dims.
    Transpose {
        perm: Vec<usize>,
    },
    /// `x * scale[c] + bias[c]` along axis 1 (inference batch norm). Inputs: x, scale, bias.
    ChannelAffine,
    /// Reduces all dims from 2 on, keeping them as 1 (NCHW global pooling).
    GlobalPool(PoolKind),
}

impl Op {
    /// A short name for messages and histograms.
    pub fn name(&self) -> String {
        match self {
            Op::Conv2d(a) if a.groups > 1 => "DepthwiseConv2d".into(),
            Op::Conv2d(_) => "Conv2d".into(),
            Op::Pool(p) => format!("{:?}Pool", p.kind),
            Op::Resize { mode, .. } => format!("Resize{mode:?}"),
            Op::Binary(b) => format!("{b:?}"),
            Op::Unary(UnOp::Act(a)) => format!("{a:?}"),
            Op::Unary(u) => format!("{u:?}"),
            Op::Reduce { op, .. } => format!("Reduce{op:?}"),
            other => {
                let s = format!("{other:?}");
                s.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("").to_string()
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

impl Node {
    pub fn err(&self, msg: impl std::fmt::Display) -> GraphError {
        GraphError::Node { node: self.name.clone(), op: self.op.name(), msg: msg.to_string() }
    }
}

/// A model graph. Nodes are kept in topological order.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub values: Vec<ValueInfo>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<InputInfo>,
    pub outputs: Vec<ValueId>,
    /// Constant values (weights, folded results).
    pub consts: HashMap<ValueId, Tensor>,
    /// Where the graph came from, for messages.
    pub source: String,
}

impl Graph {
    /// Keeps only the outputs named, in that order (a model config's output list). A name
    /// that is not an output is an error that lists the outputs there are.
    pub fn select_outputs(&mut self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut picked = Vec::with_capacity(names.len());
        for n in names {
            let found =
                self.outputs.iter().copied().find(|&v| self.values[v].name == *n || self.values[v].name.strip_suffix(":0") == Some(n));
            let Some(v) = found else {
                let have: Vec<&str> = self.outputs.iter().map(|&v| self.values[v].name.as_str()).collect();
                return Err(GraphError::Malformed {
                    path: self.source.clone(),
                    msg: format!("the config names output '{n}', but the graph's outputs are {have:?}"),
                });
            };
            picked.push(v);
        }
        self.outputs = picked;
        Ok(())
    }

    pub fn add_value(&mut self, name: impl Into<String>, dtype: DType) -> ValueId {
        self.values.push(ValueInfo { name: name.into(), dtype, shape: None });
        self.values.len() - 1
    }
    pub fn add_const(&mut self, name: impl Into<String>, t: Tensor) -> ValueId {
        let id = self.add_value(name, t.dtype());
        self.values[id].shape = Some(t.shape.clone());
        self.consts.insert(id, t);
        id
    }
    /// A graph of one node: `x` (an f32 input of `x_shape`) -> `op(x, consts...)` -> `y`; for
    /// kernel benches and tests.
    pub fn one_node(op: Op, x_shape: &[usize], consts: Vec<Tensor>) -> Graph {
        let mut g = Graph::default();
        let x = g.add_value("x", DType::F32);
        g.inputs.push(InputInfo { value: x, name: "x".into(), dtype: DType::F32, dims: x_shape.iter().map(|&d| Dim::Fixed(d)).collect() });
        let mut inputs = vec![x];
        for (i, c) in consts.into_iter().enumerate() {
            inputs.push(g.add_const(format!("c{i}"), c));
        }
        let y = g.add_value("y", DType::F32);
        g.nodes.push(Node { name: "k".into(), op, inputs, outputs: vec![y] });
        g.outputs.push(y);
        g
    }
    /// Number of consumers of each value (graph outputs count as consumers).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut c = vec![0usize; self.values.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                c[i] += 1;
            }
        }
        for &o in &self.outputs {
            c[o] += 1;
        }
        c
    }
    /// Number of parameters held in float constants.
    pub fn param_count(&self) -> usize {
        self.consts.values().filter(|t| t.dtype().is_float()).map(|t| t.numel()).sum()
    }
    /// Histogram of op names, sorted by count.
    pub fn op_histogram(&self) -> Vec<(String, usize)> {
        let mut h: HashMap<String, usize> = HashMap::new();
        for n in &self.nodes {
            *h.entry(n.op.name()).or_default() += 1;
        }
        let mut v: Vec<_> = h.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
    /// Estimated FLOPs of a shape-specialised graph (multiply-add counted as 2).
    pub fn flops(&self) -> u64 {
        let mut f = 0u64;
        for n in &self.nodes {
            let out = self.values[n.outputs[0]].shape.as_ref();
            let Some(out) = out else { continue };
            let out_n = out.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
            match &n.op {
                Op::Conv2d(_) => {
                    if let Some(w) = self.values[n.inputs[1]].shape.as_ref() {
                        // w: [kh, kw, cin/groups, cout]; per output element kh*kw*cin/groups MACs
                        let macs = w.iter().take(3).fold(1u64, |a, &d| a.saturating_mul(d as u64));
                        f = f.saturating_add(out_n.saturating_mul(macs).saturating_mul(2));
                    }
                }
                Op::MatMul { transpose_a, .. } => {
                    if let Some(a) = self.values[n.inputs[0]].shape.as_ref() {
                        let k = if *transpose_a { a.len().checked_sub(2) } else { a.len().checked_sub(1) };
                        let k = k.and_then(|i| a.get(i)).copied().unwrap_or(1) as u64;
                        f = f.saturating_add(out_n.saturating_mul(k).saturating_mul(2));
                    }
                }
                _ => f = f.saturating_add(out_n),
            }
        }
        f
    }
}
