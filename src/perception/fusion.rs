//! Multi-camera fusion on the floor: per-camera tracklets (camera, track id) are linked to
//! store-wide global tracks by where their feet stand, global tracks keep their own motion
//! (an alpha-beta filter on floor position and velocity), and sessions bind at the gate.
//!
//! Each time step, camera by camera:
//! 1. every global track is predicted to the step's time;
//! 2. a tracklet already linked to a live global track keeps it while its foot point stays
//!    within `relink_m` of that track's prediction, else it is unlinked;
//! 3. unlinked tracklets are assigned optimally to the global tracks that this camera does
//!    not already see, by floor distance under `max_dist_m` (appearance joins here with ReID);
//!    the rest start new global tracks;
//! 4. each global track moves to the mean foot point of its tracklets.
//!
//! Sessions: a global track standing in a gate lane binds to an unbound scan on that lane
//! within `gate_window_s` of it (each companion scans, and each binds to their own track: the
//! scan closest in time goes to the track that entered the lane first). A global track in
//! the exit zone ends its session. A global track unseen for `lost_s` is removed with its
//! links.

use super::assign;
use crate::events::GateScan;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub struct FusionConfig {
    pub max_dist_m: f32,
    pub relink_m: f32,
    pub lost_s: f64,
    pub gate_window_s: f64,
}

impl Default for FusionConfig {
    fn default() -> Self {
        FusionConfig { max_dist_m: 0.8, relink_m: 1.5, lost_s: 10.0, gate_window_s: 4.0 }
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

/// One camera's tracklet seen at one time step, standing at `floor`.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub cam: usize,
    pub track: u64,
    pub floor: [f32; 2],
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
    /// It went out through the exit; its session ended.
    pub exited: bool,
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
    t: f64,
    /// Sessions that ended, in order (session, global id).
    pub ended: Vec<(String, u64)>,
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

impl Fusion {
    pub fn new(config: FusionConfig, gates: Vec<Zone>, exit: Option<Zone>) -> Self {
        Fusion { config, gates, exit, next_id: 1, ..Default::default() }
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
        let dt = (t - self.t).max(0.0) as f32;
        self.t = t;
        let cfg = self.config.clone();
        let preds: Vec<[f32; 2]> = self.tracks.iter().map(|g| [g.pos[0] + g.vel[0] * dt, g.pos[1] + g.vel[1] * dt]).collect();
        let mut out = vec![0u64; obs.len()];
        let mut cams: Vec<usize> = obs.iter().map(|o| o.cam).collect();
        cams.sort_unstable();
        cams.dedup();
        for cam in cams {
            let mine: Vec<usize> = (0..obs.len()).filter(|&i| obs[i].cam == cam).collect();
            let mut taken: Vec<u64> = Vec::new();
            let mut free = Vec::new();
            for &i in &mine {
                let o = &obs[i];
                let linked = self.links.get(&(cam, o.track)).and_then(|&g| self.index_of(g).map(|k| (g, k)));
                match linked {
                    Some((g, k))
                        if dist(preds.get(k).copied().unwrap_or(self.tracks[k].pos), o.floor) <= cfg.relink_m && !taken.contains(&g) =>
                    {
                        out[i] = g;
                        taken.push(g);
                    }
                    _ => free.push(i),
                }
            }
            let cands: Vec<usize> = (0..self.tracks.len()).filter(|&k| !taken.contains(&self.tracks[k].id)).collect();
            const GATED: f64 = 1e6;
            let cost: Vec<Vec<f64>> = free
                .iter()
                .map(|&i| {
                    cands
                        .iter()
                        .map(|&k| {
                            let p = preds.get(k).copied().unwrap_or(self.tracks[k].pos);
                            let d = dist(p, obs[i].floor);
                            if d <= cfg.max_dist_m {
                                d as f64
                            } else {
                                GATED
                            }
                        })
                        .collect()
                })
                .collect();
            let pairs: Vec<(usize, usize)> = assign(&cost).into_iter().filter(|&(a, b)| cost[a][b] < GATED).collect();
            for (a, &i) in free.iter().enumerate() {
                let g = match pairs.iter().find(|p| p.0 == a) {
                    Some(&(_, b)) => self.tracks[cands[b]].id,
                    None => {
                        let id = self.next_id;
                        self.next_id += 1;
                        self.tracks.push(GlobalTrack {
                            id,
                            pos: obs[i].floor,
                            vel: [0.0; 2],
                            last_seen: t,
                            session: None,
                            in_gate_since: None,
                            exited: false,
                        });
                        id
                    }
                };
                self.links.insert((cam, obs[i].track), g);
                out[i] = g;
            }
        }
        // move each seen track to the mean of its foot points (alpha-beta)
        for (k, g) in self.tracks.iter_mut().enumerate() {
            let pts: Vec<[f32; 2]> = (0..obs.len()).filter(|&i| out[i] == g.id).map(|i| obs[i].floor).collect();
            if pts.is_empty() {
                continue;
            }
            let m = [pts.iter().map(|p| p[0]).sum::<f32>() / pts.len() as f32, pts.iter().map(|p| p[1]).sum::<f32>() / pts.len() as f32];
            let pred = preds.get(k).copied().unwrap_or(m);
            let fresh = g.last_seen == t;
            let (alpha, beta) = (0.6, 0.2);
            let r = [m[0] - pred[0], m[1] - pred[1]];
            g.pos = if fresh { m } else { [pred[0] + alpha * r[0], pred[1] + alpha * r[1]] };
            if !fresh && dt > 0.0 {
                g.vel = [g.vel[0] + beta * r[0] / dt, g.vel[1] + beta * r[1] / dt];
            }
            g.last_seen = t;
        }
        self.bind_sessions(t);
        // exits end sessions; long-unseen tracks go
        for g in &mut self.tracks {
            if !g.exited && self.exit.as_ref().is_some_and(|z| z.contains(g.pos)) {
                g.exited = true;
                if let Some(s) = &g.session {
                    self.ended.push((s.clone(), g.id));
                }
            }
        }
        let lost = cfg.lost_s;
        let gone: Vec<u64> = self.tracks.iter().filter(|g| t - g.last_seen > lost).map(|g| g.id).collect();
        self.tracks.retain(|g| !gone.contains(&g.id));
        self.links.retain(|_, g| !gone.contains(g));
        out
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
                Observation { cam: 0, track: 7, floor: [p[0] + 0.05, p[1]] },
                Observation { cam: 1, track: 3, floor: [p[0] - 0.05, p[1] + 0.04] },
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
            let mut obs = vec![Observation { cam: 0, track: 1, floor: [1.0, 0.5 + 0.05 * k as f32] }];
            if t >= 1.5 {
                obs.push(Observation { cam: 0, track: 2, floor: [1.2, 0.5 + 0.05 * (k - 15) as f32] });
            }
            // someone far away in another aisle
            obs.push(Observation { cam: 1, track: 9, floor: [6.0, 5.0] });
            last = f.update(t, &obs);
        }
        assert_eq!(last.len(), 3);
        assert!(last[0] != last[1] && last[1] != last[2] && last[0] != last[2], "{last:?}");
        assert_eq!(f.session_of(last[0]), Some("a"));
        assert_eq!(f.session_of(last[1]), Some("b"));
        assert_eq!(f.session_of(last[2]), None);
    }

    #[test]
    fn points_in_zones() {
        assert!(gate().contains([1.0, 0.5]) && !gate().contains([2.5, 0.5]));
    }
}
