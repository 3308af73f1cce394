//! Batching models whose graph fixes the batch at 1 (MoveNet's post-processing squeezes dim
//! 0): the batch-polymorphic prefix (convolutions, elementwise ops against constants,
//! pooling, resizing...) is compiled for the whole batch, and the rest runs frame by frame.

use super::{slice_batch, Executor, Plan, Result};
use crate::graph::{optimize, Dim, Graph, InputInfo, Op, Tensor, ValueId};
use std::collections::HashSet;

/// A prefix compiled for the batch and a per-frame suffix.
#[derive(Debug)]
pub(crate) struct SplitPlan {
    prefix: Box<dyn Plan>,
    /// One per frame worker (`Executor::frame_workers`, at most the batch): frames are
    /// spread over them and run at once.
    suffix: Vec<Box<dyn Plan>>,
    shapes: Vec<Vec<usize>>,
    /// For each suffix input: index into the prefix outputs, or into the original inputs.
    suffix_src: Vec<Src>,
    batch: usize,
}

#[derive(Debug, Clone, Copy)]
enum Src {
    Prefix(usize),
    Input(usize),
}

/// Whether a constant operand broadcasts over the batch dim of an output of rank `rank`.
fn batch_free(t: &Tensor, rank: usize) -> bool {
    t.rank() < rank || t.shape.first() == Some(&1)
}

/// Splits a batch-1 graph into a batchable prefix and a per-frame suffix, when there is a
/// non-trivial prefix.
pub(crate) fn split(exec: &dyn Executor, graph: &Graph, frame_shapes: &[Vec<usize>], batch: usize) -> Result<Option<SplitPlan>> {
    let g1 = optimize::specialize(graph, frame_shapes)?;
    let mut batched: HashSet<ValueId> = g1.inputs.iter().map(|i| i.value).collect();
    let mut prefix_nodes = Vec::new();
    let mut suffix_nodes = Vec::new();
    for (idx, n) in g1.nodes.iter().enumerate() {
        let rank = g1.values[n.outputs[0]].shape.as_ref().map(|s| s.len()).unwrap_or(0);
        let in_b = |v: &ValueId| batched.contains(v);
        let konst = |v: &ValueId| g1.consts.get(v);
        let ok = rank >= 1
            && n.inputs.iter().any(in_b)
            && match &n.op {
                Op::Conv2d(_) | Op::Pool(_) | Op::Resize { .. } | Op::Unary(_) | Op::Cast(_) | Op::GlobalPool(_) | Op::ChannelAffine => {
                    in_b(&n.inputs[0]) && n.inputs[1..].iter().all(|v| in_b(v) || konst(v).is_some())
                }
                Op::Binary(_) | Op::AddN => n.inputs.iter().all(|v| in_b(v) || konst(v).is_some_and(|t| batch_free(t, rank))),
                Op::Softmax { axis, .. } => *axis != 0 && in_b(&n.inputs[0]),
                _ => false,
            };
        if ok {
            batched.extend(n.outputs.iter().copied());
            prefix_nodes.push(idx);
        } else {
            suffix_nodes.push(idx);
        }
    }
    if prefix_nodes.is_empty() || suffix_nodes.is_empty() {
        return Ok(None);
    }
    let prefix_set: HashSet<usize> = prefix_nodes.iter().copied().collect();
    let produced_by_prefix: HashSet<ValueId> = prefix_nodes.iter().flat_map(|&i| g1.nodes[i].outputs.iter().copied()).collect();
    let input_ids: Vec<ValueId> = g1.inputs.iter().map(|i| i.value).collect();
    // values the suffix (or the graph outputs) read from the prefix or the inputs
    let mut cut: Vec<ValueId> = Vec::new();
    let mut suffix_inputs: Vec<(ValueId, Src)> = Vec::new();
    let need = |v: ValueId, cut: &mut Vec<ValueId>, si: &mut Vec<(ValueId, Src)>| {
        if si.iter().any(|(x, _)| *x == v) {
            return;
        }
        if produced_by_prefix.contains(&v) {
            cut.push(v);
            si.push((v, Src::Prefix(cut.len() - 1)));
        } else if let Some(k) = input_ids.iter().position(|&x| x == v) {
            si.push((v, Src::Input(k)));
        }
    };
    for &i in &suffix_nodes {
        for &v in &g1.nodes[i].inputs {
            need(v, &mut cut, &mut suffix_inputs);
        }
    }
    for &o in &g1.outputs {
        need(o, &mut cut, &mut suffix_inputs);
    }
    // prefix graph: same values, the prefix nodes, the cut as outputs, a dynamic batch
    let mut pre = g1.clone();
    pre.nodes = g1.nodes.iter().enumerate().filter(|(i, _)| prefix_set.contains(i)).map(|(_, n)| n.clone()).collect();
    pre.outputs = cut.clone();
    for inp in &mut pre.inputs {
        if let Some(d) = inp.dims.first_mut() {
            *d = Dim::Dynamic(Some("batch".into()));
        }
    }
    for (v, info) in pre.values.iter_mut().enumerate() {
        if !pre.consts.contains_key(&v) {
            info.shape = None;
        }
    }
    // suffix graph: the rest, fed by the cut (and inputs) frame by frame
    let mut suf = g1.clone();
    suf.nodes = suffix_nodes.iter().map(|&i| g1.nodes[i].clone()).collect();
    suf.inputs = suffix_inputs
        .iter()
        .map(|&(v, _)| {
            let s = g1.values[v].shape.clone().unwrap_or_default();
            InputInfo {
                value: v,
                name: g1.values[v].name.clone(),
                dtype: g1.values[v].dtype,
                dims: s.iter().map(|&d| Dim::Fixed(d)).collect(),
            }
        })
        .collect();
    let batch_shapes: Vec<Vec<usize>> = frame_shapes
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s[0] = batch;
            s
        })
        .collect();
    let prefix = exec.compile(&pre, &batch_shapes)?;
    let suf_shapes: Vec<Vec<usize>> = suf.inputs.iter().map(|i| g1.values[i.value].shape.clone().unwrap_or_default()).collect();
    let workers = exec.frame_workers().clamp(1, batch.max(1));
    let suffix = (0..workers).map(|_| exec.compile(&suf, &suf_shapes)).collect::<Result<Vec<_>>>()?;
    Ok(Some(SplitPlan { prefix, suffix, shapes: batch_shapes, suffix_src: suffix_inputs.iter().map(|&(_, s)| s).collect(), batch }))
}

impl Plan for SplitPlan {
    fn input_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }
    fn cost(&self) -> super::PlanCost {
        let each = self.suffix.first().map(|s| s.cost()).unwrap_or_default();
        let held = super::PlanCost { flops: 0, bytes: each.bytes.saturating_mul(self.suffix.len().saturating_sub(1)) };
        self.prefix.cost().and(each.runs(self.batch)).and(held)
    }
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let cut = self.prefix.run(inputs)?;
        self.run_suffix(&cut, inputs)
    }

    /// The batched prefix's kernels, then each frame's suffix kernels (node names keep the
    /// suffix's, so a profile sums a node over the frames).
    fn profile(&mut self, inputs: &[Tensor]) -> Result<Option<super::Profile>> {
        let Some(mut p) = self.prefix.profile(inputs)? else {
            return Ok(None);
        };
        let cut = self.prefix.run(inputs)?;
        let Some(suffix) = self.suffix.first_mut() else {
            return Ok(Some(p));
        };
        for b in 0..self.batch {
            let Some(q) = suffix.profile(&frame_inputs(&self.suffix_src, &cut, inputs, b))? else {
                return Ok(None);
            };
            p.kernels.extend(q.kernels);
            p.untimed.extend(q.untimed.into_iter().filter(|u| !p.untimed.contains(u)).collect::<Vec<_>>());
        }
        Ok(Some(p))
    }

    fn takes_frames(&self) -> bool {
        // the suffix must not read the raw input (it would need it on the host)
        self.prefix.takes_frames() && !self.suffix_src.iter().any(|s| matches!(s, Src::Input(_)))
    }

    fn run_frames(&mut self, frames: &[&image::RgbImage], spec: &super::FrameSpec) -> Option<Result<super::FramesOutput>> {
        if !self.takes_frames() {
            return None;
        }
        Some(self.prefix.run_frames(frames, spec)?.and_then(|(cut, boxes)| Ok((self.run_suffix(&cut, &[])?, boxes))))
    }
}

impl SplitPlan {
    fn run_suffix(&mut self, cut: &[Tensor], inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let src = &self.suffix_src;
        super::run_frames_on(&mut self.suffix, self.batch, |b| frame_inputs(src, cut, inputs, b))
    }
}

/// Frame `b`'s suffix inputs, sliced from the prefix outputs (`cut`) and the batch's inputs.
fn frame_inputs(src: &[Src], cut: &[Tensor], inputs: &[Tensor], b: usize) -> Vec<Tensor> {
    src.iter()
        .map(|s| match *s {
            Src::Prefix(k) => slice_batch(&cut[k], b),
            Src::Input(k) => slice_batch(&inputs[k], b),
        })
        .collect()
}
