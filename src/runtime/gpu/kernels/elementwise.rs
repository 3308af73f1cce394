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
