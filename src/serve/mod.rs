//! Serving: camera sources, the dynamic batcher per model, model hot swap, and the server
//! state the gRPC and HTTP edges (`crate::api`) share.

pub mod batcher;
pub mod budget;
pub mod camera;
pub mod config;
mod error;
pub mod guard;
pub mod metrics;
pub mod model;
mod result;
pub mod stages;
pub mod stats;
pub mod store;

pub use error::ServeError;
pub use result::{FrameResult, Identity};

use crate::graph::Tensor;
use crate::models::Repository;
use crate::runtime::Device;
use crate::sources::CameraFrame;
use batcher::{Batcher, PushOutcome, TensorReply};
use camera::{CameraEntry, FrameSink};
use config::{BatchingParams, CameraConfig, ModelServeConfig, ServerConfig};
use metrics::Metrics;
use model::{LoadedModel, ModelHandle, ModelState};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Seconds since the Unix epoch (capture timestamps of pushed frames).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A served model: its current version and its batcher.
#[derive(Debug)]
pub struct ModelSlot {
    pub name: String,
    pub handle: Arc<ModelHandle>,
    pub batcher: Batcher,
    pub device: Device,
    pub input_size: Option<[usize; 2]>,
}

/// Everything the server shares between its edges, sources and batchers.
pub struct Server {
    pub config: ServerConfig,
    pub repo: Repository,
    pub metrics: Metrics,
    models: RwLock<BTreeMap<String, Arc<ModelSlot>>>,
    cameras: Mutex<BTreeMap<String, CameraEntry>>,
    results: broadcast::Sender<Arc<FrameResult>>,
    /// The stages after the model (tracking, fusion, events plug in here).
    stages: stages::Stages,
    /// Calibrations, floor plan, gate scans, shelf readings and global track updates.
    store: store::StoreState,
    draining: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
    started: Instant,
    /// The configured models and cameras are up.
    loaded: AtomicBool,
    /// Models whose last load failed (and that hold no loaded version), with the reason.
    load_failures: Mutex<BTreeMap<String, String>>,
    /// Bytes of queued frames and requests, across all cameras, clients and models.
    pub budget: Arc<budget::MemoryBudget>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("grpc_addr", &self.config.grpc_addr).finish()
    }
}

impl Server {
    /// Loads the configured models (every repository model when none is listed) and starts
    /// the configured cameras.
    pub fn start(config: ServerConfig) -> Result<Arc<Server>, ServeError> {
        let server = Self::new(config)?;
        server.load_configured()?;
        Ok(server)
    }

    /// A server with nothing loaded yet (not ready); see [`Server::load_configured`].
    pub fn new(config: ServerConfig) -> Result<Arc<Server>, ServeError> {
        config.validate().map_err(|e| ServeError::InvalidArgument(e.to_string()))?;
        let (results, _) = broadcast::channel(config.result_buffer);
        let (shutdown_tx, _) = watch::channel(false);
        let metrics = Metrics::new();
        let store = store::StoreState::new(config.floorplan.as_deref(), config.max_pending_scans, config.result_buffer)?;
        let mut chain: Vec<Box<dyn stages::Stage>> = Vec::new();
        if config.tracking {
            chain.push(Box::new(stages::tracking::TrackStage::default()));
            if config.fusion {
                chain.push(Box::new(stages::fusion::FusionStage::new(
                    crate::perception::FusionConfig::default(),
                    store.zones.clone(),
                    store.calibrations.clone(),
                    store.scans.clone(),
                    store.updates.clone(),
                )));
            }
        }
        let stages = stages::Stages::start(chain, results.clone(), metrics.clone(), config.result_buffer)
            .map_err(|e| ServeError::Internal(format!("starting the stages: {e}")))?;
        let server = Arc::new(Server {
            repo: Repository::open(&config.model_repository),
            metrics,
            models: RwLock::new(BTreeMap::new()),
            cameras: Mutex::new(BTreeMap::new()),
            results,
            stages,
            store,
            draining: AtomicBool::new(false),
            shutdown_tx,
            started: Instant::now(),
            loaded: AtomicBool::new(false),
            load_failures: Mutex::new(BTreeMap::new()),
            budget: budget::MemoryBudget::new(config.max_queued_bytes),
            config,
        });
        Ok(server)
    }

    /// Loads the configured models (every repository model when none is listed) and starts
    /// the configured cameras; the server is ready afterwards.
    pub fn load_configured(self: &Arc<Self>) -> Result<(), ServeError> {
        let server = self;
        let mut models = server.config.models.clone();
        if models.is_empty() {
            let list = server.repo.list().map_err(|e| ServeError::Load(e.to_string()))?;
            models = list
                .into_iter()
                .filter(|e| e.config.is_ok() && !e.versions.is_empty())
                .map(|e| ModelServeConfig { name: e.name, device: None, input_size: None, batching: None })
                .collect();
            if models.is_empty() {
                return Err(ServeError::Load(format!(
                    "no loadable model in {} (run scripts/fetch-models)",
                    server.config.model_repository.display()
                )));
            }
        }
        if server.config.models.is_empty() {
            // found in the repository: a model that fails is reported (RepositoryIndex) and
            // the others serve
            let mut ok = 0;
            for m in &models {
                match server.load_model_with(m) {
                    Ok(_) => ok += 1,
                    Err(e) => tracing::error!(model = %m.name, "failed to load; the other models serve: {e}"),
                }
            }
            if ok == 0 {
                return Err(ServeError::Load(format!("no model in {} loaded", server.config.model_repository.display())));
            }
        } else {
            for m in &models {
                server.load_model_with(m)?;
            }
        }
        for c in server.config.cameras.clone() {
            server.add_camera(c)?;
        }
        server.loaded.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Ready: models loaded and not draining.
    pub fn is_ready(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
            && !self.draining.load(Ordering::SeqCst)
            && self.models.read().map(|m| !m.is_empty() && m.values().all(|s| s.handle.current().is_some())).unwrap_or(false)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FrameResult>> {
        self.results.subscribe()
    }

    /// Resolves when the server starts shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    pub fn model(&self, name: &str) -> Result<Arc<ModelSlot>, ServeError> {
        self.models.read().ok().and_then(|m| m.get(name).cloned()).ok_or_else(|| ServeError::ModelNotFound(name.to_string()))
    }

    pub fn model_names(&self) -> Vec<String> {
        self.models.read().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// The model used when a request or camera names none: the first pose model.
    pub fn default_pose_model(&self) -> Result<String, ServeError> {
        let models = self.models.read().map_err(|_| ServeError::Internal("models lock poisoned".into()))?;
        models
            .values()
            .find(|s| s.handle.current().is_some_and(|m| m.is_pose()))
            .map(|s| s.name.clone())
            .ok_or_else(|| ServeError::ModelNotFound("(default pose model)".into()))
    }

    /// The model's current version, checked against a requested version ("" = any).
    pub fn model_version(&self, name: &str, version: &str) -> Result<(Arc<ModelSlot>, Arc<LoadedModel>), ServeError> {
        let slot = self.model(name)?;
        let m = slot.handle.current().ok_or_else(|| ServeError::Unavailable(format!("model '{name}' is not ready")))?;
        if !version.is_empty() && version != m.version.to_string() {
            return Err(ServeError::VersionNotFound { name: name.into(), version: version.into(), serving: m.version });
        }
        Ok((slot, m))
    }

    /// Loads (or reloads, as a hot swap) a repository model.
    /// `name:version` loads `name` (one copy per name) and checks the version it got.
    pub fn load_model(&self, spec: &str) -> Result<u64, ServeError> {
        let (name, want) = guard::model_name(spec)?;
        let got = self.load_model_named(name)?;
        match want {
            Some(v) if v != got => Err(ServeError::VersionNotFound { name: name.into(), version: v.to_string(), serving: got }),
            _ => Ok(got),
        }
    }

    fn load_model_named(&self, name: &str) -> Result<u64, ServeError> {
        let existing = self.models.read().ok().and_then(|m| m.get(name).cloned());
        let cfg = match &existing {
            Some(s) => {
                ModelServeConfig { name: name.into(), device: Some(s.device), input_size: s.input_size, batching: Some(s.batcher.params()) }
            }
            None => self.config.models.iter().find(|m| m.name == name).cloned().unwrap_or(ModelServeConfig {
                name: name.into(),
                device: None,
                input_size: None,
                batching: None,
            }),
        };
        self.load_model_with(&cfg)
    }

    fn load_model_with(&self, cfg: &ModelServeConfig) -> Result<u64, ServeError> {
        if self.is_draining() {
            return Err(ServeError::Unavailable("server is shutting down".into()));
        }
        let (name, _) = guard::model_name(&cfg.name)?;
        let device = cfg.device.unwrap_or(self.config.device);
        let existing = self.models.read().ok().and_then(|m| m.get(name).cloned());
        let handle = existing.as_ref().map(|s| s.handle.clone()).unwrap_or_default();
        let lock_owner = handle.clone();
        let _guard = lock_owner.load_lock.lock().map_err(|_| ServeError::Internal("load lock poisoned".into()))?;
        let params = match (&cfg.batching, &existing) {
            (Some(b), _) => b.clone(),
            (None, Some(s)) => s.batcher.params(),
            (None, None) => {
                let mut p = BatchingParams::default();
                if let Ok(Some(b)) = self.repo.resolve(name).map(|r| r.config.and_then(|c| c.batching)) {
                    p.max_batch_size = b.max_batch_size;
                }
                p
            }
        };
        params.validate().map_err(|e| ServeError::InvalidArgument(e.to_string()))?;
        let t0 = Instant::now();
        let limits = self.plan_limits();
        let loaded = match LoadedModel::load(&self.repo, name, None, device, cfg.input_size, params.max_batch_size, limits) {
            Ok(m) => m,
            Err(e) => {
                let label = if self.repo.list().map(|l| l.iter().any(|m| m.name == name)).unwrap_or(false) { name } else { "unknown" };
                self.metrics.model_loads.with_label_values(&[label, "failed"]).inc();
                if existing.as_ref().is_some_and(|s| s.handle.current().is_some()) {
                    tracing::warn!(model = name, "reload failed; the loaded version keeps serving: {e}");
                } else {
                    handle.set_state(ModelState::Unavailable(e.to_string()));
                    if label != "unknown" {
                        if let Ok(mut f) = self.load_failures.lock() {
                            f.insert(name.to_string(), e.to_string());
                        }
                    }
                }
                return Err(e);
            }
        };
        let version = loaded.version;
        if let Ok(mut f) = self.load_failures.lock() {
            f.remove(name);
        }
        let (backend, adapter, precision) = (loaded.exec.name(), loaded.exec.adapter(), loaded.exec.precision().to_string());
        self.metrics.adapter.with_label_values(&[name, backend, &adapter, &precision]).set(1);
        self.metrics.model_loads.with_label_values(&[name, "ok"]).inc();
        let old = handle.swap(Arc::new(loaded));
        tracing::info!(
            model = name,
            version,
            backend,
            adapter = %adapter,
            "loaded in {:.2} s{}",
            t0.elapsed().as_secs_f64(),
            old.map(|o| format!(" (replaced version {})", o.version)).unwrap_or_default()
        );
        match existing {
            Some(s) => s.batcher.set_params(params),
            None => {
                let reid = self.reid_for(name, &handle, device);
                let opts = batcher::BatcherOptions {
                    keep_frames: self.config.keep_frames,
                    track_floor: self.config.tracking.then_some(crate::perception::TrackerConfig::default().low_score),
                };
                let batcher = Batcher::start(name, handle.clone(), params, self.metrics.clone(), self.stages.sink(), opts, reid)?;
                let slot = Arc::new(ModelSlot { name: name.into(), handle, batcher, device, input_size: cfg.input_size });
                self.models.write().map_err(|_| ServeError::Internal("models lock poisoned".into()))?.insert(name.into(), slot);
            }
        }
        Ok(version)
    }

    /// Unloads a model: queued work finishes first, new work gets NOT_FOUND.
    pub fn unload_model(&self, name: &str) -> Result<(), ServeError> {
        let slot = self.models.write().map_err(|_| ServeError::Internal("models lock poisoned".into()))?.remove(name);
        let slot = slot.ok_or_else(|| ServeError::ModelNotFound(name.into()))?;
        slot.batcher.close();
        slot.handle.clear("unloaded");
        self.metrics.stats.forget(name);
        tracing::info!(model = name, "unloaded");
        Ok(())
    }

    /// Starts a camera from its config.
    pub fn add_camera(self: &Arc<Self>, cfg: CameraConfig) -> Result<(), ServeError> {
        self.add_camera_as(cfg, false)
    }

    /// Adds a camera a network client asked for (AddCamera): its source is confined to the
    /// configured media roots and URL prefixes first.
    pub fn add_client_camera(self: &Arc<Self>, mut cfg: CameraConfig) -> Result<(), ServeError> {
        guard::check_camera_id(&cfg.id)?;
        guard::confine_client_camera(&mut cfg, &self.config)?;
        self.add_camera_as(cfg, false)
    }

    fn add_camera_as(self: &Arc<Self>, mut cfg: CameraConfig, self_registered: bool) -> Result<(), ServeError> {
        if self.is_draining() {
            return Err(ServeError::Unavailable("server is shutting down".into()));
        }
        guard::check_camera_id(&cfg.id)?;
        guard::check_camera_sizes(&cfg, &self.config)?;
        if cfg.model.is_empty() {
            cfg.model = self.default_pose_model()?;
        } else if !self.model(&cfg.model)?.handle.current().is_some_and(|m| m.is_pose()) {
            return Err(ServeError::InvalidArgument(format!("camera '{}': model '{}' is not a loaded pose model", cfg.id, cfg.model)));
        }
        if cfg.queue_size == 0 {
            cfg.queue_size = self.config.camera_queue_size;
        }
        let mut cams = self.cameras.lock().map_err(|_| ServeError::Internal("cameras lock poisoned".into()))?;
        if cams.contains_key(&cfg.id) {
            return Err(ServeError::AlreadyExists(format!("camera '{}' already exists", cfg.id)));
        }
        if cams.len() >= self.config.max_cameras {
            // push cameras that registered themselves and went quiet make room first
            let idle = Duration::from_secs_f64(self.config.push_camera_idle_s);
            let quiet: Vec<String> =
                cams.iter().filter(|(_, e)| e.self_registered && e.idle_for() >= idle).map(|(k, _)| k.clone()).collect();
            for id in quiet {
                if let Some(e) = cams.remove(&id) {
                    tracing::info!(camera = %id, "push camera expired after {:.0} s without frames", idle.as_secs_f64());
                    self.retire_camera(e);
                }
            }
        }
        if cams.len() >= self.config.max_cameras {
            return Err(ServeError::ResourceExhausted(format!("at most {} cameras", self.config.max_cameras)));
        }
        let mut entry = camera::start(self.clone(), cfg.clone())?;
        entry.self_registered = self_registered;
        if let Err(e) = self.calibrate_camera(&cfg, &entry.lanes()) {
            entry.stop();
            return Err(e);
        }
        cams.insert(cfg.id.clone(), entry);
        tracing::info!(camera = %cfg.id, source = %cfg.source, model = %cfg.model, "camera added");
        Ok(())
    }

    /// Stops a camera; its queued frames are discarded and counted.
    pub fn remove_camera(&self, id: &str) -> Result<(), ServeError> {
        let entry = self.cameras.lock().map_err(|_| ServeError::Internal("cameras lock poisoned".into()))?.remove(id);
        let entry = entry.ok_or_else(|| ServeError::CameraNotFound(guard::shown(id)))?;
        self.retire_camera(entry);
        tracing::info!(camera = id, "camera removed");
        Ok(())
    }

    /// Stops a camera taken out of the table: queued frames are discarded and counted, then
    /// its metric series go, so camera churn does not grow `/metrics`.
    fn retire_camera(&self, entry: camera::CameraEntry) {
        let model = entry.config.model.clone();
        let lanes = entry.lanes();
        entry.stop();
        self.forget_calibrations(&lanes);
        if let Ok(slot) = self.model(&model) {
            for lane in &lanes {
                let n = slot.batcher.remove_lane(lane);
                self.metrics.frames_dropped.with_label_values(&[lane, "removed"]).inc_by(n as u64);
            }
        }
        for lane in &lanes {
            self.metrics.forget_camera(lane);
        }
    }

    pub fn cameras(&self) -> Vec<camera::CameraInfo> {
        self.cameras.lock().map(|c| c.values().map(|e| e.info(&self.metrics)).collect()).unwrap_or_default()
    }

    /// Queues a frame from a camera (a source thread or a push stream). Push frames for an
    /// unknown camera id register a push camera first.
    pub fn push_frame(self: &Arc<Self>, frame: CameraFrame, arrived: Instant) -> Result<PushOutcome, ServeError> {
        let (model, cap) = {
            let cams = self.cameras.lock().map_err(|_| ServeError::Internal("cameras lock poisoned".into()))?;
            match cams.get(&frame.camera).or_else(|| cams.values().find(|e| e.feeds(&frame.camera))) {
                Some(e) => {
                    e.touch();
                    (e.config.model.clone(), e.config.queue_size)
                }
                None => {
                    drop(cams);
                    let cfg = CameraConfig { id: frame.camera.clone(), source: "push".into(), ..Default::default() };
                    match self.add_camera_as(cfg, true) {
                        Ok(()) | Err(ServeError::AlreadyExists(_)) => {}
                        Err(e) => return Err(e),
                    }
                    return self.push_frame(frame, arrived);
                }
            }
        };
        let camera = frame.camera.clone();
        self.metrics.frames_in.with_label_values(&[&camera]).inc();
        let slot = match self.model(&model) {
            Ok(s) => s,
            Err(e) => {
                self.metrics.frames_dropped.with_label_values(&[&camera, "no_model"]).inc();
                return Err(e);
            }
        };
        let Some(charge) = self.budget.charge(frame.image.as_raw().len()) else {
            self.metrics.frames_dropped.with_label_values(&[&camera, "memory"]).inc();
            return Err(ServeError::ResourceExhausted(format!(
                "the server's memory budget for queued work ({} bytes) is full",
                self.budget.limit()
            )));
        };
        let out = slot.batcher.push_frame(frame, cap, arrived, Some(charge));
        match &out {
            Ok(PushOutcome::QueuedDropping(n)) => self.metrics.frames_dropped.with_label_values(&[&camera, "queue_full"]).inc_by(*n as u64),
            Err(_) => self.metrics.frames_dropped.with_label_values(&[&camera, "shutdown"]).inc(),
            Ok(PushOutcome::Queued) => {}
        }
        out
    }

    /// Counts a frame rejected before it was queued (undecodable, too large).
    /// Frames for a camera that is not registered (an invalid id, say) count under
    /// `unregistered`, so clients cannot mint metric series.
    pub fn reject_frame(&self, camera: &str, reason: &str) {
        let known = self.cameras.lock().map(|c| c.contains_key(camera) || c.values().any(|e| e.feeds(camera))).unwrap_or(false);
        let camera = if known { camera } else { "unregistered" };
        self.metrics.frames_in.with_label_values(&[camera]).inc();
        self.metrics.frames_rejected.with_label_values(&[camera, reason]).inc();
    }

    /// A request's bytes from the memory budget, or RESOURCE_EXHAUSTED.
    fn charge(&self, bytes: usize) -> Result<budget::Charge, ServeError> {
        self.budget.charge(bytes).ok_or_else(|| {
            ServeError::ResourceExhausted(format!(
                "the server's memory budget for queued work ({} bytes) is full; retry later",
                self.budget.limit()
            ))
        })
    }

    /// Why the model's last load failed, if it failed and no version of it is loaded.
    pub fn load_failure(&self, name: &str) -> Option<String> {
        self.load_failures.lock().ok().and_then(|f| f.get(name).cloned())
    }

    /// Every model that failed to load and is not loaded, with its reason.
    pub fn load_failures(&self) -> BTreeMap<String, String> {
        self.load_failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// A model name for metric labels: the name if the model is loaded, else `unknown`.
    pub fn model_label(&self, name: &str) -> String {
        if self.models.read().map(|m| m.contains_key(name)).unwrap_or(false) {
            name.to_string()
        } else {
            "unknown".into()
        }
    }

    /// Runs one image through a pose model (AnalyzeImage).
    pub async fn analyze(&self, model: &str, image: image::RgbImage) -> Result<Arc<FrameResult>, ServeError> {
        let name = if model.is_empty() { self.default_pose_model()? } else { model.to_string() };
        let slot = self.model(&name)?;
        let charge = self.charge(image.as_raw().len())?;
        let frame = CameraFrame { camera: String::new(), seq: 0, capture_ts: 0.0, image };
        let rx = slot.batcher.analyze(frame, Some(charge))?;
        rx.await.map_err(|_| ServeError::Internal("batcher dropped the request".into()))?
    }

    /// Sets `walkout_memory_bytes` from the budget and the plan caches (before a scrape).
    pub fn update_memory_metrics(&self) {
        let plans: usize =
            self.models.read().map(|m| m.values().filter_map(|s| s.handle.current()).map(|l| l.plan_cache_bytes()).sum()).unwrap_or(0);
        self.metrics.memory.with_label_values(&["queued"]).set(self.budget.used() as i64);
        self.metrics.memory.with_label_values(&["plans"]).set(plans as i64);
    }

    /// What each model's plan cache may hold and what one item may cost.
    fn plan_limits(&self) -> crate::runtime::PlanLimits {
        crate::runtime::PlanLimits {
            max_bytes: self.config.max_plan_cache_bytes,
            max_flops: (self.config.max_request_gflop * 1e9).min(u64::MAX as f64) as u64,
        }
    }

    /// Runs tensors through a model (ModelInfer). A request whose items would cost more than
    /// `max_request_gflop` each is refused here, before it is queued; for models the server
    /// cannot estimate up front, the plan cache refuses the plan before it runs.
    pub async fn infer(&self, model: &str, version: &str, inputs: Vec<Tensor>) -> Result<TensorReply, ServeError> {
        let (slot, m) = self.model_version(model, version)?;
        let limit = m.frame_flops.map_or(u64::MAX, |f| f.max(self.plan_limits().max_flops));
        if let Some(f) = inputs.first().and_then(|t| m.item_flops(&t.shape)).filter(|&f| f > limit) {
            return Err(ServeError::ResourceExhausted(format!(
                "model '{model}': shape {:?} costs about {:.1} GFLOP per item, over the limit of {:.1} (max_request_gflop, or one frame at the model's own size)",
                inputs[0].shape,
                f as f64 * 1e-9,
                limit as f64 * 1e-9
            )));
        }
        let charge = self.charge(inputs.iter().map(|t| t.numel() * t.dtype().size()).sum())?;
        let rx = slot.batcher.infer(inputs, Some(charge))?;
        rx.await.map_err(|_| ServeError::Internal("batcher dropped the request".into()))?
    }

    /// Graceful shutdown: stop the sources, run everything queued, then release streams.
    pub fn shutdown(&self) {
        if self.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        let t0 = Instant::now();
        let cams = self.cameras.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        for (_, e) in cams {
            e.stop();
        }
        let slots: Vec<Arc<ModelSlot>> = self.models.read().map(|m| m.values().cloned().collect()).unwrap_or_default();
        let pending: usize = slots.iter().map(|s| s.batcher.pending()).sum();
        // queued work runs until drain_timeout_s; what is left then is dropped and counted
        let deadline = t0 + std::time::Duration::from_secs_f64(self.config.drain_timeout_s);
        for s in &slots {
            s.batcher.close_by(Some(deadline));
        }
        let _ = self.shutdown_tx.send(true);
        tracing::info!("drained {pending} queued items in {:.2} s", t0.elapsed().as_secs_f64());
    }
}

impl FrameSink for Arc<Server> {
    fn push_frame(&self, frame: CameraFrame, arrived: Instant) -> Result<(), ServeError> {
        Server::push_frame(self, frame, arrived).map(|_| ())
    }
    fn reject_frame(&self, camera: &str, reason: &str) {
        Server::reject_frame(self, camera, reason)
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn max_frame_side(&self) -> u32 {
        self.config.max_frame_side
    }
}
