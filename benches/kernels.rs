//! GEMM, conv and depthwise kernels on every executor (CPU, GPU, OpenCL), reported as GFLOP/s
//! (criterion's element throughput is set to the FLOP count, so "Gelem/s" reads as GFLOP/s).
//! GPU times come from timestamp queries (kernel time only) where the adapter has them,
//! OpenCL times from profiling events.
//! `WALKOUT_BENCH_SMALL=1` shrinks the workloads (for lavapipe).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use walkout::graph::*;
use walkout::runtime::{cpu::CpuExecutor, gpu::GpuExecutor, opencl::OpenClExecutor, Executor, Plan};

fn small() -> bool {
    std::env::var_os("WALKOUT_BENCH_SMALL").is_some()
}

fn rand(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn one_node(op: Op, x_shape: &[usize], consts: Vec<Tensor>) -> Graph {
    Graph::one_node(op, x_shape, consts)
}

/// Batch 1, NHWC, SAME padding, bias and ReLU6 fused (`walkout models kernels`' shapes).
fn conv(groups: usize, c: usize, hw: usize, k: usize, cout: usize) -> (Graph, Vec<usize>) {
    walkout::cli::kernels::conv(1, hw, c, k, cout, groups)
}

fn bench_plan(c: &mut Criterion, group: &str, name: &str, exec: &dyn Executor, g: &Graph, shape: &[usize]) {
    let mut plan = match exec.compile(g, &[shape.to_vec()]) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{group}/{name}: {e}");
            return;
        }
    };
    let spec = optimize::specialize(g, &[shape.to_vec()]).expect("specialize");
    let flops = spec.flops();
    let x = Tensor::f32(shape.to_vec(), rand(numel(shape), 3));
    let mut grp = c.benchmark_group(group);
    grp.throughput(Throughput::Elements(flops));
    grp.sample_size(10);
    grp.measurement_time(Duration::from_secs(3));
    grp.bench_function(format!("{name}/{}", exec.name()), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += kernel_time(plan.as_mut(), &x);
            }
            total
        })
    });
    grp.finish();
}

/// Kernel time of one run: summed profile entries where the plan profiles, else wall time.
fn kernel_time(plan: &mut dyn Plan, x: &Tensor) -> Duration {
    let t0 = std::time::Instant::now();
    match plan.profile(std::slice::from_ref(x)) {
        Ok(Some(p)) => Duration::from_secs_f64(p.kernels.iter().map(|k| k.ms).sum::<f64>() / 1e3),
        _ => t0.elapsed(),
    }
}

fn kernels(c: &mut Criterion) {
    let s = if small() { 4 } else { 1 };
    let mut execs: Vec<Box<dyn Executor>> = vec![Box::new(CpuExecutor::new())];
    match GpuExecutor::new() {
        Ok(g) => execs.push(Box::new(g)),
        Err(e) => eprintln!("no GPU executor: {e}"),
    }
    match OpenClExecutor::new() {
        Ok(o) => execs.push(Box::new(o)),
        Err(e) => eprintln!("no OpenCL executor: {e}"),
    }
    let n = 1024 / s;
    let gemm = {
        let b = Tensor::f32(vec![n, n], rand(n * n, 5));
        one_node(Op::MatMul { transpose_a: false, transpose_b: false }, &[n, n], vec![b])
    };
    let (c3, s3) = conv(1, 64 / s, 64, 3, 64 / s);
    let (c1, s1) = conv(1, 96 / s, 64, 1, 192 / s);
    let (dw, sd) = conv(192 / s, 192 / s, 64, 3, 192 / s);
    for e in &execs {
        bench_plan(c, "gemm", &format!("{n}x{n}x{n}"), e.as_ref(), &gemm, &[n, n]);
        bench_plan(c, "conv", "3x3", e.as_ref(), &c3, &s3);
        bench_plan(c, "conv", "1x1", e.as_ref(), &c1, &s1);
        bench_plan(c, "depthwise", "3x3", e.as_ref(), &dw, &sd);
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
