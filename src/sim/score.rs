//! Scoring walkout's outputs against the simulator's ground truth: shelf events
//! (precision, recall, F1 with a time tolerance and SKU match), receipts (exact-receipt
//! accuracy and item-level precision and recall) and identities (IDF1 and HOTA, computed as
//! TrackEval does, over all cameras as one sequence so identities must hold across cameras).

use crate::events::{Event, Receipt, TrackRow};
use crate::perception::{assign, iou};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct EventScore {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn prf(tp: usize, fp: usize, fn_: usize) -> (f64, f64, f64) {
    let p = if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 };
    let r = if tp + fn_ == 0 { 1.0 } else { tp as f64 / (tp + fn_) as f64 };
    let f = if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) };
    (p, r, f)
}

/// One-to-one matching of predicted to true events of the same kind and SKU within
/// `tol` seconds, closest in time first.
pub fn score_events(truth: &[Event], pred: &[Event], tol: f64) -> EventScore {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, g) in truth.iter().enumerate() {
        for (j, p) in pred.iter().enumerate() {
            let dt = (g.t - p.t).abs();
            if dt <= tol && g.kind == p.kind && g.sku == p.sku {
                pairs.push((dt, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut gu, mut pu) = (vec![false; truth.len()], vec![false; pred.len()]);
    let mut tp = 0;
    for (_, i, j) in pairs {
        if !gu[i] && !pu[j] {
            gu[i] = true;
            pu[j] = true;
            tp += 1;
        }
    }
    let (fp, fn_) = (pred.len() - tp, truth.len() - tp);
    let (precision, recall, f1) = prf(tp, fp, fn_);
    EventScore { tp, fp, fn_, precision, recall, f1 }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ReceiptScore {
    pub sessions: usize,
    pub exact: usize,
    pub accuracy: f64,
    pub item_precision: f64,
    pub item_recall: f64,
}

/// Receipt accuracy: the share of true sessions whose predicted receipt has exactly the same
/// items (as a multiset); item precision and recall over all sessions.
pub fn score_receipts(truth: &[Receipt], pred: &[Receipt]) -> ReceiptScore {
    fn count(items: &[String]) -> BTreeMap<&str, usize> {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for i in items {
            *m.entry(i.as_str()).or_default() += 1;
        }
        m
    }
    let pmap: HashMap<&str, &Receipt> = pred.iter().map(|r| (r.session.as_str(), r)).collect();
    let (mut exact, mut tp, mut n_true, mut n_pred) = (0, 0usize, 0usize, 0usize);
    for g in truth {
        let gc = count(&g.items);
        n_true += g.items.len();
        if let Some(p) = pmap.get(g.session.as_str()) {
            let pc = count(&p.items);
            if gc == pc {
                exact += 1;
            }
            tp += gc.iter().map(|(k, &v)| v.min(*pc.get(k).unwrap_or(&0))).sum::<usize>();
        }
    }
    for p in pred {
        n_pred += p.items.len();
    }
    ReceiptScore {
        sessions: truth.len(),
        exact,
        accuracy: if truth.is_empty() { 1.0 } else { exact as f64 / truth.len() as f64 },
        item_precision: if n_pred == 0 {
            if n_true == 0 {
                1.0
            } else {
                0.0
            }
        } else {
            tp as f64 / n_pred as f64
        },
        item_recall: if n_true == 0 { 1.0 } else { tp as f64 / n_true as f64 },
    }
}

/// Tracking data in TrackEval's form: per time step, the gt and tracker ids present
/// (0-based, contiguous) and their similarity matrix.
#[derive(Clone, Debug, Default)]
pub struct TrackData {
    pub gt_ids: Vec<Vec<usize>>,
    pub tr_ids: Vec<Vec<usize>>,
    pub sim: Vec<Vec<Vec<f64>>>,
    pub n_gt_ids: usize,
    pub n_tr_ids: usize,
    /// The truth's own id of each relabelled truth identity (`gt_ids` index into it).
    pub gt_labels: Vec<u32>,
}

impl TrackData {
    /// The strict score's data: every truth row is required. Rows are keyed by (frame,
    /// camera), every camera-frame is a time step (so identities must hold across cameras),
    /// and boxes are compared by IoU of the truth's full-body box with the prediction's box.
    pub fn from_rows(truth: &[TrackRow], pred: &[TrackRow]) -> TrackData {
        let steps = steps(truth, pred);
        Self::build(steps.values().map(|(g, p)| (g.clone(), p.clone())))
    }

    /// The standard score's data, with MOTChallenge's preprocessing (TrackEval's
    /// `MotChallenge2DBox`): per time step, predictions are matched one-to-one to all truth
    /// rows (optimal assignment on IoU, pairs under 0.5 never match); predictions matched to a
    /// don't-care row are dropped; then the don't-care rows are dropped; what is left is scored.
    pub fn from_rows_mot(truth: &[TrackRow], pred: &[TrackRow], rule: &DontCare) -> (TrackData, MotPreprocessing) {
        let mut stats = MotPreprocessing::default();
        let mut kept = Vec::new();
        for (g, p) in steps(truth, pred).into_values() {
            let care: Vec<bool> = g.iter().map(|r| !rule.is_dont_care(r)).collect();
            stats.dont_care_rows += care.iter().filter(|c| !**c).count();
            let mut drop = vec![false; p.len()];
            if !g.is_empty() && !p.is_empty() {
                // maximise the matched IoU over pairs at >= 0.5 (SciPy's solver, as TrackEval)
                let eps = f64::EPSILON;
                let score = |a: &TrackRow, b: &TrackRow| {
                    let s = iou(&a.full_box(), &b.full_box());
                    if s < 0.5 - eps {
                        0.0
                    } else {
                        s
                    }
                };
                let cost: Vec<Vec<f64>> = g.iter().map(|a| p.iter().map(|b| -score(a, b)).collect()).collect();
                for (r, c) in assign(&cost) {
                    if -cost[r][c] > eps && !care[r] {
                        drop[c] = true;
                    }
                }
            }
            stats.dropped_predictions += drop.iter().filter(|d| **d).count();
            let g: Vec<&TrackRow> = g.iter().zip(&care).filter(|(_, c)| **c).map(|(r, _)| *r).collect();
            let p: Vec<&TrackRow> = p.iter().zip(&drop).filter(|(_, d)| !**d).map(|(r, _)| *r).collect();
            kept.push((g, p));
        }
        (Self::build(kept.into_iter()), stats)
    }

    /// Time steps with ids relabelled 0.. in order of the original ids (as TrackEval does).
    fn build<'a>(steps: impl Iterator<Item = (Vec<&'a TrackRow>, Vec<&'a TrackRow>)>) -> TrackData {
        let steps: Vec<_> = steps.collect();
        let relabel =
            |ids: std::collections::BTreeSet<u32>| -> BTreeMap<u32, usize> { ids.into_iter().enumerate().map(|(k, id)| (id, k)).collect() };
        let gmap = relabel(steps.iter().flat_map(|(g, _)| g.iter().map(|r| r.id)).collect());
        let pmap = relabel(steps.iter().flat_map(|(_, p)| p.iter().map(|r| r.id)).collect());
        let gt_labels = gmap.keys().copied().collect();
        let mut d = TrackData { n_gt_ids: gmap.len(), n_tr_ids: pmap.len(), gt_labels, ..Default::default() };
        for (g, p) in steps {
            d.gt_ids.push(g.iter().map(|r| gmap[&r.id]).collect());
            d.tr_ids.push(p.iter().map(|r| pmap[&r.id]).collect());
            d.sim.push(g.iter().map(|a| p.iter().map(|b| iou(&a.full_box(), &b.full_box())).collect()).collect());
        }
        d
    }
}

type Step<'a> = (Vec<&'a TrackRow>, Vec<&'a TrackRow>);

/// Truth and predicted rows per (frame, camera), in order.
pub fn steps<'a>(truth: &'a [TrackRow], pred: &'a [TrackRow]) -> BTreeMap<(u64, usize), Step<'a>> {
    let mut steps: BTreeMap<(u64, usize), Step> = BTreeMap::new();
    for r in truth {
        steps.entry((r.frame, r.cam)).or_default().0.push(r);
    }
    for r in pred {
        steps.entry((r.frame, r.cam)).or_default().1.push(r);
    }
    steps
}

/// Which truth rows are "don't care" in the standard score: neither required nor penalised,
/// as MOTChallenge's distractor rows. Defaults: visibility under 0.25, or a full-body box
/// under 40 px tall.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DontCare {
    pub min_visibility: f64,
    pub min_height: f64,
}

impl Default for DontCare {
    fn default() -> Self {
        DontCare { min_visibility: 0.25, min_height: 40.0 }
    }
}

impl DontCare {
    pub fn is_dont_care(&self, r: &TrackRow) -> bool {
        let b = r.full_box();
        (r.visibility() as f64) < self.min_visibility || ((b[3] - b[1]) as f64) < self.min_height
    }
}

/// Pose (detection) recall: of the truth rows whose visible box is at least `min_height`
/// pixels tall and whose visibility is at least `min_visibility`, how many are found by a
/// detection (one-to-one per camera-frame, full-body IoU >= 0.5). Returns (found, total).
pub fn detection_recall(truth: &[TrackRow], dets: &[TrackRow], min_height: f32, min_visibility: f32) -> (usize, usize) {
    let (mut found, mut total) = (0, 0);
    for (g, p) in steps(truth, dets).into_values() {
        let want: Vec<&TrackRow> =
            g.into_iter().filter(|r| r.bbox[3] - r.bbox[1] >= min_height && r.visibility() >= min_visibility).collect();
        total += want.len();
        found += matches(&want, &p).len();
    }
    (found, total)
}

/// One camera-frame's truth rows matched one-to-one to predictions: optimal assignment on
/// full-body IoU, pairs at 0.5 or more; (truth index, prediction index).
pub fn matches(truth: &[&TrackRow], pred: &[&TrackRow]) -> Vec<(usize, usize)> {
    if truth.is_empty() || pred.is_empty() {
        return Vec::new();
    }
    let cost: Vec<Vec<f64>> = truth.iter().map(|a| pred.iter().map(|b| -iou(&a.full_box(), &b.full_box())).collect()).collect();
    assign(&cost).into_iter().filter(|&(i, j)| -cost[i][j] >= 0.5).collect()
}

/// What MOTChallenge's preprocessing removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MotPreprocessing {
    pub dont_care_rows: usize,
    pub dropped_predictions: usize,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct IdScore {
    pub idtp: usize,
    pub idfp: usize,
    pub idfn: usize,
    pub idf1: f64,
    pub idp: f64,
    pub idr: f64,
}

/// IDF1 (Ristani et al.), matching detections at similarity >= 0.5 as TrackEval does.
pub fn idf1(d: &TrackData) -> IdScore {
    let n_gt: usize = d.gt_ids.iter().map(|v| v.len()).sum();
    let n_tr: usize = d.tr_ids.iter().map(|v| v.len()).sum();
    if n_gt == 0 || n_tr == 0 {
        return IdScore { idtp: 0, idfp: n_tr, idfn: n_gt, idf1: if n_gt == 0 && n_tr == 0 { 1.0 } else { 0.0 }, idp: 0.0, idr: 0.0 };
    }
    let idtp: usize = id_matches(d).iter().map(|m| m.2).sum();
    id_score(idtp, n_tr, n_gt)
}

fn id_score(idtp: usize, n_tr: usize, n_gt: usize) -> IdScore {
    let (idfp, idfn) = (n_tr - idtp, n_gt - idtp);
    let idf1 = idtp as f64 / (idtp as f64 + 0.5 * idfp as f64 + 0.5 * idfn as f64).max(1.0);
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    IdScore { idtp, idfp, idfn, idf1, idp: ratio(idtp, n_tr), idr: ratio(idtp, n_gt) }
}

/// IDF1's one-to-one pairing of truth and predicted identities that maximises the matched
/// rows: (truth identity, predicted identity, rows they share at similarity >= 0.5).
fn id_matches(d: &TrackData) -> Vec<(usize, usize, usize)> {
    let mut pot = vec![vec![0.0f64; d.n_tr_ids]; d.n_gt_ids];
    for t in 0..d.sim.len() {
        for (a, &g) in d.gt_ids[t].iter().enumerate() {
            for (b, &p) in d.tr_ids[t].iter().enumerate() {
                if d.sim[t][a][b] >= 0.5 {
                    pot[g][p] += 1.0;
                }
            }
        }
    }
    // maximise the matched count
    let cost: Vec<Vec<f64>> = pot.iter().map(|r| r.iter().map(|&x| -x).collect()).collect();
    assign(&cost).into_iter().map(|(g, p)| (g, p, pot[g][p] as usize)).collect()
}

/// The IDF1 of one group of truth identities (by the truth's own ids) and of the rest, from
/// the one pairing `idf1` makes: each side counts its identities' truth rows, the rows of
/// the predicted identities paired with them, and the matches between. Predicted identities
/// paired with no one (or with no rows in common) count on neither side, so the two do not
/// add up to `idf1`.
pub fn idf1_split(d: &TrackData, in_group: impl Fn(u32) -> bool) -> [IdScore; 2] {
    let side = |g: usize| if in_group(d.gt_labels[g]) { 0 } else { 1 };
    let (mut n_gt, mut n_tr, mut idtp) = ([0usize; 2], [0usize; 2], [0usize; 2]);
    for v in &d.gt_ids {
        for &g in v {
            n_gt[side(g)] += 1;
        }
    }
    let mut paired = vec![None; d.n_tr_ids];
    // a pair that shares no rows is the solver's filler, not a pairing
    for (g, p, n) in id_matches(d).into_iter().filter(|m| m.2 > 0) {
        idtp[side(g)] += n;
        paired[p] = Some(side(g));
    }
    for v in &d.tr_ids {
        for &p in v {
            if let Some(k) = paired[p] {
                n_tr[k] += 1;
            }
        }
    }
    [0, 1].map(|k| id_score(idtp[k], n_tr[k], n_gt[k]))
}

/// CLEAR MOT (Bernardin and Stiefelhagen 2008) as TrackEval's `CLEAR.eval_sequence` counts
/// it: per time step, matches (similarity >= 0.5) keep the previous step's pairs where they
/// can; an identity switch is a truth id matched to a tracker id other than the one it was
/// last matched to; a fragmentation is a truth id tracked again after a step untracked.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ClearScore {
    pub tp: usize,
    pub fn_: usize,
    pub fp: usize,
    pub idsw: usize,
    pub frag: usize,
    pub mota: f64,
}

pub fn clear(d: &TrackData) -> ClearScore {
    let eps = f64::EPSILON;
    let mut s = ClearScore::default();
    let mut prev: Vec<Option<usize>> = vec![None; d.n_gt_ids];
    let mut prev_step: Vec<Option<usize>> = vec![None; d.n_gt_ids];
    let mut tracked_once = vec![false; d.n_gt_ids];
    for t in 0..d.sim.len() {
        let (gi, ti) = (&d.gt_ids[t], &d.tr_ids[t]);
        if gi.is_empty() {
            s.fp += ti.len();
            continue;
        }
        if ti.is_empty() {
            s.fn_ += gi.len();
            continue;
        }
        let sim = &d.sim[t];
        let score: Vec<Vec<f64>> =
            (0..gi.len())
                .map(|a| {
                    (0..ti.len())
                        .map(|b| {
                            if sim[a][b] < 0.5 - eps {
                                0.0
                            } else {
                                sim[a][b] + if prev_step[gi[a]] == Some(ti[b]) { 1000.0 } else { 0.0 }
                            }
                        })
                        .collect()
                })
                .collect();
        let cost: Vec<Vec<f64>> = score.iter().map(|r| r.iter().map(|&x| -x).collect()).collect();
        let matched: Vec<(usize, usize)> = assign(&cost).into_iter().filter(|&(a, b)| score[a][b] > eps).collect();
        let mut now: Vec<Option<usize>> = vec![None; d.n_gt_ids];
        for &(a, b) in &matched {
            let (g, p) = (gi[a], ti[b]);
            if prev[g].is_some_and(|q| q != p) {
                s.idsw += 1;
            }
            prev[g] = Some(p);
            now[g] = Some(p);
        }
        for g in 0..d.n_gt_ids {
            if prev_step[g].is_none() && now[g].is_some() {
                if tracked_once[g] {
                    s.frag += 1;
                }
                tracked_once[g] = true;
            }
        }
        prev_step = now;
        s.tp += matched.len();
        s.fn_ += gi.len() - matched.len();
        s.fp += ti.len() - matched.len();
    }
    s.mota = (s.tp as f64 - s.fp as f64 - s.idsw as f64) / ((s.tp + s.fn_) as f64).max(1.0);
    s
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HotaScore {
    pub hota: f64,
    pub deta: f64,
    pub assa: f64,
    /// HOTA at each alpha 0.05, 0.10, ..., 0.95.
    pub per_alpha: Vec<f64>,
}

/// HOTA (Luiten et al. 2020), following TrackEval's `HOTA.eval_sequence`.
pub fn hota(d: &TrackData) -> HotaScore {
    let alphas: Vec<f64> = (1..=19).map(|k| k as f64 * 0.05).collect();
    let n_gt: usize = d.gt_ids.iter().map(|v| v.len()).sum();
    let n_tr: usize = d.tr_ids.iter().map(|v| v.len()).sum();
    if n_gt == 0 || n_tr == 0 {
        return HotaScore { hota: 0.0, deta: 0.0, assa: 0.0, per_alpha: vec![0.0; alphas.len()] };
    }
    let (ng, nt) = (d.n_gt_ids, d.n_tr_ids);
    let mut pot = vec![vec![0.0f64; nt]; ng];
    let mut gcount = vec![0.0f64; ng];
    let mut tcount = vec![0.0f64; nt];
    for t in 0..d.sim.len() {
        let s = &d.sim[t];
        let rows = d.gt_ids[t].len();
        let cols = d.tr_ids[t].len();
        let col_sum: Vec<f64> = (0..cols).map(|b| (0..rows).map(|a| s[a][b]).sum()).collect();
        let row_sum: Vec<f64> = (0..rows).map(|a| s[a].iter().sum()).collect();
        for a in 0..rows {
            for b in 0..cols {
                let den = col_sum[b] + row_sum[a] - s[a][b];
                if den > f64::EPSILON {
                    pot[d.gt_ids[t][a]][d.tr_ids[t][b]] += s[a][b] / den;
                }
            }
        }
        for &g in &d.gt_ids[t] {
            gcount[g] += 1.0;
        }
        for &p in &d.tr_ids[t] {
            tcount[p] += 1.0;
        }
    }
    let gas: Vec<Vec<f64>> = (0..ng).map(|g| (0..nt).map(|p| pot[g][p] / (gcount[g] + tcount[p] - pot[g][p])).collect()).collect();
    let na = alphas.len();
    let mut tp = vec![0.0f64; na];
    let mut fnc = vec![0.0f64; na];
    let mut fpc = vec![0.0f64; na];
    let mut matches = vec![vec![vec![0.0f64; nt]; ng]; na];
    for t in 0..d.sim.len() {
        let (gi, ti) = (&d.gt_ids[t], &d.tr_ids[t]);
        if gi.is_empty() {
            fpc.iter_mut().for_each(|x| *x += ti.len() as f64);
            continue;
        }
        if ti.is_empty() {
            fnc.iter_mut().for_each(|x| *x += gi.len() as f64);
            continue;
        }
        let s = &d.sim[t];
        let cost: Vec<Vec<f64>> = (0..gi.len()).map(|a| (0..ti.len()).map(|b| -(gas[gi[a]][ti[b]] * s[a][b])).collect()).collect();
        let m = assign(&cost);
        for (k, &alpha) in alphas.iter().enumerate() {
            let ok: Vec<(usize, usize)> = m.iter().copied().filter(|&(a, b)| s[a][b] >= alpha - f64::EPSILON).collect();
            tp[k] += ok.len() as f64;
            fnc[k] += (gi.len() - ok.len()) as f64;
            fpc[k] += (ti.len() - ok.len()) as f64;
            for (a, b) in ok {
                matches[k][gi[a]][ti[b]] += 1.0;
            }
        }
    }
    let mut per_alpha = Vec::with_capacity(na);
    let (mut deta_sum, mut assa_sum) = (0.0, 0.0);
    for k in 0..na {
        let mut ass = 0.0;
        for g in 0..ng {
            for p in 0..nt {
                let mc = matches[k][g][p];
                if mc > 0.0 {
                    ass += mc * mc / (gcount[g] + tcount[p] - mc).max(1.0);
                }
            }
        }
        let assa = ass / tp[k].max(1.0);
        let deta = tp[k] / (tp[k] + fnc[k] + fpc[k]).max(1.0);
        per_alpha.push((deta * assa).sqrt());
        deta_sum += deta;
        assa_sum += assa;
    }
    HotaScore { hota: per_alpha.iter().sum::<f64>() / na as f64, deta: deta_sum / na as f64, assa: assa_sum / na as f64, per_alpha }
}

/// 3-D pose error against the truth's joints: per frame, predicted people are matched one to
/// one to true ones (optimal assignment on the mean distance of the joints both have, within
/// `max_m`); each matched joint's error is its 3-D distance.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Pose3dScore {
    pub predicted: usize,
    pub matched: usize,
    /// Mean per-joint position error (MPJPE), metres.
    pub mpjpe_m: f64,
    /// Median wrist error, metres, and how many wrists.
    pub wrist_median_m: f64,
    pub wrists: usize,
    /// Share of matched joints within 0.1 m.
    pub within_10cm: f64,
}

/// `truth`: (frame, joints) per person; `pred`: (frame, joints or null) per person.
pub fn score_poses3d(truth: &[(u64, Vec<[f32; 3]>)], pred: &[(u64, Vec<Option<[f32; 4]>>)], max_m: f32) -> Pose3dScore {
    type Frame<'a> = (Vec<&'a Vec<[f32; 3]>>, Vec<&'a Vec<Option<[f32; 4]>>>);
    let mut by_frame: BTreeMap<u64, Frame> = BTreeMap::new();
    for (f, j) in truth {
        by_frame.entry(*f).or_default().0.push(j);
    }
    for (f, j) in pred {
        by_frame.entry(*f).or_default().1.push(j);
    }
    let err = |g: &[[f32; 3]], p: &[Option<[f32; 4]>]| -> Vec<(usize, f32)> {
        g.iter()
            .zip(p)
            .enumerate()
            .filter_map(|(j, (a, b))| b.map(|b| (j, ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt())))
            .collect()
    };
    let (mut sum, mut n, mut close) = (0.0f64, 0usize, 0usize);
    let mut wrists = Vec::new();
    let mut s = Pose3dScore { predicted: pred.len(), ..Default::default() };
    for (g, p) in by_frame.values() {
        if g.is_empty() || p.is_empty() {
            continue;
        }
        let cost: Vec<Vec<f64>> = p
            .iter()
            .map(|pp| {
                g.iter()
                    .map(|gg| {
                        let e = err(gg, pp);
                        let m = e.iter().map(|x| x.1).sum::<f32>() / e.len().max(1) as f32;
                        if e.is_empty() || m > max_m {
                            1e6
                        } else {
                            m as f64
                        }
                    })
                    .collect()
            })
            .collect();
        for (a, b) in assign(&cost) {
            if cost[a][b] >= 1e6 {
                continue;
            }
            s.matched += 1;
            for (j, e) in err(g[b], p[a]) {
                sum += e as f64;
                n += 1;
                close += (e <= 0.1) as usize;
                if j == 9 || j == 10 {
                    wrists.push(e);
                }
            }
        }
    }
    wrists.sort_by(f32::total_cmp);
    s.mpjpe_m = sum / n.max(1) as f64;
    s.within_10cm = close as f64 / n.max(1) as f64;
    s.wrists = wrists.len();
    s.wrist_median_m = wrists.get(wrists.len() / 2).copied().unwrap_or(0.0) as f64;
    s
}
