//! The live fusion stage: after per-camera tracking, each calibrated camera's tracked persons
//! are placed on the floor (`perception::place`) and linked to store-wide global tracks
//! (`perception::Fusion`); results leave with each person's global id and session. Gate
//! scans arrive through a bounded inbox (the `ReportGateScan` RPC); every update of the
//! global tracks goes out on a bounded broadcast (`StreamTracks`), where slow readers skip.
//! Cameras without a calibration pass through untouched. Where two or more cameras saw a
//! person at its latest sighting, its joints in 3-D go out with it.

use super::tracking::detections_of;
use super::Stage;
use crate::events::GateScan;
use crate::geometry::Camera;
use crate::perception::pose3d::Joint3;
use crate::perception::{place, Fusion, FusionConfig, Observation, Zone};
use crate::serve::result::FrameResult;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

/// Gate scans waiting for the stage; the oldest goes when it is full (counted).
#[derive(Debug)]
pub struct ScanInbox {
    queue: Mutex<VecDeque<GateScan>>,
    cap: usize,
    pub dropped: std::sync::atomic::AtomicU64,
}

impl ScanInbox {
    pub fn new(cap: usize) -> Self {
        ScanInbox { queue: Mutex::new(VecDeque::new()), cap: cap.max(1), dropped: Default::default() }
    }

    pub fn push(&self, s: GateScan) {
        let Ok(mut q) = self.queue.lock() else { return };
        if q.len() >= self.cap {
            q.pop_front();
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        q.push_back(s);
    }

    fn drain(&self) -> Vec<GateScan> {
        self.queue.lock().map(|mut q| q.drain(..).collect()).unwrap_or_default()
    }
}

/// A global track as `StreamTracks` sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackState {
    pub id: u64,
    pub session: String,
    pub pos: [f32; 2],
    pub vel: [f32; 2],
    pub last_seen: f64,
    /// COCO-17 joints in 3-D (`[x, y, z, confidence]`), where two or more cameras saw the
    /// person at about the same instant; empty otherwise.
    pub joints: Vec<Joint3>,
}

/// The global tracks after one update.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackUpdate {
    pub t: f64,
    /// The camera whose frame made this update.
    pub camera: String,
    pub tracks: Vec<TrackState>,
    /// Sessions that ended (at the exit) with this update.
    pub ended: Vec<String>,
}

/// Calibrated cameras by frame camera id.
pub type Calibrations = Arc<RwLock<HashMap<String, Camera>>>;

/// A floor plan's zones waiting to be taken by the stage (set when a store is configured).
pub type PendingZones = Arc<Mutex<Option<(Vec<Zone>, Option<Zone>)>>>;

pub struct FusionStage {
    fusion: Fusion,
    cams: Calibrations,
    zones: PendingZones,
    scans: Arc<ScanInbox>,
    updates: broadcast::Sender<Arc<TrackUpdate>>,
    /// Dense camera numbers for the fusion's (camera, track) keys.
    numbers: HashMap<String, usize>,
    ended_seen: usize,
}

impl std::fmt::Debug for FusionStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusionStage").field("tracks", &self.fusion.tracks().len()).finish()
    }
}

impl FusionStage {
    pub fn new(
        config: FusionConfig,
        zones: PendingZones,
        cams: Calibrations,
        scans: Arc<ScanInbox>,
        updates: broadcast::Sender<Arc<TrackUpdate>>,
    ) -> Self {
        FusionStage { fusion: Fusion::new(config, Vec::new(), None), cams, zones, scans, updates, numbers: HashMap::new(), ended_seen: 0 }
    }
}

impl Stage for FusionStage {
    fn name(&self) -> &'static str {
        "fusion"
    }

    fn on_frame(&mut self, r: Arc<FrameResult>, emit: &mut dyn FnMut(Arc<FrameResult>)) {
        if let Some((gates, exit)) = self.zones.lock().ok().and_then(|mut z| z.take()) {
            self.fusion.set_zones(gates, exit);
        }
        for s in self.scans.drain() {
            self.fusion.scan(s);
        }
        let cam = self.cams.read().ok().and_then(|c| c.get(&r.camera).cloned());
        let Some(cam) = cam else {
            emit(r);
            return;
        };
        let next = self.numbers.len();
        let number = *self.numbers.entry(r.camera.clone()).or_insert(next);
        let dets = detections_of(&r);
        let mut obs = Vec::new();
        let mut who = Vec::new();
        for (i, d) in dets.iter().enumerate() {
            let Some(track) = r.identities.get(i).and_then(|id| id.track) else { continue };
            let Some(at) = place(&cam, d) else { continue };
            obs.push(Observation { cam: number, track, floor: at.floor, embedding: d.embedding.clone(), keypoints: d.keypoints.clone() });
            who.push(i);
        }
        let t = r.capture_ts;
        self.fusion.set_camera(number, cam.clone());
        let globals = self.fusion.update(t, &obs);
        let mut out = (*r).clone();
        for (i, g) in who.into_iter().zip(globals).filter(|&(_, g)| g != 0) {
            if let Some(id) = out.identities.get_mut(i) {
                id.global = Some(g);
                id.session = self.fusion.session_of(g).map(str::to_string);
            }
        }
        let ended: Vec<String> = self.fusion.ended[self.ended_seen..].iter().map(|(s, _)| s.clone()).collect();
        self.ended_seen = self.fusion.ended.len();
        if self.fusion.ended.len() > 4096 {
            self.fusion.ended.clear();
            self.ended_seen = 0;
        }
        let tracks = self
            .fusion
            .tracks()
            .iter()
            .map(|g| TrackState {
                id: g.id,
                session: g.session.clone().unwrap_or_default(),
                pos: g.pos,
                vel: g.vel,
                last_seen: g.last_seen,
                // only joints of its latest sighting: a stale pose is no pose
                joints: if g.joints_t == g.last_seen { g.joints.clone() } else { Vec::new() },
            })
            .collect();
        let _ = self.updates.send(Arc::new(TrackUpdate { t, camera: r.camera.clone(), tracks, ended }));
        emit(Arc::new(out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::camera::{CamKind, Sensor};
    use crate::models::heads::{Keypoint, Person};
    use crate::serve::result::Identity;

    #[test]
    fn calibrated_cameras_get_global_ids_and_sessions_and_updates_go_out() {
        let sensor = Sensor { width: 640, height: 480, fps: 5.0 };
        let cam = Camera::look_at(0, CamKind::Ceiling, [1.0, -1.0, 3.0], [1.0, 2.0, 0.0], 90.0, sensor);
        let cam1 = Camera::look_at(1, CamKind::Ceiling, [4.0, 1.0, 3.0], [1.0, 1.0, 0.0], 90.0, sensor);
        let cams: Calibrations =
            Arc::new(RwLock::new(HashMap::from([("store-cam0".to_string(), cam.clone()), ("store-cam1".to_string(), cam1.clone())])));
        let scans = Arc::new(ScanInbox::new(4));
        let (tx, mut rx) = broadcast::channel(64);
        let gate = Zone { id: "gate-1".into(), polygon: vec![[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]] };
        let zones: PendingZones = Arc::new(Mutex::new(Some((vec![gate], None))));
        let mut stage = FusionStage::new(FusionConfig::default(), zones, cams, scans.clone(), tx);
        scans.push(GateScan { t: 0.0, lane: "gate-1".into(), session: "s-1".into() });
        let mut out = Vec::new();
        for k in 0..5 {
            // a person standing at (1, 1), seen by both cameras: ankles and head where each
            // camera sees them, the rest unsure
            for (name, c) in [("store-cam0", &cam), ("store-cam1", &cam1)] {
                let (u, v, _) = c.project([1.0, 1.0, 0.08]).expect("visible");
                let (hu, hv, _) = c.project([1.0, 1.0, 1.6]).expect("visible");
                let keypoints = (0..17)
                    .map(|i| match i {
                        0..=4 => Keypoint { x: hu, y: hv, score: 0.9 },
                        15 | 16 => Keypoint { x: u, y: v, score: 0.9 },
                        _ => Keypoint { x: u, y: (v + hv) / 2.0, score: 0.1 },
                    })
                    .collect();
                let p = Person { score: 0.8, bbox: [u.min(hu) - 20.0, hv.min(v), u.max(hu) + 20.0, v.max(hv)], keypoints };
                let mut r = FrameResult::sample(name, k, vec![p]);
                r.capture_ts = k as f64 * 0.2;
                r.identities = vec![Identity { track: Some(3), ..Default::default() }];
                stage.on_frame(Arc::new(r), &mut |r| out.push(r));
            }
            // an uncalibrated camera passes through
            stage.on_frame(Arc::new(FrameResult::sample("other", k, vec![])), &mut |r| out.push(r));
        }
        for name in ["store-cam0", "store-cam1"] {
            let last = out.iter().rev().find(|r| r.camera == name).expect("result");
            assert_eq!(last.identities[0].global, Some(1), "{name}");
            assert_eq!(last.identities[0].session.as_deref(), Some("s-1"));
        }
        assert_eq!(out.len(), 15);
        let mut updates = Vec::new();
        while let Ok(u) = rx.try_recv() {
            updates.push(u);
        }
        let u = updates.last().expect("an update");
        assert_eq!(u.tracks.len(), 1);
        let g = &u.tracks[0];
        assert!((g.pos[0] - 1.0).abs() < 0.1 && (g.pos[1] - 1.0).abs() < 0.1, "{u:?}");
        // both cameras saw the same instant: the head and ankles come back in 3-D, the
        // unsure joints do not
        assert_eq!(g.joints.len(), 17, "{u:?}");
        let head = g.joints[0].expect("head");
        let ankle = g.joints[15].expect("ankle");
        assert!((head[2] - 1.6).abs() < 0.02 && (ankle[2] - 0.08).abs() < 0.02, "{head:?} {ankle:?}");
        assert!((head[0] - 1.0).abs() < 0.02 && (head[1] - 1.0).abs() < 0.02, "{head:?}");
        assert!(g.joints[7].is_none());
    }
}
