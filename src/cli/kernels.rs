//! `walkout models kernels`: the GEMM, convolution and depthwise kernels of an executor on
//! fixed shapes, each GPU GEMM shape with the portable kernel, every tile that fits and the
//! tile the executor would choose, and each convolution on f16 storage (and f16 cooperative
//! matrices) where the adapter has them, against the adapter's measured peaks.

use crate::graph::{optimize, Activation, ConvAttrs, Graph, Layout, Op, Padding, Tensor};
use crate::runtime::{self, gpu, Device, Executor};
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct KernelsArgs {
    #[arg(long, default_value = "gpu")]
    pub device: Device,
    /// Shapes a software adapter or a CPU finishes in seconds (else data-centre GPU sizes).
    #[arg(long)]
    pub small: bool,
    /// Timed runs per variant (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Print one JSON object per row as well.
    #[arg(long)]
    pub json: bool,
    /// Print the adapter, what it offers and its peaks, and time nothing else.
    #[arg(long)]
    pub adapter_only: bool,
}

fn rand(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5).collect()
}

/// A one-node NHWC convolution graph (SAME padding, bias and ReLU6 fused) and its input
/// shape: batch `n`, `hw` x `hw` pixels, `c` -> `cout` channels, `k` x `k` taps.
pub fn conv(n: usize, hw: usize, c: usize, k: usize, cout: usize, groups: usize) -> (Graph, Vec<usize>) {
    let a = ConvAttrs {
        layout: Layout::Nhwc,
        strides: [1, 1],
        dilations: [1, 1],
        padding: Padding::SameUpper,
        groups,
        has_bias: true,
        act: Activation::Relu6,
        residual: None,
    };
    let cpg = c / groups;
    let w = Tensor::f32(vec![k, k, cpg, cout], rand(k * k * cpg * cout, 1));
    let b = Tensor::f32(vec![cout], rand(cout, 2));
    let shape = vec![n, hw, hw, c];
    (Graph::one_node(Op::Conv2d(a), &shape, vec![w, b]), shape)
}

fn gemm(m: usize, n: usize, k: usize) -> (Graph, Vec<usize>) {
    let b = Tensor::f32(vec![k, n], rand(k * n, 5));
    (Graph::one_node(Op::MatMul { transpose_a: false, transpose_b: false }, &[m, k], vec![b]), vec![m, k])
}

/// Median kernel time of a plan (profiled kernels where the plan profiles, else wall time).
fn time(exec: &dyn Executor, g: &Graph, shape: &[usize], iters: usize) -> Result<(f64, String)> {
    let mut plan = exec.compile(g, &[shape.to_vec()])?;
    let x = Tensor::f32(shape.to_vec(), rand(shape.iter().product(), 3));
    plan.run(std::slice::from_ref(&x))?;
    let mut ms = Vec::with_capacity(iters);
    let mut kernel = String::new();
    for _ in 0..iters.max(1) {
        let t0 = std::time::Instant::now();
        match plan.profile(std::slice::from_ref(&x))? {
            Some(p) => {
                // an f16 plan's casts in and out are not the kernel
                let ks: Vec<_> = p.kernels.iter().filter(|k| !k.kernel.starts_with("cast_")).collect();
                ms.push(ks.iter().map(|k| k.ms).sum::<f64>());
                kernel = ks.iter().map(|k| k.kernel.as_str()).collect::<Vec<_>>().join("+");
            }
            None => ms.push(t0.elapsed().as_secs_f64() * 1e3),
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], kernel))
}

pub fn kernels(a: KernelsArgs) -> Result<()> {
    let s = if a.small { 8 } else { 1 };
    let shapes: Vec<(String, (Graph, Vec<usize>))> = vec![
        (format!("gemm {0}x{0}x{0}", 4096 / s), gemm(4096 / s, 4096 / s, 4096 / s)),
        (format!("gemm {}x{}x{}", 65536 / s, 256, 64), gemm(65536 / s, 256, 64)),
        (format!("conv1x1 b{} 32x32 96->192", 64 / s), conv(64 / s, 32, 96, 1, 192, 1)),
        (format!("conv1x1 b{} 64x64 32->24", 64 / s), conv(64 / s, 64, 32, 1, 24, 1)),
        (format!("conv3x3 b{} 64x64 64->64", 32 / s), conv(32 / s, 64, 64, 3, 64, 1)),
        (format!("conv3x3 b{} 128x128 3->16", 64 / s), conv(64 / s, 128, 3, 3, 16, 1)),
        (format!("depthwise3x3 b{} 64x64x192", 64 / s), conv(64 / s, 64, 192, 3, 192, 192)),
    ];
    let exec = runtime::executor_for(a.device)?;
    let (peak, bw) = if a.device == Device::Gpu {
        let ctx = gpu::GpuContext::get()?;
        println!("{}: {}", exec.adapter(), ctx.capabilities());
        let pk = gpu::peak::measure(ctx.as_ref())?;
        println!("peaks, measured: FP32 {:.1} GFLOP/s, memory {:.1} GB/s ({})", pk.gflops, pk.gbps, pk.method);
        (Some(pk.gflops), Some(pk.gbps))
    } else {
        println!("{}", exec.adapter());
        (None, None)
    };
    if a.adapter_only {
        return Ok(());
    }
    println!("{:<30} {:<14} {:>10} {:>10} {:>8} {:>9}  kernel", "shape", "variant", "ms", "GFLOP/s", "of peak", "GB/s");
    for (name, (g, shape)) in &shapes {
        let spec = optimize::specialize(g, std::slice::from_ref(shape))?;
        let flops = spec.flops() as f64;
        let bytes: u64 = spec.nodes.iter().map(|n| runtime::node_bytes(&spec, n)).sum();
        // the executor as it is, then (GPU GEMMs) the portable kernel and every tile
        let mut variants: Vec<(String, Box<dyn Executor>, u64)> = vec![("chosen".into(), runtime::executor_for(a.device)?, bytes)];
        let gpu_tiled = |f| -> Result<Box<dyn Executor>> { Ok(Box::new(gpu::GpuExecutor::with_tiles(f)?)) };
        let ctx = if a.device == Device::Gpu { Some(gpu::GpuContext::get()?) } else { None };
        let coop = ctx.as_ref().is_some_and(|c| gpu::tiles::coop_offered(c));
        if let Some(ctx) = ctx.as_ref().filter(|_| !name.starts_with("depthwise")) {
            let max_smem = ctx.device.limits().max_compute_workgroup_storage_size;
            variants.push(("portable".into(), gpu_tiled(gpu::tiles::Forced::Portable)?, bytes));
            for t in gpu::tiles::CANDIDATES.iter().filter(|t| t.smem_bytes() <= max_smem) {
                variants.push((t.name(), gpu_tiled(gpu::tiles::Forced::Tile(*t))?, bytes));
            }
            if coop {
                variants.push(("coop f16".into(), gpu_tiled(gpu::tiles::Forced::Coop)?, bytes));
            }
        }
        // convolutions on f16 storage (precision f16, the node itself in f16: half the bytes),
        // with tensor cores where offered
        if ctx.as_ref().is_some_and(|c| c.device.features().contains(wgpu::Features::SHADER_F16)) && !name.starts_with("gemm") {
            let f16 = |e: gpu::GpuExecutor| Box::new(e.with_precision(runtime::Precision::F16).with_f16_heads(true));
            variants.push(("f16".into(), f16(gpu::GpuExecutor::new()?), bytes / 2));
            if coop && !name.starts_with("depthwise") {
                variants.push(("f16 + coop".into(), f16(gpu::GpuExecutor::with_tiles(gpu::tiles::Forced::Coop)?), bytes / 2));
            }
        }
        for (v, e, bytes) in &variants {
            let (ms, kernel) = time(e.as_ref(), g, shape, a.iters)?;
            let secs = (ms / 1e3).max(1e-12);
            let (gf, gb) = (flops / secs / 1e9, *bytes as f64 / secs / 1e9);
            let share = peak.map(|p| format!("{:>7.1}%", 100.0 * gf / p)).unwrap_or_default();
            println!("{name:<30} {v:<14} {ms:>10.3} {gf:>10.1} {share:>8} {gb:>9.1}  {kernel}");
            if a.json {
                let row = serde_json::json!({"shape": name, "variant": v, "ms": ms, "gflop_s": gf, "gb_s": gb,
                    "peak_gflop_s": peak, "peak_gb_s": bw, "kernel": kernel, "adapter": e.adapter()});
                println!("{row}");
            }
        }
    }
    Ok(())
}
