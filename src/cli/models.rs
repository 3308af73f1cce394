//! `walkout models`: list, run, bench, inspect and profile repository models.

use super::parse_size;
use crate::graph::{optimize, Dim, Tensor};
use crate::models::Repository;
use crate::runtime::{self, Device};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// List the models in the repository.
    List,
    /// Run a model on .npy tensors.
    Run(RunArgs),
    /// Time a model and print a JSON summary as the last line.
    Bench(BenchArgs),
    /// Print inputs, outputs, op histogram, parameters and FLOPs.
    Inspect(InspectArgs),
    /// Time every kernel of one run and report GFLOP/s per kernel family.
    Profile(ProfileArgs),
    /// Time the GEMM, convolution and depthwise kernels on fixed shapes (on the GPU: the
    /// portable kernel and every GEMM tile), against the measured peaks.
    Kernels(super::kernels::KernelsArgs),
    /// Build kernels/*.cl for the OpenCL device and write the program binary, to load later
    /// with the server config's `opencl_binary` (or WALKOUT_OPENCL_BINARY).
    OpenclBinary(OpenclBinaryArgs),
}

#[derive(Args, Debug)]
pub struct OpenclBinaryArgs {
    #[arg(long)]
    pub out: std::path::PathBuf,
}

pub fn opencl_binary(a: OpenclBinaryArgs) -> Result<()> {
    let ctx = crate::runtime::opencl::ClContext::get()?;
    let bin = ctx.binary()?;
    std::fs::write(&a.out, &bin).with_context(|| format!("writing {}", a.out.display()))?;
    println!("{}: {} bytes for {}", a.out.display(), bin.len(), ctx.description);
    Ok(())
}

#[derive(Args, Debug)]
pub struct ProfileArgs {
    pub model: String,
    #[arg(long, default_value = "gpu")]
    pub device: Device,
    /// Storage precision, f32 or f16 (f16: the gpu device on an adapter with SHADER_F16);
    /// default: the model config's `precision`, else f32.
    #[arg(long)]
    pub precision: Option<runtime::Precision>,
    /// Input size HxW (default: the config's default size).
    #[arg(long)]
    pub size: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Show this many slowest nodes.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Profile this many runs and report each kernel's median (a shared machine is noisy).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
}
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Repository name (movenet-multipose) or path to a model file (model.json).
    pub model: String,
    /// Input tensor: X.npy (or an ONNX TensorProto X.pb) for the first input, or NAME=X.npy. Repeatable.
    #[arg(long = "input", required = true)]
    pub inputs: Vec<String>,
    /// Output .npy path; repeat for models with several outputs.
    #[arg(long = "output", required = true)]
    pub outputs: Vec<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Storage precision, f32 or f16 (f16: the gpu device on an adapter with SHADER_F16);
    /// default: the model config's `precision`, else f32.
    #[arg(long)]
    pub precision: Option<runtime::Precision>,
}
#[derive(Args, Debug)]
pub struct BenchArgs {
    pub model: String,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Storage precision, f32 or f16 (f16: the gpu device on an adapter with SHADER_F16);
    /// default: the model config's `precision`, else f32.
    #[arg(long)]
    pub precision: Option<runtime::Precision>,
    /// Input tensor (.npy, one frame); otherwise a deterministic synthetic frame.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Input size HxW for image models (default: the config's default size).
    #[arg(long)]
    pub size: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
}
#[derive(Args, Debug)]
pub struct InspectArgs {
    pub model: String,
    /// Input size HxW used to resolve dynamic dims for shapes and FLOPs.
    #[arg(long)]
    pub size: Option<String>,
}

pub fn list(repo: &Repository) -> Result<()> {
    let entries = repo.list()?;
    println!("{:<24} {:<6} {:<6} {:<10} STATUS", "NAME", "FORMAT", "TASK", "VERSIONS");
    for e in entries {
        match &e.config {
            Ok(c) => {
                let vs = e.versions.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
                let status = if e.versions.is_empty() { "not fetched (scripts/fetch-models)" } else { "ready" };
                println!("{:<24} {:<6} {:<6} {:<10} {}", e.name, format!("{:?}", c.format).to_lowercase(), c.task, vs, status);
            }
            Err(msg) => println!("{:<24} {:<6} {:<6} {:<10} invalid config: {msg}", e.name, "-", "-", "-"),
        }
    }
    Ok(())
}

pub fn run(repo: &Repository, a: RunArgs) -> Result<()> {
    let model = repo.resolve(&a.model)?;
    let graph = model.load_graph()?;
    let mut tensors: Vec<Option<Tensor>> = vec![None; graph.inputs.len()];
    for (i, spec) in a.inputs.iter().enumerate() {
        let (slot, path) = match spec.split_once('=') {
            Some((name, p)) => {
                let idx = graph.inputs.iter().position(|x| x.name == name).with_context(|| {
                    format!(
                        "model has no input '{name}' (inputs: {})",
                        graph.inputs.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
                    )
                })?;
                (idx, p)
            }
            None => (i, spec.as_str()),
        };
        if slot >= tensors.len() {
            bail!("too many inputs: the model has {}", tensors.len());
        }
        let path = Path::new(path);
        tensors[slot] = Some(if path.extension().is_some_and(|e| e == "pb") {
            // a serialised ONNX TensorProto, as the ONNX model tests ship their inputs
            crate::graph::onnx::read_tensor(path)?
        } else {
            crate::npy::read(path)?
        });
    }
    let inputs: Vec<Tensor> = tensors
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.with_context(|| format!("missing input '{}'", graph.inputs[i].name)))
        .collect::<Result<_>>()?;
    let exec = runtime::executor_with(a.device, precision(&model, a.precision))?;
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
    let batch = shapes[0].first().copied().unwrap_or(1);
    let frame_shapes: Vec<Vec<usize>> = shapes
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if !s.is_empty() {
                s[0] = 1;
            }
            s
        })
        .collect();
    // a model that fixes batch 1 runs a larger batch frame by frame (or split, where it can);
    // any other model runs the shapes it was given, a fixed batch of 2 included
    let mut plan = match runtime::fixed_batch(&graph) {
        Some(1) if batch > 1 => runtime::compile_batched(exec.as_ref(), &graph, &frame_shapes, batch)?,
        _ => exec.compile(&graph, &shapes)?,
    };
    let outs = plan.run(&inputs)?;
    for (i, t) in outs.iter().enumerate() {
        let path = match a.outputs.get(i) {
            Some(p) => p.clone(),
            None if a.outputs.len() == 1 => a.outputs[0].with_extension(format!("{i}.npy")),
            None => continue,
        };
        crate::npy::write(&path, t)?;
        eprintln!("wrote {} {:?} {}", path.display(), t.shape, t.dtype());
    }
    Ok(())
}

/// Concrete per-frame input shapes: from --size / the config / the declared dims.
fn frame_shapes(
    graph: &crate::graph::Graph,
    cfg: Option<&crate::models::ModelConfig>,
    size: Option<[usize; 2]>,
) -> Result<Vec<Vec<usize>>> {
    let hw = size.or(cfg.map(|c| c.input.default_size));
    graph
        .inputs
        .iter()
        .map(|inp| {
            let mut out = Vec::new();
            for (i, d) in inp.dims.iter().enumerate() {
                out.push(match d {
                    Dim::Fixed(n) => *n,
                    Dim::Dynamic(_) if i == 0 => 1,
                    Dim::Dynamic(_) => {
                        let [h, w] = hw.with_context(|| {
                            format!("input '{}' has dynamic dims {}; pass --size HxW", inp.name, crate::graph::fmt_dims(&inp.dims))
                        })?;
                        // NHWC: dims 1,2; NCHW: dims 2,3
                        let nhwc = inp.dims.len() == 4 && matches!(inp.dims[3], Dim::Fixed(3));
                        match (i, nhwc) {
                            (1, true) | (2, false) => h,
                            (2, true) | (3, false) => w,
                            _ => bail!("input '{}': cannot resolve dynamic dim {i}", inp.name),
                        }
                    }
                });
            }
            Ok(out)
        })
        .collect()
}

fn synthetic(dtype: crate::graph::DType, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    // deterministic pseudo-random pixels 0..255
    let mut s = 0x2545F4914F6CDD1Du64;
    let vals: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 256) as f32
        })
        .collect();
    Tensor::f32(shape.to_vec(), vals).cast(dtype)
}

pub fn bench(repo: &Repository, a: BenchArgs) -> Result<()> {
    let model = repo.resolve(&a.model)?;
    let graph = model.load_graph()?;
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let frame = match &a.input {
        Some(p) => vec![crate::npy::read(p)?],
        None => frame_shapes(&graph, model.config.as_ref(), size)?.iter().zip(&graph.inputs).map(|(s, i)| synthetic(i.dtype, s)).collect(),
    };
    let shapes: Vec<Vec<usize>> = frame.iter().map(|t| t.shape.clone()).collect();
    let exec = runtime::executor_with(a.device, precision(&model, a.precision))?;
    let t0 = std::time::Instant::now();
    let mut plan = runtime::compile_batched(exec.as_ref(), &graph, &shapes, a.batch)?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let inputs: Vec<Tensor> = frame.iter().map(|t| runtime::concat_batch(&vec![t.clone(); a.batch])).collect();
    for _ in 0..a.warmup {
        plan.run(&inputs)?;
    }
    let mut times = Vec::with_capacity(a.iters);
    for _ in 0..a.iters.max(1) {
        let t = std::time::Instant::now();
        plan.run(&inputs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|x, y| x.total_cmp(y));
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    let spec = optimize::specialize(&graph, &shapes)?;
    let gflop = spec.flops() as f64 / 1e9;
    eprintln!(
        "{} on {} ({}): median {:.2} ms per batch of {} ({} iters), compile {:.0} ms",
        model.name,
        exec.adapter(),
        exec.precision(),
        median,
        a.batch,
        times.len(),
        compile_ms
    );
    let summary = serde_json::json!({
        "model": model.name,
        "device": exec.name(),
        "adapter": exec.adapter(),
        "precision": exec.precision().to_string(),
        "batch": a.batch,
        "input_shape": shapes[0],
        "iters": times.len(),
        "ms_per_batch_median": median,
        "ms_per_batch_p90": p90,
        "ms_per_frame": median / a.batch as f64,
        "fps": a.batch as f64 * 1e3 / median,
        "gflop_per_frame": gflop,
        "gflop_s": gflop * a.batch as f64 / (median / 1e3),
        "compile_ms": compile_ms,
    });
    println!("{summary}");
    Ok(())
}

pub fn inspect(repo: &Repository, a: InspectArgs) -> Result<()> {
    let model = repo.resolve(&a.model)?;
    let graph = model.load_graph()?;
    println!("model: {} ({})", model.name, model.path.display());
    println!("inputs:");
    for i in &graph.inputs {
        println!("  {} {} {}", i.name, i.dtype, crate::graph::fmt_dims(&i.dims));
    }
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let shapes = frame_shapes(&graph, model.config.as_ref(), size)?;
    let spec = optimize::specialize(&graph, &shapes)?;
    println!("outputs (at input {:?}):", shapes);
    for &o in &spec.outputs {
        let v = &spec.values[o];
        println!("  {} {} {:?}", v.name, v.dtype, v.shape.clone().unwrap_or_default());
    }
    println!("nodes: {} imported, {} after folding and fusion", graph.nodes.len(), spec.nodes.len());
    println!("parameters: {}", graph.param_count());
    println!("FLOPs at {:?}: {:.3} GFLOP", shapes, spec.flops() as f64 / 1e9);
    println!("op histogram (imported):");
    for (op, n) in graph.op_histogram() {
        println!("  {n:>5} {op}");
    }
    println!("op histogram (compiled):");
    for (op, n) in spec.op_histogram() {
        println!("  {n:>5} {op}");
    }
    Ok(())
}

/// One profile whose kernel times are the medians of several profiles of the same plan.
fn median_profile(mut ps: Vec<runtime::Profile>) -> runtime::Profile {
    let Some(mut first) = ps.pop() else {
        return runtime::Profile { method: String::new(), kernels: Vec::new(), untimed: Vec::new() };
    };
    for (i, k) in first.kernels.iter_mut().enumerate() {
        let mut t: Vec<f64> = ps.iter().filter_map(|p| p.kernels.get(i).map(|q| q.ms)).chain([k.ms]).collect();
        t.sort_by(f64::total_cmp);
        k.ms = t[t.len() / 2];
    }
    first
}

pub fn profile(repo: &Repository, a: ProfileArgs) -> Result<()> {
    let model = repo.resolve(&a.model)?;
    let graph = model.load_graph()?;
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let frame: Vec<Tensor> =
        frame_shapes(&graph, model.config.as_ref(), size)?.iter().zip(&graph.inputs).map(|(s, i)| synthetic(i.dtype, s)).collect();
    let shapes: Vec<Vec<usize>> = frame.iter().map(|t| t.shape.clone()).collect();
    let exec = runtime::executor_with(a.device, precision(&model, a.precision))?;
    let mut plan = runtime::compile_batched(exec.as_ref(), &graph, &shapes, a.batch)?;
    let inputs: Vec<Tensor> = frame.iter().map(|t| runtime::concat_batch(&vec![t.clone(); a.batch])).collect();
    plan.run(&inputs)?; // warm-up
    let t0 = std::time::Instant::now();
    plan.run(&inputs)?;
    let run_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut profiles = Vec::with_capacity(a.runs as usize);
    for _ in 0..a.runs {
        let Some(p) = plan.profile(&inputs)? else {
            bail!("this plan does not support profiling (plans that run whole frames side by side, as the CPU executor batches, do not; use --batch 1)");
        };
        profiles.push(p);
    }
    let p = median_profile(profiles);
    println!(
        "{} on {} ({}{}), {}, batch {}; whole run {:.2} ms",
        model.name,
        exec.adapter(),
        p.method,
        if a.runs > 1 { format!(", per-kernel medians of {} runs", a.runs) } else { String::new() },
        exec.precision(),
        a.batch,
        run_ms
    );
    let mut fam: std::collections::BTreeMap<String, (usize, f64, u64, u64)> = Default::default();
    for k in &p.kernels {
        let e = fam.entry(k.kernel.clone()).or_default();
        e.0 += 1;
        e.1 += k.ms;
        e.2 += k.flops;
        e.3 += k.bytes;
    }
    let mut rows: Vec<_> = fam.into_iter().collect();
    rows.sort_by(|x, y| y.1 .1.total_cmp(&x.1 .1));
    // kernels against measured peaks: the FMA peak of the same threads on the CPU; on the
    // GPU the FMA and copy peaks of the adapter, as a roofline
    let (peak, bw): (Option<f64>, Option<f64>) = match a.device {
        runtime::Device::Cpu => {
            let isa = runtime::cpu::Isa::detect();
            let p = (0..3).map(|_| runtime::cpu::simd::peak::fma_peak_gflops(isa, 20_000_000)).fold(0.0, f64::max);
            println!(
                "FP32 peak, measured: {p:.1} GFLOP/s ({} FMA chains on {} threads, best of 3)",
                isa.name(),
                rayon::current_num_threads()
            );
            (Some(p), None)
        }
        runtime::Device::Gpu => {
            let pk = runtime::gpu::peak::measure(runtime::gpu::GpuContext::get()?.as_ref())?;
            println!("peaks, measured: FP32 {:.1} GFLOP/s, memory {:.1} GB/s ({})", pk.gflops, pk.gbps, pk.method);
            (Some(pk.gflops), Some(pk.gbps))
        }
        _ => (None, None),
    };
    println!(
        "{:<22} {:>6} {:>10} {:>10} {:>8} {:>9} {:>8} {:>8}",
        "kernel",
        "calls",
        "ms",
        "GFLOP/s",
        if peak.is_some() { "of peak" } else { "" },
        "GB/s",
        if bw.is_some() { "of peak" } else { "" },
        if bw.is_some() { "roofline" } else { "" }
    );
    let (mut tot_ms, mut tot_fl) = (0.0, 0u64);
    for (k, (n, ms, fl, by)) in &rows {
        tot_ms += ms;
        tot_fl += fl;
        let secs = (ms / 1e3).max(1e-12);
        let gf = *fl as f64 / secs / 1e9;
        let gb = *by as f64 / secs / 1e9;
        let share = peak.map(|p| format!("{:>7.1}%", 100.0 * gf / p)).unwrap_or_default();
        // roofline: the share of what the kernel's arithmetic intensity allows
        let roof = match (peak, bw) {
            (Some(p), Some(b)) if *by > 0 => {
                let attainable = p.min(b * *fl as f64 / *by as f64);
                let bound = if b * (*fl as f64) / (*by as f64) < p { "mem" } else { "fp32" };
                if *fl > 0 {
                    format!("{:>5.1}% {bound}", 100.0 * gf / attainable)
                } else {
                    format!("{:>5.1}% mem", 100.0 * gb / b)
                }
            }
            _ => String::new(),
        };
        let bshare = bw.map(|b| format!("{:>7.1}%", 100.0 * gb / b)).unwrap_or_default();
        println!("{k:<22} {n:>6} {ms:>10.3} {gf:>10.2} {share:>8} {gb:>9.2} {bshare:>8} {roof}");
    }
    println!(
        "{:<22} {:>6} {:>10.3} {:>10.2}",
        "total (timed kernels)",
        p.kernels.len(),
        tot_ms,
        tot_fl as f64 / (tot_ms / 1e3).max(1e-12) / 1e9
    );
    if !p.untimed.is_empty() {
        println!("{} nodes in the CPU tail, first: {}", p.untimed.len(), p.untimed[0]);
    }
    let mut slow: Vec<_> = p.kernels.iter().collect();
    slow.sort_by(|x, y| y.ms.total_cmp(&x.ms));
    println!("slowest nodes:");
    for k in slow.iter().take(a.top) {
        let gf = k.flops as f64 / (k.ms / 1e3).max(1e-12) / 1e9;
        println!("  {:>9.3} ms {:>8.1} GFLOP/s {:<16} {}", k.ms, gf, k.kernel, k.node);
    }
    Ok(())
}

/// The precision a command runs a model at: the flag, else the model config's.
fn precision(model: &crate::models::ResolvedModel, flag: Option<runtime::Precision>) -> runtime::Precision {
    flag.or(model.config.as_ref().map(|c| c.precision)).unwrap_or_default()
}
