//! Depthwise convolution (one filter per channel), NHWC, vectorised over channels.
//!
//! Weights are packed at plan time as `[tap][channels padded to the vector width]`. Each
//! task is one output row; for each block of channels (one vector), the filter's taps (up
//! to 9, as in 3x3) stay in registers while the row's pixels are swept. 3-wide filters at
//! stride 1 or 2 sweep 8 (stride 2: 4) output pixels at a time as a sliding window: each
//! input vector of the window is loaded once and multiplied into every sum it reaches, so
//! a 3x3 filter at stride 1 takes 1.25 loads per 3 FMAs, and the padding reads as zeros
//! instead of needing a slower path at the row's ends (a quarter of an 8-wide row). The
//! epilogue (bias as the accumulator's start, residual, clamp) is fused; the last block
//! of channels is masked.
use super::vec::{finish, Portable, Simd};
#[cfg(target_arch = "x86_64")]
use super::vec::{Avx2, Avx512};
use super::{Epilogue, Isa, SendPtr};
use rayon::prelude::*;

/// Geometry of a depthwise convolution (NHWC).
#[derive(Clone, Debug)]
pub struct Geo {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dil: [usize; 2],
    pub pad: [usize; 2],
}

/// Depthwise weights packed for one path.
pub struct PackedDw {
    isa: Isa,
    c: usize,
    /// channels padded to the vector width
    cp: usize,
    taps: usize,
    /// `[taps][cp]`
    w: super::buf::Buf,
    /// `[cp]`
    bias: super::buf::Buf,
}

impl std::fmt::Debug for PackedDw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedDw({} taps x {} channels, {})", self.taps, self.c, self.isa.name())
    }
}

impl PackedDw {
    /// `w` is `[kh * kw][c]` (HWC, as TF's depthwise filters are), `bias` is `[c]`.
    pub fn new(isa: Isa, w: &[f32], taps: usize, c: usize, bias: Option<&[f32]>) -> Result<Self, String> {
        if w.len() != taps * c || bias.is_some_and(|b| b.len() != c) {
            return Err(format!("depthwise weights have {} values, expected {taps} x {c}", w.len()));
        }
        let cp = c.div_ceil(isa.lanes()) * isa.lanes();
        let mut pw = super::buf::Buf::zeros(taps * cp);
        for t in 0..taps {
            pw[t * cp..t * cp + c].copy_from_slice(&w[t * c..(t + 1) * c]);
        }
        let mut pb = super::buf::Buf::zeros(cp);
        if let Some(b) = bias {
            pb[..c].copy_from_slice(b);
        }
        Ok(PackedDw { isa, c, cp, taps, w: pw, bias: pb })
    }

    pub fn bytes(&self) -> usize {
        (self.w.len() + self.bias.len()) * 4
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }
}

/// `out = epilogue(depthwise(x))`, NHWC; rows spread over the cores.
pub fn depthwise(pd: &PackedDw, g: &Geo, x: &[f32], out: &mut [f32], ep: &Epilogue) -> Result<(), String> {
    if g.c != pd.c || g.kh * g.kw != pd.taps {
        return Err(format!("depthwise geometry ({} channels, {}x{}) does not match its weights", g.c, g.kh, g.kw));
    }
    let out_len = g.n * g.oh * g.ow * g.c;
    if x.len() < g.n * g.h * g.w * g.c || out.len() < out_len || ep.residual.is_some_and(|r| r.len() < out_len) {
        return Err("depthwise operands too small".into());
    }
    let rows = g.n * g.oh;
    let row_len = g.ow * g.c;
    let o = SendPtr(out.as_mut_ptr());
    let res = SendPtr(ep.residual.map_or(std::ptr::null_mut(), |r| r.as_ptr() as *mut f32));
    let task = |row: usize| {
        let (o, res) = (o, res);
        // SAFETY: every index is within the sizes checked above; each task writes its own
        // output row.
        unsafe {
            let op = o.0.add(row * row_len);
            let rp = if res.0.is_null() { res.0 } else { res.0.add(row * row_len) };
            run(pd, g, x.as_ptr(), row / g.oh, row % g.oh, op, rp, ep);
        }
    };
    if rayon::current_num_threads() <= 1 || rows == 1 {
        (0..rows).for_each(task);
    } else {
        (0..rows).into_par_iter().for_each(task);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
unsafe fn run(pd: &PackedDw, g: &Geo, x: *const f32, b: usize, oy: usize, o: *mut f32, res: *const f32, ep: &Epilogue) {
    // the filter rows that land inside the image for this output row
    let iy0 = (oy * g.stride[0]) as isize - g.pad[0] as isize;
    let at = |ky: usize| {
        let iy = iy0 + (ky * g.dil[0]) as isize;
        (iy >= 0 && (iy as usize) < g.h).then(|| (ky, x.add((b * g.h + iy as usize) * g.w * g.c)))
    };
    // no allocation for filters up to 8 rows tall
    let mut few = [(0, std::ptr::null()); 8];
    if g.kh <= few.len() {
        let mut k = 0;
        for r in (0..g.kh).filter_map(at) {
            few[k] = r;
            k += 1;
        }
        row_from(pd, g, &few[..k], o, res, ep)
    } else {
        let rows: Vec<(usize, *const f32)> = (0..g.kh).filter_map(at).collect();
        row_from(pd, g, &rows, o, res, ep)
    }
}

/// One output row from the input rows its filter rows land on (`(ky, row start)`, each row
/// `w * c` values), into `o` (`ow * c`), with the residual row `res` (or null).
///
/// # Safety
/// Every pointer must be valid for a whole row of its geometry.
pub unsafe fn row_from(pd: &PackedDw, g: &Geo, rows: &[(usize, *const f32)], o: *mut f32, res: *const f32, ep: &Epilogue) {
    match pd.isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => row_avx512(pd, g, rows, o, res, ep),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => row_avx2(pd, g, rows, o, res, ep),
        _ => row::<Portable>(pd, g, rows, o, res, ep),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn row_avx512(pd: &PackedDw, g: &Geo, rows: &[(usize, *const f32)], o: *mut f32, res: *const f32, ep: &Epilogue) {
    row::<Avx512>(pd, g, rows, o, res, ep)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn row_avx2(pd: &PackedDw, g: &Geo, rows: &[(usize, *const f32)], o: *mut f32, res: *const f32, ep: &Epilogue) {
    row::<Avx2>(pd, g, rows, o, res, ep)
}

/// One output row `(b, oy)`, block of channels by block. 3-wide filters with strides 1
/// and 2 go through `sweep`; any other geometry a pixel at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row<S: Simd>(pd: &PackedDw, g: &Geo, ky_ok: &[(usize, *const f32)], o: *mut f32, res: *const f32, ep: &Epilogue) {
    let c = g.c;
    let clamp = (ep.lo > f32::NEG_INFINITY || ep.hi < f32::INFINITY).then(|| (S::splat(ep.lo), S::splat(ep.hi)));
    let in_regs = pd.taps <= 9;
    let slide = in_regs && g.kw == 3 && g.dil[1] == 1 && (g.stride[1] == 1 || g.stride[1] == 2);
    let mut cb = 0;
    while cb < c {
        let n = (c - cb).min(S::L);
        let bias = S::load(pd.bias.as_ptr().add(cb));
        let mut wr = [S::zero(); 9];
        if in_regs {
            for (t, w) in wr.iter_mut().enumerate().take(pd.taps) {
                *w = S::load(pd.w.as_ptr().add(t * pd.cp + cb));
            }
        }
        let k = Block { g, rows: ky_ok, wr: &wr, bias, cb, n, o, res, ep, clamp };
        match (slide, g.stride[1], n == S::L) {
            (true, 1, true) => sweep::<S, 1, true>(&k),
            (true, 1, false) => sweep::<S, 1, false>(&k),
            (true, _, true) => sweep::<S, 2, true>(&k),
            (true, _, false) => sweep::<S, 2, false>(&k),
            _ => {
                for ox in 0..g.ow {
                    let mut acc = bias;
                    let ix0 = (ox * g.stride[1]) as isize - g.pad[1] as isize;
                    for &(ky, base) in ky_ok {
                        for kx in 0..g.kw {
                            let ix = ix0 + (kx * g.dil[1]) as isize;
                            if ix < 0 || ix as usize >= g.w {
                                continue;
                            }
                            let p = base.add(ix as usize * c + cb);
                            let xv = if n == S::L { S::load(p) } else { S::load_part(p, n) };
                            let t = ky * g.kw + kx;
                            let wv = if in_regs { wr[t] } else { S::load(pd.w.as_ptr().add(t * pd.cp + cb)) };
                            acc = S::fma(xv, wv, acc);
                        }
                    }
                    let off = ox * c + cb;
                    let rp = if res.is_null() { res } else { res.add(off) };
                    finish::<S>(acc, None, clamp, rp, ep.residual_first, o.add(off), n);
                }
            }
        }
        cb += S::L;
    }
}

/// One block of channels of one output row, for `sweep` and `group`.
struct Block<'a, S: Simd> {
    g: &'a Geo,
    rows: &'a [(usize, *const f32)],
    /// the 3x3 filter's taps for this block of channels
    wr: &'a [S::V; 9],
    bias: S::V,
    /// first channel, and channels in the block (`S::L` but in the last)
    cb: usize,
    n: usize,
    o: *mut f32,
    res: *const f32,
    ep: &'a Epilogue<'a>,
    clamp: Option<(S::V, S::V)>,
}

/// A row of a 3-wide filter at stride `ST`, 8 output pixels at a time, then 4, 2, 1.
#[inline(always)]
unsafe fn sweep<S: Simd, const ST: usize, const FULL: bool>(k: &Block<S>) {
    let ow = k.g.ow;
    let mut ox = 0;
    // at stride 2, 8 pixels would want 17 input vectors live beside 8 sums and 9 taps
    while ST == 1 && ox + 8 <= ow {
        group::<S, 8, ST, FULL>(k, ox);
        ox += 8;
    }
    while ox + 4 <= ow {
        group::<S, 4, ST, FULL>(k, ox);
        ox += 4;
    }
    if ox + 2 <= ow {
        group::<S, 2, ST, FULL>(k, ox);
        ox += 2;
    }
    if ox < ow {
        group::<S, 1, ST, FULL>(k, ox);
    }
}

/// `PX` output pixels from `ox`: each input vector of the window is loaded once and
/// multiplied into every output that it reaches (3 at stride 1), the `PX` sums in
/// registers. Input pixels outside the row (the padding) read as zeros.
#[inline(always)]
unsafe fn group<S: Simd, const PX: usize, const ST: usize, const FULL: bool>(k: &Block<S>, ox: usize) {
    let (g, c) = (k.g, k.g.c);
    let ix0 = (ox * ST) as isize - g.pad[1] as isize;
    let span = (PX - 1) * ST + 3;
    let inside = ix0 >= 0 && ix0 + span as isize <= g.w as isize;
    let mut acc = [k.bias; PX];
    for &(ky, base) in k.rows {
        let w = [k.wr[ky * 3], k.wr[ky * 3 + 1], k.wr[ky * 3 + 2]];
        // one pointer stepped along the window: ten offsets kept apart would not fit
        // in the general registers
        let mut q = base.wrapping_offset(ix0 * c as isize).wrapping_add(k.cb);
        for i in 0..span {
            let ix = ix0 + i as isize;
            if i > 0 {
                q = q.wrapping_add(c);
            }
            let v = if inside || (ix >= 0 && ix < g.w as isize) {
                if FULL {
                    S::load(q)
                } else {
                    S::load_part(q, k.n)
                }
            } else {
                S::zero()
            };
            for (kx, &wk) in w.iter().enumerate() {
                // output j takes input j * ST + kx
                if i >= kx && (i - kx) % ST == 0 && (i - kx) / ST < PX {
                    let j = (i - kx) / ST;
                    acc[j] = S::fma(v, wk, acc[j]);
                }
            }
        }
    }
    for (j, &a) in acc.iter().enumerate() {
        let off = (ox + j) * c + k.cb;
        let rp = if k.res.is_null() { k.res } else { k.res.add(off) };
        finish::<S>(a, None, k.clamp, rp, k.ep.residual_first, k.o.add(off), if FULL { S::L } else { k.n });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_matches_a_direct_loop() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.supported()) {
            for &(h, w, c, k, s, d, p) in &[
                (9, 7, 19, 3, 1, 1, 1),
                (8, 8, 32, 3, 2, 1, 0),
                (5, 21, 35, 3, 2, 1, 1),
                (3, 23, 16, 3, 1, 1, 1),
                (6, 9, 8, 3, 1, 2, 2),
                (4, 1, 5, 3, 1, 1, 1),
                (4, 2, 20, 3, 2, 1, 1),
                (6, 5, 3, 5, 1, 2, 4),
                (4, 4, 40, 1, 1, 1, 0),
                (10, 11, 17, 4, 3, 1, 2),
            ] {
                let oh = (h + 2 * p - d * (k - 1) - 1) / s + 1;
                let ow = (w + 2 * p - d * (k - 1) - 1) / s + 1;
                let g = Geo { n: 2, h, w, c, oh, ow, kh: k, kw: k, stride: [s, s], dil: [d, d], pad: [p, p] };
                let x: Vec<f32> = (0..2 * h * w * c).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
                let wt: Vec<f32> = (0..k * k * c).map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0).collect();
                let bias: Vec<f32> = (0..c).map(|i| i as f32 / 10.0).collect();
                let pd = PackedDw::new(isa, &wt, k * k, c, Some(&bias)).unwrap();
                let mut out = vec![f32::NAN; 2 * oh * ow * c];
                depthwise(&pd, &g, &x, &mut out, &Epilogue::none()).unwrap();
                // and with a residual added after a clamp, as a block's epilogue may be
                let res: Vec<f32> = (0..out.len()).map(|i| (i % 7) as f32 - 3.0).collect();
                let mut out_ep = vec![f32::NAN; out.len()];
                let ep = Epilogue { lo: -2.0, hi: 2.5, residual: Some(&res), residual_first: false };
                depthwise(&pd, &g, &x, &mut out_ep, &ep).unwrap();
                for b in 0..2 {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for ch in 0..c {
                                let mut s_ = bias[ch] as f64;
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let iy = (oy * s + ky * d) as isize - p as isize;
                                        let ix = (ox * s + kx * d) as isize - p as isize;
                                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                            s_ += x[((b * h + iy as usize) * w + ix as usize) * c + ch] as f64
                                                * wt[(ky * k + kx) * c + ch] as f64;
                                        }
                                    }
                                }
                                let at = ((b * oh + oy) * ow + ox) * c + ch;
                                let got = out[at];
                                assert!((got as f64 - s_).abs() < 1e-4 * (1.0 + s_.abs()), "{isa:?} {h}x{w}x{c} k{k}: {got} vs {s_}");
                                let want = s_.clamp(-2.0, 2.5) + res[at] as f64;
                                let got = out_ep[at] as f64;
                                assert!(
                                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                                    "{isa:?} {h}x{w}x{c} k{k} clamp+residual: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
