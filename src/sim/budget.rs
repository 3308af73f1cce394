//! Where identities are lost: an error budget for IDF1. The same predictions are scored three
//! times, with the standard (MOTChallenge-preprocessed) IDF1:
//! - **detection ceiling**: every prediction that matches a truth row in its camera-frame
//!   (full-body IoU >= 0.5, one-to-one, optimal) takes that truth row's identity, and every
//!   other one an identity of its own: what perfect tracking would score on these detections;
//! - **tracklet ceiling**: every per-camera tracklet (rows with the same camera and `track`)
//!   takes the identity most of its matched rows have: what perfect multi-camera fusion would
//!   score on these per-camera tracks (rows of a tracklet that belong to someone else are the
//!   per-camera tracker's switches);
//! - **actual**: the predictions as they are.
//!
//! 1 - detection ceiling is lost to detection (misses, false people, loose boxes), detection
//! ceiling - tracklet ceiling to per-camera tracking, tracklet ceiling - actual to fusion.

use super::score::{idf1, matches, DontCare, TrackData};
use crate::events::TrackRow;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Budget {
    pub detection_ceiling: f64,
    /// `None` when the predictions carry no camera track ids.
    pub tracklet_ceiling: Option<f64>,
    pub actual: f64,
    pub tracklets: usize,
    /// Tracklets with matched rows of two or more identities.
    pub impure_tracklets: usize,
    /// Matched rows whose tracklet belongs (by majority) to someone else.
    pub switched_rows: usize,
    pub matched_rows: usize,
}

/// Identities far from any truth id (a prediction's own when it matches no one).
const OWN: u32 = 1 << 30;

/// One camera-frame's truth rows and the indices of its predictions.
type Step<'a> = (Vec<&'a TrackRow>, Vec<usize>);

/// For each predicted row, the truth identity it matches in its camera-frame, if any.
pub fn truth_ids(truth: &[TrackRow], pred: &[TrackRow]) -> Vec<Option<u32>> {
    let mut steps: HashMap<(u64, usize), Step> = HashMap::new();
    for r in truth {
        steps.entry((r.frame, r.cam)).or_default().0.push(r);
    }
    for (i, r) in pred.iter().enumerate() {
        steps.entry((r.frame, r.cam)).or_default().1.push(i);
    }
    let mut out = vec![None; pred.len()];
    for (g, idx) in steps.values() {
        let p: Vec<&TrackRow> = idx.iter().map(|&i| &pred[i]).collect();
        for (r, c) in matches(g, &p) {
            out[idx[c]] = Some(g[r].id);
        }
    }
    out
}

fn score(truth: &[TrackRow], pred: &[TrackRow], rule: &DontCare) -> f64 {
    idf1(&TrackData::from_rows_mot(truth, pred, rule).0).idf1
}

/// The error budget of `pred` against `truth` (see the module's text).
pub fn budget(truth: &[TrackRow], pred: &[TrackRow], rule: &DontCare) -> Budget {
    let ids = truth_ids(truth, pred);
    let relabel = |label: &dyn Fn(usize) -> u32| -> Vec<TrackRow> {
        pred.iter().enumerate().map(|(i, r)| TrackRow { id: label(i), ..r.clone() }).collect()
    };
    let own = |i: usize| OWN + i as u32;
    let detection_ceiling = score(truth, &relabel(&|i| ids[i].unwrap_or(own(i))), rule);
    let mut b = Budget { detection_ceiling, actual: score(truth, pred, rule), ..Default::default() };
    if pred.iter().all(|r| r.track.is_none()) {
        return b;
    }
    // per tracklet: how many of its rows match each truth identity
    let mut votes: HashMap<(usize, Option<u64>), HashMap<u32, usize>> = HashMap::new();
    for (r, id) in pred.iter().zip(&ids).filter(|(r, _)| r.track.is_some()) {
        let v = votes.entry((r.cam, r.track)).or_default();
        if let Some(id) = id {
            *v.entry(*id).or_default() += 1;
        }
    }
    let majority: HashMap<(usize, Option<u64>), u32> =
        votes.iter().filter_map(|(k, v)| v.iter().max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id))).map(|(id, _)| (*k, *id))).collect();
    b.tracklets = votes.len();
    b.impure_tracklets = votes.values().filter(|v| v.len() > 1).count();
    b.matched_rows = ids.iter().flatten().count();
    b.switched_rows =
        pred.iter().zip(&ids).filter(|(r, id)| r.track.is_some() && id.is_some() && majority.get(&(r.cam, r.track)) != id.as_ref()).count();
    // a row without a camera track is a tracklet of its own
    let tracklet = |i: usize| match pred[i].track {
        Some(_) => majority.get(&(pred[i].cam, pred[i].track)).copied().unwrap_or(own(i)),
        None => ids[i].unwrap_or(own(i)),
    };
    b.tracklet_ceiling = Some(score(truth, &relabel(&tracklet), rule));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(frame: u64, cam: usize, id: u32, track: Option<u64>, x: f32) -> TrackRow {
        TrackRow {
            frame,
            t: frame as f64,
            cam,
            id,
            session: String::new(),
            bbox: [x, 0.0, x + 50.0, 100.0],
            full_bbox: None,
            visibility: None,
            visible_px: 0,
            score: None,
            floor: None,
            keypoints: Vec::new(),
            track,
            link: None,
        }
    }

    #[test]
    fn losses_split_between_camera_tracking_and_fusion() {
        // two people, two cameras, four frames; truth ids 1 (x = 0) and 2 (x = 200)
        let mut truth = Vec::new();
        for f in 0..4 {
            for cam in 0..2 {
                truth.push(row(f, cam, 1, None, 0.0));
                truth.push(row(f, cam, 2, None, 200.0));
            }
        }
        // camera 0 tracks both well; camera 1's track 7 swaps from person 1 to 2 after two
        // frames (and 8 the other way); fusion gives camera 1's tracks new global ids
        let mut pred = Vec::new();
        for f in 0..4 {
            pred.push(row(f, 0, 10, Some(1), 0.0));
            pred.push(row(f, 0, 20, Some(2), 200.0));
            let (a, b) = if f < 2 { (0.0, 200.0) } else { (200.0, 0.0) };
            pred.push(row(f, 1, 30, Some(7), a));
            pred.push(row(f, 1, 40, Some(8), b));
        }
        let b = budget(&truth, &pred, &DontCare::default());
        assert_eq!(b.detection_ceiling, 1.0);
        assert_eq!(b.tracklets, 4);
        assert_eq!(b.impure_tracklets, 2);
        assert_eq!(b.matched_rows, 16);
        assert_eq!(b.switched_rows, 4);
        // with perfect fusion: camera 1's tracklets each right half the time: 12 of 16
        let t = b.tracklet_ceiling.unwrap();
        assert!((t - 0.75).abs() < 1e-9, "{t}");
        // as predicted: ids 10 and 20 right (8 rows); 30 and 40 map to no one
        assert!((b.actual - 0.5).abs() < 1e-9, "{}", b.actual);
        // a false person costs the detection ceiling
        pred.push(row(0, 0, 50, Some(3), 400.0));
        let b = budget(&truth, &pred, &DontCare::default());
        assert!(b.detection_ceiling < 1.0 && b.detection_ceiling > 0.95);
    }
}
