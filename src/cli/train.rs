//! `walkout train reid --out DIR`: renders person crops in the synthetic store, trains the
//! ReID network with candle-nn, scores it against the colour-histogram baseline on stores
//! it never saw (rank-1, mAP), and writes `DIR/model.onnx` and `DIR/report.json`. The same
//! arguments give the same bytes.
//!
//! `walkout train score --model A --model B`: scores any repository ReID models (walkout's
//! own, the deep-sort stand-in, an OSNet export) on the same crops of unseen stores, each run
//! the way the store pipeline runs it (`pipeline::ReidPipeline` on the chosen executor).

use crate::models::Repository;
use crate::pipeline::ReidPipeline;
use crate::runtime::Device;
use crate::sim::{SimConfig, Simulator};
use crate::train::data::{self, CropPlan, CropSet, Prng};
use crate::train::{eval, reid};
use crate::vision::crop::{crop_with, Crop};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use image::RgbImage;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum TrainCmd {
    /// Train the person re-identification network on simulator crops; export ONNX.
    Reid(ReidArgs),
    /// Score repository ReID models (rank-1, mAP) on crops of stores no model trained on.
    Score(ScoreArgs),
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Repository ReID models to score (task = "reid"), each on the same crops.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
    /// Executor that runs the models (cpu, gpu, opencl, auto).
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Stores whose shoppers are scored (the defaults are `train reid`'s scoring stores).
    #[arg(long, value_delimiter = ',', default_value = "9101,9102")]
    pub eval_seeds: Vec<u64>,
    #[command(flatten)]
    pub stores: StoreArgs,
}

/// The rendered stores crops come from (each seed one store).
#[derive(Args, Debug)]
pub struct StoreArgs {
    #[arg(long, default_value_t = 16)]
    pub shoppers: usize,
    #[arg(long, default_value_t = 8)]
    pub cameras: usize,
    /// Seconds of each store to render.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Frames per second sampled for crops.
    #[arg(long, default_value_t = 1.0)]
    pub fps: f64,
}

impl StoreArgs {
    fn plan(&self, seeds: &[u64], jitter: f32) -> data::CropPlan {
        data::CropPlan {
            seeds: seeds.to_vec(),
            shoppers: self.shoppers,
            cameras: self.cameras,
            seconds: self.seconds,
            fps: self.fps,
            min_visibility: 0.5,
            min_height: 48.0,
            jitter,
        }
    }
}

#[derive(Args, Debug)]
pub struct ReidArgs {
    /// Output folder (model.onnx, report.json); drop model.onnx into a repository version.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the weights' initialisation, the shuffles and the augmentation.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Stores (simulator seeds) whose shoppers are the training identities.
    #[arg(long, value_delimiter = ',', default_value = "9001,9002,9003,9004,9005,9006")]
    pub train_seeds: Vec<u64>,
    /// Stores whose shoppers are only scored, never trained on.
    #[arg(long, value_delimiter = ',', default_value = "9101,9102")]
    pub eval_seeds: Vec<u64>,
    #[command(flatten)]
    pub stores: StoreArgs,
}

pub fn run(repo: &Repository, cmd: TrainCmd) -> Result<()> {
    match cmd {
        TrainCmd::Reid(a) => reid_run(a),
        TrainCmd::Score(a) => score(repo, a),
    }
}

fn reid_run(a: ReidArgs) -> Result<()> {
    if a.train_seeds.iter().any(|s| a.eval_seeds.contains(s)) {
        bail!("--train-seeds and --eval-seeds overlap: scores would count identities the network trained on");
    }
    if a.epochs == 0 || a.batch == 0 {
        bail!("--epochs and --batch must be positive");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let t0 = std::time::Instant::now();
    let train = collect(&a.stores.plan(&a.train_seeds, 0.08), reid::CROP_H, reid::CROP_W).map_err(anyhow::Error::msg)?;
    let test = collect(&a.stores.plan(&a.eval_seeds, 0.05), reid::CROP_H, reid::CROP_W).map_err(anyhow::Error::msg)?;
    if train.identities < 2 || test.is_empty() {
        bail!("too few crops: {} training identities, {} test crops", train.identities, test.len());
    }
    let collect_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "crops: {} of {} identities to train on, {} of {} identities to score ({collect_s:.0} s)",
        train.len(),
        train.identities,
        test.len(),
        test.identities
    );
    let t1 = std::time::Instant::now();
    let cfg = reid::TrainConfig { epochs: a.epochs, batch: a.batch, lr: a.lr, seed: a.seed };
    let mut curve = Vec::new();
    let vm = reid::train(&train, &cfg, |e, loss, acc| {
        eprintln!("epoch {:>2}: loss {loss:.3}, training accuracy {:.1}%", e + 1, acc * 100.0);
        curve.push(serde_json::json!({"epoch": e + 1, "loss": loss, "accuracy": acc}));
    })?;
    let train_s = t1.elapsed().as_secs_f64();
    let ours = reid::embed(&vm, &test)?;
    let (r1, map) = eval::rank1_map(&ours, &test.labels, &test.cameras);
    let (h1, hmap) = eval::rank1_map(&eval::colour_histograms(&test), &test.labels, &test.cameras);
    let onnx = reid::to_onnx(&vm)?;
    let path = a.out.join("model.onnx");
    std::fs::write(&path, &onnx).with_context(|| format!("writing {}", path.display()))?;
    let report = serde_json::json!({
        "train_seeds": a.train_seeds,
        "eval_seeds": a.eval_seeds,
        "train_crops": train.len(),
        "train_identities": train.identities,
        "eval_crops": test.len(),
        "eval_identities": test.identities,
        "epochs": curve,
        "collect_s": collect_s,
        "train_s": train_s,
        "rank1": r1,
        "map": map,
        "colour_histogram_rank1": h1,
        "colour_histogram_map": hmap,
        "onnx_bytes": onnx.len(),
        "command": format!(
            "walkout train reid --out DIR --seed {} --epochs {} --batch {} --lr {} --train-seeds {} --eval-seeds {} --shoppers {} --cameras {} --seconds {} --fps {}",
            a.seed, a.epochs, a.batch, a.lr,
            a.train_seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
            a.eval_seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
            a.stores.shoppers, a.stores.cameras, a.stores.seconds, a.stores.fps
        ),
    });
    std::fs::write(a.out.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    eprintln!(
        "unseen stores: rank-1 {:.1}%, mAP {:.1}% (colour histograms: rank-1 {:.1}%, mAP {:.1}%); trained in {train_s:.0} s; wrote {}",
        r1 * 100.0,
        map * 100.0,
        h1 * 100.0,
        hmap * 100.0,
        path.display()
    );
    println!("{report}");
    Ok(())
}

/// One sampled time step of a rendered store: its cameras' frames and the crops of every
/// shopper seen well enough, boxes jittered as a detector's would be.
struct StepCrops {
    frames: Vec<RgbImage>,
    crops: Vec<Crop>,
    /// Identity per crop, unique across the plan's stores (not dense).
    labels: Vec<u32>,
    /// Camera per crop, unique across the plan's stores.
    cameras: Vec<u32>,
}

/// Renders each seed's store and hands every sampled step's crops to `visit`. The jitter
/// draws follow the rows' order, so any visitor sees the same boxes.
fn each_step(plan: &CropPlan, mut visit: impl FnMut(StepCrops) -> Result<(), String>) -> Result<(), String> {
    let mut rng = Prng(0x5EED ^ plan.seeds.first().copied().unwrap_or(0));
    let mut base = 0u32;
    for (si, &seed) in plan.seeds.iter().enumerate() {
        let config =
            SimConfig { seed, shoppers: plan.shoppers, cameras: plan.cameras, seconds: plan.seconds, fps: plan.fps, ..Default::default() };
        let mut sim = Simulator::new(config).map_err(|e| e.to_string())?;
        let steps = (plan.seconds * plan.fps).round() as u64;
        let mut most = 0u32;
        for _ in 0..steps {
            sim.step();
            let mut step = StepCrops { frames: Vec::new(), crops: Vec::new(), labels: Vec::new(), cameras: Vec::new() };
            let mut frame_of = Vec::new();
            for r in sim.truth() {
                let b = r.bbox;
                if r.visibility() < plan.min_visibility || b[3] - b[1] < plan.min_height {
                    continue;
                }
                let Some(cam) = sim.cams.iter().find(|c| c.cam.id == r.cam) else { continue };
                let frame = match frame_of.iter().position(|&c| c == r.cam) {
                    Some(i) => i,
                    None => {
                        let f = &cam.frame;
                        let Some(img) = RgbImage::from_raw(f.width as u32, f.height as u32, f.rgb.clone()) else { continue };
                        step.frames.push(img);
                        frame_of.push(r.cam);
                        step.frames.len() - 1
                    }
                };
                let (w, h) = (b[2] - b[0], b[3] - b[1]);
                let j = plan.jitter;
                let bbox =
                    [b[0] + rng.signed() * j * w, b[1] + rng.signed() * j * h, b[2] + rng.signed() * j * w, b[3] + rng.signed() * j * h];
                step.crops.push(Crop { frame, bbox });
                step.labels.push(base + r.id);
                step.cameras.push((si * 1000 + r.cam) as u32);
                most = most.max(r.id + 1);
            }
            if !step.crops.is_empty() {
                visit(step)?;
            }
        }
        base += most;
    }
    Ok(())
}

/// Renders each seed's store and collects its crops at `height x width`.
fn collect(plan: &CropPlan, height: usize, width: usize) -> Result<CropSet, String> {
    let mut set = CropSet { height, width, ..Default::default() };
    each_step(plan, |step| {
        add_crops(&mut set, &step);
        Ok(())
    })?;
    // identities never seen leave gaps: make labels dense
    let mut seen: Vec<u32> = set.labels.clone();
    seen.sort_unstable();
    seen.dedup();
    for l in &mut set.labels {
        *l = seen.binary_search(l).unwrap_or(0) as u32;
    }
    set.identities = seen.len();
    Ok(set)
}

/// Appends a step's crops, resampled to the set's size, with their labels and cameras.
fn add_crops(set: &mut CropSet, step: &StepCrops) {
    let (height, width) = (set.height, set.width);
    for (i, c) in step.crops.iter().enumerate() {
        let start = set.pixels.len();
        set.pixels.resize(start + height * width * 3, 0);
        let out = &mut set.pixels[start..];
        crop_with(&step.frames[c.frame], c.bbox, width, height, |y, x, rgb| {
            for c in 0..3 {
                out[(y * width + x) * 3 + c] = rgb[c].round().clamp(0.0, 255.0) as u8;
            }
        });
        set.labels.push(step.labels[i]);
        set.cameras.push(step.cameras[i]);
    }
}

/// `walkout train score`: every model embeds the same crops through `ReidPipeline`, batched
/// per time step as the store pipeline batches them; rank-1 and mAP per model, beside the
/// colour-histogram baseline on the same crops.
fn score(repo: &Repository, a: ScoreArgs) -> Result<()> {
    let mut pipes = a
        .models
        .iter()
        .map(|m| ReidPipeline::new(repo, m, a.device).with_context(|| format!("loading ReID model {m}")))
        .collect::<Result<Vec<_>>>()?;
    let plan = a.stores.plan(&a.eval_seeds, 0.05);
    let mut set = CropSet { height: reid::CROP_H, width: reid::CROP_W, ..Default::default() };
    let mut embeddings: Vec<Vec<Vec<f32>>> = vec![Vec::new(); pipes.len()];
    let mut seconds = vec![0f64; pipes.len()];
    let t0 = std::time::Instant::now();
    each_step(&plan, |step| {
        add_crops(&mut set, &step);
        let frames: Vec<&RgbImage> = step.frames.iter().collect();
        for (i, p) in pipes.iter_mut().enumerate() {
            let t = std::time::Instant::now();
            embeddings[i].extend(p.embed(&frames, &step.crops).map_err(|e| e.to_string())?);
            seconds[i] += t.elapsed().as_secs_f64();
        }
        Ok(())
    })
    .map_err(anyhow::Error::msg)?;
    if set.is_empty() {
        bail!("no crops in stores {:?}", a.eval_seeds);
    }
    let mut ids = set.labels.clone();
    ids.sort_unstable();
    ids.dedup();
    eprintln!("{} crops of {} identities in stores {:?} ({:.0} s)", set.len(), ids.len(), a.eval_seeds, t0.elapsed().as_secs_f64());
    let mut rows = Vec::new();
    println!("{:<24} {:>7} {:>7} {:>6} {:>9}", "model", "rank-1", "mAP", "dim", "crops/s");
    for ((name, emb), s) in a.models.iter().zip(&embeddings).zip(&seconds) {
        let (r1, map) = eval::rank1_map(emb, &set.labels, &set.cameras);
        let dim = emb.first().map_or(0, Vec::len);
        let rate = set.len() as f64 / s.max(1e-9);
        println!("{name:<24} {:>6.1}% {:>6.1}% {dim:>6} {rate:>9.1}", r1 * 100.0, map * 100.0);
        rows.push(serde_json::json!({"model": name, "rank1": r1, "map": map, "dim": dim, "crops_per_s": rate}));
    }
    let (h1, hmap) = eval::rank1_map(&eval::colour_histograms(&set), &set.labels, &set.cameras);
    println!("{:<24} {:>6.1}% {:>6.1}% {:>6} {:>9}", "colour histograms", h1 * 100.0, hmap * 100.0, 128, "-");
    let report = serde_json::json!({
        "eval_seeds": a.eval_seeds,
        "crops": set.len(),
        "identities": ids.len(),
        "device": pipes.first().map(|p| p.adapter()),
        "models": rows,
        "colour_histogram": {"rank1": h1, "map": hmap},
    });
    println!("{report}");
    Ok(())
}
