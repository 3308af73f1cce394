//! Vectorised `exp` (Cephes' single-precision polynomial after reduction by ln 2, within
//! 2 ulp of the C library's on normal results). Every path computes the same polynomial,
//! so they agree with each other to rounding; inputs over 88.72 give +inf, under -86.6
//! give 0 (the C library gives values under 5e-38 there), NaN stays NaN.

use super::Isa;
use rayon::prelude::*;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const P: [f32; 6] = [1.987_569_1e-4, 1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];
const HI: f32 = 88.722_84;
/// Under this the result is below 2^-124 (about 5e-38) and is given as 0; the scale by
/// 2^n is made as 2^(n-1) * 2 so that n = 128 (just under ln(f32::MAX)) does not overflow.
const LO: f32 = -86.6;

/// `dst[i] = exp(src[i])`, split across the cores when large.
pub fn exp_into(isa: Isa, src: &[f32], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    const CHUNK: usize = 1 << 14;
    if n > 2 * CHUNK && rayon::current_num_threads() > 1 {
        dst[..n].par_chunks_mut(CHUNK).zip(src[..n].par_chunks(CHUNK)).for_each(|(d, s)| exp_chunk(isa, s, d));
    } else {
        exp_chunk(isa, &src[..n], &mut dst[..n]);
    }
}

/// `x = 1 / (1 + exp(-x))` in place (the logistic sigmoid, as `Activation::Sigmoid`
/// computes it), split across the cores when large.
pub fn sigmoid_in_place(isa: Isa, x: &mut [f32]) {
    const CHUNK: usize = 1 << 12;
    let f = |c: &mut [f32]| {
        let mut t = [0f32; CHUNK];
        let t = &mut t[..c.len()];
        t.iter_mut().zip(c.iter()).for_each(|(t, &v)| *t = -v);
        exp_chunk(isa, t, c);
        c.iter_mut().for_each(|v| *v = 1.0 / (1.0 + *v));
    };
    if x.len() > 8 * CHUNK && rayon::current_num_threads() > 1 {
        x.par_chunks_mut(CHUNK).for_each(f);
    } else {
        x.chunks_mut(CHUNK).for_each(f);
    }
}

fn exp_chunk(isa: Isa, src: &[f32], dst: &mut [f32]) {
    match isa {
        // SAFETY: the path is only chosen when the CPU has the feature (Isa::supported).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::exp_avx512(src, dst) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::exp_avx2(src, dst) },
        _ => src.iter().zip(dst.iter_mut()).for_each(|(&x, d)| *d = exp_scalar(x)),
    }
}

/// The portable path, and the reference the vector ones follow.
pub fn exp_scalar(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > HI {
        return f32::INFINITY;
    }
    if x < LO {
        return 0.0;
    }
    let fx = (x * LOG2E).round_ties_even();
    let r = x - fx * LN2_HI - fx * LN2_LO;
    let mut y = P[0];
    for &p in &P[1..] {
        y = y * r + p;
    }
    let y = y * r * r + r + 1.0;
    y * f32::from_bits(((fx as i32 + 126) as u32) << 23) * 2.0
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp_avx512(src: &[f32], dst: &mut [f32]) {
        let n = src.len();
        let mut i = 0;
        while i + 16 <= n {
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), exp16(_mm512_loadu_ps(src.as_ptr().add(i))));
            i += 16;
        }
        if i < n {
            let m = ((1u32 << (n - i)) - 1) as u16;
            let x = _mm512_maskz_loadu_ps(m, src.as_ptr().add(i));
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i), m, exp16(x));
        }
    }

    #[inline(always)]
    unsafe fn exp16(x: __m512) -> __m512 {
        let xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(LO)), _mm512_set1_ps(HI));
        let fx = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)));
        let r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(LN2_HI), xc);
        let r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(LN2_LO), r);
        let mut y = _mm512_set1_ps(P[0]);
        for &p in &P[1..] {
            y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(p));
        }
        let y = _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0));
        let pow = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(126))));
        let mut res = _mm512_mul_ps(_mm512_mul_ps(y, pow), _mm512_set1_ps(2.0));
        res = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_set1_ps(HI)), res, _mm512_set1_ps(f32::INFINITY));
        res = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(LO)), res, _mm512_setzero_ps());
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), res, x)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_avx2(src: &[f32], dst: &mut [f32]) {
        let n = src.len();
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), exp8(_mm256_loadu_ps(src.as_ptr().add(i))));
            i += 8;
        }
        for j in i..n {
            dst[j] = exp_scalar(src[j]);
        }
    }

    #[inline(always)]
    unsafe fn exp8(x: __m256) -> __m256 {
        let xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(LO)), _mm256_set1_ps(HI));
        let fx = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)));
        let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(LN2_HI), xc);
        let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(LN2_LO), r);
        let mut y = _mm256_set1_ps(P[0]);
        for &p in &P[1..] {
            y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(p));
        }
        let y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
        let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(126))));
        let mut res = _mm256_mul_ps(_mm256_mul_ps(y, pow), _mm256_set1_ps(2.0));
        res = _mm256_blendv_ps(res, _mm256_set1_ps(f32::INFINITY), _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(HI)));
        res = _mm256_blendv_ps(res, _mm256_setzero_ps(), _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(LO)));
        _mm256_blendv_ps(res, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_within_a_few_ulp_of_libm() {
        let xs: Vec<f32> =
            (-9000..9000).map(|i| i as f32 * 0.0099).chain([f32::NAN, 100.0, -100.0, f32::INFINITY, f32::NEG_INFINITY, 0.0]).collect();
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.supported()) {
            let mut out = vec![0f32; xs.len()];
            exp_into(isa, &xs, &mut out);
            for (&x, &y) in xs.iter().zip(&out) {
                let want = x.exp();
                if x.is_nan() {
                    assert!(y.is_nan(), "{isa:?} exp(NaN) = {y}");
                } else if x < LO {
                    assert!(y == 0.0 && want < 5e-38, "{isa:?} exp({x}) = {y}");
                } else {
                    assert!(y == want || ((y - want) / want).abs() < 3e-7, "{isa:?} exp({x}) = {y}, libm {want}");
                }
            }
        }
    }

    #[test]
    fn sigmoid_matches_the_formula_on_every_path() {
        // long enough to take the chunked and the parallel paths
        let xs: Vec<f32> = (-20000..20000).map(|i| i as f32 * 0.0031).chain([f32::NAN, 100.0, -100.0, 0.0]).collect();
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.supported()) {
            let mut out = xs.clone();
            sigmoid_in_place(isa, &mut out);
            for (&x, &y) in xs.iter().zip(&out) {
                let want = 1.0 / (1.0 + (-x).exp());
                if x.is_nan() {
                    assert!(y.is_nan(), "{isa:?} sigmoid(NaN) = {y}");
                } else {
                    assert!((y - want).abs() <= 1e-6 * want.max(1e-30), "{isa:?} sigmoid({x}) = {y}, want {want}");
                }
            }
        }
    }
}
