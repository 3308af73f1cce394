//! The store around the cameras: calibrations that place each camera's people on the floor,
//! the floor plan's gate lanes and exit, gate scans and shelf readings as the store's devices
//! report them, and the global tracks fusion keeps (for `StreamTracks`).

use super::config::CameraConfig;
use super::stages::fusion::{Calibrations, PendingZones, ScanInbox, TrackUpdate};
use super::{ServeError, Server};
use crate::events::{GateScan, ShelfReading};
use crate::geometry::Camera;
use crate::perception::fusion::zones_from_floorplan;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Calibration and floor-plan files are small: anything bigger is not one.
const MAX_STORE_FILE: u64 = 4 << 20;

/// Shared between the server, its edges and the fusion stage.
#[derive(Debug)]
pub struct StoreState {
    pub calibrations: Calibrations,
    pub zones: PendingZones,
    pub scans: Arc<ScanInbox>,
    /// Shelf readings for the interaction stage (bounded; the oldest goes first).
    pub shelf: Mutex<VecDeque<ShelfReading>>,
    pub shelf_cap: usize,
    pub updates: broadcast::Sender<Arc<TrackUpdate>>,
    /// A floor plan was configured (a sim camera does not replace it).
    pub has_floorplan: bool,
}

impl StoreState {
    pub fn new(floorplan: Option<&Path>, max_pending: usize, buffer: usize) -> Result<Self, ServeError> {
        let zones = match floorplan {
            Some(p) => Some(zones_from_floorplan(&read_json(p)?)),
            None => None,
        };
        Ok(StoreState {
            calibrations: Default::default(),
            has_floorplan: zones.is_some(),
            zones: Arc::new(Mutex::new(zones)),
            scans: Arc::new(ScanInbox::new(max_pending)),
            shelf: Mutex::new(VecDeque::new()),
            shelf_cap: max_pending.max(1),
            updates: broadcast::channel(buffer.max(1)).0,
        })
    }
}

fn read_json(p: &Path) -> Result<serde_json::Value, ServeError> {
    let bad = |m: String| ServeError::InvalidArgument(format!("{}: {m}", p.display()));
    let len = std::fs::metadata(p).map_err(|e| bad(e.to_string()))?.len();
    if len > MAX_STORE_FILE {
        return Err(bad(format!("{len} bytes; a store file is at most {MAX_STORE_FILE}")));
    }
    let text = std::fs::read_to_string(p).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))
}

/// Longest lane or session name a device may report.
const MAX_NAME: usize = 256;

impl Server {
    /// Registers the calibrations (and, for a sim camera without a configured floor plan, the
    /// store's zones) of a camera being added.
    pub(super) fn calibrate_camera(&self, cfg: &CameraConfig, lanes: &[String]) -> Result<(), ServeError> {
        let mut found: Vec<(String, Camera)> = Vec::new();
        if let Some(p) = &cfg.calibration {
            let cam = Camera::from_calibration(&read_json(p)?).map_err(|e| ServeError::InvalidArgument(format!("{}: {e}", p.display())))?;
            found.extend(lanes.iter().map(|l| (l.clone(), cam.clone())));
        } else if cfg.source == "sim" {
            let (cams, plan) = crate::sources::sim_store(&cfg.url, cfg.width, cfg.height, cfg.fps)
                .map_err(|e| ServeError::InvalidArgument(format!("camera '{}': {e}", cfg.id)))?;
            found.extend(lanes.iter().cloned().zip(cams));
            if !self.store.has_floorplan {
                if let Ok(mut z) = self.store.zones.lock() {
                    *z = Some(zones_from_floorplan(&plan));
                }
            }
        }
        if let Ok(mut c) = self.store.calibrations.write() {
            c.extend(found);
        }
        Ok(())
    }

    pub(super) fn forget_calibrations(&self, lanes: &[String]) {
        if let Ok(mut c) = self.store.calibrations.write() {
            for l in lanes {
                c.remove(l);
            }
        }
    }

    /// An app scan at a gate lane (`t` 0: now).
    pub fn report_gate_scan(&self, mut scan: GateScan) -> Result<(), ServeError> {
        if scan.lane.is_empty() || scan.session.is_empty() || scan.lane.len() > MAX_NAME || scan.session.len() > MAX_NAME {
            return Err(ServeError::InvalidArgument(format!("lane and session must be 1 to {MAX_NAME} bytes")));
        }
        if !scan.t.is_finite() || scan.t < 0.0 {
            return Err(ServeError::InvalidArgument("scan time must be a finite number of seconds".into()));
        }
        if scan.t == 0.0 {
            scan.t = super::unix_now();
        }
        self.store.scans.push(scan);
        self.metrics.store_reports.with_label_values(&["gate_scan"]).inc();
        Ok(())
    }

    /// A shelf's load-cell reading (`t` 0: now), kept for the interaction stage.
    pub fn report_shelf_reading(&self, mut r: ShelfReading) -> Result<(), ServeError> {
        if r.shelf.is_empty() || r.shelf.len() > MAX_NAME || !r.grams.is_finite() || !r.t.is_finite() || r.t < 0.0 {
            return Err(ServeError::InvalidArgument(format!(
                "a shelf reading needs a shelf id (1 to {MAX_NAME} bytes), finite grams and time"
            )));
        }
        if r.t == 0.0 {
            r.t = super::unix_now();
        }
        let mut q = self.store.shelf.lock().map_err(|_| ServeError::Internal("shelf lock poisoned".into()))?;
        if q.len() >= self.store.shelf_cap {
            q.pop_front();
            self.metrics.store_reports.with_label_values(&["shelf_reading_dropped"]).inc();
        }
        q.push_back(r);
        self.metrics.store_reports.with_label_values(&["shelf_reading"]).inc();
        Ok(())
    }

    /// The ReID pipeline for a pose model's batcher: the configured `reid_model` on the pose
    /// model's device, when tracking runs and the repository has it (else none, logged).
    pub(super) fn reid_for(
        &self,
        name: &str,
        handle: &super::model::ModelHandle,
        device: crate::runtime::Device,
    ) -> Option<crate::pipeline::ReidPipeline> {
        let reid = self.config.reid_model.as_deref().filter(|r| !r.is_empty() && self.config.tracking)?;
        if !handle.current().is_some_and(|m| m.is_pose()) {
            return None;
        }
        match crate::pipeline::ReidPipeline::new(&self.repo, reid, device) {
            Ok(p) => {
                tracing::info!(model = name, reid, "persons are embedded for re-identification");
                Some(p)
            }
            Err(e) => {
                tracing::warn!(model = name, reid, error = %e, "no re-identification: tracking and fusion use geometry alone");
                None
            }
        }
    }

    /// Global track updates as fusion makes them.
    pub fn subscribe_tracks(&self) -> broadcast::Receiver<Arc<TrackUpdate>> {
        self.store.updates.subscribe()
    }
}
