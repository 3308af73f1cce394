//! The `walkout` command line.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use walkout::graph::{optimize, Dim, Tensor};
use walkout::models::Repository;
use walkout::pipeline::{InputSize, PosePipeline};
use walkout::runtime;

/// walkout: vision inference for checkout-free stores.
#[derive(Parser, Debug)]
#[command(name = "walkout", version, about)]
struct Cli {
    /// Model repository directory [default: models].
    #[arg(long, global = true, env = "WALKOUT_MODEL_REPOSITORY")]
    model_repository: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Work with models: list, run, bench, inspect.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Find people and their poses in images.
    Pose(PoseArgs),
    /// Serve the sample cameras (video, photos, synthetic store) on embedded defaults and
    /// print live frames/s per camera.
    Demo(DemoArgs),
    /// Run the inference server (gRPC walkout.v1 + KServe v2, HTTP metrics).
    Serve(ServeArgs),
    /// Drive N cameras at F frames/s through a server and report throughput and latency.
    Bench(ServeBenchArgs),
    /// Simulate a store: multi-camera footage with complete ground truth.
    Sim(SimArgs),
    /// Score events, receipts and identities against a simulation's ground truth.
    Eval(EvalArgs),
}

#[derive(Args, Debug)]
struct SimArgs {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 6)]
    shoppers: usize,
    /// Number of cameras (4 to 32), alternating ceiling and shelf views.
    #[arg(long, default_value_t = 8)]
    cameras: usize,
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    #[arg(long, default_value_t = 640)]
    width: usize,
    #[arg(long, default_value_t = 480)]
    height: usize,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Footage: png (frames), video (one H.264 file per camera via ffmpeg) or none.
    #[arg(long, default_value = "png")]
    footage: String,
    /// Also write shelf load-cell readings (truth/loadcells.jsonl).
    #[arg(long)]
    loadcells: bool,
    /// Disable sensor noise.
    #[arg(long)]
    no_noise: bool,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// A simulation's output directory (or its truth/ directory).
    #[arg(long)]
    truth: PathBuf,
    /// Predicted events, one JSON object per line (t, kind, sku, ...).
    #[arg(long)]
    events: PathBuf,
    /// Predicted receipts: a JSON list of {session, items}.
    #[arg(long)]
    receipts: Option<PathBuf>,
    /// Predicted tracks, one JSON object per line (frame, cam, id, bbox).
    #[arg(long)]
    tracks: Option<PathBuf>,
    /// Time tolerance for matching events, seconds.
    #[arg(long, default_value_t = 1.0)]
    tolerance: f64,
}

#[derive(Subcommand, Debug)]
enum ModelsCmd {
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
}

#[derive(Args, Debug)]
struct ProfileArgs {
    model: String,
    #[arg(long, default_value = "gpu")]
    device: String,
    /// Input size HxW (default: the config's default size).
    #[arg(long)]
    size: Option<String>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Show this many slowest nodes.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Repository name (movenet-multipose) or path to a model file (model.json).
    model: String,
    /// Input tensor: X.npy for the first input, or NAME=X.npy. Repeatable.
    #[arg(long = "input", required = true)]
    inputs: Vec<String>,
    /// Output .npy path; repeat for models with several outputs.
    #[arg(long = "output", required = true)]
    outputs: Vec<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args, Debug)]
struct BenchArgs {
    model: String,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Input tensor (.npy, one frame); otherwise a deterministic synthetic frame.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Input size HxW for image models (default: the config's default size).
    #[arg(long)]
    size: Option<String>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

#[derive(Args, Debug)]
struct InspectArgs {
    model: String,
    /// Input size HxW used to resolve dynamic dims for shapes and FLOPs.
    #[arg(long)]
    size: Option<String>,
}

#[derive(Args, Debug)]
struct PoseArgs {
    /// Image files (JPEG, PNG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write the image with skeletons and boxes (a directory when several images are given).
    #[arg(long)]
    draw: Option<PathBuf>,
    #[arg(long, default_value = "movenet-multipose")]
    model: String,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Minimum person score (default: the model config's).
    #[arg(long)]
    min_score: Option<f32>,
    /// Model input size: HxW (multiples of 32), or `auto` (each image at up to 768 px on
    /// its longer side, for wide views with small people). Default: the config's size.
    #[arg(long)]
    size: Option<String>,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Directory with sample data (from scripts/fetch-data).
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// cpu, gpu or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// How long to serve.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Model input HxW for every camera.
    #[arg(long, default_value = "384x512")]
    size: String,
    /// Debug: write annotated frames into this directory (nothing is written otherwise).
    #[arg(long)]
    draw: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:8001")]
    grpc_addr: String,
    #[arg(long, default_value = "127.0.0.1:8000")]
    http_addr: String,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML config (see scripts/walkout.example.toml); optional when a repository is given.
    #[arg(long)]
    config: Option<PathBuf>,
    /// gRPC listen address [env WALKOUT_GRPC_ADDR; default 0.0.0.0:8001].
    #[arg(long)]
    grpc_addr: Option<String>,
    /// HTTP listen address for /metrics, /healthz, /readyz [env WALKOUT_HTTP_ADDR; default 0.0.0.0:8000].
    #[arg(long)]
    http_addr: Option<String>,
    /// Default device for models: cpu, gpu or auto [env WALKOUT_DEVICE; default auto].
    #[arg(long)]
    device: Option<String>,
}

#[derive(Args, Debug)]
struct ServeBenchArgs {
    #[arg(long, default_value_t = 4)]
    cameras: usize,
    /// Frames per second per camera (0: as fast as possible).
    #[arg(long, default_value_t = 15.0)]
    fps: f64,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 480)]
    height: u32,
    /// gRPC address of a running server; an in-process server when absent.
    #[arg(long)]
    target: Option<String>,
    /// Draw throughput and latency over time into this PNG (and a CSV beside it).
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long, default_value = "movenet-multipose")]
    model: String,
    /// cpu, gpu or auto (in-process only).
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 8)]
    max_batch_size: usize,
    #[arg(long, default_value_t = 2000)]
    max_queue_delay_us: u64,
    /// Image the cameras show (resized to the frame size); data/bus.jpg when it exists.
    #[arg(long)]
    still: Option<PathBuf>,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_size(s: &str) -> Result<[usize; 2]> {
    let (h, w) = s.split_once(['x', 'X']).with_context(|| format!("size '{s}' is not HxW"))?;
    Ok([h.trim().parse().context("size height")?, w.trim().parse().context("size width")?])
}

fn main() {
    // Exit quietly when stdout is a closed pipe (`walkout ... | head`), as Unix tools do.
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // WALKOUT_LOG takes tracing filter directives; by default walkout logs at info level
    // (model loads, cameras, reconnects, drains) and dependencies only warnings.
    let filter = tracing_subscriber::EnvFilter::try_from_env("WALKOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,walkout=info"));
    // plain text (no colour codes) when stderr is a pipe or the journal
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let repo_dir = cli.model_repository.clone().unwrap_or_else(|| PathBuf::from("models"));
    let repo = Repository::open(&repo_dir);
    match cli.cmd {
        Cmd::Serve(a) => serve(cli.model_repository, a),
        Cmd::Bench(a) => serve_bench(repo_dir, a),
        Cmd::Models(ModelsCmd::List) => list(&repo),
        Cmd::Models(ModelsCmd::Run(a)) => models_run(&repo, a),
        Cmd::Models(ModelsCmd::Bench(a)) => bench(&repo, a),
        Cmd::Models(ModelsCmd::Inspect(a)) => inspect(&repo, a),
        Cmd::Models(ModelsCmd::Profile(a)) => profile(&repo, a),
        Cmd::Pose(a) => pose(&repo, a),
        Cmd::Demo(a) => demo(repo_dir, a),
        Cmd::Sim(a) => sim(a),
        Cmd::Eval(a) => eval(a),
    }
}

fn list(repo: &Repository) -> Result<()> {
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

fn models_run(repo: &Repository, a: RunArgs) -> Result<()> {
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
        tensors[slot] = Some(walkout::npy::read(Path::new(path))?);
    }
    let inputs: Vec<Tensor> = tensors
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.with_context(|| format!("missing input '{}'", graph.inputs[i].name)))
        .collect::<Result<_>>()?;
    let exec = runtime::executor_for(&a.device)?;
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
    let mut plan = if batch > 1 && !runtime::batch_is_dynamic(&graph) {
        runtime::compile_batched(exec.as_ref(), &graph, &frame_shapes, batch)?
    } else {
        exec.compile(&graph, &shapes)?
    };
    let outs = plan.run(&inputs)?;
    for (i, t) in outs.iter().enumerate() {
        let path = match a.outputs.get(i) {
            Some(p) => p.clone(),
            None if a.outputs.len() == 1 => a.outputs[0].with_extension(format!("{i}.npy")),
            None => continue,
        };
        walkout::npy::write(&path, t)?;
        eprintln!("wrote {} {:?} {}", path.display(), t.shape, t.dtype());
    }
    Ok(())
}

/// Concrete per-frame input shapes: from --size / the config / the declared dims.
fn frame_shapes(
    graph: &walkout::graph::Graph,
    cfg: Option<&walkout::models::ModelConfig>,
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
                            format!("input '{}' has dynamic dims {}; pass --size HxW", inp.name, walkout::graph::fmt_dims(&inp.dims))
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

fn synthetic(dtype: walkout::graph::DType, shape: &[usize]) -> Tensor {
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

fn bench(repo: &Repository, a: BenchArgs) -> Result<()> {
    let model = repo.resolve(&a.model)?;
    let graph = model.load_graph()?;
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let frame = match &a.input {
        Some(p) => vec![walkout::npy::read(p)?],
        None => frame_shapes(&graph, model.config.as_ref(), size)?.iter().zip(&graph.inputs).map(|(s, i)| synthetic(i.dtype, s)).collect(),
    };
    let shapes: Vec<Vec<usize>> = frame.iter().map(|t| t.shape.clone()).collect();
    let exec = runtime::executor_for(&a.device)?;
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
        "{} on {}: median {:.2} ms per batch of {} ({} iters), compile {:.0} ms",
        model.name,
        exec.adapter(),
        median,
        a.batch,
        times.len(),
        compile_ms
    );
    let summary = serde_json::json!({
        "model": model.name,
        "device": exec.name(),
        "adapter": exec.adapter(),
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

fn inspect(repo: &Repository, a: InspectArgs) -> Result<()> {
    let model = repo.resolve(&a.model)?;
    let graph = model.load_graph()?;
    println!("model: {} ({})", model.name, model.path.display());
    println!("inputs:");
    for i in &graph.inputs {
        println!("  {} {} {}", i.name, i.dtype, walkout::graph::fmt_dims(&i.dims));
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

fn parse_input_size(s: &str) -> Result<InputSize> {
    if s == "auto" {
        Ok(InputSize::Auto { max_side: 768 })
    } else {
        Ok(InputSize::Fixed(parse_size(s)?))
    }
}

fn pose(repo: &Repository, a: PoseArgs) -> Result<()> {
    let size = a.size.as_deref().map(parse_input_size).transpose()?;
    let mut pipe = PosePipeline::new(repo, &a.model, &a.device, size)?;
    if let Some(s) = a.min_score {
        pipe.min_score = s;
    }
    let many = a.images.len() > 1;
    if let (Some(dir), true) = (&a.draw, many) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut all = Vec::new();
    for path in &a.images {
        let img = walkout::vision::image_io::load(path)?;
        let persons = pipe.run(&img)?;
        if let Some(d) = &a.draw {
            let out = if many { d.join(format!("{}.png", path.file_stem().unwrap_or_default().to_string_lossy())) } else { d.clone() };
            let mut canvas = img.clone();
            walkout::vision::draw::draw_persons(&mut canvas, &persons, 0.2);
            canvas.save(&out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
        if a.json {
            all.push(
                serde_json::json!({"image": path.display().to_string(), "width": img.width(), "height": img.height(), "persons": persons}),
            );
        } else {
            println!("{} ({}x{}): {} person(s)", path.display(), img.width(), img.height(), persons.len());
            for (i, p) in persons.iter().enumerate() {
                let [x0, y0, x1, y1] = p.bbox;
                let visible = p.keypoints.iter().filter(|k| k.score >= 0.3).count();
                println!("  #{i} score {:.3} box [{x0:.0},{y0:.0} - {x1:.0},{y1:.0}] keypoints {visible}/17 visible", p.score);
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}

fn demo(repository: PathBuf, a: DemoArgs) -> Result<()> {
    walkout::serve::demo::run(&walkout::serve::demo::DemoOptions {
        data: a.data,
        repository,
        device: a.device,
        seconds: a.seconds,
        draw: a.draw,
        grpc_addr: a.grpc_addr,
        http_addr: a.http_addr,
        input_size: parse_size(&a.size)?,
    })
}

fn serve(repository: Option<PathBuf>, a: ServeArgs) -> Result<()> {
    use walkout::serve::config::ServerConfig;
    let mut config = match &a.config {
        Some(p) => ServerConfig::load(p)?,
        None => ServerConfig::default(),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(r) = repository {
        config.model_repository = r;
    }
    if let Some(v) = a.grpc_addr {
        config.grpc_addr = v;
    }
    if let Some(v) = a.http_addr {
        config.http_addr = v;
    }
    if let Some(v) = a.device {
        config.device = v;
    }
    config.validate()?;
    let running = walkout::serve::run::Running::start(config)?;
    eprintln!(
        "walkout: serving gRPC on {} and HTTP on {} (models: {})",
        running.grpc_addr,
        running.http_addr,
        running.server.model_names().join(", ")
    );
    let sig = running.wait_for_signal()?;
    eprintln!("walkout: {sig}: draining");
    running.shutdown()?;
    eprintln!("walkout: stopped cleanly");
    Ok(())
}

fn serve_bench(repository: PathBuf, a: ServeBenchArgs) -> Result<()> {
    use walkout::serve::bench::{self, BenchOptions};
    use walkout::serve::config::BatchingParams;
    let still = a.still.or_else(|| Some(PathBuf::from("data/bus.jpg")).filter(|p| p.is_file()));
    let o = BenchOptions {
        cameras: a.cameras,
        fps: a.fps,
        seconds: a.seconds,
        width: a.width,
        height: a.height,
        target: a.target,
        plot: a.plot.clone(),
        model: a.model,
        device: a.device,
        repository,
        still,
        batching: BatchingParams {
            max_batch_size: a.max_batch_size,
            max_queue_delay_us: a.max_queue_delay_us,
            ..BatchingParams::default()
        },
        warmup: a.warmup,
    };
    let (r, _) = bench::run(&o)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "walkout bench ({}): {} camera(s) x {} fps at {}x{}, {} s{}",
            r.mode,
            r.cameras,
            r.fps_per_camera,
            r.width,
            r.height,
            r.seconds,
            if r.adapter.is_empty() { String::new() } else { format!(", {}", r.adapter) }
        );
        println!("  throughput   {:.2} frames/s (offered {:.1})", r.throughput_fps, r.offered_fps);
        println!("  e2e latency  p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms", r.e2e_ms_p50, r.e2e_ms_p95, r.e2e_ms_p99);
        println!("  avg batch    {:.2}", r.avg_batch);
        println!("  frames sent  {}  dropped {}", r.frames_sent, r.frames_dropped);
        if let Some(p) = &a.plot {
            println!("  plot         {} (+ {})", p.display(), p.with_extension("csv").display());
        }
    }
    Ok(())
}

fn sim(a: SimArgs) -> Result<()> {
    use walkout::sim::{Footage, SimConfig};
    let footage = match a.footage.as_str() {
        "png" => Footage::Png,
        "video" => Footage::Video,
        "none" => Footage::None,
        other => bail!("unknown footage '{other}' (png, video or none)"),
    };
    let cfg = SimConfig {
        seed: a.seed,
        shoppers: a.shoppers,
        cameras: a.cameras,
        seconds: a.seconds,
        fps: a.fps,
        width: a.width,
        height: a.height,
        noise: !a.no_noise,
    };
    let s = walkout::sim::run(cfg, &a.out, footage, a.loadcells, true)?;
    eprintln!(
        "simulated {} frames x {} cameras at {}x{}: {} events, {} receipts; rendering {:.1} frames/s ({}), writing {:.1} s",
        s.frames,
        s.cameras,
        s.width,
        s.height,
        s.events,
        s.receipts,
        s.render_fps,
        if s.realtime { "real time" } else { "slower than real time" },
        s.write_s
    );
    println!("{}", serde_json::to_string(&s)?);
    Ok(())
}

fn read_jsonl<T: serde::de::DeserializeOwned>(p: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}: invalid record", p.display(), i + 1)))
        .collect()
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", p.display()))
}

fn eval(a: EvalArgs) -> Result<()> {
    use walkout::sim::score;
    use walkout::sim::world::{Event, Receipt};
    let truth = if a.truth.join("truth").is_dir() { a.truth.join("truth") } else { a.truth.clone() };
    let gt_events: Vec<Event> = read_jsonl(&truth.join("events.jsonl"))?;
    let pr_events: Vec<Event> = read_jsonl(&a.events)?;
    let ev = score::score_events(&gt_events, &pr_events, a.tolerance);
    println!(
        "events: {} true, {} predicted, TP {} FP {} FN {}: precision {:.3} recall {:.3} F1 {:.3} (tolerance {} s, SKU match)",
        gt_events.len(),
        pr_events.len(),
        ev.tp,
        ev.fp,
        ev.fn_,
        ev.precision,
        ev.recall,
        ev.f1,
        a.tolerance
    );
    let mut out = serde_json::json!({
        "event_precision": ev.precision,
        "event_recall": ev.recall,
        "event_f1": ev.f1,
        "receipt_accuracy": null,
        "idf1": null,
    });
    if let Some(p) = &a.receipts {
        let gt: Vec<Receipt> = read_json(&truth.join("receipts.json"))?;
        let pr: Vec<Receipt> = read_json(p)?;
        let r = score::score_receipts(&gt, &pr);
        println!(
            "receipts: {}/{} sessions exactly right (accuracy {:.3}); items precision {:.3} recall {:.3}",
            r.exact, r.sessions, r.accuracy, r.item_precision, r.item_recall
        );
        out["receipt_accuracy"] = r.accuracy.into();
        out["item_precision"] = r.item_precision.into();
        out["item_recall"] = r.item_recall.into();
    }
    if let Some(p) = &a.tracks {
        let gt: Vec<walkout::sim::TrackRow> = read_jsonl(&truth.join("tracks.jsonl"))?;
        let pr: Vec<walkout::sim::TrackRow> = read_jsonl(p)?;
        let d = score::TrackData::from_rows(&gt, &pr);
        let id = score::idf1(&d);
        let h = score::hota(&d);
        println!(
            "identities: IDF1 {:.3} (IDP {:.3}, IDR {:.3}); HOTA {:.3} (DetA {:.3}, AssA {:.3}) over {} camera-frames",
            id.idf1,
            id.idp,
            id.idr,
            h.hota,
            h.deta,
            h.assa,
            d.sim.len()
        );
        out["idf1"] = id.idf1.into();
        out["hota"] = h.hota.into();
        out["deta"] = h.deta.into();
        out["assa"] = h.assa.into();
    }
    println!("{out}");
    Ok(())
}

fn profile(repo: &Repository, a: ProfileArgs) -> Result<()> {
    let model = repo.resolve(&a.model)?;
    let graph = model.load_graph()?;
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let frame: Vec<Tensor> =
        frame_shapes(&graph, model.config.as_ref(), size)?.iter().zip(&graph.inputs).map(|(s, i)| synthetic(i.dtype, s)).collect();
    let shapes: Vec<Vec<usize>> = frame.iter().map(|t| t.shape.clone()).collect();
    let exec = runtime::executor_for(&a.device)?;
    let mut plan = runtime::compile_batched(exec.as_ref(), &graph, &shapes, a.batch)?;
    let inputs: Vec<Tensor> = frame.iter().map(|t| runtime::concat_batch(&vec![t.clone(); a.batch])).collect();
    plan.run(&inputs)?; // warm-up
    let t0 = std::time::Instant::now();
    plan.run(&inputs)?;
    let run_ms = t0.elapsed().as_secs_f64() * 1e3;
    let Some(p) = plan.profile(&inputs)? else {
        bail!("this plan does not support profiling (batched per-frame plans do not; use --batch 1)");
    };
    println!("{} on {} ({}), batch {}; whole run {:.2} ms", model.name, exec.adapter(), p.method, a.batch, run_ms);
    let mut fam: std::collections::BTreeMap<String, (usize, f64, u64)> = Default::default();
    for k in &p.kernels {
        let e = fam.entry(k.kernel.clone()).or_default();
        e.0 += 1;
        e.1 += k.ms;
        e.2 += k.flops;
    }
    let mut rows: Vec<_> = fam.into_iter().collect();
    rows.sort_by(|x, y| y.1 .1.total_cmp(&x.1 .1));
    println!("{:<22} {:>6} {:>10} {:>10}", "kernel", "calls", "ms", "GFLOP/s");
    let (mut tot_ms, mut tot_fl) = (0.0, 0u64);
    for (k, (n, ms, fl)) in &rows {
        tot_ms += ms;
        tot_fl += fl;
        println!("{k:<22} {n:>6} {ms:>10.3} {:>10.2}", *fl as f64 / (ms / 1e3).max(1e-12) / 1e9);
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
        println!("  {:>9.3} ms {:<12} {}", k.ms, k.kernel, k.node);
    }
    Ok(())
}
