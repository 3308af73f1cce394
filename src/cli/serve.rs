//! `walkout serve`, `walkout demo` and `walkout bench`: the server, its demo on embedded
//! defaults, and its load generator.

use super::parse_size;
use crate::runtime::Device;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory with sample data (from scripts/fetch-data).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// cpu, gpu or auto.
    #[arg(long, default_value = "auto")]
    pub device: Device,
    /// How long to serve.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Model input HxW for every camera.
    #[arg(long, default_value = "384x512")]
    pub size: String,
    /// Debug: write annotated frames into this directory (nothing is written otherwise).
    #[arg(long)]
    pub draw: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub grpc_addr: String,
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub http_addr: String,
}
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML config (see scripts/walkout.example.toml); optional when a repository is given.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC listen address [env WALKOUT_GRPC_ADDR; default 0.0.0.0:8001].
    #[arg(long)]
    pub grpc_addr: Option<String>,
    /// HTTP listen address for /metrics, /healthz, /readyz [env WALKOUT_HTTP_ADDR; default 0.0.0.0:8000].
    #[arg(long)]
    pub http_addr: Option<String>,
    /// Default device for models: cpu, gpu or auto [env WALKOUT_DEVICE; default auto].
    #[arg(long)]
    pub device: Option<Device>,
    /// File holding the admin role's bearer token [env WALKOUT_ADMIN_TOKEN]. With no token
    /// configured the server listens on loopback only.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// File holding the infer role's bearer token [env WALKOUT_INFER_TOKEN].
    #[arg(long)]
    pub infer_token_file: Option<PathBuf>,
}
#[derive(Args, Debug)]
pub struct ServeBenchArgs {
    #[arg(long, default_value_t = 4)]
    pub cameras: usize,
    /// Frames per second per camera (0: as fast as possible).
    #[arg(long, default_value_t = 15.0)]
    pub fps: f64,
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    #[arg(long, default_value_t = 480)]
    pub height: u32,
    /// gRPC address of a running server; an in-process server when absent.
    #[arg(long)]
    pub target: Option<String>,
    /// Draw throughput and latency over time into this PNG (and a CSV beside it).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[arg(long, default_value = "movenet-multipose")]
    pub model: String,
    /// cpu, gpu or auto (in-process only).
    #[arg(long, default_value = "auto")]
    pub device: Device,
    #[arg(long, default_value_t = 8)]
    pub max_batch_size: usize,
    #[arg(long, default_value_t = 2000)]
    pub max_queue_delay_us: u64,
    /// Image the cameras show (resized to the frame size); data/bus.jpg when it exists.
    #[arg(long)]
    pub still: Option<PathBuf>,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn demo(repository: PathBuf, a: DemoArgs) -> Result<()> {
    super::demo::run(&super::demo::DemoOptions {
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

pub fn serve(repository: Option<PathBuf>, a: ServeArgs) -> Result<()> {
    use crate::serve::config::ServerConfig;
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
    let token = |p: &PathBuf| -> Result<crate::serve::config::Secret> {
        let t = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("reading token file {}: {e}", p.display()))?;
        Ok(crate::serve::config::Secret(t.trim().to_string()))
    };
    if let Some(p) = &a.admin_token_file {
        config.admin_token = Some(token(p)?);
    }
    if let Some(p) = &a.infer_token_file {
        config.infer_token = Some(token(p)?);
    }
    config.validate()?;
    let running = crate::app::Running::start(config)?;
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

pub fn bench(repository: PathBuf, a: ServeBenchArgs) -> Result<()> {
    use super::bench::{self, BenchOptions};
    use crate::serve::config::BatchingParams;
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
