//! Fusion's costs: what linking a sighting to a global track costs by floor distance, keypoint
//! rays against 3-D joints and look (module docs of `fusion`, steps 2 to 6).

use super::{dist, Fusion, FusionConfig, FusionMode, GlobalTrack, Observation, GATED};
use std::collections::HashMap;

/// Whether a tracklet's link to its best active track (`costs[best]`) waits: while
/// another track is nearly as likely (within `hold_margin`), for at most `hold_s` from
/// the first such step, the tracklet has no identity rather than perhaps a wrong one.
pub(super) fn hold(
    pending: &mut HashMap<(usize, u64), f64>,
    cfg: &FusionConfig,
    tracklet: (usize, u64),
    t: f64,
    costs: &[f64],
    best: usize,
) -> bool {
    let second = costs.iter().enumerate().filter(|&(k, &c)| k != best && c < GATED).map(|(_, &c)| c).fold(f64::INFINITY, f64::min);
    if second - costs[best] >= cfg.hold_margin {
        return false;
    }
    let since = *pending.entry(tracklet).or_insert(t);
    t - since < cfg.hold_s
}

impl Fusion {
    /// Median distance (metres) between a sighting's keypoint rays and a global track's 3-D
    /// joints moved on by its velocity; `None` without fresh joints, a calibration or three
    /// joints in common.
    pub(super) fn ray_distance(&self, o: &Observation, g: &GlobalTrack, t: f64) -> Option<f32> {
        if t - g.joints_t > self.config.joints_max_age_s || o.keypoints.is_empty() {
            return None;
        }
        let cam = self.cameras.get(&o.cam)?;
        let dt = (t - g.joints_t) as f32;
        let mut d: Vec<f32> = g
            .joints
            .iter()
            .zip(&o.keypoints)
            .filter_map(|(j, kp)| {
                let j = (*j)?;
                (kp[2] >= crate::perception::pose3d::MIN_SCORE).then_some(())?;
                let p = [j[0] + g.vel[0] * dt - cam.center[0], j[1] + g.vel[1] * dt - cam.center[1], j[2] - cam.center[2]];
                let r = cam.ray(kp[0], kp[1]);
                let c = [p[1] * r[2] - p[2] * r[1], p[2] * r[0] - p[0] * r[2], p[0] * r[1] - p[1] * r[0]];
                let rn = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
                Some((c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt() / rn.max(1e-9))
            })
            .collect();
        if d.len() < 3 {
            return None;
        }
        d.sort_by(f32::total_cmp);
        Some(d[d.len() / 2])
    }

    /// Cosine of a sighting's and a global track's embeddings, where both have one and the
    /// mode uses looks.
    pub(super) fn look(&self, o: &Observation, g: &GlobalTrack) -> Option<f32> {
        match (&o.embedding, &g.embedding) {
            (Some(a), Some(b)) if self.config.mode != FusionMode::GeometryOnly => Some(a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()),
            _ => None,
        }
    }

    /// A geometric cost (0..1) and a look (cosine) weighed by `appearance_weight`.
    pub(super) fn blend_cost(&self, geo: f32, cos: f32) -> f64 {
        let w = self.config.appearance_weight;
        ((1.0 - w) * geo + w * (1.0 - cos).max(0.0)) as f64
    }

    /// Cost of giving a sighting no one else can take to global track `k`: floor distance
    /// over `max_reach_m` (at most 1: no one is out of reach), and look.
    pub(super) fn stray_cost(&self, o: &Observation, k: usize, pred: [f32; 2]) -> f64 {
        let cfg = &self.config;
        let g = &self.tracks[k];
        let geo = (dist(pred, o.floor) / cfg.max_reach_m).min(1.0);
        let look = self.look(o, g);
        match (cfg.mode, look) {
            (FusionMode::AppearanceOnly, Some(c)) => (1.0 - c) as f64,
            (FusionMode::AppearanceOnly, None) => 1.0 + geo as f64,
            (_, Some(c)) => self.blend_cost(geo, c),
            (_, None) => geo as f64,
        }
    }

    /// Cost of linking a sighting to global track `k` (GATED when it may not).
    pub(super) fn cost(&self, o: &Observation, k: usize, pred: [f32; 2], t: f64, active: bool) -> f64 {
        let cfg = &self.config;
        let g = &self.tracks[k];
        let reach = if active { cfg.max_dist_m } else { (cfg.max_dist_m + cfg.speed_m_s * (t - g.last_seen) as f32).min(cfg.max_reach_m) };
        let d = dist(if active { pred } else { g.pos }, o.floor);
        let look = self.look(o, g);
        match cfg.mode {
            FusionMode::AppearanceOnly => match look {
                Some(c) if c >= cfg.min_appearance => (1.0 - c) as f64,
                // nothing to compare: only the very near
                None if d <= cfg.max_dist_m => 1.0 + (d / cfg.max_dist_m) as f64,
                _ => GATED,
            },
            _ => {
                let geo = match self.ray_distance(o, g, t).filter(|_| active) {
                    Some(r) if r > cfg.ray_gate_m => return GATED,
                    Some(r) => r / cfg.ray_gate_m,
                    None if d > reach => return GATED,
                    None => d / reach,
                };
                match look {
                    Some(c) if !active && c < cfg.min_appearance => GATED,
                    Some(c) => self.blend_cost(geo, c),
                    None => geo as f64,
                }
            }
        }
    }

    /// Cost of a tracklet's sighting staying with the active global track it is linked to
    /// (`keep_bonus`): the usual cost where admissible, else its floor distance over
    /// `relink_m` (a link holds further than a first link reaches); less the bonus.
    pub(super) fn kept_cost(&self, o: &Observation, k: usize, pred: [f32; 2], t: f64) -> f64 {
        let c = self.cost(o, k, pred, t, true);
        let c = if c < GATED {
            c
        } else {
            let geo = (dist(pred, o.floor) / self.config.relink_m).min(1.0);
            match self.look(o, &self.tracks[k]) {
                Some(cos) => self.blend_cost(geo, cos),
                None => geo as f64,
            }
        };
        c - self.config.keep_bonus
    }
}
