//! Elementwise kernels (`shaders/elementwise.wgsl`): broadcasting binary ops, unary ops and
//! activations, casts, logical not, channel affine. Their uniforms and op codes.

use super::*;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct ElemP {
    pub(crate) n: u32,
    pub(crate) rank: u32,
    pub(crate) op: u32,
    pub(crate) flags: u32,
    pub(crate) p0: f32,
    pub(crate) p1: f32,
    pub(crate) pad0: u32,
    pub(crate) pad1: u32,
    pub(crate) shape: [u32; 8],
    pub(crate) sa: [u32; 8],
    pub(crate) sb: [u32; 8],
}

pub(super) fn act_code(a: Activation) -> (u32, f32, f32) {
    match a {
        Activation::None => (0, 0.0, 0.0),
        Activation::Relu => (1, 0.0, 0.0),
        Activation::Relu6 => (2, 0.0, 0.0),
        Activation::Clip(lo, hi) => (3, lo, hi),
        Activation::Sigmoid => (4, 0.0, 0.0),
        Activation::LeakyRelu(al) => (5, al, 0.0),
        Activation::HardSigmoid(al, be) => (6, al, be),
        Activation::HardSwish => (7, 0.0, 0.0),
        Activation::Elu(al) => (8, al, 0.0),
        Activation::Selu(al, ga) => (9, al, ga),
        Activation::Softplus => (10, 0.0, 0.0),
        Activation::Softsign => (11, 0.0, 0.0),
        Activation::Shrink(l, b) => (12, l, b),
        Activation::Sign => (13, 0.0, 0.0),
    }
}

pub(super) fn bin_code(b: BinOp) -> u32 {
    use BinOp::*;
    match b {
        Add => 0,
        Sub => 1,
        Mul => 2,
        Div => 3,
        FloorDiv => 4,
        Max => 5,
        Min => 6,
        Pow => 7,
        SquaredDifference => 8,
        PRelu => 9,
        Equal => 10,
        Less => 11,
        LessEqual => 12,
        Greater => 13,
        GreaterEqual => 14,
        And => 15,
        Or => 16,
        FloorMod => 17,
    }
}

pub(super) fn un_code(u: UnOp) -> (u32, f32, f32) {
    match u {
        UnOp::Abs => (0, 0.0, 0.0),
        UnOp::Neg => (1, 0.0, 0.0),
        UnOp::Exp => (2, 0.0, 0.0),
        UnOp::Log => (3, 0.0, 0.0),
        UnOp::Sqrt => (4, 0.0, 0.0),
        UnOp::Rsqrt => (5, 0.0, 0.0),
        UnOp::Reciprocal => (6, 0.0, 0.0),
        UnOp::Floor => (7, 0.0, 0.0),
        UnOp::Ceil => (8, 0.0, 0.0),
        UnOp::Tanh => (9, 0.0, 0.0),
        UnOp::Not => (10, 0.0, 0.0),
        UnOp::Erf => (11, 0.0, 0.0),
        UnOp::Act(a) => {
            let (c, p0, p1) = act_code(a);
            (100 + c, p0, p1)
        }
    }
}

pub(super) fn dcode(d: DType) -> u32 {
    match d {
        DType::F32 => 0,
        DType::I32 | DType::I64 => 1,
        _ => 2,
    }
}

/// A broadcast binary op's output shape and operand strides with size-1 dims dropped and
/// neighbouring dims merged where both operands step through them as one (contiguously, or
/// both broadcast): fewer dims, less index arithmetic per element, the same offsets.
pub(super) fn coalesce(shape: &[usize], sa: &[u32; 8], sb: &[u32; 8]) -> (usize, [u32; 8], [u32; 8], [u32; 8]) {
    let mut dims: Vec<(u32, u32, u32)> = Vec::new();
    for (d, &n) in shape.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let (n, a, b) = (n as u32, sa[d], sb[d]);
        match dims.last_mut() {
            Some(last) if last.1 == a * n && last.2 == b * n => *last = (last.0 * n, a, b),
            _ => dims.push((n, a, b)),
        }
    }
    if dims.is_empty() {
        dims.push((1, 0, 0));
    }
    let (mut s, mut a, mut b) = ([1u32; 8], [0u32; 8], [0u32; 8]);
    for (i, &(n, x, y)) in dims.iter().enumerate() {
        (s[i], a[i], b[i]) = (n, x, y);
    }
    (dims.len(), s, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets of every output element, as the kernel computes them.
    fn offsets(rank: usize, shape: &[u32; 8], sa: &[u32; 8], sb: &[u32; 8], n: usize) -> Vec<(u32, u32)> {
        (0..n as u32)
            .map(|i| {
                let (mut rem, mut oa, mut ob) = (i, 0, 0);
                for d in (0..rank).rev() {
                    let k = rem % shape[d];
                    rem /= shape[d];
                    oa += k * sa[d];
                    ob += k * sb[d];
                }
                (oa, ob)
            })
            .collect()
    }

    #[test]
    fn coalesced_dims_give_the_same_offsets() {
        let cases: [(&[usize], &[usize], &[usize]); 6] = [
            (&[1, 48, 48, 17], &[1, 48, 48, 17], &[1, 1, 1, 17]),
            (&[2, 3, 4, 5], &[2, 3, 4, 5], &[2, 3, 4, 5]),
            (&[2, 3, 4, 5], &[3, 1, 5], &[2, 1, 4, 1]),
            (&[1, 1, 1], &[1], &[1, 1, 1]),
            (&[6, 1, 7, 2], &[6, 1, 7, 2], &[1]),
            (&[4, 5, 6], &[4, 1, 1], &[1, 5, 6]),
        ];
        for (out, a, b) in cases {
            let rank = out.len();
            let mut shape = [1u32; 8];
            for (i, &d) in out.iter().enumerate() {
                shape[i] = d as u32;
            }
            let (sa, sb) = (bstrides(a, rank), bstrides(b, rank));
            let n: usize = out.iter().product();
            let (r2, s2, a2, b2) = coalesce(out, &sa, &sb);
            assert!(r2 <= rank.max(1));
            assert_eq!(offsets(r2, &s2, &a2, &b2, n), offsets(rank, &shape, &sa, &sb, n), "{out:?} {a:?} {b:?}");
        }
        // a same-shape op is one flat dim
        assert_eq!(coalesce(&[2, 3, 4, 5], &bstrides(&[2, 3, 4, 5], 4), &bstrides(&[2, 3, 4, 5], 4)).0, 1);
    }
}
