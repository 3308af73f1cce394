//! The vector operations the kernels use, for AVX-512F, AVX2 + FMA and portable code.
//! Every method is `#[inline(always)]` and `unsafe` (raw pointers; the SIMD ones also need
//! the CPU feature, which the `#[target_feature]` entry points guarantee).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// One f32 vector type and its operations.
pub(crate) trait Simd {
    type V: Copy;
    const L: usize;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Loads the first `n` (< L) lanes, zeros elsewhere.
    unsafe fn load_part(p: *const f32, n: usize) -> Self::V;
    /// Stores the first `n` (< L) lanes.
    unsafe fn store_part(p: *mut f32, v: Self::V, n: usize);
    /// a * b + c
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// Per lane, `a` where `x > y` (false for NaN), else `b`.
    unsafe fn select_gt(x: Self::V, y: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// The sum of the lanes.
    #[inline(always)]
    unsafe fn hsum(v: Self::V) -> f32 {
        let mut t = [0f32; 16];
        Self::store(t.as_mut_ptr(), v);
        t[..Self::L].iter().sum()
    }
    /// Hints that the line at `p` will be read soon (any address: a prefetch never faults).
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        #[cfg(target_arch = "x86_64")]
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
    /// Hints that the line at `p` will be read later: into L2, not L1.
    #[inline(always)]
    unsafe fn prefetch_l2(p: *const f32) {
        #[cfg(target_arch = "x86_64")]
        _mm_prefetch::<_MM_HINT_T1>(p as *const i8);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
    /// Hints that the line at `p` will be written soon.
    #[inline(always)]
    unsafe fn prefetch_w(p: *const f32) {
        #[cfg(target_arch = "x86_64")]
        _mm_prefetch::<_MM_HINT_ET0>(p as *const i8);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Simd for Avx512 {
    type V = __m512;
    const L: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> __m512 {
        _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p)
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: __m512, n: usize) {
        _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, v)
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn min(a: __m512, b: __m512) -> __m512 {
        _mm512_min_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        _mm512_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn select_gt(x: __m512, y: __m512, a: __m512, b: __m512) -> __m512 {
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, y), b, a)
    }
    #[inline(always)]
    unsafe fn hsum(v: __m512) -> f32 {
        _mm512_reduce_add_ps(v)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn mask8(n: usize) -> __m256i {
    const M: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    _mm256_loadu_si256(M.as_ptr().add(8 - n) as *const __m256i)
}

#[cfg(target_arch = "x86_64")]
impl Simd for Avx2 {
    type V = __m256;
    const L: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> __m256 {
        _mm256_maskload_ps(p, mask8(n))
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: __m256, n: usize) {
        _mm256_maskstore_ps(p, mask8(n), v)
    }
    #[inline(always)]
    unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn min(a: __m256, b: __m256) -> __m256 {
        _mm256_min_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max(a: __m256, b: __m256) -> __m256 {
        _mm256_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn select_gt(x: __m256, y: __m256, a: __m256, b: __m256) -> __m256 {
        _mm256_blendv_ps(b, a, _mm256_cmp_ps::<_CMP_GT_OQ>(x, y))
    }
}

/// Portable code: 8-lane arrays, multiply then add (no fused multiply-add: without the
/// CPU feature `mul_add` is a slow library call).
pub(crate) struct Portable;

impl Simd for Portable {
    type V = [f32; 8];
    const L: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> [f32; 8] {
        [0.0; 8]
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> [f32; 8] {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> [f32; 8] {
        std::ptr::read_unaligned(p as *const [f32; 8])
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: [f32; 8]) {
        std::ptr::write_unaligned(p as *mut [f32; 8], v)
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> [f32; 8] {
        let mut v = [0.0; 8];
        for (i, x) in v.iter_mut().enumerate().take(n) {
            *x = *p.add(i);
        }
        v
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: [f32; 8], n: usize) {
        for (i, x) in v.iter().enumerate().take(n) {
            *p.add(i) = *x;
        }
    }
    #[inline(always)]
    unsafe fn fma(a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    unsafe fn add(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn min(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i].min(b[i]))
    }
    #[inline(always)]
    unsafe fn max(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i].max(b[i]))
    }
    #[inline(always)]
    unsafe fn select_gt(x: [f32; 8], y: [f32; 8], a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| if x[i] > y[i] { a[i] } else { b[i] })
    }
}

/// Applies the epilogue to one vector of accumulators and stores `n` lanes (all when
/// `n == L`). `res` points at the matching residual lanes, or is null. `bias` is added
/// first, when the accumulators did not start from it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn finish<S: Simd>(
    acc: S::V,
    bias: Option<S::V>,
    clamp: Option<(S::V, S::V)>,
    res: *const f32,
    res_first: bool,
    dst: *mut f32,
    n: usize,
) {
    let mut x = match bias {
        Some(b) => S::add(acc, b),
        None => acc,
    };
    let r = if res.is_null() {
        None
    } else if n == S::L {
        Some(S::load(res))
    } else {
        Some(S::load_part(res, n))
    };
    if let (Some(r), true) = (r, res_first) {
        x = S::add(x, r);
    }
    if let Some((lo, hi)) = clamp {
        x = S::min(S::max(x, lo), hi);
    }
    if let (Some(r), false) = (r, res_first) {
        x = S::add(x, r);
    }
    if n == S::L {
        S::store(dst, x)
    } else {
        S::store_part(dst, x, n)
    }
}
