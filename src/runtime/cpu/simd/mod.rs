//! The CPU executor's vector kernels: packed-weight GEMM for dense convolutions and a
//! depthwise convolution, both NHWC with the epilogue (bias, clamp activation, residual)
//! fused into the register tile.
//!
//! One generic body per kernel, written against [`Simd`], is instantiated three times:
//! AVX-512F (16 lanes), AVX2 + FMA (8 lanes) and portable code (8-lane arrays that the
//! compiler vectorises as it can). The entry points carry `#[target_feature]`; everything
//! they call is `#[inline(always)]`, so the intrinsics inline into the entry's body. The
//! path is chosen at run time from CPUID ([`Isa::detect`]) and can be forced
//! (`WALKOUT_CPU_ISA=avx512|avx2|portable`, or [`Isa`] per executor) to test each path.
//!
//! This module depends on nothing else in walkout, so it can be benchmarked on its own.

pub mod buf;
pub mod dw;
pub mod gemm;
pub mod math;
pub mod peak;
pub(crate) mod vec;

/// An instruction-set path of the CPU kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The best path this CPU runs, unless `WALKOUT_CPU_ISA` names another (one the CPU
    /// does not run falls back to the best, with a warning).
    pub fn detect() -> Isa {
        let best = Isa::best();
        match std::env::var("WALKOUT_CPU_ISA").ok().as_deref().map(str::trim) {
            None | Some("") | Some("auto") => best,
            Some(s) => match Isa::parse(s) {
                Some(isa) if isa.supported() => isa,
                _ => {
                    tracing::warn!("WALKOUT_CPU_ISA={s}: not a path this CPU runs (avx512, avx2, portable); using {}", best.name());
                    best
                }
            },
        }
    }

    /// The fastest path this CPU supports.
    pub fn best() -> Isa {
        [Isa::Avx512, Isa::Avx2].into_iter().find(|i| i.supported()).unwrap_or(Isa::Portable)
    }

    pub fn parse(s: &str) -> Option<Isa> {
        match s.to_ascii_lowercase().as_str() {
            "avx512" | "avx512f" | "avx-512" => Some(Isa::Avx512),
            "avx2" | "avx2+fma" => Some(Isa::Avx2),
            "portable" | "scalar" | "generic" => Some(Isa::Portable),
            _ => None,
        }
    }

    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            Isa::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2+fma",
            Isa::Portable => "portable",
        }
    }

    /// f32 lanes per vector register.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 | Isa::Portable => 8,
        }
    }
}

/// What the kernels apply to each accumulated value, in order: `+ bias`, `+ residual`
/// (when `residual_first`), `clamp(lo, hi)`, `+ residual` (otherwise). Activations other
/// than a clamp are applied by the caller afterwards (with `lo`/`hi` infinite).
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    pub lo: f32,
    pub hi: f32,
    /// Same layout and row stride as the output.
    pub residual: Option<&'a [f32]>,
    pub residual_first: bool,
}

impl Epilogue<'_> {
    pub fn none() -> Self {
        Epilogue { lo: f32::NEG_INFINITY, hi: f32::INFINITY, residual: None, residual_first: true }
    }
}

/// A raw pointer that may cross threads: each task writes a disjoint part.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only to hand disjoint output regions to rayon tasks.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Runs `f` on a worker of the current rayon pool and returns its result; called from
/// inside the pool (frames run side by side, each on a worker), runs `f` in place. A plan
/// run this way wakes its caller once per run rather than once per op, and each op's own
/// thread takes part in the op: 0.89x the time of MoveNet on 2 threads. On a pool of one
/// thread too: a parallel loop started outside the pool would hand its work to the one
/// worker and put the caller to sleep until it was done, once per op.
///
/// The other workers stay hot for the run: each takes the run's parallel work as soon as it
/// is queued (`rayon::yield_now`) and spins in between, instead of going to sleep after a
/// serial op and waking through the kernel for the next parallel one (on 2 threads that
/// cost about 7% of MoveNet's time in the scheduler). After some 65,000 idle turns (a
/// serial stretch of milliseconds) a helper polls every 50 µs instead of spinning.
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let done = AtomicBool::new(false);
    rayon::scope(|s| {
        let (main, done) = (rayon::current_thread_index(), &done);
        for _ in 1..rayon::current_num_threads() {
            s.spawn(move |_| {
                // a helper the run's own thread picks up (waiting on a join) returns at
                // once: spinning there would wait on itself
                if rayon::current_thread_index() == main {
                    return;
                }
                let mut idle = 0u32;
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() == Some(rayon::Yield::Executed) {
                        idle = 0;
                    } else {
                        idle = idle.saturating_add(1);
                        if idle > 1 << 16 {
                            // a long serial stretch (milliseconds): poll gently instead of
                            // holding the core; the wake-up is then small beside the stretch
                            std::thread::sleep(std::time::Duration::from_micros(50));
                        } else if idle.is_multiple_of(4096) {
                            // hand the core over now and then (a shared or oversubscribed machine)
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                }
            });
        }
        // the helpers stop when the run ends, or unwinds (they would otherwise spin, and
        // the scope wait for them, for ever)
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _stop = Stop(done);
        f()
    })
}

#[cfg(test)]
mod tests {
    /// A run gets its parallel work done, and one that panics stops its helpers and unwinds
    /// to the caller (rather than hanging).
    #[test]
    fn a_run_in_the_pool_finishes_and_a_panic_unwinds() {
        use rayon::prelude::*;
        let got = super::in_pool(|| (0..10_000u64).into_par_iter().map(|x| x * 2).sum::<u64>());
        assert_eq!(got, 99_990_000);
        let r = std::panic::catch_unwind(|| super::in_pool(|| -> u64 { panic!("a kernel bug") }));
        assert!(r.is_err());
        // the pool still runs after the unwinding
        assert_eq!(super::in_pool(|| (0..100u64).into_par_iter().sum::<u64>()), 4950);
    }
}
