//! Batched GEMM kernels (`shaders/matmul.wgsl`).

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, Default)]
pub(crate) struct MmP {
    pub(crate) m: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
    pub(crate) batch: u32,
    pub(crate) a_rs: u32,
    pub(crate) a_cs: u32,
    pub(crate) b_rs: u32,
    pub(crate) b_cs: u32,
    pub(crate) a_bs: u32,
    pub(crate) b_bs: u32,
    pub(crate) c_bs: u32,
    pub(crate) pad: u32,
}

/// GEMM geometry of a MatMul node, when its batch broadcast is simple (each operand has the
/// full batch or none).
pub(super) fn matmul_layout(g: &Graph, n: &Node) -> Option<MmP> {
    let Op::MatMul { transpose_a, transpose_b } = n.op else { return None };
    let a = g.values[n.inputs[0]].shape.as_ref()?;
    let b = g.values[n.inputs[1]].shape.as_ref()?;
    let o = g.values[n.outputs[0]].shape.as_ref()?;
    if a.len() < 2 || b.len() < 2 || o.len() < 2 {
        return None;
    }
    let (ar, br, or) = (a.len(), b.len(), o.len());
    let (m, k) = if transpose_a { (a[ar - 1], a[ar - 2]) } else { (a[ar - 2], a[ar - 1]) };
    let nn = if transpose_b { b[br - 2] } else { b[br - 1] };
    let batch: usize = o[..or - 2].iter().product();
    let full = |s: &[usize]| -> Option<bool> {
        let bs = &s[..s.len() - 2];
        let p: usize = bs.iter().product();
        if p == 1 {
            Some(false)
        } else if p == batch && bs.len() == or - 2 && bs == &o[..or - 2] {
            Some(true)
        } else {
            None
        }
    };
    let (fa, fb) = (full(a)?, full(b)?);
    let (a_rs, a_cs) = if transpose_a { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if transpose_b { (1, k) } else { (nn, 1) };
    Some(MmP {
        m: m as u32,
        n: nn as u32,
        k: k as u32,
        batch: batch as u32,
        a_rs: a_rs as u32,
        a_cs: a_cs as u32,
        b_rs: b_rs as u32,
        b_cs: b_cs as u32,
        a_bs: if fa { (m * k) as u32 } else { 0 },
        b_bs: if fb { (k * nn) as u32 } else { 0 },
        c_bs: (m * nn) as u32,
        pad: 0,
    })
}
