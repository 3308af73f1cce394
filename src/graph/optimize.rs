//! Graph passes: specialisation to fixed input shapes (shape inference + constant folding),
//! dead-code elimination, and fusion of conv epilogues (bias, activation, residual add).

use super::*;

/// Elements above which a foldable node is left to the executor rather than folded.
const FOLD_LIMIT: usize = 1 << 22;

/// Checks concrete input shapes against the declared dims.
pub fn check_inputs(g: &Graph, shapes: &[Vec<usize>]) -> Result<()> {
    if shapes.len() != g.inputs.len() {
        return Err(GraphError::Input {
            name: g.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>().join(","),
            msg: format!("model has {} inputs, {} shapes given", g.inputs.len(), shapes.len()),
        });
    }
    for (inp, s) in g.inputs.iter().zip(shapes) {
        let ok = inp.dims.len() == s.len() && inp.dims.iter().zip(s).all(|(d, &v)| matches!(d, Dim::Dynamic(_)) || *d == Dim::Fixed(v));
        if !ok {
            return Err(GraphError::Input {
                name: inp.name.clone(),
                msg: format!("shape {:?} does not match the declared {}", s, fmt_dims(&inp.dims)),
            });
        }
    }
    Ok(())
}

/// Returns a copy of the graph specialised to the given input shapes: every value gets a
/// shape, nodes whose inputs are all constant are folded, unused nodes are removed and conv
/// epilogues fused.
pub fn specialize(g: &Graph, shapes: &[Vec<usize>]) -> Result<Graph> {
    check_inputs(g, shapes)?;
    let mut g = g.clone();
    for (inp, s) in g.inputs.clone().iter().zip(shapes) {
        g.values[inp.value].shape = Some(s.clone());
        g.values[inp.value].dtype = inp.dtype;
    }
    fold_and_infer(&mut g)?;
    eliminate_dead(&mut g);
    fuse_conv_epilogues(&mut g);
    eliminate_dead(&mut g);
    Ok(g)
}

fn fold_and_infer(g: &mut Graph) -> Result<()> {
    let nodes = std::mem::take(&mut g.nodes);
    let mut kept = Vec::with_capacity(nodes.len());
    for node in nodes {
        let node = settle_resize(g, node)?;
        // Data-dependent shapes (NonMaxSuppression and what it feeds) stay unknown until run
        // time; such nodes are evaluated by the executor's reference path.
        let all_const = node.inputs.iter().all(|v| g.consts.contains_key(v));
        let dynamic = node.inputs.iter().any(|&v| g.values[v].shape.is_none())
            || (matches!(node.op, Op::NonMaxSuppression { .. }) && !all_const)
            || (matches!(node.op, Op::Choose) && !g.consts.contains_key(&node.inputs[0]) && {
                let first = &g.values[node.inputs[1]];
                node.inputs[2..].iter().any(|&v| g.values[v].shape != first.shape || g.values[v].dtype != first.dtype)
            })
            || shape_inputs(&node.op, node.inputs.len()).any(|i| node.inputs.get(i).is_some_and(|v| !g.consts.contains_key(v)));
        if dynamic {
            for &o in &node.outputs {
                g.values[o].shape = None;
                if matches!(node.op, Op::NonMaxSuppression { .. }) {
                    g.values[o].dtype = DType::I64;
                }
            }
            kept.push(node);
            continue;
        }
        if let (Op::NonMaxSuppression { .. }, true) = (&node.op, all_const) {
            let args: Vec<&Tensor> = node.inputs.iter().filter_map(|v| g.consts.get(v)).collect();
            let t = eval::eval(&node, &args)?.remove(0);
            let o = node.outputs[0];
            g.values[o].dtype = t.dtype();
            g.values[o].shape = Some(t.shape.clone());
            g.consts.insert(o, t);
            continue;
        }
        let ins: Vec<(DType, Vec<usize>)> = node
            .inputs
            .iter()
            .map(|&v| {
                let vi = &g.values[v];
                vi.shape.clone().map(|s| (vi.dtype, s)).ok_or_else(|| node.err(format!("input '{}' has no shape", vi.name)))
            })
            .collect::<Result<_>>()?;
        let consts: Vec<Option<&Tensor>> = node.inputs.iter().map(|v| g.consts.get(v)).collect();
        let outs = eval::infer(&node, &ins, &consts)?;
        // Shape and Size only need the (now known) input shape.
        let shape_only = match node.op {
            Op::Shape => Some(Tensor::i32(vec![ins[0].1.len()], ins[0].1.iter().map(|&d| d as i32).collect())),
            Op::Size => Some(Tensor::i32(vec![], vec![numel(&ins[0].1) as i32])),
            _ => None,
        };
        if let Some(t) = shape_only {
            let o = node.outputs[0];
            g.values[o].dtype = t.dtype();
            g.values[o].shape = Some(t.shape.clone());
            g.consts.insert(o, t);
            continue;
        }
        let foldable = consts.iter().all(|c| c.is_some()) && outs.iter().all(|(_, s)| numel(s) <= FOLD_LIMIT);
        if foldable {
            let args: Vec<&Tensor> = consts.iter().filter_map(|c| *c).collect();
            let res = eval::eval(&node, &args)?;
            for (&o, t) in node.outputs.iter().zip(res) {
                g.values[o].dtype = t.dtype();
                g.values[o].shape = Some(t.shape.clone());
                g.consts.insert(o, t);
            }
            continue;
        }
        let mut node = node;
        if let Op::AlignTo { .. } = node.op {
            // with shapes known, legacy alignment is a plain reshape of `b`
            let s = &outs[0].1;
            let target = g.add_const(format!("{}/shape", node.name), Tensor::i64(vec![s.len()], s.iter().map(|&d| d as i64).collect()));
            node.op = Op::Reshape { copy_zero: false };
            node.inputs = vec![node.inputs[1], target];
        }
        for (&o, (dt, s)) in node.outputs.iter().zip(outs) {
            g.values[o].dtype = dt;
            g.values[o].shape = Some(s);
        }
        kept.push(node);
    }
    g.nodes = kept;
    Ok(())
}

/// A resize whose sizes or scales became constant: scales move into the op, sizes become
/// the `[height, width]` the executors read.
fn settle_resize(g: &mut Graph, mut node: Node) -> Result<Node> {
    let Op::Resize { layout, scales: None, .. } = node.op else {
        return Ok(node);
    };
    let (Some(&x), Some(t)) = (node.inputs.first(), node.inputs.get(1).and_then(|v| g.consts.get(v))) else {
        return Ok(node);
    };
    let Some(xs) = g.values[x].shape.clone() else {
        return Ok(node);
    };
    match eval::resize_target(t, Some((&xs, layout))).map_err(|e| node.err(e))? {
        eval::ResizeTarget::Scales(sc) => {
            node.op = eval::resized_with(&node.op, sc);
            node.inputs.truncate(1);
        }
        eval::ResizeTarget::Size(s) if t.numel() != 2 || t.dtype() != DType::I64 => {
            node.inputs[1] = g.add_const(format!("{}/hw", node.name), Tensor::i64(vec![2], vec![s[0] as i64, s[1] as i64]));
        }
        eval::ResizeTarget::Size(_) => {}
    }
    Ok(node)
}

/// Inputs whose values (not just shapes) decide an op's output shape. When one of them is
/// only known at run time, the output shape is data-dependent.
fn shape_inputs(op: &Op, n: usize) -> std::ops::Range<usize> {
    match op {
        Op::Reshape { .. }
        | Op::Tile
        | Op::Expand
        | Op::ExpandDims
        | Op::TopK { .. }
        | Op::Reduce { .. }
        | Op::ArgMax { .. }
        | Op::Pad { .. } => 1..2,
        Op::Resize { scales: None, .. } => 1..2,
        Op::Fill | Op::Split { .. } => 0..1,
        Op::Range => 0..3,
        Op::Slice | Op::StridedSlice(_) => 1..n,
        Op::Concat => n.saturating_sub(1)..n,
        _ => 0..0,
    }
}

/// Removes nodes and constants that no output depends on.
pub fn eliminate_dead(g: &mut Graph) {
    let mut live = vec![false; g.values.len()];
    for &o in &g.outputs {
        live[o] = true;
    }
    let mut keep = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate().rev() {
        if n.outputs.iter().any(|&o| live[o]) {
            keep[i] = true;
            for &v in &n.inputs {
                live[v] = true;
            }
        }
    }
    let mut i = 0;
    g.nodes.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    g.consts.retain(|v, _| live[*v]);
}

/// Fuses `act(conv)`, `conv + r` and `act(conv + r)` chains into the conv node.
pub fn fuse_conv_epilogues(g: &mut Graph) {
    loop {
        let uses = g.use_counts();
        let producer: std::collections::HashMap<ValueId, usize> =
            g.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |&o| (o, i))).collect();
        let outputs: std::collections::HashSet<ValueId> = g.outputs.iter().copied().collect();
        let mut changed = false;
        for i in 0..g.nodes.len() {
            let node = g.nodes[i].clone();
            // candidate conv input
            let conv_in = |v: ValueId| -> Option<usize> {
                let &p = producer.get(&v)?;
                if uses[v] != 1 || outputs.contains(&v) || p >= i {
                    return None;
                }
                matches!(g.nodes[p].op, Op::Conv2d(_)).then_some(p)
            };
            match &node.op {
                Op::ChannelAffine => {
                    let Some(p) = conv_in(node.inputs[0]) else {
                        continue;
                    };
                    if !fold_affine(g, p, node.inputs[1], node.inputs[2]) {
                        continue;
                    }
                    g.nodes[p].outputs = node.outputs.clone();
                    g.nodes[i].inputs.clear();
                    g.nodes[i].outputs.clear();
                    changed = true;
                }
                Op::Unary(UnOp::Act(act)) => {
                    let Some(p) = conv_in(node.inputs[0]) else {
                        continue;
                    };
                    let Op::Conv2d(c) = &mut g.nodes[p].op else {
                        continue;
                    };
                    if c.act != Activation::None || c.residual == Some(ResidualAt::AfterAct) {
                        continue;
                    }
                    c.act = *act;
                    g.nodes[p].outputs = node.outputs.clone();
                    g.nodes[i].inputs.clear();
                    g.nodes[i].outputs.clear();
                    changed = true;
                }
                Op::Binary(BinOp::Add) => {
                    let (a, b) = (node.inputs[0], node.inputs[1]);
                    let out_shape = g.values[node.outputs[0]].shape.clone();
                    let pick = [(a, b), (b, a)].into_iter().find_map(|(x, r)| {
                        let p = conv_in(x)?;
                        let ok = matches!(&g.nodes[p].op, Op::Conv2d(c) if c.residual.is_none())
                            && g.values[r].shape == out_shape
                            && g.values[x].shape == out_shape
                            && g.values[r].dtype == DType::F32;
                        ok.then_some((p, r))
                    });
                    let Some((p, r)) = pick else { continue };
                    let Op::Conv2d(c) = &mut g.nodes[p].op else {
                        continue;
                    };
                    c.residual = Some(if c.act == Activation::None { ResidualAt::BeforeAct } else { ResidualAt::AfterAct });
                    g.nodes[p].inputs.push(r);
                    g.nodes[p].outputs = node.outputs.clone();
                    g.nodes[i].inputs.clear();
                    g.nodes[i].outputs.clear();
                    changed = true;
                }
                _ => {}
            }
            if changed {
                break;
            }
        }
        g.nodes.retain(|n| !n.outputs.is_empty());
        if !changed {
            break;
        }
        // The fused conv now produces a value consumed later; a residual produced after the
        // conv node would break topological order, so re-sort.
        topo_sort(g);
    }
}

/// Folds `y = conv(x) * scale[c] + shift[c]` (inference batch norm) into the conv's weights
/// and bias. Returns false when it does not apply.
fn fold_affine(g: &mut Graph, p: usize, scale: ValueId, shift: ValueId) -> bool {
    let Op::Conv2d(c) = &g.nodes[p].op else {
        return false;
    };
    if c.act != Activation::None || c.residual.is_some() || c.layout != Layout::Nchw {
        return false;
    }
    let (Some(s), Some(b)) = (g.consts.get(&scale), g.consts.get(&shift)) else {
        return false;
    };
    let (s, b) = (s.cast(DType::F32), b.cast(DType::F32));
    let (Some(s), Some(b)) = (s.as_f32(), b.as_f32()) else {
        return false;
    };
    let Some(w) = g.consts.get(&g.nodes[p].inputs[1]) else {
        return false;
    };
    let cout = *w.shape.last().unwrap_or(&0);
    if s.len() != cout || b.len() != cout {
        return false;
    }
    let w = w.cast(DType::F32);
    let wv: Vec<f32> = w.as_f32().unwrap_or(&[]).iter().enumerate().map(|(i, &x)| x * s[i % cout]).collect();
    let old_bias: Vec<f32> = if c.has_bias {
        match g.consts.get(&g.nodes[p].inputs[2]) {
            Some(t) => t.cast(DType::F32).as_f32().unwrap_or(&[]).to_vec(),
            None => return false,
        }
    } else {
        vec![0.0; cout]
    };
    let nb: Vec<f32> = (0..cout).map(|i| old_bias[i] * s[i] + b[i]).collect();
    let name = g.nodes[p].name.clone();
    let wid = g.add_const(format!("{name}/w_folded"), Tensor::f32(w.shape.clone(), wv));
    let bid = g.add_const(format!("{name}/b_folded"), Tensor::f32(vec![cout], nb));
    let node = &mut g.nodes[p];
    node.inputs[1] = wid;
    if let Op::Conv2d(c) = &mut node.op {
        if c.has_bias {
            node.inputs[2] = bid;
        } else {
            c.has_bias = true;
            node.inputs.insert(2, bid);
        }
    }
    true
}

/// Stable topological sort of nodes by data dependencies.
pub fn topo_sort(g: &mut Graph) {
    let producer: std::collections::HashMap<ValueId, usize> =
        g.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |&o| (o, i))).collect();
    let n = g.nodes.len();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    fn visit(i: usize, g: &Graph, producer: &std::collections::HashMap<ValueId, usize>, done: &mut [bool], order: &mut Vec<usize>) {
        if done[i] {
            return;
        }
        done[i] = true;
        for v in &g.nodes[i].inputs {
            if let Some(&p) = producer.get(v) {
                visit(p, g, producer, done, order);
            }
        }
        order.push(i);
    }
    for i in 0..n {
        visit(i, g, &producer, &mut done, &mut order);
    }
    let mut slots: Vec<Option<Node>> = std::mem::take(&mut g.nodes).into_iter().map(Some).collect();
    g.nodes = order.into_iter().filter_map(|i| slots[i].take()).collect();
}
