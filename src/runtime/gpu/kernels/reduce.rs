//! Reductions, global pooling and softmax (`shaders/reduce.wgsl`).

use super::*;

/// The reduce kernel's uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct RdP {
    pub(crate) outer: u32,
    pub(crate) r: u32,
    pub(crate) inner: u32,
    pub(crate) op: u32,
}

/// `[outer, r, inner]` view and op code of a reduction (contiguous axes), global pooling or
/// softmax node.
pub(super) fn reduce_layout(g: &Graph, n: &Node) -> Option<(usize, usize, usize, u32)> {
    let s = g.values[n.inputs[0]].shape.as_ref()?;
    let split = |a0: usize, a1: usize| -> (usize, usize, usize) {
        (s[..a0].iter().product(), s[a0..=a1].iter().product(), s[a1 + 1..].iter().product())
    };
    let norm = |a: i64| -> Option<usize> {
        let r = s.len() as i64;
        let v = if a < 0 { a + r } else { a };
        (0..r).contains(&v).then_some(v as usize)
    };
    match &n.op {
        Op::GlobalPool(k) => {
            if s.len() < 3 {
                return None;
            }
            let (o, r, i) = split(2, s.len() - 1);
            Some((o, r, i, if *k == PoolKind::Max { 2 } else { 1 }))
        }
        Op::Softmax { axis, legacy, log } => {
            let a = norm(*axis)?;
            let (o, r, i) = if *legacy { split(a, s.len() - 1) } else { split(a, a) };
            Some((o, r, i, *log as u32))
        }
        Op::Reduce { op, .. } => {
            let axes: Vec<usize> = match n.inputs.get(1) {
                Some(v) => {
                    let t = g.consts.get(v)?;
                    if t.numel() == 0 {
                        (0..s.len()).collect()
                    } else {
                        let mut a: Vec<usize> = t.to_i64_vec()?.into_iter().map(norm).collect::<Option<_>>()?;
                        a.sort_unstable();
                        a.dedup();
                        a
                    }
                }
                None => (0..s.len()).collect(),
            };
            let (a0, a1) = (*axes.first()?, *axes.last()?);
            if a1 - a0 + 1 != axes.len() {
                return None;
            }
            let (o, r, i) = split(a0, a1);
            let code = match op {
                crate::graph::ReduceOp::Sum => 0,
                crate::graph::ReduceOp::Mean => 1,
                crate::graph::ReduceOp::Max => 2,
                crate::graph::ReduceOp::Min => 3,
                crate::graph::ReduceOp::Prod => 4,
            };
            Some((o, r, i, code))
        }
        _ => None,
    }
}
