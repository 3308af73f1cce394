//! Multi-camera fusion on the floor: per-camera tracklets (camera, track id) are linked to
//! store-wide global tracks by where their feet stand and what they look like, global tracks
//! keep their own motion (an alpha-beta filter on floor position and velocity), and sessions
//! bind at the gate.
//!
//! Each time step, camera by camera:
//! 1. every global track is predicted to the step's time;
//! 2. a tracklet already linked to a global track keeps it while its floor point stays within
//!    `relink_m` of that track's prediction, else it is unlinked;
//! 3. unlinked tracklets are assigned optimally to the **active** global tracks (seen within
//!    `recent_s`) that this camera does not already see: floor distance under `max_dist_m`,
//!    and appearance (cosine of ReID embeddings) where both sides have one;
//! 4. the rest are assigned to **unseen** global tracks (in a blind spot, behind a shelf,
//!    between cameras): the store is a closed world, so a person who turns up mid-store is
//!    most likely someone already inside. Such a track can be anywhere within
//!    `max_dist_m + speed_m_s * unseen time` (at most `max_reach_m`) of where it was last
//!    seen; with embeddings, only a look at least `min_appearance` alike counts, and
//!    distance (over that reach) and look weigh in as for active tracks (look-alike
//!    companions walk together: only where they are tells them apart);
//! 5. what is left starts new global tracks;
//! 6. each global track moves to the mean floor point of its tracklets; two global tracks
//!    seen together within `merge_m` by different cameras for `merge_s` are one person seen
//!    twice, and the younger merges into the older.
//!
//! `mode` picks the cues for the ablation: both, geometry only (embeddings ignored) or
//! appearance only (no floor gating; assignment on appearance alone).
//!
//! Sessions: a global track standing in a gate lane binds to an unbound scan on that lane
//! within `gate_window_s` of it (each companion scans, and each binds to their own track: the
//! scan closest in time goes to the track that entered the lane first). A global track in
//! the exit zone ends its session: its embedding is dropped then and there (privacy: an
//! appearance lives only as long as its shopper's session), and the track is removed
//! once unseen for `exit_linger_s`. A global track unseen for `lost_s` is removed with its links.

use super::{assign, blend};
use crate::events::GateScan;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FusionConfig {
    pub max_dist_m: f32,
    pub relink_m: f32,
    /// A global track seen this recently is active (step 3), else unseen (step 4).
    pub recent_s: f64,
    /// How fast an unseen person may have walked away from where they were last seen.
    pub speed_m_s: f32,
    pub max_reach_m: f32,
    pub lost_s: f64,
    pub gate_window_s: f64,
    /// Weight of appearance against floor distance where both sides have embeddings (0..1).
    pub appearance_weight: f32,
    /// Least cosine for an unseen track to be re-identified by its look.
    pub min_appearance: f32,
    pub merge_m: f32,
    pub merge_s: f64,
    pub exit_linger_s: f64,
    pub mode: FusionMode,
}

/// Which cues link tracklets to global tracks (the ablation's three arms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FusionMode {
    #[default]
    Both,
    GeometryOnly,
    AppearanceOnly,
}

impl Default for FusionConfig {
    fn default() -> Self {
        FusionConfig {
            max_dist_m: 1.2,
            relink_m: 2.0,
            recent_s: 1.0,
            speed_m_s: 1.2,
            max_reach_m: 12.0,
            lost_s: 300.0,
            gate_window_s: 4.0,
            appearance_weight: 0.5,
            min_appearance: 0.5,
            merge_m: 0.6,
            merge_s: 1.0,
            exit_linger_s: 3.0,
            mode: FusionMode::Both,
        }
    }
}

/// A floor polygon (metres).
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub id: String,
    pub polygon: Vec<[f32; 2]>,
}

impl Zone {
    /// Even-odd point in polygon.
    pub fn contains(&self, p: [f32; 2]) -> bool {
        let n = self.polygon.len();
        let mut inside = false;
        for i in 0..n {
            let (a, b) = (self.polygon[i], self.polygon[(i + n - 1) % n]);
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                inside = !inside;
            }
        }
        inside
    }
}

/// The gate lanes and the exit zone of a store's floor plan (`store/floorplan.json`:
/// `gate_lanes: [{id, polygon}]`, `exit_zone: {polygon}`).
pub fn zones_from_floorplan(plan: &serde_json::Value) -> (Vec<Zone>, Option<Zone>) {
    let zone = |z: &serde_json::Value, id: &str| -> Option<Zone> {
        let polygon: Vec<[f32; 2]> = serde_json::from_value(z.get("polygon")?.clone()).ok()?;
        (polygon.len() >= 3).then(|| Zone { id: z.get("id").and_then(|v| v.as_str()).unwrap_or(id).to_string(), polygon })
    };
    let gates = plan["gate_lanes"].as_array().into_iter().flatten().filter_map(|z| zone(z, "")).collect();
    (gates, zone(&plan["exit_zone"], "exit"))
}

/// One camera's tracklet seen at one time step, standing at `floor`.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub cam: usize,
    pub track: u64,
    pub floor: [f32; 2],
    /// L2-normalised ReID embedding of this sighting, if a ReID model ran.
    pub embedding: Option<Vec<f32>>,
}

/// A person on the floor.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalTrack {
    pub id: u64,
    pub pos: [f32; 2],
    pub vel: [f32; 2],
    pub last_seen: f64,
    pub session: Option<String>,
    /// When it was first seen in a gate lane.
    pub in_gate_since: Option<f64>,
    /// It went out through the exit (at this time); its session ended.
    pub exited: Option<f64>,
    /// Appearance: a slowly moving mean of its sightings' embeddings, while its session lives.
    pub embedding: Option<Vec<f32>>,
    /// Since when it has been seen near another global track by other cameras (merging).
    near: Option<(u64, f64)>,
}

/// The store-wide tracks.
#[derive(Clone, Debug, Default)]
pub struct Fusion {
    pub config: FusionConfig,
    gates: Vec<Zone>,
    exit: Option<Zone>,
    tracks: Vec<GlobalTrack>,
    links: HashMap<(usize, u64), u64>,
    scans: Vec<(GateScan, bool)>,
    next_id: u64,
    /// Sessions that ended, in order (session, global id).
    pub ended: Vec<(String, u64)>,
}

const GATED: f64 = 1e6;

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

impl Fusion {
    pub fn new(config: FusionConfig, gates: Vec<Zone>, exit: Option<Zone>) -> Self {
        Fusion { config, gates, exit, next_id: 1, ..Default::default() }
    }

    /// New gate lanes and exit (a floor plan configured after start).
    pub fn set_zones(&mut self, gates: Vec<Zone>, exit: Option<Zone>) {
        self.gates = gates;
        self.exit = exit;
    }

    pub fn tracks(&self) -> &[GlobalTrack] {
        &self.tracks
    }

    /// A gate scan arrived.
    pub fn scan(&mut self, s: GateScan) {
        self.scans.push((s, false));
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        self.tracks.iter().position(|g| g.id == id)
    }

    /// One time step's observations (any cameras); returns the global id of each.
    pub fn update(&mut self, t: f64, obs: &[Observation]) -> Vec<u64> {
        let cfg = self.config.clone();
        let preds: Vec<[f32; 2]> = self
            .tracks
            .iter()
            .map(|g| {
                // extrapolate over a second at most: an unseen person stops somewhere
                let k = ((t - g.last_seen) as f32).min(1.0);
                [g.pos[0] + g.vel[0] * k, g.pos[1] + g.vel[1] * k]
            })
            .collect();
        let mut out = vec![0u64; obs.len()];
        let mut cams: Vec<usize> = obs.iter().map(|o| o.cam).collect();
        cams.sort_unstable();
        cams.dedup();
        for cam in cams {
            let mine: Vec<usize> = (0..obs.len()).filter(|&i| obs[i].cam == cam).collect();
            let mut taken: Vec<u64> = Vec::new();
            let mut free = Vec::new();
            let pred = |k: usize| preds.get(k).copied().unwrap_or(self.tracks[k].pos);
            for &i in &mine {
                let o = &obs[i];
                let linked = self.links.get(&(cam, o.track)).and_then(|&g| self.index_of(g).map(|k| (g, k)));
                let near = |k: usize| cfg.mode == FusionMode::AppearanceOnly || dist(pred(k), o.floor) <= cfg.relink_m;
                match linked {
                    Some((g, k)) if near(k) && !taken.contains(&g) => {
                        out[i] = g;
                        taken.push(g);
                    }
                    _ => free.push(i),
                }
            }
            // step 3: active tracks; step 4: unseen ones
            for active in [true, false] {
                if free.is_empty() {
                    break;
                }
                let cands: Vec<usize> = (0..self.tracks.len())
                    .filter(|&k| {
                        let g = &self.tracks[k];
                        !taken.contains(&g.id) && g.exited.is_none() && ((t - g.last_seen) <= cfg.recent_s) == active
                    })
                    .collect();
                let cost: Vec<Vec<f64>> =
                    free.iter().map(|&i| cands.iter().map(|&k| self.cost(&obs[i], k, pred(k), t, active)).collect()).collect();
                let pairs: Vec<(usize, usize)> = assign(&cost).into_iter().filter(|&(a, b)| cost[a][b] < GATED).collect();
                let mut left = Vec::new();
                for (a, &i) in free.iter().enumerate() {
                    match pairs.iter().find(|p| p.0 == a) {
                        Some(&(_, b)) => {
                            let g = self.tracks[cands[b]].id;
                            self.links.insert((cam, obs[i].track), g);
                            out[i] = g;
                            taken.push(g);
                        }
                        None => left.push(i),
                    }
                }
                free = left;
            }
            // step 5: new global tracks
            for i in free {
                let id = self.next_id;
                self.next_id += 1;
                self.tracks.push(GlobalTrack {
                    id,
                    pos: obs[i].floor,
                    vel: [0.0; 2],
                    last_seen: t,
                    session: None,
                    in_gate_since: None,
                    exited: None,
                    embedding: None,
                    near: None,
                });
                self.links.insert((cam, obs[i].track), id);
                out[i] = id;
            }
        }
        self.move_tracks(t, obs, &out, &preds);
        self.merge(t, obs, &mut out);
        self.bind_sessions(t);
        // exits end sessions and drop appearances; long-unseen and long-gone tracks go
        for g in &mut self.tracks {
            if g.exited.is_none() && g.last_seen == t && self.exit.as_ref().is_some_and(|z| z.contains(g.pos)) {
                g.exited = Some(t);
                g.embedding = None;
                if let Some(s) = &g.session {
                    self.ended.push((s.clone(), g.id));
                }
            }
        }
        let gone: Vec<u64> = self
            .tracks
            .iter()
            .filter(|g| t - g.last_seen > cfg.lost_s || (g.exited.is_some() && t - g.last_seen > cfg.exit_linger_s))
            .map(|g| g.id)
            .collect();
        self.tracks.retain(|g| !gone.contains(&g.id));
        self.links.retain(|_, g| !gone.contains(g));
        out
    }

    /// Cost of linking a sighting to global track `k` (GATED when it may not).
    fn cost(&self, o: &Observation, k: usize, pred: [f32; 2], t: f64, active: bool) -> f64 {
        let cfg = &self.config;
        let g = &self.tracks[k];
        let reach = if active { cfg.max_dist_m } else { (cfg.max_dist_m + cfg.speed_m_s * (t - g.last_seen) as f32).min(cfg.max_reach_m) };
        let d = dist(if active { pred } else { g.pos }, o.floor);
        let look = match (&o.embedding, &g.embedding) {
            (Some(a), Some(b)) if cfg.mode != FusionMode::GeometryOnly => Some(a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()),
            _ => None,
        };
        match cfg.mode {
            FusionMode::AppearanceOnly => match look {
                Some(c) if c >= cfg.min_appearance => (1.0 - c) as f64,
                // nothing to compare: only the very near
                None if d <= cfg.max_dist_m => 1.0 + (d / cfg.max_dist_m) as f64,
                _ => GATED,
            },
            _ => {
                if d > reach {
                    return GATED;
                }
                let geo = d / reach;
                match look {
                    Some(c) if !active && c < cfg.min_appearance => GATED,
                    Some(c) => ((1.0 - cfg.appearance_weight) * geo + cfg.appearance_weight * (1.0 - c).max(0.0)) as f64,
                    None => geo as f64,
                }
            }
        }
    }

    /// Step 6: each seen track to the mean of its floor points (alpha-beta), and its
    /// appearance towards its sightings'.
    fn move_tracks(&mut self, t: f64, obs: &[Observation], out: &[u64], preds: &[[f32; 2]]) {
        let mode = self.config.mode;
        for (k, g) in self.tracks.iter_mut().enumerate() {
            let mine: Vec<&Observation> = (0..obs.len()).filter(|&i| out[i] == g.id).map(|i| &obs[i]).collect();
            if mine.is_empty() {
                continue;
            }
            let n = mine.len() as f32;
            let m = [mine.iter().map(|o| o.floor[0]).sum::<f32>() / n, mine.iter().map(|o| o.floor[1]).sum::<f32>() / n];
            let pred = preds.get(k).copied().unwrap_or(m);
            let gap = (t - g.last_seen) as f32;
            let fresh = gap == 0.0 || gap > 1.0;
            let (alpha, beta) = (0.6, 0.2);
            let r = [m[0] - pred[0], m[1] - pred[1]];
            g.pos = if fresh { m } else { [pred[0] + alpha * r[0], pred[1] + alpha * r[1]] };
            if fresh {
                g.vel = [0.0; 2];
            } else {
                g.vel = [g.vel[0] + beta * r[0] / gap, g.vel[1] + beta * r[1] / gap];
            }
            g.last_seen = t;
            if mode != FusionMode::GeometryOnly && g.exited.is_none() {
                for e in mine.iter().filter_map(|o| o.embedding.as_ref()) {
                    g.embedding = Some(match &g.embedding {
                        Some(old) if old.len() == e.len() => blend(old, e, 0.9),
                        _ => e.clone(),
                    });
                }
            }
        }
    }

    /// Two global tracks seen at the same time by different cameras, within `merge_m` for
    /// `merge_s`, are one person: the younger joins the older.
    fn merge(&mut self, t: f64, obs: &[Observation], out: &mut [u64]) {
        let cfg = self.config.clone();
        let seen: Vec<usize> = (0..self.tracks.len()).filter(|&k| self.tracks[k].last_seen == t).collect();
        let cams_of = |id: u64| -> Vec<usize> { (0..obs.len()).filter(|&i| out[i] == id).map(|i| obs[i].cam).collect() };
        let mut joins = Vec::new();
        for (x, &a) in seen.iter().enumerate() {
            let mut partner = None;
            for &b in &seen[x + 1..] {
                let (ga, gb) = (&self.tracks[a], &self.tracks[b]);
                let (ca, cb) = (cams_of(ga.id), cams_of(gb.id));
                if dist(ga.pos, gb.pos) <= cfg.merge_m && !ca.iter().any(|c| cb.contains(c)) {
                    partner = Some(gb.id);
                    break;
                }
            }
            let g = &mut self.tracks[a];
            g.near = match (partner, g.near) {
                (Some(p), Some((q, since))) if p == q => Some((q, since)),
                (Some(p), _) => Some((p, t)),
                (None, _) => None,
            };
            if let Some((p, since)) = g.near {
                if t - since >= cfg.merge_s {
                    joins.push((g.id.min(p), g.id.max(p)));
                }
            }
        }
        for (keep, drop) in joins {
            let (Some(k), Some(d)) = (self.index_of(keep), self.index_of(drop)) else { continue };
            if self.tracks[k].session.is_none() {
                self.tracks[k].session = self.tracks[d].session.take();
            }
            if self.tracks[k].in_gate_since.is_none() {
                self.tracks[k].in_gate_since = self.tracks[d].in_gate_since;
            }
            self.tracks[k].near = None;
            self.tracks.remove(d);
            for g in self.links.values_mut() {
                if *g == drop {
                    *g = keep;
                }
            }
            for o in out.iter_mut() {
                if *o == drop {
                    *o = keep;
                }
            }
        }
    }

    fn bind_sessions(&mut self, t: f64) {
        for g in &mut self.tracks {
            if g.in_gate_since.is_none() && g.last_seen == t && self.gates.iter().any(|z| z.contains(g.pos)) {
                g.in_gate_since = Some(t);
            }
        }
        // tracks waiting in a lane, in the order they entered it
        let mut waiting: Vec<usize> =
            (0..self.tracks.len()).filter(|&k| self.tracks[k].session.is_none() && self.tracks[k].in_gate_since.is_some()).collect();
        waiting.sort_by(|&a, &b| self.tracks[a].in_gate_since.unwrap_or(0.0).total_cmp(&self.tracks[b].in_gate_since.unwrap_or(0.0)));
        for k in waiting {
            let since = self.tracks[k].in_gate_since.unwrap_or(t);
            let best = self
                .scans
                .iter()
                .enumerate()
                .filter(|(_, (s, used))| !used && (s.t - since).abs() <= self.config.gate_window_s && s.t <= t + self.config.gate_window_s)
                .min_by(|(_, (a, _)), (_, (b, _))| (a.t - since).abs().total_cmp(&(b.t - since).abs()))
                .map(|(i, _)| i);
            if let Some(i) = best {
                self.scans[i].1 = true;
                self.tracks[k].session = Some(self.scans[i].0.session.clone());
            }
        }
    }

    /// The session bound to a global id, if any.
    pub fn session_of(&self, id: u64) -> Option<&str> {
        self.tracks.iter().find(|g| g.id == id).and_then(|g| g.session.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Zone {
        Zone { id: "gate-1".into(), polygon: vec![[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]] }
    }

    #[test]
    fn two_cameras_see_one_person_as_one_global_track_with_a_session() {
        let exit = Zone { id: "exit".into(), polygon: vec![[8.0, 0.0], [10.0, 0.0], [10.0, 1.0], [8.0, 1.0]] };
        let mut f = Fusion::new(FusionConfig::default(), vec![gate()], Some(exit));
        f.scan(GateScan { t: 0.2, lane: "gate-1".into(), session: "s1".into() });
        let mut ids = Vec::new();
        for k in 0..100 {
            let t = k as f64 * 0.1;
            // walks from the gate to the exit along y = 0.5, then up
            let x = 1.0 + 0.08 * k as f32;
            let p = [x, 0.5];
            let obs = vec![
                Observation { cam: 0, track: 7, floor: [p[0] + 0.05, p[1]], embedding: None },
                Observation { cam: 1, track: 3, floor: [p[0] - 0.05, p[1] + 0.04], embedding: None },
            ];
            let out = f.update(t, &obs);
            ids.push(out);
        }
        assert!(ids.iter().all(|o| o[0] == o[1] && o[0] == ids[0][0]), "{:?}", &ids[..3]);
        assert_eq!(f.session_of(ids[0][0]), Some("s1"));
        assert_eq!(f.ended, vec![("s1".to_string(), ids[0][0])]);
    }

    #[test]
    fn companions_each_bind_their_own_scan_and_far_people_stay_apart() {
        let mut f = Fusion::new(FusionConfig::default(), vec![gate()], None);
        f.scan(GateScan { t: 0.0, lane: "gate-1".into(), session: "a".into() });
        f.scan(GateScan { t: 1.5, lane: "gate-1".into(), session: "b".into() });
        let mut last = Vec::new();
        for k in 0..40 {
            let t = k as f64 * 0.1;
            let mut obs = vec![Observation { cam: 0, track: 1, floor: [1.0, 0.5 + 0.05 * k as f32], embedding: None }];
            if t >= 1.5 {
                obs.push(Observation { cam: 0, track: 2, floor: [1.2, 0.5 + 0.05 * (k - 15) as f32], embedding: None });
            }
            // someone far away in another aisle
            obs.push(Observation { cam: 1, track: 9, floor: [6.0, 5.0], embedding: None });
            last = f.update(t, &obs);
        }
        assert_eq!(last.len(), 3);
        assert!(last[0] != last[1] && last[1] != last[2] && last[0] != last[2], "{last:?}");
        assert_eq!(f.session_of(last[0]), Some("a"));
        assert_eq!(f.session_of(last[1]), Some("b"));
        assert_eq!(f.session_of(last[2]), None);
    }

    /// Privacy: a shopper's appearance lives only as long as their session; at the exit it is
    /// dropped, and the track goes once out of sight.
    #[test]
    fn embeddings_are_dropped_when_the_session_ends() {
        let exit = Zone { id: "exit".into(), polygon: vec![[4.0, 0.0], [6.0, 0.0], [6.0, 1.0], [4.0, 1.0]] };
        let mut f = Fusion::new(FusionConfig::default(), vec![gate()], Some(exit));
        f.scan(GateScan { t: 0.0, lane: "gate-1".into(), session: "s".into() });
        let look = Some(vec![0.6, 0.8]);
        let mut t = 0.0;
        for k in 0..60 {
            t = k as f64 * 0.1;
            let obs = vec![Observation { cam: 0, track: 1, floor: [1.0 + 0.08 * k as f32, 0.5], embedding: look.clone() }];
            f.update(t, &obs);
            let g = &f.tracks()[0];
            if g.exited.is_none() {
                assert!(g.embedding.is_some(), "a live session keeps its appearance at step {k}");
            }
        }
        assert_eq!(f.ended.len(), 1, "walked out through the exit");
        assert!(f.tracks().iter().all(|g| g.embedding.is_none()), "the appearance went with the session");
        // out of sight past the linger: the track itself is gone
        f.update(t + f.config.exit_linger_s + 0.5, &[]);
        assert!(f.tracks().is_empty());
    }

    #[test]
    fn points_in_zones() {
        assert!(gate().contains([1.0, 0.5]) && !gate().contains([2.5, 0.5]));
    }
}
