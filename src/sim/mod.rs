//! The synthetic store (digital twin): a seeded world of shelves and shoppers, a rig of
//! calibrated cameras rendered by a software rasteriser, and complete ground truth.
//! `score` turns walkout's outputs into event, receipt and identity figures.

pub mod body;
pub mod budget;
pub mod math;
pub mod mot;
pub mod render;
pub mod rig;
pub mod score;
pub mod store;
pub mod world;

use crate::events::TrackRow;
use crate::geometry::camera::Camera;
use rayon::prelude::*;
use render::CamRenderer;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use world::World;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Io { path: path.display().to_string(), msg: e.to_string() }
}

/// Simulation settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub shoppers: usize,
    pub cameras: usize,
    pub seconds: f64,
    pub fps: f64,
    pub width: usize,
    pub height: usize,
    pub noise: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { seed: 1, shoppers: 6, cameras: 8, seconds: 30.0, fps: 10.0, width: 640, height: 480, noise: true }
    }
}

impl SimConfig {
    pub fn validate(&self) -> Result<(), SimError> {
        if !(4..=32).contains(&self.cameras) {
            return Err(SimError::Config(format!("cameras must be between 4 and 32, got {}", self.cameras)));
        }
        if self.fps <= 0.0 || self.fps > 120.0 || self.seconds <= 0.0 {
            return Err(SimError::Config("fps must be in (0, 120] and seconds > 0".into()));
        }
        if self.width < 64 || self.height < 48 || self.width > 4096 || self.height > 4096 {
            return Err(SimError::Config(format!("resolution {}x{} out of range", self.width, self.height)));
        }
        Ok(())
    }
}

/// The running simulator: world, cameras and their renderers.
#[derive(Debug)]
pub struct Simulator {
    pub config: SimConfig,
    pub world: World,
    pub cams: Vec<CamRenderer>,
    pub frame: u64,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let world = World::new(config.seed, config.shoppers, config.seconds);
        let cams = rig::rig(config.cameras, config.width, config.height, config.fps)
            .into_iter()
            .map(|c| CamRenderer::new(c, config.noise))
            .collect();
        Ok(Simulator { config, world, cams, frame: 0 })
    }

    pub fn cameras(&self) -> Vec<&Camera> {
        self.cams.iter().map(|c| &c.cam).collect()
    }

    /// Advances to the next frame time and renders every camera.
    pub fn step(&mut self) {
        let dt = 1.0 / self.config.fps;
        if self.frame > 0 {
            let sub = (dt / 0.04).ceil().max(1.0) as usize;
            for _ in 0..sub {
                self.world.step(dt / sub as f64);
            }
        }
        let dirty = self.world.take_dirty();
        let world = &self.world;
        let frame = self.frame;
        self.cams.par_iter_mut().for_each(|c| {
            if dirty {
                c.draw_scenery(world);
            }
            c.render(world, frame);
        });
        self.frame += 1;
    }

    /// Ground truth of the current frame: per camera and visible shopper.
    pub fn truth(&self) -> Vec<TrackRow> {
        let mut rows = Vec::new();
        let bodies: Vec<_> = self
            .world
            .shoppers
            .iter()
            .filter(|s| s.present())
            .map(|s| {
                let pose = s.pose();
                let mut caps = Vec::new();
                body::volumes(s, &pose, &mut caps);
                (s, pose, caps)
            })
            .collect();
        let max_id = self.world.shoppers.iter().map(|s| s.id).max().unwrap_or(0) as usize;
        for c in &self.cams {
            let f = &c.frame;
            let (w, h) = (f.width, f.height);
            // one pass: visible pixel count and box per shopper id
            let mut acc = vec![(0u32, [f32::MAX, f32::MAX, f32::MIN, f32::MIN]); max_id + 1];
            for y in 0..h {
                for x in 0..w {
                    let id = f.ids[y * w + x] as usize;
                    if id != 0 && id <= max_id {
                        let (n, bb) = &mut acc[id];
                        *n += 1;
                        *bb = [bb[0].min(x as f32), bb[1].min(y as f32), bb[2].max(x as f32 + 1.0), bb[3].max(y as f32 + 1.0)];
                    }
                }
            }
            for (s, pose, caps) in &bodies {
                let (n, bb) = acc[s.id as usize];
                // every person whose body projects into the frame, however hidden: scoring
                // decides what is required (see `score::DontCare`)
                let sil = render::silhouette(&c.cam, caps);
                let Some(full) = sil.bbox else { continue };
                let bb = if n > 0 { bb } else { [0.0; 4] };
                let keypoints = pose
                    .iter()
                    .map(|&j| match c.cam.project(j) {
                        Some((u, v, z)) if u >= 0.0 && v >= 0.0 && u < w as f32 && v < h as f32 => {
                            let d = f.depth[v as usize * w + u as usize];
                            let vis = if d >= z - 0.2 || f.ids[v as usize * w + u as usize] == s.id { 2.0 } else { 1.0 };
                            [u, v, vis]
                        }
                        Some((u, v, _)) => [u, v, 0.0],
                        None => [0.0, 0.0, 0.0],
                    })
                    .collect();
                rows.push(TrackRow {
                    frame: self.frame.saturating_sub(1),
                    t: self.time(),
                    cam: c.cam.id,
                    id: s.id,
                    session: s.session.clone(),
                    bbox: bb,
                    full_bbox: Some(full),
                    visibility: Some((n as f64 / sil.total.max(1) as f64).min(1.0) as f32),
                    visible_px: n,
                    score: None,
                    floor: Some([(pose[15][0] + pose[16][0]) / 2.0, (pose[15][1] + pose[16][1]) / 2.0]),
                    keypoints,
                    track: None,
                    link: None,
                });
            }
        }
        rows
    }

    /// Time of the last rendered frame.
    pub fn time(&self) -> f64 {
        (self.frame.saturating_sub(1)) as f64 / self.config.fps
    }
}

/// How footage is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Footage {
    Png,
    /// One H.264 video per camera through an ffmpeg subprocess.
    Video,
    None,
}

/// Figures of a finished run.
#[derive(Clone, Debug, Serialize)]
pub struct SimSummary {
    pub frames: u64,
    pub cameras: usize,
    pub width: usize,
    pub height: usize,
    pub fps: f64,
    pub events: usize,
    pub receipts: usize,
    pub render_s: f64,
    pub write_s: f64,
    /// Time steps (all cameras) rendered per wall-clock second, rendering only.
    pub render_fps: f64,
    /// Whether rendering keeps up with the camera frame rate.
    pub realtime: bool,
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, SimError> {
    std::fs::File::create(path).map(std::io::BufWriter::new).map_err(|e| io_err(path, e))
}

/// Runs a whole simulation under `out`: `cam<N>/` footage and calibration, `store/` what the
/// operator knows (floor plan, planogram, SKU catalogue), `sensors/` what the store's devices
/// report (gate scans, and shelf load cells when `loadcells`), and `truth/` the ground truth
/// that only the scorer reads (`shoppers.json` among it: companions and look-alikes).
pub fn run(config: SimConfig, out: &Path, footage: Footage, loadcells: bool, progress: bool) -> Result<SimSummary, SimError> {
    let mut sim = Simulator::new(config.clone())?;
    let (truth_dir, store_dir, sensors_dir) = (out.join("truth"), out.join("store"), out.join("sensors"));
    for d in [&truth_dir, &store_dir, &sensors_dir] {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    for (name, v) in [
        ("floorplan.json", store::floor_plan()),
        ("planogram.json", store::planogram(&sim.world)),
        ("skus.json", store::catalogue(&sim.world)),
    ] {
        let p = store_dir.join(name);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap_or_default()).map_err(|e| io_err(&p, e))?;
    }
    let mut cam_dirs: Vec<PathBuf> = Vec::new();
    for c in &sim.cams {
        let d = out.join(format!("cam{}", c.cam.id));
        std::fs::create_dir_all(&d).map_err(|e| io_err(&d, e))?;
        let p = d.join("calibration.json");
        std::fs::write(&p, serde_json::to_string_pretty(&c.cam.calibration()).unwrap_or_default()).map_err(|e| io_err(&p, e))?;
        cam_dirs.push(d);
    }
    let mut videos: Vec<Option<std::process::Child>> = Vec::new();
    if footage == Footage::Video {
        for d in &cam_dirs {
            let child = std::process::Command::new("ffmpeg")
                .args(["-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
                .arg(format!("{}x{}", config.width, config.height))
                .args([
                    "-r",
                    &config.fps.to_string(),
                    "-i",
                    "-",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-crf",
                    "18",
                    "-pix_fmt",
                    "yuv420p",
                ])
                .arg(d.join("video.mp4"))
                .stdin(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| io_err(Path::new("ffmpeg"), e))?;
            videos.push(Some(child));
        }
    }
    let mut tracks = create(&truth_dir.join("tracks.jsonl"))?;
    let mut world_out = create(&truth_dir.join("world.jsonl"))?;
    let mut cells = if loadcells { Some(create(&sensors_dir.join("loadcells.jsonl"))?) } else { None };
    let n_frames = (config.seconds * config.fps).round() as u64;
    let (mut render_s, mut write_s) = (0.0, 0.0);
    let started = std::time::Instant::now();
    let bar = Progress::new(progress, n_frames);
    for k in 0..n_frames {
        let t0 = std::time::Instant::now();
        sim.step();
        render_s += t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        let t = sim.time();
        for row in sim.truth() {
            writeln!(tracks, "{}", serde_json::to_string(&row).unwrap_or_default()).map_err(|e| io_err(&truth_dir, e))?;
        }
        for s in sim.world.shoppers.iter().filter(|s| s.present()) {
            let line = serde_json::json!({"frame": k, "t": t, "id": s.id, "session": s.session, "pos": s.pos, "heading": s.heading, "joints": s.pose()});
            writeln!(world_out, "{line}").map_err(|e| io_err(&truth_dir, e))?;
        }
        if let Some(c) = cells.as_mut() {
            for (shelf, g) in sim.world.shelf_loads() {
                let noise = (math::hash3(k as u32, shelf.len() as u32, g as u32) % 100) as f32 / 10.0 - 5.0;
                let reading = crate::events::ShelfReading { t, shelf, grams: (g + noise).max(0.0) };
                writeln!(c, "{}", serde_json::to_string(&reading).unwrap_or_default()).map_err(|e| io_err(&sensors_dir, e))?;
            }
        }
        match footage {
            Footage::Png => {
                let frames: Vec<(&PathBuf, &CamRenderer)> = cam_dirs.iter().zip(&sim.cams).collect();
                frames.par_iter().try_for_each(|(d, c)| {
                    let p = d.join(format!("frame_{k:06}.png"));
                    let file = std::fs::File::create(&p).map_err(|e| io_err(&p, e))?;
                    let enc = image::codecs::png::PngEncoder::new_with_quality(
                        std::io::BufWriter::new(file),
                        image::codecs::png::CompressionType::Fast,
                        image::codecs::png::FilterType::Sub,
                    );
                    image::ImageEncoder::write_image(
                        enc,
                        &c.frame.rgb,
                        c.frame.width as u32,
                        c.frame.height as u32,
                        image::ExtendedColorType::Rgb8,
                    )
                    .map_err(|e| io_err(&p, e))
                })?;
            }
            Footage::Video => {
                for (v, c) in videos.iter_mut().zip(&sim.cams) {
                    if let Some(stdin) = v.as_mut().and_then(|ch| ch.stdin.as_mut()) {
                        stdin.write_all(&c.frame.rgb).map_err(|e| io_err(Path::new("ffmpeg"), e))?;
                    }
                }
            }
            Footage::None => {}
        }
        write_s += t1.elapsed().as_secs_f64();
        bar.set(k + 1, t, (k + 1) as f64 / started.elapsed().as_secs_f64());
    }
    bar.finish();
    for v in videos.iter_mut() {
        if let Some(mut child) = v.take() {
            drop(child.stdin.take());
            let st = child.wait().map_err(|e| io_err(Path::new("ffmpeg"), e))?;
            if !st.success() {
                return Err(io_err(Path::new("ffmpeg"), format!("exited with {st}")));
            }
        }
    }
    tracks.flush().map_err(|e| io_err(&truth_dir, e))?;
    world_out.flush().map_err(|e| io_err(&truth_dir, e))?;
    let w = &sim.world;
    let mut ev = create(&truth_dir.join("events.jsonl"))?;
    for e in &w.events {
        writeln!(ev, "{}", serde_json::to_string(e).unwrap_or_default()).map_err(|e| io_err(&truth_dir, e))?;
    }
    ev.flush().map_err(|e| io_err(&truth_dir, e))?;
    let write_json = |name: &str, v: &dyn erased::Json| -> Result<(), SimError> {
        let p = truth_dir.join(name);
        std::fs::write(&p, v.to_json()).map_err(|e| io_err(&p, e))
    };
    write_json("receipts.json", &w.receipts)?;
    write_json("handoffs.json", &w.handoffs)?;
    write_json("shoppers.json", &shoppers_truth(&w.shoppers))?;
    let mut gate = create(&sensors_dir.join("gate.jsonl"))?;
    for g in &w.gate_scans {
        writeln!(gate, "{}", serde_json::to_string(g).unwrap_or_default()).map_err(|e| io_err(&sensors_dir, e))?;
    }
    gate.flush().map_err(|e| io_err(&sensors_dir, e))?;
    if let Some(c) = cells.as_mut() {
        c.flush().map_err(|e| io_err(&sensors_dir, e))?;
    }
    let frames = n_frames;
    let render_fps = frames as f64 / render_s.max(1e-9);
    let summary = SimSummary {
        frames,
        cameras: config.cameras,
        width: config.width,
        height: config.height,
        fps: config.fps,
        events: w.events.len(),
        receipts: w.receipts.len(),
        render_s,
        write_s,
        render_fps,
        realtime: render_fps >= config.fps,
    };
    write_json("summary.json", &summary)?;
    Ok(summary)
}

/// One shopper as `truth/shoppers.json` lists them: their companion, if any, and the others
/// who wear the same (companions and every fifth shopper copy a look: shirt, trousers,
/// skin, hair, pattern and build; only height differs), for scoring the hard cases apart.
#[derive(serde::Serialize)]
struct ShopperTruth {
    id: u32,
    session: String,
    companion: Option<u32>,
    looks_like: Vec<u32>,
}

fn shoppers_truth(shoppers: &[world::Shopper]) -> Vec<ShopperTruth> {
    let same = |a: &world::Look, b: &world::Look| {
        (a.shirt, a.pants, a.skin, a.hair, a.pattern) == (b.shirt, b.pants, b.skin, b.hair, b.pattern) && a.build == b.build
    };
    shoppers
        .iter()
        .map(|s| ShopperTruth {
            id: s.id,
            session: s.session.clone(),
            companion: s.companion.and_then(|c| shoppers.get(c)).map(|c| c.id),
            looks_like: shoppers.iter().filter(|o| o.id != s.id && same(&o.look, &s.look)).map(|o| o.id).collect(),
        })
        .collect()
}

mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string_pretty(self).unwrap_or_default()
        }
    }
}

/// `walkout sim`'s progress: an indicatif bar on a terminal, a plain line every 10% elsewhere
/// (logs and CI, where a redrawn bar is noise), nothing when not asked for.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    total: u64,
}

impl Progress {
    fn new(show: bool, total: u64) -> Progress {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (show && tty).then(|| {
            let b = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template("[{bar:30}] {percent:>3}% frame {pos}/{len} {msg}") {
                b.set_style(style.progress_chars("#> "));
            }
            b
        });
        Progress { bar, lines: show && !tty, total }
    }

    fn set(&self, done: u64, t: f64, fps: f64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(format!("t={t:.1}s {fps:.1} frames/s"));
        } else if self.lines && (done == self.total || done * 10 / self.total.max(1) != (done - 1) * 10 / self.total.max(1)) {
            eprintln!("{:>3.0}% frame {done}/{} t={t:.1}s {fps:.1} frames/s", done as f64 * 100.0 / self.total.max(1) as f64, self.total);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
