//! Precision f16 on the wgpu executor (`precision = "f16"` in a model's config, `--precision
//! f16` on `models run/bench`): weights and activations are stored as f16, every kernel
//! computes and accumulates in f32 and rounds once when it stores.
//!
//! A plan at precision f16 rewrites its graph (`convert`) before placing it. The f16 region is
//! the network's trunk: every node upstream of a convolution (its inputs, their producers and
//! so on, convolutions included). Each node of it that runs on the device and has a kernel on f16
//! storage (`kernels::half_op`: convolutions, arithmetic elementwise ops, pooling, resizing,
//! data movement and views) gets f16 twins of its float values; its float constants are
//! converted once at compile time; a cast to f16 is inserted where an f32 value enters the
//! region and a cast back where a value leaves it. Outputs keep their names and dtypes.
//!
//! The last convolution of each branch (a head's output: heatmaps, offsets, logits) and what
//! follows stay in f32: a decoder tail picks maxima (argmax, top-k) among near-equal scores
//! and snaps keypoints to the nearest peak, so its inputs and arithmetic keep f32's precision.
//! It is a sliver of the work.

use super::kernels::{data_inputs, half_op, is_view, Kind};
use crate::graph::{DType, Graph, Node, Op, ValueId, ValueInfo};
use std::collections::HashMap;

/// The graph a plan at precision f16 runs: `g` (shapes specialised) with f16 twins of the
/// float values of the device nodes that have f16 kernels. `kinds` is `g`'s placement at f32.
/// `everywhere`: every such node, not only the trunk's (`GpuExecutor::with_f16_heads`).
pub(crate) fn convert(g: &Graph, kinds: &[Kind], everywhere: bool) -> Graph {
    let mut out = Graph { nodes: Vec::with_capacity(g.nodes.len() + 16), ..g.clone() };
    // f32 value -> its f16 twin
    let mut twin: HashMap<ValueId, ValueId> = HashMap::new();
    // whether the f32 value exists (a half node's f32 output exists only once cast back)
    let mut exists = vec![true; g.values.len()];
    let new_value = |out: &mut Graph, v: ValueId, suffix: &str, dtype: DType| -> ValueId {
        let info = &g.values[v];
        out.values.push(ValueInfo { name: format!("{}:{suffix}", info.name), dtype, shape: info.shape.clone() });
        out.values.len() - 1
    };
    let cast = |out: &mut Graph, from: ValueId, to: ValueId, name: String, dtype: DType| {
        out.nodes.push(Node { name, op: Op::Cast(dtype), inputs: vec![from], outputs: vec![to] });
    };
    // the trunk: every node upstream of a convolution
    let mut feeds = vec![false; g.values.len()];
    let mut trunk = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate().rev() {
        if everywhere || n.outputs.iter().any(|&o| feeds[o]) {
            trunk[i] = true;
        }
        if trunk[i] || matches!(n.op, Op::Conv2d(_)) {
            for &v in &n.inputs {
                feeds[v] = true;
            }
        }
    }
    for ((n, kind), &in_trunk) in g.nodes.iter().zip(kinds).zip(&trunk) {
        let f32_data = data_inputs(n).iter().filter(|&&v| g.values[v].dtype == DType::F32).count();
        let half = in_trunk
            && !matches!(kind, Kind::Cpu)
            && half_op(&n.op)
            && match &n.op {
                // a view or a cast from f32 follows its input; a cast to f32 starts a region
                op if is_view(op) => twin.contains_key(&n.inputs[0]) && g.values[n.outputs[0]].dtype == DType::F32,
                Op::Cast(DType::F32) => g.values[n.inputs[0]].dtype != DType::F32 && g.values[n.inputs[0]].dtype != DType::F16,
                Op::Cast(to) => g.values[n.inputs[0]].dtype == DType::F32 && twin.contains_key(&n.inputs[0]) && *to != DType::F16,
                // every float value of the node is f32, and it has some
                _ => f32_data == data_inputs(n).len() && f32_data > 0 && n.outputs.iter().all(|&v| g.values[v].dtype == DType::F32),
            };
        if !half {
            // f32 values this node reads come back from their twins
            for &v in &n.inputs {
                if !exists[v] {
                    cast(&mut out, twin[&v], v, format!("{}:to_f32", g.values[v].name), DType::F32);
                    exists[v] = true;
                }
            }
            out.nodes.push(n.clone());
            continue;
        }
        let mut node = n.clone();
        let data: Vec<usize> = (0..n.inputs.len()).filter(|&i| data_inputs(n).contains(&n.inputs[i])).collect();
        for i in data {
            let v = n.inputs[i];
            if g.values[v].dtype != DType::F32 {
                continue;
            }
            let t = match twin.get(&v) {
                Some(&t) => t,
                None => {
                    let t = new_value(&mut out, v, "f16", DType::F16);
                    match g.consts.get(&v) {
                        Some(c) => {
                            out.consts.insert(t, c.cast(DType::F16));
                        }
                        None => cast(&mut out, v, t, format!("{}:to_f16", g.values[v].name), DType::F16),
                    }
                    twin.insert(v, t);
                    t
                }
            };
            node.inputs[i] = t;
        }
        if let Op::Cast(DType::F32) = node.op {
            node.op = Op::Cast(DType::F16);
        }
        for (k, &o) in n.outputs.iter().enumerate() {
            if g.values[o].dtype == DType::F32 {
                let t = new_value(&mut out, o, "f16", DType::F16);
                twin.insert(o, t);
                exists[o] = false;
                node.outputs[k] = t;
            }
        }
        out.nodes.push(node);
    }
    for &o in &g.outputs {
        if !exists[o] {
            cast(&mut out, twin[&o], o, format!("{}:to_f32", g.values[o].name), DType::F32);
            exists[o] = true;
        }
    }
    // constants now read only as f16 are dropped from the plan's f32 copies
    let used: std::collections::HashSet<ValueId> =
        out.nodes.iter().flat_map(|n| n.inputs.iter().copied()).chain(out.outputs.iter().copied()).collect();
    out.consts.retain(|v, _| used.contains(v));
    out
}
