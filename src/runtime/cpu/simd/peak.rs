//! The machine's FP32 peak, measured: each thread runs 16 (AVX-512) or 12 (AVX2, portable)
//! independent multiply-add chains on registers, enough to cover the FMA latency on both
//! FMA ports, for a fixed number of iterations; the peak is the FLOPs of all threads over
//! the wall time. `walkout models profile --device cpu` reports kernels against it.

use super::Isa;

/// Measured GFLOP/s of fused multiply-adds, `iters` rounds of the chains on every thread of
/// the rayon pool at once.
pub fn fma_peak_gflops(isa: Isa, iters: usize) -> f64 {
    let t0 = std::time::Instant::now();
    let flops: f64 = rayon::broadcast(|_| chains(isa, iters)).into_iter().sum();
    let dt = t0.elapsed().as_secs_f64();
    flops / dt.max(1e-9) / 1e9
}

/// FLOPs done by one thread's chains (the result is kept so the loop is not removed).
fn chains(isa: Isa, iters: usize) -> f64 {
    let sink = match isa {
        // SAFETY: only on a CPU that has the feature (Isa::supported).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.supported() => unsafe { x86::avx512(iters) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if isa.supported() => unsafe { x86::avx2(iters) },
        _ => portable(iters),
    };
    std::hint::black_box(sink);
    let (chains, lanes) = match isa {
        Isa::Avx512 => (16, 16),
        _ => (12, 8),
    };
    (iters * chains * lanes * 2) as f64
}

fn portable(iters: usize) -> f32 {
    let mut acc = [[1.0f32; 8]; 12];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            for x in a.iter_mut() {
                *x = *x * 0.999_999 + 1e-7;
            }
        }
    }
    acc.iter().flatten().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(iters: usize) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 16];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(iters: usize) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut out = [0f32; 8];
        let s = acc.iter().fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum()
    }
}
