//! The CPU executor's convolutions: dense ones as GEMM on weights packed at plan time
//! (im2col per block of output pixels unless pointwise), depthwise ones vectorised over
//! channels, both with the epilogue fused (`simd`). Both work in NHWC; NCHW tensors are
//! permuted around them.

use super::simd::{self, dw, gemm::PackedB, Isa};
use crate::graph::eval::conv_out_dim;
use crate::graph::{Activation, ConvAttrs, ResidualAt};
use candle_core::{CpuStorage, Tensor as CTensor};

type R<T> = std::result::Result<T, String>;

/// Geometry of one convolution, resolved at plan time.
#[derive(Clone, Debug)]
pub struct ConvGeo {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub oh: usize,
    pub ow: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dil: [usize; 2],
    pub pad: [usize; 2],
}

impl ConvGeo {
    pub fn new(a: &ConvAttrs, in_shape: &[usize], w_shape: &[usize], out_shape: &[usize]) -> R<Self> {
        let [n, cin, h, w] = crate::graph::eval::nchw_dims(in_shape, a.layout)?;
        let [_, cout, oh, ow] = crate::graph::eval::nchw_dims(out_shape, a.layout)?;
        let (_, pt) = conv_out_dim(h, w_shape[0], a.strides[0], a.dilations[0], &a.padding, 0)?;
        let (_, pl) = conv_out_dim(w, w_shape[1], a.strides[1], a.dilations[1], &a.padding, 1)?;
        Ok(ConvGeo { n, h, w, cin, oh, ow, cout, kh: w_shape[0], kw: w_shape[1], stride: a.strides, dil: a.dilations, pad: [pt, pl] })
    }
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }
}

/// Runs `f` on the contiguous f32 data of a tensor.
pub fn with_f32<T>(t: &CTensor, f: impl FnOnce(&[f32]) -> T) -> R<T> {
    let (st, layout) = t.storage_and_layout();
    let (a, b) = layout.contiguous_offsets().ok_or("tensor is not contiguous")?;
    match &*st {
        candle_core::Storage::Cpu(CpuStorage::F32(v)) => Ok(f(&v[a..b])),
        _ => Err(format!("expected an f32 CPU tensor, got {:?}", t.dtype())),
    }
}

/// How a conv's epilogue splits between the vector kernel (bias, clamp-like activations
/// and the residual) and a scalar pass after it (any other activation, with the residual).
fn split_epilogue(act: Activation, residual: Option<(&[f32], ResidualAt)>) -> (simd::Epilogue<'_>, Option<Activation>) {
    match clamp_of(act) {
        Some((lo, hi)) => (
            simd::Epilogue {
                lo,
                hi,
                residual: residual.map(|r| r.0),
                residual_first: !matches!(residual, Some((_, ResidualAt::AfterAct))),
            },
            None,
        ),
        None => (simd::Epilogue::none(), Some(act)),
    }
}

/// A clamp activation as bounds, or `None` for one the vector kernels do not fuse.
pub(super) fn clamp_of(act: Activation) -> Option<(f32, f32)> {
    match act {
        Activation::None => Some((f32::NEG_INFINITY, f32::INFINITY)),
        Activation::Relu => Some((0.0, f32::INFINITY)),
        Activation::Relu6 => Some((0.0, 6.0)),
        Activation::Clip(lo, hi) => Some((lo, hi)),
        _ => None,
    }
}

/// The part of an epilogue the conv kernel could not take: a sigmoid without a residual
/// (the heads' last convs) on the vector `exp`, anything else in the scalar pass.
fn rest_epilogue(isa: Isa, out: &mut [f32], c: usize, act: Activation, residual: Option<(&[f32], ResidualAt)>) {
    match (act, residual) {
        (Activation::Sigmoid, None) => simd::math::sigmoid_in_place(isa, out),
        _ => scalar_epilogue(out, c, act, residual),
    }
}

/// The scalar part of an epilogue the vector kernel could not take: activation, then or
/// before it the residual, on `[m, c]` rows.
fn scalar_epilogue(out: &mut [f32], c: usize, act: Activation, residual: Option<(&[f32], ResidualAt)>) {
    use rayon::prelude::*;
    out.par_chunks_mut(c * 64).enumerate().for_each(|(blk, chunk)| {
        for (j, row) in chunk.chunks_mut(c).enumerate() {
            let idx = blk * 64 + j;
            match residual {
                Some((r, ResidualAt::BeforeAct)) => {
                    row.iter_mut().zip(&r[idx * c..(idx + 1) * c]).for_each(|(v, &r)| *v = act.apply(*v + r))
                }
                Some((r, ResidualAt::AfterAct)) => {
                    row.iter_mut().zip(&r[idx * c..(idx + 1) * c]).for_each(|(v, &r)| *v = act.apply(*v) + r)
                }
                None => row.iter_mut().for_each(|v| *v = act.apply(*v)),
            }
        }
    });
}

/// NHWC im2col of output pixels `r0..r0 + rows` into `cols` (`rows x kh*kw*cin`), zeros
/// where the window is padded.
pub(super) fn im2col_rows(x: &[f32], g: &ConvGeo, r0: usize, rows: usize, cols: &mut [f32]) {
    let k = g.kh * g.kw * g.cin;
    let run = g.kw * g.cin;
    // the output pixel, stepped along (no divisions per pixel)
    let (mut ox, mut oy, mut b) = (r0 % g.ow, (r0 / g.ow) % g.oh, r0 / (g.ow * g.oh));
    for dst in cols.chunks_mut(k).take(rows) {
        let ix0 = (ox * g.stride[1]) as isize - g.pad[1] as isize;
        // a window row wholly inside the input is one run of kw * cin values
        let inside = g.dil[1] == 1 && ix0 >= 0 && ix0 as usize + g.kw <= g.w;
        for (ky, d) in dst.chunks_mut(run).enumerate() {
            let iy = (oy * g.stride[0] + ky * g.dil[0]) as isize - g.pad[0] as isize;
            if iy < 0 || iy >= g.h as isize {
                d.fill(0.0);
                continue;
            }
            let row = (b * g.h + iy as usize) * g.w;
            if inside {
                let src = (row + ix0 as usize) * g.cin;
                if run == 9 {
                    // the 3-channel stem's 3x3 window row: a copy of fixed size (two moves)
                    if let (Ok(o), Ok(v)) = (<&mut [f32; 9]>::try_from(&mut *d), <&[f32; 9]>::try_from(&x[src..src + 9])) {
                        *o = *v;
                    }
                } else if run <= 32 {
                    // other short runs: no call to memcpy
                    for (o, &v) in d.iter_mut().zip(&x[src..src + run]) {
                        *o = v;
                    }
                } else {
                    d.copy_from_slice(&x[src..src + run]);
                }
                continue;
            }
            for (kx, dk) in d.chunks_mut(g.cin).enumerate() {
                let ix = (ox * g.stride[1] + kx * g.dil[1]) as isize - g.pad[1] as isize;
                if ix < 0 || ix >= g.w as isize {
                    dk.fill(0.0);
                } else {
                    let src = (row + ix as usize) * g.cin;
                    dk.copy_from_slice(&x[src..src + g.cin]);
                }
            }
        }
        ox += 1;
        if ox == g.ow {
            ox = 0;
            oy += 1;
            if oy == g.oh {
                (oy, b) = (0, b + 1);
            }
        }
    }
}

/// A dense convolution's weights (`[kh*kw*cin, cout]`, HWIO) and bias, packed for `isa`.
pub fn pack_conv(isa: Isa, g: &ConvGeo, w: &[f32], bias: Option<&[f32]>) -> R<PackedB> {
    PackedB::new(isa, w, g.kh * g.kw * g.cin, g.cout, bias)
}

/// A depthwise convolution's weights (`[kh*kw, c]`) and bias, packed for `isa`.
pub fn pack_depthwise(isa: Isa, g: &ConvGeo, w: &[f32], bias: Option<&[f32]>) -> R<dw::PackedDw> {
    dw::PackedDw::new(isa, w, g.kh * g.kw, g.cin, bias)
}

/// Dense convolution as GEMM (`[pixels, kh*kw*cin] x [kh*kw*cin, cout]`) on the packed
/// weights, NHWC, into `out` (written whole); pointwise convolutions read the input in
/// place, others are im2col'd a block of output pixels at a time.
pub fn conv_gemm(a: &ConvAttrs, g: &ConvGeo, xs: &[f32], pw: &PackedB, rs: Option<&[f32]>, out: &mut [f32]) -> R<()> {
    let m = g.n * g.oh * g.ow;
    let k = g.kh * g.kw * g.cin;
    let n = g.cout;
    if pw.k() != k || pw.n() != n {
        return Err(format!("packed weights are {} x {}, expected {k} x {n}", pw.k(), pw.n()));
    }
    if xs.len() < g.n * g.h * g.w * g.cin || out.len() < m * n {
        return Err("conv operands are smaller than its geometry".into());
    }
    let (ep, rest) = split_epilogue(a.act, rs.zip(a.residual));
    if g.is_pointwise() {
        simd::gemm::gemm(pw, m, xs, k, out, &ep)?;
    } else {
        simd::gemm::gemm_with(pw, m, |r0, rows, cols: &mut [f32]| im2col_rows(xs, g, r0, rows, cols), out, &ep)?;
    }
    if let Some(act) = rest {
        rest_epilogue(pw.isa(), &mut out[..m * n], n, act, rs.zip(a.residual));
    }
    Ok(())
}

/// Depthwise convolution (one filter per channel) on the packed weights, NHWC, into `out`
/// (written whole).
pub fn depthwise(a: &ConvAttrs, g: &ConvGeo, xs: &[f32], pw: &dw::PackedDw, rs: Option<&[f32]>, out: &mut [f32]) -> R<()> {
    let c = g.cin;
    let geo = dw::Geo { n: g.n, h: g.h, w: g.w, c, oh: g.oh, ow: g.ow, kh: g.kh, kw: g.kw, stride: g.stride, dil: g.dil, pad: g.pad };
    let (ep, rest) = split_epilogue(a.act, rs.zip(a.residual));
    dw::depthwise(pw, &geo, xs, out, &ep)?;
    if let Some(act) = rest {
        rest_epilogue(pw.isa(), &mut out[..g.n * g.oh * g.ow * c], c, act, rs.zip(a.residual));
    }
    Ok(())
}
