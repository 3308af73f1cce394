//! `walkout replay SIMDIR --out OUT`: the store pipeline in-process over recorded footage and
//! sensors, as fast as it goes and deterministically: pose on every camera's frame (one batch
//! per time step across cameras), per-camera tracking, fusion on the floor through each
//! camera's calibration, sessions from the gate scans. Writes `OUT/tracks.jsonl` in the
//! truth's track format (frame, cam, id = global id, session, bbox) for `walkout eval`.
//! Also writes every detection, untracked, to `OUT/detections.jsonl` (for `walkout eval
//! --detections`: pose recall), and each person seen by two or more cameras with their
//! joints triangulated in 3-D to `OUT/poses3d.jsonl` (frame, t, id, session, views, joints as
//! `[x, y, z, confidence]` or null; for `walkout eval --poses3d`). Reads `cam<N>/`, `store/`
//! and `sensors/`, never `truth/`.

use super::parse_size;
use crate::events::{GateScan, TrackRow};
use crate::geometry::Camera;
use crate::graph::Layout;
use crate::models::heads::{self, FrameCtx, HeadOutput, Keypoint, Person};
use crate::models::Repository;
use crate::perception::{place, whole_body_box, CameraTracker, Fusion, FusionConfig, Observation, TrackerConfig};
use crate::pipeline::ReidPipeline;
use crate::runtime::{self, Device, FrameSpec};
use crate::vision::crop::Crop;
use crate::vision::letterbox::letterbox_batch;
use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tiles::{grid_persons, tile_persons, Tiles};

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
    /// Model input HxW for every camera (640x480 frames keep their aspect at 384x512), or
    /// `auto`: per camera, from its calibration (`auto_size`).
    #[arg(long, default_value = "auto")]
    pub size: String,
    /// Track recorded detections (an earlier replay's detections.jsonl) instead of running
    /// the pose model: tracking and fusion alone, in seconds.
    #[arg(long)]
    pub detections: Option<PathBuf>,
    /// Tracker settings as JSON over the defaults, e.g. '{"high_score": 0.35}'.
    #[arg(long)]
    pub tracker: Option<String>,
    /// Fusion settings as JSON over the defaults, e.g. '{"max_dist_m": 1.0}'.
    #[arg(long)]
    pub fusion: Option<String>,
    /// The ReID model (repository name) that embeds each person's crop for tracking and
    /// fusion; `none` for geometry alone.
    #[arg(long, default_value = "reid-sim")]
    pub reid: String,
    /// Only the first N time steps.
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Run the pose model again on tiles: `halves` of a frame in which it found six people
    /// (MoveNet MultiPose's limit); `grid` also a 2x2 grid scaled up on every frame of a
    /// camera that shows people small (`--size auto`; more people found, but fusion does not
    /// yet gain from them); `none` for the whole frame alone.
    #[arg(long, value_enum, default_value_t = Tiles::Halves)]
    pub tiles: Tiles,
}

/// A person as a row of the truth's track format.
fn person_row(frame: u64, t: f64, cam: usize, id: u32, session: &str, p: &Person, bbox: [f32; 4]) -> TrackRow {
    TrackRow {
        frame,
        t,
        cam,
        id,
        session: session.to_string(),
        bbox,
        full_bbox: None,
        visibility: None,
        visible_px: 0,
        score: Some(p.score),
        floor: None,
        keypoints: p.keypoints.iter().map(|q| [q.x, q.y, q.score]).collect(),
        track: None,
        link: None,
    }
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
    let (gates, exit) = crate::perception::fusion::zones_from_floorplan(&plan_json);
    let mut scans: Vec<GateScan> = std::fs::read_to_string(dir.join("sensors/gate.jsonl"))
        .with_context(|| format!("reading {}", dir.join("sensors/gate.jsonl").display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()
        .context("sensors/gate.jsonl")?;
    scans.sort_by(|x, y| x.t.total_cmp(&y.t));
    let mut scans = scans.into_iter().peekable();

    let mut reid = match a.reid.as_str() {
        "none" => None,
        m => Some(ReidPipeline::new(repo, m, a.device)?),
    };
    let tracker_cfg: TrackerConfig = match &a.tracker {
        Some(j) => serde_json::from_str(j).context("--tracker")?,
        None => TrackerConfig::default(),
    };
    let mut pose = match &a.detections {
        Some(p) => PoseSource::recorded(p)?,
        None => PoseSource::model(repo, &a, tracker_cfg.low_score, &cams, &plan_json)?,
    };
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
    let p3_path = a.out.join("poses3d.jsonl");
    let mut p3_out = std::io::BufWriter::new(std::fs::File::create(&p3_path).with_context(|| format!("creating {}", p3_path.display()))?);
    let mut poses3d = 0usize;
    let fusion_cfg: FusionConfig = match &a.fusion {
        Some(j) => serde_json::from_str(j).context("--fusion")?,
        None => FusionConfig::default(),
    };
    let mut trackers: Vec<CameraTracker> = cams.iter().map(|_| CameraTracker::new(tracker_cfg.clone())).collect();
    let mut fusion = Fusion::new(fusion_cfg, gates, exit);
    for (n, cam, _) in &cams {
        fusion.set_camera(*n, cam.clone());
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(n_frames), indicatif::ProgressDrawTarget::stderr());
    let started = std::time::Instant::now();
    let (mut pose_s, mut track_s, mut rows, mut persons_n) = (0.0, 0.0, 0usize, 0usize);
    let (mut reid_s, mut crops_n) = (0.0, 0usize);
    for k in 0..n_frames {
        let t = k as f64 / fps;
        let t0 = std::time::Instant::now();
        let images: Vec<image::RgbImage> = if pose.needs_images() || reid.is_some() {
            cams.par_iter()
                .map(|c| crate::vision::image_io::load(&c.2.join(format!("frame_{k:06}.png"))))
                .collect::<std::result::Result<_, _>>()?
        } else {
            Vec::new()
        };
        let per_cam = pose.persons(&images, &cams, k)?;
        pose_s += t0.elapsed().as_secs_f64();
        let t_reid = std::time::Instant::now();
        let mut dets_per_cam: Vec<Vec<crate::perception::Detection>> =
            per_cam.iter().map(|p| crate::serve::stages::tracking::detections(p)).collect();
        if let Some(r) = reid.as_mut() {
            let refs: Vec<&image::RgbImage> = images.iter().collect();
            let crops: Vec<Crop> =
                per_cam.iter().enumerate().flat_map(|(ci, ps)| ps.iter().map(move |p| Crop { frame: ci, bbox: p.bbox })).collect();
            let mut embs = r.embed(&refs, &crops)?.into_iter();
            for d in dets_per_cam.iter_mut().flatten() {
                d.embedding = embs.next();
            }
            crops_n += crops.len();
        }
        reid_s += t_reid.elapsed().as_secs_f64();
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
                writeln!(det_out, "{}", serde_json::to_string(&person_row(k, t, cams[ci].0, 0, "", p, p.bbox))?)?;
            }
            let dets = &dets_per_cam[ci];
            let ids = trackers[ci].update(dets, t);
            for (pi, id) in ids.into_iter().enumerate() {
                let (Some(track), Some(at)) = (id, place(&cams[ci].1, &dets[pi])) else { continue };
                obs.push(Observation {
                    cam: cams[ci].0,
                    track,
                    floor: at.floor,
                    embedding: dets[pi].embedding.clone(),
                    keypoints: dets[pi].keypoints.clone(),
                });
                placed.push((ci, pi, whole_body_box(&cams[ci].1, at.floor, &dets[pi]), at.floor, track));
            }
        }
        let globals = fusion.update(t, &obs);
        // joints in 3-D of each person two or more cameras see now
        for g in fusion.tracks().iter().filter(|g| g.joints_t == t) {
            let views = globals.iter().filter(|&&id| id == g.id).count();
            let row = serde_json::json!({"frame": k, "t": t, "id": g.id, "session": g.session.as_deref().unwrap_or(""), "views": views, "joints": g.joints});
            writeln!(p3_out, "{row}")?;
            poses3d += 1;
        }
        for (n, ((ci, pi, bbox, floor, track), g)) in placed.into_iter().zip(globals).enumerate() {
            if g == 0 {
                continue; // no one to be yet
            }
            let mut row = person_row(k, t, cams[ci].0, g as u32, fusion.session_of(g).unwrap_or(""), &per_cam[ci][pi], bbox);
            row.floor = Some(floor);
            row.track = Some(track);
            row.link = fusion.how.get(n).and_then(|h| serde_json::to_value(h).ok()).and_then(|v| v.as_str().map(String::from));
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
            rows += 1;
        }
        track_s += t1.elapsed().as_secs_f64();
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.flush()?;
    det_out.flush()?;
    p3_out.flush()?;
    let frames = n_frames as usize * cams.len();
    let wall = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "time_steps": n_frames,
        "cameras": cams.len(),
        "camera_frames": frames,
        "persons": persons_n,
        "rows": rows,
        "poses3d": poses3d,
        "frames_per_s": frames as f64 / wall,
        "pose_frames_per_s": frames as f64 / pose_s.max(1e-9),
        "tracking_fusion_ms_per_step": track_s * 1e3 / n_frames as f64,
        "identity_swaps": fusion.swaps,
        "reid": a.reid,
        "reid_crops": crops_n,
        "reid_crops_per_s": crops_n as f64 / reid_s.max(1e-9),
        "adapter": pose.adapter(),
        "input_sizes": pose.input_sizes(),
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

/// Where each time step's persons come from: the pose model on the footage, or a recording.
#[allow(clippy::large_enum_variant)] // one per replay
enum PoseSource {
    Model {
        name: String,
        graph: crate::graph::Graph,
        exec: Box<dyn runtime::Executor>,
        plans: runtime::PlanCache,
        /// One per camera, in the order of `cams`.
        specs: Vec<FrameSpec>,
        decoder: crate::models::config::Decoder,
        min_score: f32,
        tiles: Tiles,
        /// Per camera: it shows people small (`auto_size`), so `Tiles::Grid` tiles it.
        small: Vec<bool>,
    },
    Recorded(HashMap<(u64, usize), Vec<Person>>),
}

impl PoseSource {
    /// The pose model, its persons decoded down to `floor` (the tracker's `low_score`) where
    /// that is under the model's own `min_score`: ByteTrack's second stage is for them.
    fn model(repo: &Repository, a: &ReplayArgs, floor: f32, cams: &[(usize, Camera, PathBuf)], plan: &serde_json::Value) -> Result<Self> {
        let model = repo.resolve(&a.model)?;
        let cfg = model.config.clone().with_context(|| format!("model '{}' has no config.toml", a.model))?;
        let graph = model.load_graph()?;
        let exec = runtime::executor_for(a.device)?;
        let layout: Layout = cfg.input.layout.into();
        let spec_of = |[height, width]: [usize; 2]| FrameSpec {
            height,
            width,
            layout,
            dtype: cfg.input.dtype,
            mean: cfg.input.mean,
            std: cfg.input.std,
        };
        let (specs, small): (Vec<FrameSpec>, Vec<bool>) = if a.size == "auto" {
            cams.iter()
                .map(|(n, cam, _)| {
                    let (size, small) = auto_size(cam, plan);
                    tracing::info!("cam{n}: pose model input {}x{}{}", size[0], size[1], if small { ", shows people small" } else { "" });
                    (spec_of(size), small)
                })
                .unzip()
        } else {
            (vec![spec_of(parse_size(&a.size)?); cams.len()], vec![false; cams.len()])
        };
        Ok(PoseSource::Model {
            name: model.name.clone(),
            graph,
            exec,
            plans: runtime::PlanCache::new(),
            specs,
            decoder: cfg.output.decoder,
            min_score: cfg.output.min_score.min(floor),
            tiles: a.tiles,
            small,
        })
    }

    fn recorded(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut by_step: HashMap<(u64, usize), Vec<Person>> = HashMap::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let r: TrackRow = serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), n + 1))?;
            let keypoints = r.keypoints.iter().map(|k| Keypoint { x: k[0], y: k[1], score: k[2] }).collect();
            by_step.entry((r.frame, r.cam)).or_default().push(Person { score: r.score.unwrap_or(1.0), bbox: r.bbox, keypoints });
        }
        Ok(PoseSource::Recorded(by_step))
    }

    fn needs_images(&self) -> bool {
        matches!(self, PoseSource::Model { .. })
    }

    fn persons(&mut self, images: &[image::RgbImage], cams: &[(usize, Camera, PathBuf)], k: u64) -> Result<Vec<Vec<Person>>> {
        match self {
            PoseSource::Recorded(m) => Ok(cams.iter().map(|c| m.remove(&(k, c.0)).unwrap_or_default()).collect()),
            PoseSource::Model { name, graph, exec, plans, specs, decoder, min_score, tiles, small } => {
                // one frame's input shape is the plan's; a batch of them runs side by side
                let mut run = |refs: &[&image::RgbImage], spec: &FrameSpec| -> Result<Vec<Vec<Person>>> {
                    let (input, boxes) = letterbox_batch(refs, spec);
                    let shape = match spec.layout {
                        Layout::Nhwc => vec![1, spec.height, spec.width, 3],
                        Layout::Nchw => vec![1, 3, spec.height, spec.width],
                    };
                    let plan = plans.get_or_compile(exec.as_ref(), name, graph, &[shape], refs.len())?;
                    let outs = plan.run(&[input])?;
                    let mut per = Vec::with_capacity(refs.len());
                    for (i, img) in refs.iter().enumerate() {
                        let f =
                            FrameCtx { index: i, letterbox: &boxes[i], width: img.width(), height: img.height(), min_score: *min_score };
                        let HeadOutput::Poses(p) = heads::decode(*decoder, &outs, f)? else { bail!("'{name}' is not a pose model") };
                        per.push(p);
                    }
                    Ok(per)
                };
                // the cameras of one input size run as one batch
                let mut per_cam: Vec<Vec<Person>> = vec![Vec::new(); images.len()];
                let mut sizes: Vec<[usize; 2]> = specs.iter().map(|s| [s.height, s.width]).collect();
                sizes.sort_unstable();
                sizes.dedup();
                for size in sizes {
                    let idx: Vec<usize> = (0..images.len()).filter(|&i| [specs[i].height, specs[i].width] == size).collect();
                    let spec = &specs[idx[0]];
                    let refs: Vec<&image::RgbImage> = idx.iter().map(|&i| &images[i]).collect();
                    let mut found = run(&refs, spec)?;
                    if *tiles != Tiles::None {
                        tile_persons(&refs, &mut found, spec, &mut run)?;
                    }
                    if *tiles == Tiles::Grid {
                        let smalls: Vec<bool> = idx.iter().map(|&i| small[i]).collect();
                        grid_persons(&refs, &mut found, &smalls, spec, &mut run)?;
                    }
                    for (i, f) in idx.into_iter().zip(found) {
                        per_cam[i] = f;
                    }
                }
                Ok(per_cam)
            }
        }
    }

    fn adapter(&self) -> String {
        match self {
            PoseSource::Model { exec, .. } => exec.adapter(),
            PoseSource::Recorded(_) => "recorded detections".into(),
        }
    }

    /// Each camera's pose model input (HxW), in the order of `cams`.
    fn input_sizes(&self) -> Option<Vec<[usize; 2]>> {
        match self {
            PoseSource::Model { specs, .. } => Some(specs.iter().map(|s| [s.height, s.width]).collect()),
            PoseSource::Recorded(_) => None,
        }
    }
}

/// `--size auto`: a camera that shows the people it sees under this many pixels tall runs
/// the pose model on the frame at its own resolution, the others at 384x512. "Shows": the
/// 75th percentile of a 1.7 m person's height in pixels over the floor the camera sees
/// (`seen_heights_px`). On development store 707 (16 shoppers, 8 cameras of 640x480) its
/// ceiling cameras come to 95-113 px and its shelf cameras to 186-215; 480x640 everywhere
/// found 88.9% of the visible people taller than 80 px (384x512: 86.9%), but fewer of the
/// largest (MoveNet misses more big people at the higher resolution), and the mix 89.1%.
const AUTO_SMALL_PX: f32 = 150.0;

/// The pose model's input size for a camera (`--size auto`): see `AUTO_SMALL_PX`. The
/// frame's own size is rounded down to multiples of 32 and held to 480x640's pixels. Also
/// whether the camera shows people small (`Tiles::Grid` tiles its frames).
fn auto_size(cam: &Camera, plan: &serde_json::Value) -> ([usize; 2], bool) {
    let mut h = seen_heights_px(cam, plan, 1.7);
    let small = !h.is_empty() && {
        let k = (h.len() * 3 / 4).min(h.len() - 1);
        *h.select_nth_unstable_by(k, f32::total_cmp).1 < AUTO_SMALL_PX
    };
    (size_within(cam.height, cam.width, if small { 480 * 640 } else { 384 * 512 }), small)
}

/// A model input (HxW, multiples of 32) for an `h` x `w` picture: its aspect, at its own
/// scale or below, within `pixels`.
fn size_within(h: usize, w: usize, pixels: usize) -> [usize; 2] {
    size_scaled(h, w, pixels, 1.0)
}

/// A model input (HxW, multiples of 32) of an `h` x `w` picture's aspect with about `pixels`
/// pixels, scaled by at most `most`.
fn size_scaled(h: usize, w: usize, pixels: usize, most: f64) -> [usize; 2] {
    let s = (pixels as f64 / (h * w).max(1) as f64).sqrt().min(most);
    let r = |v: usize| (((v as f64 * s) / 32.0).floor() as usize).max(1) * 32;
    [r(h), r(w)]
}

/// The heights in pixels of a person `stature` metres tall standing at each point of a
/// 0.25 m grid over the store's floor (the floor plan's `width` x `depth`, shelf units left
/// out) where the camera sees them: feet and head in the frame, and the line from the
/// camera to their waist clear of every shelf unit. From the calibration and the floor plan
/// alone.
fn seen_heights_px(cam: &Camera, plan: &serde_json::Value, stature: f32) -> Vec<f32> {
    const STEP: f32 = 0.25;
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) as f32;
    let v3 = |v: &serde_json::Value| [f(&v[0]), f(&v[1]), f(&v[2])];
    let boxes: Vec<([f32; 3], [f32; 3])> =
        plan["shelf_units"].as_array().map(|u| u.iter().map(|u| (v3(&u["min"]), v3(&u["max"]))).collect()).unwrap_or_default();
    let inside_box = |p: [f32; 3]| boxes.iter().any(|(lo, hi)| (0..3).all(|d| p[d] >= lo[d] && p[d] <= hi[d]));
    let in_frame = |u: f32, v: f32| u >= 0.0 && v >= 0.0 && u < cam.width as f32 && v < cam.height as f32;
    let occluded = |p: [f32; 3]| {
        (1..60).any(|i| {
            let t = i as f32 / 60.0;
            inside_box([0, 1, 2].map(|d| cam.center[d] + (p[d] - cam.center[d]) * t))
        })
    };
    let (w, d) = (f(&plan["width"]), f(&plan["depth"]));
    let mut out = Vec::new();
    for i in 0..=(w / STEP) as usize {
        for j in 0..=(d / STEP) as usize {
            let (x, y) = (i as f32 * STEP, j as f32 * STEP);
            if inside_box([x, y, 0.0]) {
                continue;
            }
            let (Some((uf, vf, _)), Some((uh, vh, _))) = (cam.project([x, y, 0.0]), cam.project([x, y, stature])) else {
                continue;
            };
            if in_frame(uf, vf) && in_frame(uh, vh) && !occluded([x, y, stature * 0.53]) {
                out.push(((uf - uh).powi(2) + (vf - vh).powi(2)).sqrt());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(x0: f32, score: f32) -> Person {
        let keypoints = (0..17).map(|k| Keypoint { x: x0 + 10.0, y: 10.0 * k as f32, score: 0.5 }).collect();
        Person { score, bbox: [x0, 0.0, x0 + 40.0, 160.0], keypoints }
    }

    #[test]
    fn tile_persons_join_the_frame_unless_cut_or_already_there() {
        // a frame of 640 with six people found; tiles of 384: the left at 0, the right at 256
        let mut frame: Vec<Person> = (0..6).map(|k| person(20.0 + 100.0 * k as f32, 0.4)).collect();
        let left = vec![
            person(20.0, 0.6),  // the frame's first person, scored higher: replaces it
            person(60.0, 0.3),  // someone new between the first two
            person(350.0, 0.9), // touches the left tile's inner edge (384): the right tile's
        ];
        let tile = |x0| tiles::Tile { x0, y0: 0, w: 384, h: 480 };
        tiles::merge_tile(&mut frame, left, tile(0), 640, 480);
        assert_eq!(frame.len(), 7);
        assert_eq!(frame[0].score, 0.6);
        assert_eq!(frame[6].bbox[0], 60.0);
        // the right tile: a person at 300 of the tile is at 556 of the frame, keypoints too
        tiles::merge_tile(&mut frame, vec![person(300.0, 0.5), person(0.0, 0.9)], tile(256), 640, 480);
        assert_eq!(frame.len(), 8, "the one at the right tile's inner edge is dropped");
        assert_eq!(frame[7].bbox, [556.0, 0.0, 596.0, 160.0]);
        assert_eq!(frame[7].keypoints[0].x, 566.0);
    }

    /// A wide view from the ceiling shows people small and gets the frame's own size; a
    /// camera at head height looking down one aisle shows them large and keeps 384x512; a
    /// shelf between a camera and the floor it faces hides that floor.
    #[test]
    fn auto_size_follows_how_large_a_camera_shows_people() {
        use crate::geometry::{CamKind, Sensor};
        let sensor = Sensor { width: 640, height: 480, fps: 5.0 };
        let plan = |shelves: serde_json::Value| serde_json::json!({"width": 16.0, "depth": 12.0, "shelf_units": shelves});
        let empty = plan(serde_json::json!([]));
        let ceiling = Camera::look_at(0, CamKind::Ceiling, [0.5, 0.5, 3.2], [8.0, 6.0, 0.0], 95.0, sensor);
        let aisle = Camera::look_at(1, CamKind::Shelf, [2.0, 0.2, 2.2], [2.0, 2.5, 0.6], 70.0, sensor);
        let seen = |c: &Camera, p: &serde_json::Value| {
            let mut h = seen_heights_px(c, p, 1.7);
            h.sort_by(f32::total_cmp);
            (h.len(), h.get(h.len() * 3 / 4).copied().unwrap_or(0.0))
        };
        let (n_c, p75_c) = seen(&ceiling, &empty);
        let (n_a, p75_a) = seen(&aisle, &empty);
        assert!(n_c > 100 && p75_c < AUTO_SMALL_PX, "ceiling: {n_c} points, p75 {p75_c}");
        assert!(n_a > 20 && p75_a > AUTO_SMALL_PX, "aisle: {n_a} points, p75 {p75_a}");
        assert_eq!(auto_size(&ceiling, &empty), ([480, 640], true));
        assert_eq!(auto_size(&aisle, &empty), ([384, 512], false));
        // a shelf unit right in front of the aisle camera, taller than it: it sees nothing
        let wall = plan(serde_json::json!([{"min": [0.0, 0.4, 0.0], "max": [4.0, 0.6, 2.5]}]));
        assert_eq!(seen(&aisle, &wall).0, 0);
        assert_eq!(auto_size(&aisle, &wall), ([384, 512], false), "a camera that sees no one keeps the default");
    }

    #[test]
    fn only_frames_at_the_limit_run_again_in_halves() {
        let images: Vec<image::RgbImage> = (0..2).map(|_| image::RgbImage::new(640, 480)).collect();
        let mut per_cam = vec![(0..tiles::MOST_PERSONS).map(|k| person(100.0 * k as f32, 0.5)).collect::<Vec<_>>(), vec![person(0.0, 0.5)]];
        let spec =
            FrameSpec { height: 384, width: 512, layout: Layout::Nhwc, dtype: crate::graph::DType::I32, mean: [0.0; 3], std: [1.0; 3] };
        let mut calls = Vec::new();
        let refs: Vec<&image::RgbImage> = images.iter().collect();
        tile_persons(&refs, &mut per_cam, &spec, |tiles, tspec| {
            calls.push((tiles.len(), tiles[0].dimensions(), tspec.height, tspec.width));
            Ok(tiles.iter().map(|_| Vec::new()).collect())
        })
        .unwrap();
        // one batch of the first frame's two halves, 384x480 each, at their own scale
        assert_eq!(calls, vec![(2, (384, 480), 480, 384)]);
    }

    /// Only the cameras that show people small run again as a 2x2 grid, every frame, in one
    /// batch scaled up into the frame's budget; a tile's person at an inner edge (here the
    /// bottom-right tile's top and left) is dropped, the others land in frame pixels.
    #[test]
    fn small_views_run_again_as_a_grid_scaled_up() {
        let images: Vec<image::RgbImage> = (0..3).map(|_| image::RgbImage::new(640, 480)).collect();
        let mut per_cam = vec![Vec::new(); 3];
        let spec =
            FrameSpec { height: 480, width: 640, layout: Layout::Nhwc, dtype: crate::graph::DType::I32, mean: [0.0; 3], std: [1.0; 3] };
        let mut calls = Vec::new();
        let refs: Vec<&image::RgbImage> = images.iter().collect();
        tiles::grid_persons(&refs, &mut per_cam, &[true, false, true], &spec, |tiles, tspec| {
            calls.push((tiles.len(), tiles[0].dimensions(), tspec.height, tspec.width));
            // every tile finds one person at (100, 50) of the tile, and one at its top-left corner
            let at = |x: f32, y: f32| {
                let mut p = person(x, 0.5);
                p.bbox[1] += y;
                p.bbox[3] += y;
                p.keypoints.iter_mut().for_each(|k| k.y += y);
                p
            };
            Ok(tiles.iter().map(|_| vec![at(100.0, 50.0), at(0.0, 0.0)]).collect())
        })
        .unwrap();
        // 4 tiles of 384x288 for each of the two small frames, at 480x640 (1.67x)
        assert_eq!(calls, vec![(8, (384, 288), 480, 640)]);
        assert!(per_cam[1].is_empty());
        // the top-left tile keeps both (its top and left are the frame's edges); the others
        // drop the corner person; the person at x = 100 of each tile lands at 100 or 356
        let xs: Vec<[f32; 2]> = per_cam[0].iter().map(|p| [p.bbox[0], p.bbox[1]]).collect();
        assert_eq!(xs, vec![[100.0, 50.0], [0.0, 0.0], [356.0, 50.0], [100.0, 242.0], [356.0, 242.0]], "{xs:?}");
        assert_eq!(per_cam[0][4].keypoints[1].y, 252.0);
        assert_eq!(per_cam[2].len(), 5);
    }
}

mod tiles;
