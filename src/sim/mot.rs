//! MOTChallenge files from walkout's track rows, so that TrackEval (or any MOTChallenge tool)
//! scores exactly what `walkout eval` scores: every (frame, camera) is one MOT frame of a
//! single sequence; truth rows carry their full-body box and visibility, don't-care rows are
//! written as the distractor class (8), so TrackEval's `MotChallenge2DBox` preprocessing drops
//! the predictions matched to them; predictions go to the tracker file.
//!
//! Layout (TrackEval's defaults for `BENCHMARK=WALKOUT`, `SPLIT_TO_EVAL=all`):
//! `gt/WALKOUT-all/walkout/{gt/gt.txt,seqinfo.ini}`, `gt/seqmaps/WALKOUT-all.txt`,
//! `trackers/WALKOUT-all/walkout/data/walkout.txt`, and `export.json` naming them.

use super::score::{steps, DontCare};
use crate::events::TrackRow;
use std::io::Write;
use std::path::Path;

/// MOTChallenge's class ids used here.
const PEDESTRIAN: u32 = 1;
const DISTRACTOR: u32 = 8;

/// What was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MotExport {
    pub benchmark: &'static str,
    pub split: &'static str,
    pub seq: &'static str,
    pub tracker: &'static str,
    pub frames: usize,
    pub gt_rows: usize,
    pub dont_care_rows: usize,
    pub tracker_rows: usize,
}

/// A coordinate written so that a reader parsing it as f64 gets the f32 value exactly.
fn num(v: f64) -> String {
    format!("{v:?}")
}

/// x, y, w, h of a box, exact (the difference of two f32 values is exact in f64).
fn xywh(b: [f32; 4]) -> String {
    let [x0, y0, x1, y1] = b.map(f64::from);
    format!("{},{},{},{}", num(x0), num(y0), num(x1 - x0), num(y1 - y0))
}

/// Writes truth and predictions under `dir` as one MOTChallenge sequence.
pub fn export(dir: &Path, truth: &[TrackRow], pred: &[TrackRow], rule: &DontCare) -> std::io::Result<MotExport> {
    let (benchmark, split, seq, tracker) = ("WALKOUT", "all", "walkout", "walkout");
    let set = format!("{benchmark}-{split}");
    let gt_dir = dir.join("gt").join(&set).join(seq);
    let tr_dir = dir.join("trackers").join(&set).join(tracker).join("data");
    for d in [gt_dir.join("gt"), dir.join("gt/seqmaps"), tr_dir.clone()] {
        std::fs::create_dir_all(d)?;
    }
    let steps = steps(truth, pred);
    let mut gt = std::io::BufWriter::new(std::fs::File::create(gt_dir.join("gt/gt.txt"))?);
    let mut tr = std::io::BufWriter::new(std::fs::File::create(tr_dir.join(format!("{seq}.txt")))?);
    let mut e = MotExport { benchmark, split, seq, tracker, frames: steps.len(), gt_rows: 0, dont_care_rows: 0, tracker_rows: 0 };
    for (k, (g, p)) in steps.values().enumerate() {
        let t = k + 1;
        for r in g {
            let class = if rule.is_dont_care(r) { DISTRACTOR } else { PEDESTRIAN };
            e.gt_rows += 1;
            e.dont_care_rows += usize::from(class == DISTRACTOR);
            writeln!(gt, "{t},{},{},1,{class},{}", r.id, xywh(r.full_box()), num(r.visibility() as f64))?;
        }
        for r in p {
            e.tracker_rows += 1;
            writeln!(tr, "{t},{},{},1,-1,-1,-1", r.id, xywh(r.full_box()))?;
        }
    }
    gt.flush()?;
    tr.flush()?;
    std::fs::write(gt_dir.join("seqinfo.ini"), format!("[Sequence]\nname={seq}\nseqLength={}\n", steps.len().max(1)))?;
    std::fs::write(dir.join("gt/seqmaps").join(format!("{set}.txt")), format!("name\n{seq}\n"))?;
    std::fs::write(dir.join("export.json"), serde_json::to_string_pretty(&e).map_err(std::io::Error::other)?)?;
    Ok(e)
}
