//! Multi-camera fusion on the floor: per-camera tracklets (camera, track id) are linked to
//! store-wide global tracks by where their feet stand and what they look like, global tracks
//! keep their own motion (an alpha-beta filter on floor position and velocity), and sessions
//! bind at the gate.
//!
//! Each time step, camera by camera:
//! 1. every global track is predicted to the step's time;
//! 2. a tracklet already linked to a global track keeps it while its floor point stays within
//!    `relink_m` of that track's prediction, else it is unlinked; where that track is active,
//!    the link is only a prior (`keep_bonus`): the tracklet joins step 3 with its track's
//!    cost lowered, and keeps its link without an id for the step if another sighting of
//!    the camera wins its track (for at most `hold_s`, then it is placed as any other);
//! 3. unlinked tracklets are assigned optimally to the **active** global tracks (seen within
//!    `recent_s`) that this camera does not already see: where the track has fresh 3-D joints,
//!    by how close the sighting's keypoint rays pass to them (`ray_gate_m`, PoseTrack's
//!    point-to-ray test: it tells apart companions a floor point cannot), else by floor
//!    distance under `max_dist_m`; and by appearance (cosine of ReID embeddings) where both
//!    sides have one. Where another track is nearly as likely as the best (within
//!    `hold_margin`), the link waits, for at most `hold_s`: an identity given on a coin
//!    toss between companions sticks to the tracklet and drags the wrong global track with
//!    it, so a second without an identity costs less;
//! 4. the rest are assigned to **unseen** global tracks (in a blind spot, behind a shelf,
//!    between cameras): the store is a closed world, so a person who turns up mid-store is
//!    most likely someone already inside. Such a track can be anywhere within
//!    `max_dist_m + speed_m_s * unseen time` (at most `max_reach_m`) of where it was last
//!    seen; with embeddings, only a look at least `min_appearance` alike counts, and
//!    distance (over that reach) and look weigh in as for active tracks (look-alike
//!    companions walk together: only where they are tells them apart);
//! 5. what is left starts new global tracks only where someone can be new: in a gate lane,
//!    where a shopper who scanned and has no track yet could have walked by now (binding
//!    that scan), or anywhere in a store without gate lanes;
//! 6. anyone else mid-store is someone already inside: the best of the tracks this camera
//!    does not see takes them, by distance and look, however far (closed world);
//! 7. each global track moves to the mean floor point of its tracklets (weighed by how well
//!    each is placed: `placement_weight`); two global tracks
//!    seen together within `merge_m` by different cameras for `merge_s` are one person seen
//!    twice, and the younger merges into the older, unless each holds a session (each
//!    shopper scans their own: companions side by side are two). On development stores
//!    101, 202, 303, 808, 707, 606 and 909 this moved IDF1 from
//!    0.781/0.745/0.601/0.544/0.493/0.548/0.539 to 0.781/0.853/0.686/0.619/0.513/0.552/0.539;
//! 8. each global track keeps a gallery, the mean of its first `gallery_n` looks (when it
//!    came in, mostly alone at the gate); two global tracks seen now whose looks match each
//!    other's galleries better than their own, by a decayed sum of cosine gains above
//!    `swap_evidence`, swap identities (id, session, gallery): the links kept in step 2
//!    carry a camera tracker's swap between companions, or a wrong link, for as long as
//!    the tracklets live, and only the looks can undo it. On development stores 101, 202,
//!    707 and 808 this moved IDF1 from 0.881/0.740/0.440/0.480 to 0.900/0.745/0.483/0.603;
//! 9. each global track seen now by two or more calibrated cameras (`set_camera`) within
//!    `same_instant_s` gets its joints in 3-D (`pose3d`, for the hand-item events).
//!
//! `mode` picks the cues for the ablation: both, geometry only (embeddings ignored) or
//! appearance only (no floor gating; assignment on appearance alone).
//!
//! Sessions: a global track standing in a gate lane binds to an unbound scan on that lane
//! within `gate_window_s` of it (each companion scans, and each binds to their own track: the
//! scan closest in time goes to the track that entered the lane first). A global track in
//! the exit zone ends its session: its embedding and gallery are dropped then and there
//! (privacy: an appearance lives only as long as its shopper's session), and the track is
//! removed once unseen for `exit_linger_s`. A global track unseen for `lost_s` is removed with its links.

use super::pose3d::{triangulate_person, Joint3, View};
use super::{assign, blend};
use crate::events::GateScan;
use crate::geometry::Camera;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FusionConfig {
    /// How far (metres) a sighting's floor point may be from an active global track's
    /// prediction to link to it (where the track has no fresh 3-D joints). Over the 16
    /// development stores of `benches/fusion-stores` (eight with 6 shoppers, eight with
    /// 16), 1.2, 1.05, 0.9, 0.75 and 0.6 gave mean IDF1 0.672, 0.671, 0.688, 0.697 and
    /// 0.684; from 1.2 to 0.75, 11 of the 16 gained (median +0.03) and 5 lost (202 and 161
    /// by 0.06 and 0.08). Store by store it swings by up to 0.16 either way, so only many
    /// stores say anything.
    pub max_dist_m: f32,
    pub relink_m: f32,
    /// A tracklet's link to an active global track is a prior, not a rule: the tracklet goes
    /// into step 3's assignment with its linked track's cost lowered by this much (and that
    /// track admissible out to `relink_m`, by floor distance over it), so a camera tracker's
    /// swap between two people whose 3-D joints or floor points tell them apart is undone
    /// the same step. Where its track goes to another of the camera's sightings, the
    /// tracklet has no id for that step and keeps its link, for at most `hold_s` (a stray's
    /// guess, step 6, cost more; with the bound, 0.1 gave 0.737). 0: the link holds while within `relink_m` (step 2), as before 2026-12-08.
    /// Over the 16 stores of `benches/fusion-stores`, 0, 0.1, 0.2 and 0.3 gave mean IDF1
    /// 0.697, 0.735, 0.725 and 0.718 (0.1: 13 stores up, 3 down); without the no-id rule,
    /// 0.1 to 0.5 gave 0.696 to 0.719, the lost links turning into strays.
    pub keep_bonus: f64,
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
    /// Where a global track has joints in 3-D (two or more cameras saw it within
    /// `same_instant_s`, at most `joints_max_age_s` ago), a sighting's keypoint rays must pass
    /// this close (metres, median over joints) to them; this replaces the floor distance.
    pub ray_gate_m: f32,
    pub joints_max_age_s: f64,
    pub same_instant_s: f64,
    /// A tracklet's first link to an active track waits while another is within this much
    /// cost of the best (0 never waits) ... On development stores 101, 202, 303, 707 and
    /// 808, 0.3 for at most 1 s moved IDF1 from 0.734/0.812/0.535/0.415/0.450 to
    /// 0.853/0.820/0.532/0.406/0.463 and identity switches from 94/53/140/1115/1028 to
    /// 87/11/104/1031/933 (longer waits hurt store 303: 0.39 at 2 s).
    pub hold_margin: f64,
    /// ... for at most this long.
    pub hold_s: f64,
    /// A global track's gallery, its look when it came in, is the mean of its first this
    /// many looks (steps with embeddings; 0: no galleries, no swaps).
    pub gallery_n: u32,
    /// Two global tracks seen now swap identities once the evidence for it passes this:
    /// a sum of gains in cosine (each one's look against the other's gallery, less each
    /// against its own), decayed by `swap_decay` each step.
    pub swap_evidence: f64,
    pub swap_decay: f64,
    pub mode: FusionMode,
}

/// How a sighting got its global id at the latest step (`Fusion::how`): replay writes it
/// beside each row, so an identity error can be traced to the step that made it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// No id (a sighting mid-store before anyone is inside, or a link that waits).
    #[default]
    None,
    /// Step 2 (or step 3's prior, `keep_bonus`): its tracklet's link held.
    Kept,
    /// Step 3: assigned to an active global track.
    Active,
    /// Step 4: assigned to an unseen global track.
    Unseen,
    /// Step 5: started a new global track.
    New,
    /// Step 6: the closed world's last resort.
    Stray,
    /// Step 7: its global track merged into another.
    Merged,
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
            max_dist_m: 0.75,
            relink_m: 2.0,
            keep_bonus: 0.1,
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
            ray_gate_m: 0.35,
            joints_max_age_s: 0.5,
            same_instant_s: 0.06,
            hold_margin: 0.3,
            hold_s: 1.0,
            gallery_n: 10,
            swap_evidence: 1.5,
            swap_decay: 0.8,
            mode: FusionMode::Both,
        }
    }
}

/// One camera's tracklet seen at one time step, standing at `floor`.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub cam: usize,
    pub track: u64,
    pub floor: [f32; 2],
    /// L2-normalised ReID embedding of this sighting, if a ReID model ran.
    pub embedding: Option<Vec<f32>>,
    /// COCO-17 keypoints `[x, y, score]` in the camera's pixels (empty if none): with the
    /// camera's calibration (`Fusion::set_camera`) they give 3-D joints and ray distances.
    pub keypoints: Vec<[f32; 3]>,
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
    /// COCO-17 joints in 3-D, from the cameras that saw it at `joints_t` (empty if fewer
    /// than two did lately).
    pub joints: Vec<Joint3>,
    pub joints_t: f64,
    /// Since when it has been seen near another global track by other cameras (merging).
    near: Option<(u64, f64)>,
    /// Its look when it came in: the sum of its first `gallery_n` sightings' embeddings (a
    /// reference that later sightings do not drag), while its session lives.
    gallery: Option<(Vec<f32>, u32)>,
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
    cameras: HashMap<usize, Camera>,
    /// Per global track and camera: its latest keypoints there, and when.
    sightings: HashMap<(u64, usize), Sighting>,
    /// Tracklets whose link waits (`hold`), since when.
    pending: HashMap<(usize, u64), f64>,
    /// How each sighting of the latest step got its id (parallel to `update`'s result).
    pub how: Vec<Link>,
    /// Evidence that two global tracks (lower id first) wear each other's identities.
    swap_ev: HashMap<(u64, u64), f64>,
    /// Identity swaps made so far.
    pub swaps: u64,
}

use cost::hold;

const GATED: f64 = 1e6;

/// When a camera last saw a global track, and its keypoints there.
type Sighting = (f64, Vec<[f32; 3]>);

/// How much a sighting's floor point counts against others of the same person: one placed
/// by seen ankles counts four times as much as one placed by another part (inverse variance:
/// on development stores 101 and 707, 90% of the former are within 0.50-0.56 m of the true
/// foot point, against 0.76-0.94 m for the latter, and 1.6-2.0 m where the person is half
/// hidden). On the same stores this moved IDF1 on the crowded ones from 0.37/0.40 to
/// 0.42/0.45 and left the 6-shopper ones within 0.01.
fn placement_weight(o: &Observation) -> f32 {
    let feet = [15, 16].iter().all(|&j| o.keypoints.get(j).is_some_and(|k| k[2] >= super::locate::PART_MIN_SCORE));
    if feet || o.keypoints.is_empty() {
        4.0
    } else {
        1.0
    }
}

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

    /// A camera's calibration (its keypoints then give 3-D joints and ray distances).
    pub fn set_camera(&mut self, cam: usize, camera: Camera) {
        self.cameras.insert(cam, camera);
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

    /// One time step's observations (any cameras); returns the global id of each (0: none
    /// yet, a sighting mid-store before anyone is inside).
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
        self.how = vec![Link::None; obs.len()];
        let mut cams: Vec<usize> = obs.iter().map(|o| o.cam).collect();
        cams.sort_unstable();
        cams.dedup();
        for cam in cams {
            let mine: Vec<usize> = (0..obs.len()).filter(|&i| obs[i].cam == cam).collect();
            let mut taken: Vec<u64> = Vec::new();
            let mut free = Vec::new();
            let pred = |k: usize| preds.get(k).copied().unwrap_or(self.tracks[k].pos);
            // tracklets whose link is a prior in step 3 (`keep_bonus`), to their track's index
            let mut prior: HashMap<usize, usize> = HashMap::new();
            let soft = |k: usize| {
                cfg.keep_bonus > 0.0
                    && cfg.mode != FusionMode::AppearanceOnly
                    && self.tracks[k].exited.is_none()
                    && t - self.tracks[k].last_seen <= cfg.recent_s
            };
            for &i in &mine {
                let o = &obs[i];
                let linked = self.links.get(&(cam, o.track)).and_then(|&g| self.index_of(g).map(|k| (g, k)));
                let near = |k: usize| cfg.mode == FusionMode::AppearanceOnly || dist(pred(k), o.floor) <= cfg.relink_m;
                match linked {
                    Some((_, k)) if soft(k) && near(k) => {
                        prior.insert(i, k);
                        free.push(i);
                    }
                    Some((g, k)) if near(k) && !taken.contains(&g) => {
                        out[i] = g;
                        self.how[i] = Link::Kept;
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
                let cost: Vec<Vec<f64>> = free
                    .iter()
                    .map(|&i| {
                        cands
                            .iter()
                            .map(|&k| match prior.get(&i) {
                                Some(&p) if p == k && active => self.kept_cost(&obs[i], k, pred(k), t),
                                _ => self.cost(&obs[i], k, pred(k), t, active),
                            })
                            .collect()
                    })
                    .collect();
                let pairs: Vec<(usize, usize)> = assign(&cost).into_iter().filter(|&(a, b)| cost[a][b] < GATED).collect();
                let mut left = Vec::new();
                for (a, &i) in free.iter().enumerate() {
                    match pairs.iter().find(|p| p.0 == a) {
                        Some(&(_, b)) if prior.get(&i) == Some(&cands[b]) => {
                            self.pending.remove(&(cam, obs[i].track));
                            let g = self.tracks[cands[b]].id;
                            out[i] = g;
                            self.how[i] = Link::Kept;
                            taken.push(g);
                        }
                        Some(&(_, b))
                            if active && !prior.contains_key(&i) && hold(&mut self.pending, &cfg, (cam, obs[i].track), t, &cost[a], b) => {}
                        Some(&(_, b)) => {
                            self.pending.remove(&(cam, obs[i].track));
                            let g = self.tracks[cands[b]].id;
                            self.links.insert((cam, obs[i].track), g);
                            out[i] = g;
                            self.how[i] = if active { Link::Active } else { Link::Unseen };
                            taken.push(g);
                        }
                        // its linked track went to another of this camera's sightings: no id
                        // this step, the link stays for the next (rather than a stray's
                        // guess), for at most `hold_s`; then it is placed as any other
                        None if prior.contains_key(&i) && t - *self.pending.entry((cam, obs[i].track)).or_insert(t) < cfg.hold_s => {}
                        None => left.push(i),
                    }
                }
                free = left;
            }
            // step 5: new global tracks, where a person can be new: in a gate lane, where a
            // shopper who scanned and has no track yet could have walked by now (that scan
            // is theirs), or anywhere in a store without gate lanes
            let mut strays = Vec::new();
            for i in free {
                let o = &obs[i];
                let in_gate = self.gates.iter().any(|z| z.contains(o.floor));
                let scan = if in_gate { None } else { self.reachable_scan(o.floor, t) };
                if !(self.gates.is_empty() || in_gate || scan.is_some()) {
                    strays.push(i);
                    continue;
                }
                let session = scan.map(|k| {
                    self.scans[k].1 = true;
                    self.scans[k].0.session.clone()
                });
                let id = self.start(t, o, session);
                out[i] = id;
                self.how[i] = Link::New;
                taken.push(id);
            }
            // step 6: the closed world: anyone else mid-store is someone already inside; the
            // best of those this camera does not see now takes them, by distance (up to
            // `max_reach_m`) and look, however far their prediction (no one is left out)
            if !strays.is_empty() {
                let cands: Vec<usize> =
                    (0..self.tracks.len()).filter(|&k| !taken.contains(&self.tracks[k].id) && self.tracks[k].exited.is_none()).collect();
                let cost: Vec<Vec<f64>> = strays
                    .iter()
                    .map(|&i| {
                        cands.iter().map(|&k| self.stray_cost(&obs[i], k, preds.get(k).copied().unwrap_or(self.tracks[k].pos))).collect()
                    })
                    .collect();
                for (a, b) in assign(&cost) {
                    if cost[a][b] < GATED {
                        let (i, g) = (strays[a], self.tracks[cands[b]].id);
                        self.links.insert((cam, obs[i].track), g);
                        out[i] = g;
                        self.how[i] = Link::Stray;
                    }
                }
            }
        }
        self.move_tracks(t, obs, &out, &preds);
        self.merge(t, obs, &mut out);
        self.swap(t, obs, &mut out);
        self.lift(t, obs, &out);
        self.bind_sessions(t);
        // exits end sessions and drop appearances; long-unseen and long-gone tracks go
        for g in &mut self.tracks {
            if g.exited.is_none() && g.last_seen == t && self.exit.as_ref().is_some_and(|z| z.contains(g.pos)) {
                g.exited = Some(t);
                g.embedding = None;
                g.gallery = None;
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
        let keep = cfg.joints_max_age_s.max(cfg.same_instant_s);
        self.sightings.retain(|(g, _), (ts, _)| !gone.contains(g) && t - *ts <= keep);
        let hold = cfg.hold_s;
        self.pending.retain(|_, since| t - *since <= hold + 1.0);
        out
    }

    /// Each global track seen now gets 3-D joints from the cameras that saw it at this
    /// instant (its latest keypoints per camera within `same_instant_s`).
    fn lift(&mut self, t: f64, obs: &[Observation], out: &[u64]) {
        for (o, &g) in obs.iter().zip(out) {
            if !o.keypoints.is_empty() && self.cameras.contains_key(&o.cam) {
                self.sightings.insert((g, o.cam), (t, o.keypoints.clone()));
            }
        }
        let win = self.config.same_instant_s;
        for k in 0..self.tracks.len() {
            let g = self.tracks[k].id;
            if self.tracks[k].last_seen != t {
                continue;
            }
            let views: Vec<View> = self
                .sightings
                .iter()
                .filter(|((id, _), (ts, _))| *id == g && (t - ts).abs() <= win)
                .filter_map(|((_, cam), (_, kp))| Some(View { camera: self.cameras.get(cam)?, keypoints: kp }))
                .collect();
            let joints = triangulate_person(&views);
            if joints.iter().any(|j| j.is_some()) {
                self.tracks[k].joints = joints;
                self.tracks[k].joints_t = t;
            }
        }
    }

    /// The first unbound gate scan whose shopper could have walked to `p` by `t` (from the
    /// scan's lane at `speed_m_s`, give or take `max_dist_m`).
    fn reachable_scan(&self, p: [f32; 2], t: f64) -> Option<usize> {
        let cfg = &self.config;
        self.scans.iter().position(|(s, used)| {
            let Some(lane) = self.gates.iter().find(|z| z.id == s.lane) else { return false };
            let n = lane.polygon.len().max(1) as f32;
            let c = [lane.polygon.iter().map(|q| q[0]).sum::<f32>() / n, lane.polygon.iter().map(|q| q[1]).sum::<f32>() / n];
            let since = (t - s.t) as f32;
            !used && since >= -(cfg.gate_window_s as f32) && dist(c, p) <= cfg.max_dist_m + cfg.speed_m_s * since.max(0.0)
        })
    }

    /// A new global track for a sighting, linked to it.
    fn start(&mut self, t: f64, o: &Observation, session: Option<String>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.tracks.push(GlobalTrack {
            id,
            pos: o.floor,
            vel: [0.0; 2],
            last_seen: t,
            session,
            in_gate_since: None,
            exited: None,
            embedding: None,
            joints: Vec::new(),
            joints_t: f64::NEG_INFINITY,
            near: None,
            gallery: None,
        });
        self.links.insert((o.cam, o.track), id);
        id
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
            let w: Vec<f32> = mine.iter().map(|o| placement_weight(o)).collect();
            let n: f32 = w.iter().sum();
            let m = [0, 1].map(|a| mine.iter().zip(&w).map(|(o, w)| w * o.floor[a]).sum::<f32>() / n);
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

mod cost;
mod identity;
mod zones;
pub use zones::{zones_from_floorplan, Zone};
#[cfg(test)]
mod tests;
