//! `walkout replay SIMDIR --out OUT`: the store pipeline in-process over recorded footage and
//! sensors, as fast as it goes and deterministically: pose on every camera's frame (one batch
//! per time step across cameras), per-camera tracking, fusion on the floor through each
//! camera's calibration, sessions from the gate scans. Writes `OUT/tracks.jsonl` in the
//! truth's track format (frame, cam, id = global id, session, bbox) for `walkout eval`.
//! Also writes every detection, untracked, to `OUT/detections.jsonl` (for `walkout eval
//! --detections`: pose recall). Reads `cam<N>/`, `store/` and `sensors/`, never `truth/`.

use super::parse_size;
use crate::events::{GateScan, TrackRow};
use crate::geometry::Camera;
use crate::graph::Layout;
use crate::models::heads::{self, FrameCtx, HeadOutput, Person};
use crate::models::Repository;
use crate::perception::{CameraTracker, Fusion, FusionConfig, Observation, TrackerConfig, Zone};
use crate::runtime::{self, Device, FrameSpec};
use crate::vision::letterbox::letterbox_batch;
use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A `walkout sim` output folder (PNG footage).
    pub simdir: PathBuf,
    /// Output folder for tracks.jsonl and summary.json.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long, default_value = "movenet-multipose")]
    pub model: String,
    /// Model input HxW for every camera (640x480 frames keep their aspect at 384x512).
    #[arg(long, default_value = "384x512")]
    pub size: String,
    /// Only the first N time steps.
    #[arg(long)]
    pub max_frames: Option<u64>,
}

/// Keypoints below this score do not place feet.
const FOOT_MIN_SCORE: f32 = 0.3;

/// Where a person stands: the ankles' midpoint when both are seen, else the box's bottom
/// centre, through the camera onto the floor.
fn foot_point(cam: &Camera, p: &Person) -> Option<[f32; 2]> {
    let (l, r) = (p.keypoints.get(15), p.keypoints.get(16));
    let (u, v) = match (l, r) {
        (Some(a), Some(b)) if a.score >= FOOT_MIN_SCORE && b.score >= FOOT_MIN_SCORE => ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0),
        _ => ((p.bbox[0] + p.bbox[2]) / 2.0, p.bbox[3]),
    };
    cam.floor_point(u, v)
}

/// A person as a row of the truth's track format.
fn person_row(frame: u64, t: f64, cam: usize, id: u32, session: &str, p: &Person) -> TrackRow {
    TrackRow {
        frame,
        t,
        cam,
        id,
        session: session.to_string(),
        bbox: p.bbox,
        full_bbox: None,
        visibility: None,
        visible_px: 0,
        score: Some(p.score),
        keypoints: p.keypoints.iter().map(|q| [q.x, q.y, q.score]).collect(),
    }
}

fn zones(v: &serde_json::Value) -> Vec<Zone> {
    let poly = |z: &serde_json::Value| -> Vec<[f32; 2]> { serde_json::from_value(z["polygon"].clone()).unwrap_or_default() };
    v.as_array().into_iter().flatten().map(|z| Zone { id: z["id"].as_str().unwrap_or("").to_string(), polygon: poly(z) }).collect()
}

fn read_json(p: &Path) -> Result<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        .with_context(|| format!("{}: invalid JSON", p.display()))
}

pub fn run(repo: &Repository, a: ReplayArgs) -> Result<()> {
    let dir = &a.simdir;
    let mut cams: Vec<(usize, Camera, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("cam").and_then(|n| n.parse::<usize>().ok()) {
            let cal = read_json(&e.path().join("calibration.json"))?;
            cams.push((n, Camera::from_calibration(&cal).map_err(anyhow::Error::msg)?, e.path()));
        }
    }
    cams.sort_by_key(|c| c.0);
    if cams.is_empty() {
        bail!("{}: no cam<N>/ folders", dir.display());
    }
    let fps = cams[0].1.fps;
    let plan_json = read_json(&dir.join("store/floorplan.json"))?;
    let gates = zones(&plan_json["gate_lanes"]);
    let exit = zones(&serde_json::json!([plan_json["exit_zone"].clone()])).pop();
    let mut scans: Vec<GateScan> = std::fs::read_to_string(dir.join("sensors/gate.jsonl"))
        .with_context(|| format!("reading {}", dir.join("sensors/gate.jsonl").display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()
        .context("sensors/gate.jsonl")?;
    scans.sort_by(|x, y| x.t.total_cmp(&y.t));
    let mut scans = scans.into_iter().peekable();

    let model = repo.resolve(&a.model)?;
    let cfg = model.config.clone().with_context(|| format!("model '{}' has no config.toml", a.model))?;
    let graph = model.load_graph()?;
    let exec = runtime::executor_for(a.device)?;
    let [h, w] = parse_size(&a.size)?;
    let layout: Layout = cfg.input.layout.into();
    let spec = FrameSpec { height: h, width: w, layout, dtype: cfg.input.dtype, mean: cfg.input.mean, std: cfg.input.std };
    let frame_shape = match layout {
        Layout::Nhwc => vec![1, h, w, 3],
        Layout::Nchw => vec![1, 3, h, w],
    };
    let mut plans = runtime::PlanCache::new();

    let frames_of = |c: &PathBuf| {
        std::fs::read_dir(c).map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".png")).count()).unwrap_or(0)
    };
    let mut n_frames = cams.iter().map(|c| frames_of(&c.2) as u64).min().unwrap_or(0);
    if let Some(m) = a.max_frames {
        n_frames = n_frames.min(m);
    }
    if n_frames == 0 {
        bail!("{}: no PNG footage (walkout sim --footage png)", dir.display());
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let out_path = a.out.join("tracks.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?);
    let det_path = a.out.join("detections.jsonl");
    let mut det_out =
        std::io::BufWriter::new(std::fs::File::create(&det_path).with_context(|| format!("creating {}", det_path.display()))?);
    let mut trackers: Vec<CameraTracker> = cams.iter().map(|_| CameraTracker::new(TrackerConfig::default())).collect();
    let mut fusion = Fusion::new(FusionConfig::default(), gates, exit);
    let bar = indicatif::ProgressBar::with_draw_target(Some(n_frames), indicatif::ProgressDrawTarget::stderr());
    let started = std::time::Instant::now();
    let (mut pose_s, mut track_s, mut rows, mut persons_n) = (0.0, 0.0, 0usize, 0usize);
    for k in 0..n_frames {
        let t = k as f64 / fps;
        let t0 = std::time::Instant::now();
        let images: Vec<image::RgbImage> = cams
            .par_iter()
            .map(|c| crate::vision::image_io::load(&c.2.join(format!("frame_{k:06}.png"))))
            .collect::<std::result::Result<_, _>>()?;
        let refs: Vec<&image::RgbImage> = images.iter().collect();
        let (input, boxes) = letterbox_batch(&refs, &spec);
        let plan = plans.get_or_compile(exec.as_ref(), &model.name, &graph, std::slice::from_ref(&frame_shape), refs.len())?;
        let outs = plan.run(&[input])?;
        let mut per_cam: Vec<Vec<Person>> = Vec::with_capacity(refs.len());
        for (i, img) in images.iter().enumerate() {
            let f = FrameCtx { index: i, letterbox: &boxes[i], width: img.width(), height: img.height(), min_score: cfg.output.min_score };
            let HeadOutput::Poses(p) = heads::decode(cfg.output.decoder, &outs, f)?;
            per_cam.push(p);
        }
        pose_s += t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        while scans.peek().is_some_and(|s| s.t <= t) {
            if let Some(s) = scans.next() {
                fusion.scan(s);
            }
        }
        let mut obs = Vec::new();
        let mut placed = Vec::new();
        for (ci, persons) in per_cam.iter().enumerate() {
            persons_n += persons.len();
            for p in persons {
                writeln!(det_out, "{}", serde_json::to_string(&person_row(k, t, cams[ci].0, 0, "", p))?)?;
            }
            let dets = crate::serve::stages::tracking::detections(persons);
            let ids = trackers[ci].update(&dets, t);
            for (pi, id) in ids.into_iter().enumerate() {
                let (Some(track), Some(floor)) = (id, foot_point(&cams[ci].1, &persons[pi])) else { continue };
                obs.push(Observation { cam: cams[ci].0, track, floor });
                placed.push((ci, pi));
            }
        }
        let globals = fusion.update(t, &obs);
        for ((ci, pi), g) in placed.into_iter().zip(globals) {
            let row = person_row(k, t, cams[ci].0, g as u32, fusion.session_of(g).unwrap_or(""), &per_cam[ci][pi]);
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
            rows += 1;
        }
        track_s += t1.elapsed().as_secs_f64();
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.flush()?;
    det_out.flush()?;
    let frames = n_frames as usize * cams.len();
    let wall = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "time_steps": n_frames,
        "cameras": cams.len(),
        "camera_frames": frames,
        "persons": persons_n,
        "rows": rows,
        "frames_per_s": frames as f64 / wall,
        "pose_frames_per_s": frames as f64 / pose_s.max(1e-9),
        "tracking_fusion_ms_per_step": track_s * 1e3 / n_frames as f64,
        "adapter": exec.adapter(),
        "input_size": [h, w],
    });
    std::fs::write(a.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    eprintln!(
        "replayed {n_frames} steps x {} cameras: {rows} tracked persons, {:.2} frames/s ({:.2} for pose alone), tracking + fusion {:.2} ms per step; wrote {}",
        cams.len(),
        frames as f64 / wall,
        frames as f64 / pose_s.max(1e-9),
        track_s * 1e3 / n_frames as f64,
        out_path.display()
    );
    println!("{summary}");
    Ok(())
}
