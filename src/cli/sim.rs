//! `walkout sim` and `walkout eval`: the synthetic store and its scorer.

use crate::events::{Event, Receipt, TrackRow};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct SimArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 6)]
    pub shoppers: usize,
    /// Number of cameras (4 to 32): a gate camera, an exit camera, then alternating ceiling and
    /// shelf views.
    #[arg(long, default_value_t = 8)]
    pub cameras: usize,
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 10.0)]
    pub fps: f64,
    #[arg(long, default_value_t = 640)]
    pub width: usize,
    #[arg(long, default_value_t = 480)]
    pub height: usize,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Footage: png (frames), video (one H.264 file per camera via ffmpeg) or none.
    #[arg(long, default_value = "png")]
    pub footage: String,
    /// Do not write shelf load-cell readings (sensors/loadcells.jsonl).
    #[arg(long)]
    pub no_loadcells: bool,
    /// Disable sensor noise.
    #[arg(long)]
    pub no_noise: bool,
}
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A simulation's output directory (or its truth/ directory).
    #[arg(long)]
    pub truth: PathBuf,
    /// Predicted events, one JSON object per line (t, kind, sku, ...).
    #[arg(long)]
    pub events: PathBuf,
    /// Predicted receipts: a JSON list of {session, items}.
    #[arg(long)]
    pub receipts: Option<PathBuf>,
    /// Predicted tracks, one JSON object per line (frame, cam, id, bbox).
    #[arg(long)]
    pub tracks: Option<PathBuf>,
    /// Time tolerance for matching events, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub tolerance: f64,
    /// Truth rows less visible than this (visible over unoccluded pixels) are "don't care" in
    /// the standard identity score, as MOTChallenge's distractors.
    #[arg(long, default_value_t = 0.25)]
    pub min_visibility: f64,
    /// Truth rows whose full-body box is shorter than this many pixels are "don't care" too.
    #[arg(long, default_value_t = 40.0)]
    pub min_height: f64,
    /// Raw per-frame detections (`walkout replay`'s detections.jsonl): report pose recall on
    /// visible persons (visible box >= 80 px tall, visibility >= 0.5).
    #[arg(long)]
    pub detections: Option<PathBuf>,
    /// Also write the truth and predicted tracks as MOTChallenge files (gt.txt, the tracker
    /// file, seqinfo.ini, seqmap) into this directory, for TrackEval.
    #[arg(long)]
    pub export_mot: Option<PathBuf>,
    /// People's joints in 3-D (`walkout replay`'s poses3d.jsonl): report the mean per-joint
    /// error (MPJPE) and the wrist error against the truth's joints.
    #[arg(long)]
    pub poses3d: Option<PathBuf>,
}

pub fn sim(a: SimArgs) -> Result<()> {
    use crate::sim::{Footage, SimConfig};
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
    let s = crate::sim::run(cfg, &a.out, footage, !a.no_loadcells, true)?;
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

pub fn eval(a: EvalArgs) -> Result<()> {
    use crate::sim::score;
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
        let gt: Vec<TrackRow> = read_jsonl(&truth.join("tracks.jsonl"))?;
        let pr: Vec<TrackRow> = read_jsonl(p)?;
        let rule = score::DontCare { min_visibility: a.min_visibility, min_height: a.min_height };
        let (d, prep) = score::TrackData::from_rows_mot(&gt, &pr, &rule);
        let strict = score::TrackData::from_rows(&gt, &pr);
        let (id, h, c) = (score::idf1(&d), score::hota(&d), score::clear(&d));
        let (ids, hs) = (score::idf1(&strict), score::hota(&strict));
        println!(
            "identities: IDF1 {:.3} (IDP {:.3}, IDR {:.3}); HOTA {:.3} (DetA {:.3}, AssA {:.3}) over {} camera-frames; \
             {} don't-care rows (visibility < {}, height < {} px), {} predictions on them dropped",
            id.idf1,
            id.idp,
            id.idr,
            h.hota,
            h.deta,
            h.assa,
            d.sim.len(),
            prep.dont_care_rows,
            a.min_visibility,
            a.min_height,
            prep.dropped_predictions
        );
        println!(
            "identities, strict (every truth row required): IDF1 {:.3} (IDP {:.3}, IDR {:.3}); HOTA {:.3} (DetA {:.3}, AssA {:.3})",
            ids.idf1, ids.idp, ids.idr, hs.hota, hs.deta, hs.assa
        );
        println!(
            "identity switches: {} (MOTA {:.3}: {} matched, {} missed, {} false; {} fragmentations), counted store-wide over camera-frames",
            c.idsw, c.mota, c.tp, c.fn_, c.fp, c.frag
        );
        // the hard cases apart: shoppers dressed like another (companions, every fifth)
        let shoppers_path = truth.join("shoppers.json");
        if shoppers_path.is_file() {
            #[derive(serde::Deserialize)]
            struct Shopper {
                id: u32,
                looks_like: Vec<u32>,
            }
            let shoppers: Vec<Shopper> = read_json(&shoppers_path)?;
            let alike: Vec<u32> = shoppers.iter().filter(|s| !s.looks_like.is_empty()).map(|s| s.id).collect();
            let [la, rest] = score::idf1_split(&d, |id| alike.contains(&id));
            // a side with no shoppers has no score (null in the JSON)
            let (la_f1, rest_f1) = ((!alike.is_empty()).then_some(la.idf1), (shoppers.len() > alike.len()).then_some(rest.idf1));
            let show = |f1: Option<f64>, s: &score::IdScore| match f1 {
                Some(f1) => format!("{f1:.3} (IDP {:.3}, IDR {:.3})", s.idp, s.idr),
                None => "n/a".to_string(),
            };
            println!(
                "identities by look: IDF1 {} for the {} shoppers dressed like another, {} for the other {}",
                show(la_f1, &la),
                alike.len(),
                show(rest_f1, &rest),
                shoppers.len() - alike.len()
            );
            out["idf1_lookalikes"] = la_f1.into();
            out["idf1_others"] = rest_f1.into();
            out["lookalikes"] = alike.len().into();
        }
        let b = crate::sim::budget::budget(&gt, &pr, &rule);
        match b.tracklet_ceiling {
            Some(tc) => println!(
                "identity budget: IDF1 {:.3} with perfect identities on these detections, {:.3} with perfect fusion of these \
                 camera tracks ({} tracklets, {} with two or more people, {} of {} matched rows in someone else's), {:.3} as is: \
                 {:.3} lost to detection, {:.3} to camera tracking, {:.3} to fusion",
                b.detection_ceiling,
                tc,
                b.tracklets,
                b.impure_tracklets,
                b.switched_rows,
                b.matched_rows,
                b.actual,
                1.0 - b.detection_ceiling,
                b.detection_ceiling - tc,
                tc - b.actual
            ),
            None => println!(
                "identity budget: IDF1 {:.3} with perfect identities on these detections, {:.3} as is (rows carry no camera track ids)",
                b.detection_ceiling, b.actual
            ),
        }
        out["budget"] = serde_json::to_value(&b)?;
        out["idf1"] = id.idf1.into();
        out["idsw"] = c.idsw.into();
        out["mota"] = c.mota.into();
        out["frag"] = c.frag.into();
        out["hota"] = h.hota.into();
        out["deta"] = h.deta.into();
        out["assa"] = h.assa.into();
        out["idf1_strict"] = ids.idf1.into();
        out["hota_strict"] = hs.hota.into();
        out["deta_strict"] = hs.deta.into();
        out["assa_strict"] = hs.assa.into();
        out["dont_care_rows"] = prep.dont_care_rows.into();
        out["dropped_predictions"] = prep.dropped_predictions.into();
        if let Some(dir) = &a.export_mot {
            let e = crate::sim::mot::export(dir, &gt, &pr, &rule).with_context(|| format!("writing {}", dir.display()))?;
            eprintln!("wrote MOTChallenge files for {} frames into {}", e.frames, dir.display());
        }
    }
    if let Some(p) = &a.detections {
        let gt: Vec<TrackRow> = read_jsonl(&truth.join("tracks.jsonl"))?;
        let dets: Vec<TrackRow> = read_jsonl(p)?;
        let (found, total) = score::detection_recall(&gt, &dets, 80.0, 0.5);
        let recall = if total == 0 { 1.0 } else { found as f64 / total as f64 };
        println!("pose recall: {found} of {total} visible persons taller than 80 px found ({:.1}%)", recall * 100.0);
        out["pose_recall"] = recall.into();
    }
    if let Some(p) = &a.poses3d {
        #[derive(serde::Deserialize)]
        struct World {
            frame: u64,
            joints: Vec<[f32; 3]>,
        }
        #[derive(serde::Deserialize)]
        struct Pose3d {
            frame: u64,
            joints: Vec<Option<[f32; 4]>>,
        }
        let gt: Vec<World> = read_jsonl(&truth.join("world.jsonl"))?;
        let pr: Vec<Pose3d> = read_jsonl(p)?;
        let gt: Vec<(u64, Vec<[f32; 3]>)> = gt.into_iter().map(|w| (w.frame, w.joints)).collect();
        let pr: Vec<(u64, Vec<Option<[f32; 4]>>)> = pr.into_iter().map(|w| (w.frame, w.joints)).collect();
        let s = score::score_poses3d(&gt, &pr, 0.5);
        println!(
            "3-D poses: {} of {} matched a true person; MPJPE {:.3} m, {:.1}% of joints within 10 cm; median wrist error {:.3} m over {} wrists",
            s.matched,
            s.predicted,
            s.mpjpe_m,
            s.within_10cm * 100.0,
            s.wrist_median_m,
            s.wrists
        );
        out["mpjpe_m"] = s.mpjpe_m.into();
        out["wrist_median_m"] = s.wrist_median_m.into();
    }
    println!("{out}");
    Ok(())
}
