//! The `walkout` command line: clap definitions and dispatch; each command's body lives in
//! `walkout::cli`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use walkout::cli::{self, models::ModelsCmd};
use walkout::models::Repository;

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
    Pose(cli::pose::PoseArgs),
    /// Find objects (COCO classes) in images.
    Detect(cli::detect::DetectArgs),
    /// Find hands and their 21 landmarks in images (palm detector, then hand landmarks).
    Hands(cli::hands::HandsArgs),
    /// Serve the sample cameras (video, photos, synthetic store) on embedded defaults and
    /// print live frames/s per camera.
    Demo(cli::serve::DemoArgs),
    /// Run the inference server (gRPC walkout.v1 + KServe v2, HTTP metrics).
    Serve(cli::serve::ServeArgs),
    /// Drive N cameras at F frames/s through a server and report throughput and latency.
    Bench(cli::serve::ServeBenchArgs),
    /// Simulate a store: multi-camera footage with complete ground truth.
    Sim(cli::sim::SimArgs),
    /// Score events, receipts and identities against a simulation's ground truth.
    Eval(cli::sim::EvalArgs),
    /// Run the store pipeline over a simulation's footage and sensors; write tracks.jsonl.
    Replay(cli::replay::ReplayArgs),
    /// Train walkout's own models on the synthetic store (person re-identification).
    #[command(subcommand)]
    Train(cli::train::TrainCmd),
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
        Cmd::Serve(a) => cli::serve::serve(cli.model_repository, a),
        Cmd::Bench(a) => cli::serve::bench(repo_dir, a),
        Cmd::Models(ModelsCmd::List) => cli::models::list(&repo),
        Cmd::Models(ModelsCmd::Run(a)) => cli::models::run(&repo, a),
        Cmd::Models(ModelsCmd::Bench(a)) => cli::models::bench(&repo, a),
        Cmd::Models(ModelsCmd::Inspect(a)) => cli::models::inspect(&repo, a),
        Cmd::Models(ModelsCmd::Profile(a)) => cli::models::profile(&repo, a),
        Cmd::Models(ModelsCmd::Kernels(a)) => cli::kernels::kernels(a),
        Cmd::Models(ModelsCmd::OpenclBinary(a)) => cli::models::opencl_binary(a),
        Cmd::Pose(a) => cli::pose::run(&repo, a),
        Cmd::Detect(a) => cli::detect::run(&repo, a),
        Cmd::Hands(a) => cli::hands::run(&repo, a),
        Cmd::Demo(a) => cli::serve::demo(repo_dir, a),
        Cmd::Sim(a) => cli::sim::sim(a),
        Cmd::Eval(a) => cli::sim::eval(a),
        Cmd::Replay(a) => cli::replay::run(&repo, a),
        Cmd::Train(c) => cli::train::run(&repo, c),
    }
}
