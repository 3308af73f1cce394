//! Fast CPU kernels: conv as GEMM (candle matmul) with an in-place fused epilogue, and a
//! depthwise conv kernel. Both work in NHWC; NCHW tensors are permuted around them.

use super::layout_perm;
use crate::graph::eval::conv_out_dim;
use crate::graph::{Activation, ConvAttrs, Layout, ResidualAt};
use candle_core::{CpuStorage, Tensor as CTensor};
use rayon::prelude::*;

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

fn e(err: candle_core::Error) -> String {
    err.to_string()
}

fn to_nhwc(t: &CTensor, layout: Layout) -> R<CTensor> {
    match layout_perm(layout, true) {
        Some(p) => t.permute(p).and_then(|t| t.contiguous()).map_err(e),
        None => t.contiguous().map_err(e),
    }
}

fn from_nhwc(t: CTensor, layout: Layout) -> R<CTensor> {
    match layout_perm(layout, false) {
        Some(p) => t.permute(p).and_then(|t| t.contiguous()).map_err(e),
        None => Ok(t),
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

/// In-place bias + activation + residual on a `[m, cout]` GEMM result.
struct Epilogue<'a> {
    cout: usize,
    bias: Option<&'a [f32]>,
    act: Activation,
    residual: Option<(&'a [f32], ResidualAt)>,
}

impl Epilogue<'_> {
    #[inline]
    fn apply_row(&self, row: &mut [f32], idx: usize) {
        if let Some(b) = self.bias {
            row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
        }
        match self.residual {
            Some((r, ResidualAt::BeforeAct)) => {
                let r = &r[idx * self.cout..(idx + 1) * self.cout];
                row.iter_mut().zip(r).for_each(|(v, &r)| *v = self.act.apply(*v + r));
            }
            Some((r, ResidualAt::AfterAct)) => {
                let r = &r[idx * self.cout..(idx + 1) * self.cout];
                row.iter_mut().zip(r).for_each(|(v, &r)| *v = self.act.apply(*v) + r);
            }
            None => {
                if self.act != Activation::None {
                    row.iter_mut().for_each(|v| *v = self.act.apply(*v));
                }
            }
        }
    }
}

/// A kernel over the input data and the optional residual data.
type KernelBody<'a> = dyn FnMut(&[f32], Option<&[f32]>) + 'a;

/// Runs `body` on the f32 data of `x` and of the optional residual.
fn with_input_and_residual(x: &CTensor, res: Option<&CTensor>, body: &mut KernelBody<'_>) -> R<()> {
    with_f32(x, |xs| match res {
        Some(r) => with_f32(r, |rs| body(xs, Some(rs))),
        None => {
            body(xs, None);
            Ok(())
        }
    })?
}

/// NHWC im2col of output pixels `r0..r0 + rows` into `cols` (`rows x kh*kw*cin`), zeros
/// where the window is padded.
fn im2col_rows(x: &[f32], g: &ConvGeo, r0: usize, rows: usize, cols: &mut [f32]) {
    let k = g.kh * g.kw * g.cin;
    for (j, dst) in cols.chunks_mut(k).take(rows).enumerate() {
        let r = r0 + j;
        let ox = r % g.ow;
        let oy = (r / g.ow) % g.oh;
        let b = r / (g.ow * g.oh);
        dst.fill(0.0);
        for ky in 0..g.kh {
            let iy = (oy * g.stride[0] + ky * g.dil[0]) as isize - g.pad[0] as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            for kx in 0..g.kw {
                let ix = (ox * g.stride[1] + kx * g.dil[1]) as isize - g.pad[1] as isize;
                if ix < 0 || ix >= g.w as isize {
                    continue;
                }
                let src = ((b * g.h + iy as usize) * g.w + ix as usize) * g.cin;
                let d = (ky * g.kw + kx) * g.cin;
                dst[d..d + g.cin].copy_from_slice(&x[src..src + g.cin]);
            }
        }
    }
}

/// Dense convolution as GEMM (`[pixels, kh*kw*cin] x [kh*kw*cin, cout]`), computed in
/// blocks of output pixels spread over the cores. Each block is packed (im2col, unless the
/// conv is pointwise), multiplied with the `gemm` crate that candle's CPU matmul is built
/// on, and finished with bias, activation and residual while it is still in cache.
pub fn conv_gemm(a: &ConvAttrs, g: &ConvGeo, x: &CTensor, w: &[f32], bias: Option<&[f32]>, res: Option<&CTensor>) -> R<CTensor> {
    let x = to_nhwc(x, a.layout)?;
    let res = match res {
        Some(r) => Some(to_nhwc(r, a.layout)?),
        None => None,
    };
    let m = g.n * g.oh * g.ow;
    let k = g.kh * g.kw * g.cin;
    let n = g.cout;
    if w.len() != k * n {
        return Err(format!("weight has {} values, expected {k} x {n}", w.len()));
    }
    let mut out = vec![0f32; m * n];
    let threads = rayon::current_num_threads().max(1);
    let mb = (m / (threads * 4)).clamp(16, 256);
    let pointwise = g.is_pointwise();
    let mut body = |xs: &[f32], rs: Option<&[f32]>| {
        let ep = Epilogue { cout: n, bias, act: a.act, residual: rs.zip(a.residual) };
        out.par_chunks_mut(mb * n).enumerate().for_each_init(Vec::new, |cols: &mut Vec<f32>, (bi, ob)| {
            let r0 = bi * mb;
            let rows = ob.len() / n;
            let lhs: &[f32] = if pointwise {
                &xs[r0 * k..(r0 + rows) * k]
            } else {
                cols.resize(rows * k, 0.0);
                im2col_rows(xs, g, r0, rows, cols);
                &cols[..rows * k]
            };
            // SAFETY: dst is rows x n (row stride n), lhs rows x k (row stride k) and rhs
            // k x n (row stride n), all in bounds of their slices; no aliasing.
            unsafe {
                gemm::gemm(
                    rows,
                    n,
                    k,
                    ob.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    lhs.as_ptr(),
                    1,
                    k as isize,
                    w.as_ptr(),
                    1,
                    n as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            for (j, row) in ob.chunks_mut(n).enumerate() {
                ep.apply_row(row, r0 + j);
            }
        });
    };
    with_input_and_residual(&x, res.as_ref(), &mut body)?;
    let t = CTensor::from_vec(out, (g.n, g.oh, g.ow, n), x.device()).map_err(e)?;
    from_nhwc(t, a.layout)
}

/// Depthwise convolution (one filter per channel), NHWC, with fused epilogue.
pub fn depthwise(a: &ConvAttrs, g: &ConvGeo, x: &CTensor, w: &[f32], bias: Option<&[f32]>, res: Option<&CTensor>) -> R<CTensor> {
    let x = to_nhwc(x, a.layout)?;
    let res = match res {
        Some(r) => Some(to_nhwc(r, a.layout)?),
        None => None,
    };
    let c = g.cin;
    let mut out = vec![0f32; g.n * g.oh * g.ow * c];
    let mut body = |xs: &[f32], rs: Option<&[f32]>| {
        let ep = Epilogue { cout: c, bias: None, act: a.act, residual: rs.zip(a.residual) };
        out.par_chunks_mut(g.ow * c).enumerate().for_each(|(row_i, orow)| {
            let b = row_i / g.oh;
            let oy = row_i % g.oh;
            for ox in 0..g.ow {
                let acc = &mut orow[ox * c..(ox + 1) * c];
                match bias {
                    Some(bv) => acc.copy_from_slice(bv),
                    None => acc.fill(0.0),
                }
                for ky in 0..g.kh {
                    let iy = (oy * g.stride[0] + ky * g.dil[0]) as isize - g.pad[0] as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    for kx in 0..g.kw {
                        let ix = (ox * g.stride[1] + kx * g.dil[1]) as isize - g.pad[1] as isize;
                        if ix < 0 || ix >= g.w as isize {
                            continue;
                        }
                        let src = ((b * g.h + iy as usize) * g.w + ix as usize) * c;
                        let xin = &xs[src..src + c];
                        let wk = &w[(ky * g.kw + kx) * c..(ky * g.kw + kx + 1) * c];
                        for ((o, &xv), &wv) in acc.iter_mut().zip(xin).zip(wk) {
                            *o += xv * wv;
                        }
                    }
                }
                // bias was the accumulator's start value
                ep.apply_row(acc, row_i * g.ow + ox);
            }
        });
    };
    with_input_and_residual(&x, res.as_ref(), &mut body)?;
    let t = CTensor::from_vec(out, (g.n, g.oh, g.ow, c), x.device()).map_err(e)?;
    from_nhwc(t, a.layout)
}
