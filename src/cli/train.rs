//! `walkout train reid --out DIR`: renders person crops in the synthetic store, trains the
//! ReID network with candle-nn, scores it against the colour-histogram baseline on stores
//! it never saw (rank-1, mAP), and writes `DIR/model.onnx` and `DIR/report.json`. The same
//! arguments give the same bytes.

use crate::sim::{SimConfig, Simulator};
use crate::train::data::{self, CropPlan, CropSet, Prng};
use crate::train::{eval, reid};
use crate::vision::crop::crop_with;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use image::RgbImage;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum TrainCmd {
    /// Train the person re-identification network on simulator crops; export ONNX.
    Reid(ReidArgs),
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

fn plan(a: &ReidArgs, seeds: &[u64], jitter: f32) -> data::CropPlan {
    data::CropPlan {
        seeds: seeds.to_vec(),
        shoppers: a.shoppers,
        cameras: a.cameras,
        seconds: a.seconds,
        fps: a.fps,
        min_visibility: 0.5,
        min_height: 48.0,
        jitter,
    }
}

pub fn run(cmd: TrainCmd) -> Result<()> {
    match cmd {
        TrainCmd::Reid(a) => reid_run(a),
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
    let train = collect(&plan(&a, &a.train_seeds, 0.08), reid::CROP_H, reid::CROP_W).map_err(anyhow::Error::msg)?;
    let test = collect(&plan(&a, &a.eval_seeds, 0.05), reid::CROP_H, reid::CROP_W).map_err(anyhow::Error::msg)?;
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
            a.shoppers, a.cameras, a.seconds, a.fps
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

/// Renders each seed's store and collects its crops at `height x width`.
fn collect(plan: &CropPlan, height: usize, width: usize) -> Result<CropSet, String> {
    let mut set = CropSet { height, width, ..Default::default() };
    let mut rng = Prng(0x5EED ^ plan.seeds.first().copied().unwrap_or(0));
    for (si, &seed) in plan.seeds.iter().enumerate() {
        let config =
            SimConfig { seed, shoppers: plan.shoppers, cameras: plan.cameras, seconds: plan.seconds, fps: plan.fps, ..Default::default() };
        let mut sim = Simulator::new(config).map_err(|e| e.to_string())?;
        let base = set.identities as u32;
        let steps = (plan.seconds * plan.fps).round() as u64;
        let mut most = 0u32;
        for _ in 0..steps {
            sim.step();
            let rows = sim.truth();
            for r in rows {
                let b = r.bbox;
                if r.visibility() < plan.min_visibility || b[3] - b[1] < plan.min_height {
                    continue;
                }
                let Some(cam) = sim.cams.iter().find(|c| c.cam.id == r.cam) else { continue };
                let f = &cam.frame;
                let Some(img) = RgbImage::from_raw(f.width as u32, f.height as u32, f.rgb.clone()) else { continue };
                let (w, h) = (b[2] - b[0], b[3] - b[1]);
                let j = plan.jitter;
                let jb =
                    [b[0] + rng.signed() * j * w, b[1] + rng.signed() * j * h, b[2] + rng.signed() * j * w, b[3] + rng.signed() * j * h];
                let start = set.pixels.len();
                set.pixels.resize(start + height * width * 3, 0);
                let out = &mut set.pixels[start..];
                crop_with(&img, jb, width, height, |y, x, rgb| {
                    for c in 0..3 {
                        out[(y * width + x) * 3 + c] = rgb[c].round().clamp(0.0, 255.0) as u8;
                    }
                });
                set.labels.push(base + r.id);
                set.cameras.push((si * 1000 + r.cam) as u32);
                most = most.max(r.id + 1);
            }
        }
        set.identities = (base + most) as usize;
    }
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
