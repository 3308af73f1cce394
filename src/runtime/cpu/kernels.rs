//! Fast CPU kernels: conv as GEMM (candle matmul) with an in-place fused epilogue, and a
//! depthwise conv kernel. Both work in NHWC; NCHW tensors are permuted around them.

use super::layout_perm;
use crate::graph::eval::conv_out_dim;
use crate::graph::{Activation, ConvAttrs, Layout, ResidualAt};
use candle_core::{CpuStorage, InplaceOp1, Tensor as CTensor};
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
    pub fn new(
        a: &ConvAttrs,
        in_shape: &[usize],
        w_shape: &[usize],
        out_shape: &[usize],
    ) -> R<Self> {
        let [n, cin, h, w] = crate::graph::eval::nchw_dims(in_shape, a.layout)?;
        let [_, cout, oh, ow] = crate::graph::eval::nchw_dims(out_shape, a.layout)?;
        let (_, pt) = conv_out_dim(h, w_shape[0], a.strides[0], a.dilations[0], &a.padding, 0)?;
        let (_, pl) = conv_out_dim(w, w_shape[1], a.strides[1], a.dilations[1], &a.padding, 1)?;
        Ok(ConvGeo {
            n,
            h,
            w,
            cin,
            oh,
            ow,
            cout,
            kh: w_shape[0],
            kw: w_shape[1],
            stride: a.strides,
            dil: a.dilations,
            pad: [pt, pl],
        })
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
    let (a, b) = layout
        .contiguous_offsets()
        .ok_or("tensor is not contiguous")?;
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
                row.iter_mut()
                    .zip(r)
                    .for_each(|(v, &r)| *v = self.act.apply(*v + r));
            }
            Some((r, ResidualAt::AfterAct)) => {
                let r = &r[idx * self.cout..(idx + 1) * self.cout];
                row.iter_mut()
                    .zip(r)
                    .for_each(|(v, &r)| *v = self.act.apply(*v) + r);
            }
            None => {
                if self.act != Activation::None {
                    row.iter_mut().for_each(|v| *v = self.act.apply(*v));
                }
            }
        }
    }
    fn apply(&self, data: &mut [f32]) {
        data.par_chunks_mut(self.cout * 64)
            .enumerate()
            .for_each(|(ci, chunk)| {
                for (j, row) in chunk.chunks_mut(self.cout).enumerate() {
                    self.apply_row(row, ci * 64 + j);
                }
            });
    }
}

impl InplaceOp1 for Epilogue<'_> {
    fn name(&self) -> &'static str {
        "walkout-conv-epilogue"
    }
    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let (a, b) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("epilogue on non-contiguous tensor".into()))?;
        match storage {
            CpuStorage::F32(v) => {
                self.apply(&mut v[a..b]);
                Ok(())
            }
            _ => Err(candle_core::Error::Msg("epilogue expects f32".into())),
        }
    }
}

/// NHWC im2col: one row of `kh*kw*cin` per output pixel, zeros where padded.
fn im2col(x: &[f32], g: &ConvGeo) -> Vec<f32> {
    let k = g.kh * g.kw * g.cin;
    let m = g.n * g.oh * g.ow;
    let mut cols = vec![0f32; m * k];
    cols.par_chunks_mut(k * g.ow)
        .enumerate()
        .for_each(|(row_i, chunk)| {
            let b = row_i / g.oh;
            let oy = row_i % g.oh;
            for ox in 0..g.ow {
                let dst = &mut chunk[ox * k..(ox + 1) * k];
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
        });
    cols
}

/// Dense convolution as GEMM with a fused epilogue.
pub fn conv_gemm(
    a: &ConvAttrs,
    g: &ConvGeo,
    x: &CTensor,
    w: &CTensor,
    bias: Option<&[f32]>,
    res: Option<&CTensor>,
) -> R<CTensor> {
    let x = to_nhwc(x, a.layout)?;
    let m = g.n * g.oh * g.ow;
    let lhs = if g.is_pointwise() {
        x.reshape((m, g.cin)).map_err(e)?
    } else {
        let cols = with_f32(&x, |xs| im2col(xs, g))?;
        CTensor::from_vec(cols, (m, g.kh * g.kw * g.cin), x.device()).map_err(e)?
    };
    let out = lhs.matmul(w).map_err(e)?;
    let res = match res {
        Some(r) => Some(to_nhwc(r, a.layout)?),
        None => None,
    };
    let run = |rs: Option<&[f32]>| -> R<()> {
        let ep = Epilogue {
            cout: g.cout,
            bias,
            act: a.act,
            residual: rs.zip(a.residual),
        };
        out.inplace_op1(&ep).map_err(e)
    };
    match &res {
        Some(r) => with_f32(r, |rs| run(Some(rs)))??,
        None => run(None)?,
    }
    let out = out.reshape((g.n, g.oh, g.ow, g.cout)).map_err(e)?;
    from_nhwc(out, a.layout)
}

/// Depthwise convolution (one filter per channel), NHWC, with fused epilogue.
pub fn depthwise(
    a: &ConvAttrs,
    g: &ConvGeo,
    x: &CTensor,
    w: &[f32],
    bias: Option<&[f32]>,
    res: Option<&CTensor>,
) -> R<CTensor> {
    let x = to_nhwc(x, a.layout)?;
    let res = match res {
        Some(r) => Some(to_nhwc(r, a.layout)?),
        None => None,
    };
    let c = g.cin;
    let mut out = vec![0f32; g.n * g.oh * g.ow * c];
    let mut body = |xs: &[f32], rs: Option<&[f32]>| {
        out.par_chunks_mut(g.ow * c)
            .enumerate()
            .for_each(|(row_i, orow)| {
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
                            let ix =
                                (ox * g.stride[1] + kx * g.dil[1]) as isize - g.pad[1] as isize;
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
                    let pix = row_i * g.ow + ox;
                    match (rs, a.residual) {
                        (Some(r), Some(ResidualAt::BeforeAct)) => acc
                            .iter_mut()
                            .zip(&r[pix * c..(pix + 1) * c])
                            .for_each(|(v, &r)| *v = a.act.apply(*v + r)),
                        (Some(r), Some(ResidualAt::AfterAct)) => acc
                            .iter_mut()
                            .zip(&r[pix * c..(pix + 1) * c])
                            .for_each(|(v, &r)| *v = a.act.apply(*v) + r),
                        _ => {
                            if a.act != Activation::None {
                                acc.iter_mut().for_each(|v| *v = a.act.apply(*v));
                            }
                        }
                    }
                }
            });
    };
    with_f32(&x, |xs| match &res {
        Some(r) => with_f32(r, |rs| body(xs, Some(rs))),
        None => {
            body(xs, None);
            Ok(())
        }
    })??;
    let t = CTensor::from_vec(out, (g.n, g.oh, g.ow, c), x.device()).map_err(e)?;
    from_nhwc(t, a.layout)
}
