//! The CPU executor's vector kernels alone, on every convolution shape of MoveNet
//! MultiPose at 256x256 (taken from the model's own graph in `models/`), each against the
//! FMA peak measured in the same run: GFLOP/s and share of peak for the pointwise GEMMs,
//! GB/s for the depthwise convolutions (memory-bound), and the sum of each family's time.
//!
//! Two measures: each shape alone, repeated with its data hot in cache (best of 20), and
//! the shapes in the model's order, each once per round with its own buffers (median of
//! 20 rounds), which is what they meet inside a run: weights and inputs not yet in cache.
//!
//! usage: `cargo bench --bench cpu_shapes [-- --each]` (`RAYON_NUM_THREADS` sets the
//! threads; `--each` prints every shape, not only the totals; `WALKOUT_CPU_ISA` forces a
//! path).

use std::time::Instant;
use walkout::graph::eval::conv_out_dim;
use walkout::graph::{optimize, Op};
use walkout::models::Repository;
use walkout::runtime::cpu::simd::{dw, gemm, peak, Epilogue, Isa};

fn rand(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5).collect()
}

/// Best time of `reps` runs of `f`, in seconds, after one warm-up.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// One convolution of the model, with its own operands.
enum Job {
    Pointwise { m: usize, k: usize, n: usize, pb: gemm::PackedB, x: Vec<f32>, out: Vec<f32> },
    Depthwise { geo: dw::Geo, pd: dw::PackedDw, x: Vec<f32>, out: Vec<f32> },
}

impl Job {
    fn run(&mut self, ep: &Epilogue) {
        match self {
            Job::Pointwise { m, k, pb, x, out, .. } => gemm::gemm(pb, *m, x, *k, out, ep).expect("gemm"),
            Job::Depthwise { geo, pd, x, out } => dw::depthwise(pd, geo, x, out, ep).expect("depthwise"),
        }
    }
    /// FLOPs, and bytes of input and output.
    fn work(&self) -> (f64, f64) {
        match self {
            Job::Pointwise { m, k, n, .. } => (2.0 * (m * k * n) as f64, 4.0 * (m * k + m * n) as f64),
            Job::Depthwise { geo: g, .. } => {
                (2.0 * (g.oh * g.ow * g.c * g.kh * g.kw) as f64, 4.0 * (g.h * g.w * g.c + g.oh * g.ow * g.c) as f64)
            }
        }
    }
    fn label(&self) -> String {
        match self {
            Job::Pointwise { m, k, n, .. } => format!("1x1 M {m:>6} K {k:>5} N {n:>5}"),
            Job::Depthwise { geo: g, .. } => format!("dw {}x{}/{} {:>4}x{:<4} C {:>5}", g.kh, g.kw, g.stride[0], g.h, g.w, g.c),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let each = std::env::args().any(|a| a == "--each");
    let isa = Isa::detect();
    let repo = Repository::open(Repository::default_root());
    let model = repo.resolve("movenet-multipose").expect("movenet-multipose in the model repository (scripts/fetch-models)");
    let graph = model.load_graph().expect("load movenet-multipose");
    let g = optimize::specialize(&graph, &[vec![1, 256, 256, 3]]).expect("specialize at 256x256");
    let threads = rayon::current_num_threads();
    let peak = (0..3).map(|_| peak::fma_peak_gflops(isa, 20_000_000)).fold(0.0, f64::max);
    println!("MoveNet MultiPose 256x256 conv shapes on {} with {threads} threads; FP32 peak {peak:.1} GFLOP/s", isa.name());
    let relu6 = Epilogue { lo: 0.0, hi: 6.0, residual: None, residual_first: true };
    let mut jobs: Vec<Job> = Vec::new();
    for n in &g.nodes {
        let Op::Conv2d(a) = &n.op else { continue };
        let (Some(xs), Some(ys), Some(w)) = (&g.values[n.inputs[0]].shape, &g.values[n.outputs[0]].shape, g.consts.get(&n.inputs[1]))
        else {
            continue;
        };
        let [kh, kw, cig, cout] = w.shape[..] else { continue };
        let (h, wd, cin) = (xs[1], xs[2], xs[3]);
        let (oh, ow) = (ys[1], ys[2]);
        if a.groups == 1 && kh == 1 && kw == 1 && a.strides == [1, 1] {
            let m = oh * ow;
            let pb = gemm::PackedB::new(isa, &rand(cin * cout, 1), cin, cout, Some(&rand(cout, 2))).expect("pack");
            jobs.push(Job::Pointwise { m, k: cin, n: cout, pb, x: rand(m * cin, 3), out: vec![0f32; m * cout] });
        } else if a.groups == cin && cig == 1 && cout == cin {
            // the leading pads as the executor resolves them (`ConvGeo::new`)
            let pad = |i: usize, k: usize, axis: usize| {
                conv_out_dim(i, k, a.strides[axis], a.dilations[axis], &a.padding, axis).expect("conv geometry").1
            };
            let geo = dw::Geo {
                n: 1,
                h,
                w: wd,
                c: cin,
                oh,
                ow,
                kh,
                kw,
                stride: a.strides,
                dil: a.dilations,
                pad: [pad(h, kh, 0), pad(wd, kw, 1)],
            };
            let pd = dw::PackedDw::new(isa, &rand(kh * kw * cin, 1), kh * kw, cin, Some(&rand(cin, 2))).expect("pack");
            jobs.push(Job::Depthwise { geo, pd, x: rand(h * wd * cin, 3), out: vec![0f32; oh * ow * cin] });
        }
    }
    let hot: Vec<f64> = jobs.iter_mut().map(|j| best(20, || j.run(&relu6))).collect();
    let mut rounds = vec![Vec::new(); jobs.len()];
    for _ in 0..21 {
        for (j, r) in jobs.iter_mut().zip(&mut rounds) {
            let t = Instant::now();
            j.run(&relu6);
            r.push(t.elapsed().as_secs_f64());
        }
    }
    let seq: Vec<f64> = rounds.into_iter().map(median).collect();
    if each {
        println!("{:<30} {:>9} {:>9} {:>9} {:>9}", "shape", "hot ms", "GFLOP/s", "in-seq ms", "GFLOP/s");
        for ((j, h), s) in jobs.iter().zip(&hot).zip(&seq) {
            let (f, _) = j.work();
            println!("{:<30} {:>9.3} {:>9.1} {:>9.3} {:>9.1}", j.label(), h * 1e3, f / h / 1e9, s * 1e3, f / s / 1e9);
        }
    }
    for (name, pw) in [("pointwise GEMMs", true), ("depthwise", false)] {
        let pick = |ts: &[f64]| -> (f64, f64, f64) {
            jobs.iter().zip(ts).filter(|(j, _)| matches!(j, Job::Pointwise { .. }) == pw).fold((0.0, 0.0, 0.0), |a, (j, t)| {
                let (f, b) = j.work();
                (a.0 + t, a.1 + f, a.2 + b)
            })
        };
        for (how, ts) in [("alone, hot", &hot), ("in sequence", &seq)] {
            let (t, f, b) = pick(ts);
            println!(
                "{name:<16} {how:<12}: {:>7.3} ms {:>7.1} GFLOP/s {:>5.1}% of peak {:>6.1} GB/s",
                t * 1e3,
                f / t / 1e9,
                f / t / 1e7 / peak,
                b / t / 1e9
            );
        }
    }
}
