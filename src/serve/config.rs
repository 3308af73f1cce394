//! `walkout serve` configuration: a TOML file, then environment variables, then command-line
//! flags, each overriding the one before. With no file, a repository alone is enough.

use crate::runtime::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error("environment variable {var}: {msg}")]
    Env { var: String, msg: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// Triton-style dynamic batching for one model.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchingParams {
    /// Largest batch the model runs.
    #[serde(default = "d_max_batch")]
    pub max_batch_size: usize,
    /// How long the oldest queued item may wait for a fuller batch.
    #[serde(default = "d_delay")]
    pub max_queue_delay_us: u64,
    /// Batch sizes formed as soon as enough items are queued.
    #[serde(default)]
    pub preferred_batch_sizes: Vec<usize>,
    /// Requests (AnalyzeImage, ModelInfer) queued before new ones get RESOURCE_EXHAUSTED.
    #[serde(default = "d_max_queue")]
    pub max_queue_size: usize,
}

fn d_max_batch() -> usize {
    8
}
fn d_delay() -> u64 {
    2000
}
fn d_max_queue() -> usize {
    64
}

impl Default for BatchingParams {
    fn default() -> Self {
        BatchingParams {
            max_batch_size: d_max_batch(),
            max_queue_delay_us: d_delay(),
            preferred_batch_sizes: vec![],
            max_queue_size: d_max_queue(),
        }
    }
}

impl BatchingParams {
    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.max_queue_delay_us)
    }
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_batch_size == 0 || self.max_queue_size == 0 {
            return Err(ConfigError::Invalid("max_batch_size and max_queue_size must be at least 1".into()));
        }
        if let Some(p) = self.preferred_batch_sizes.iter().find(|&&p| p == 0 || p > self.max_batch_size) {
            return Err(ConfigError::Invalid(format!("preferred batch size {p} is not in 1..={}", self.max_batch_size)));
        }
        Ok(())
    }
}

/// One served model.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelServeConfig {
    /// Repository name.
    pub name: String,
    /// `cpu`, `gpu` or `auto`; the server default when absent.
    #[serde(default)]
    pub device: Option<Device>,
    /// Model input [height, width] for camera frames; the model's `default_size` when absent.
    #[serde(default)]
    pub input_size: Option<[usize; 2]>,
    /// Overrides the model's `[batching]` section.
    #[serde(default)]
    pub batching: Option<BatchingParams>,
}

/// One camera.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub id: String,
    /// `video`, `images`, `push`, `synthetic` or `sim`.
    pub source: String,
    /// File path, URL (rtsp://, http://, ...) or glob, by source.
    #[serde(default)]
    pub url: String,
    /// Replay rate; 0 = as fast as possible (files) or the stream's own rate.
    #[serde(default)]
    pub fps: f64,
    /// Replay files again from the start when they end.
    #[serde(default)]
    pub r#loop: bool,
    /// Model to run; the server's default pose model when empty.
    #[serde(default)]
    pub model: String,
    /// Queue length before the oldest frames are dropped; 0 = server default.
    #[serde(default)]
    pub queue_size: usize,
    /// Frame size for `synthetic` (and the sim), 0 = 640x480.
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// Calibration record (`calibration.json` as `walkout sim` writes it: K, R, C, size) that
    /// places this camera's people on the floor; `sim` cameras bring their own.
    #[serde(default)]
    pub calibration: Option<PathBuf>,
}

/// The whole server configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "d_grpc")]
    pub grpc_addr: String,
    #[serde(default = "d_http")]
    pub http_addr: String,
    #[serde(default = "d_repo")]
    pub model_repository: PathBuf,
    /// Default device for models: `cpu`, `gpu`, `opencl` or `auto`.
    #[serde(default)]
    pub device: Device,
    /// A precompiled program for the OpenCL executor (an FPGA board's .aocx or .xclbin, or
    /// what `walkout models opencl-binary` wrote), loaded instead of building kernels/*.cl.
    #[serde(default)]
    pub opencl_binary: Option<PathBuf>,
    /// Models to load at start; every model in the repository when empty.
    #[serde(default)]
    pub models: Vec<ModelServeConfig>,
    #[serde(default)]
    pub cameras: Vec<CameraConfig>,
    /// Default per-camera queue length.
    #[serde(default = "d_queue")]
    pub camera_queue_size: usize,
    /// Largest encoded or raw frame accepted, in bytes (gRPC messages are capped a little above).
    #[serde(default = "d_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Largest accepted frame side in pixels, checked from the image header before decoding.
    #[serde(default = "d_frame_side")]
    pub max_frame_side: u32,
    /// Most cameras at once (config, AddCamera and push cameras together).
    #[serde(default = "d_max_cameras")]
    pub max_cameras: usize,
    /// Per-frame results buffered for StreamPoses readers before slow readers skip.
    #[serde(default = "d_results")]
    pub result_buffer: usize,
    /// Debug only: keep each frame's pixels with its result (for `demo --draw`).
    #[serde(default)]
    pub keep_frames: bool,
    /// Track people per camera (`perception::track`) and give results their track ids.
    #[serde(default = "d_true")]
    pub tracking: bool,
    /// Link tracked persons of calibrated cameras to store-wide global tracks and sessions
    /// (needs `tracking`); cameras without a calibration pass through.
    #[serde(default = "d_true")]
    pub fusion: bool,
    /// The store's floor plan (`store/floorplan.json` as `walkout sim` writes it): gate lanes
    /// and exit zone. A `sim` camera brings its own when none is set.
    #[serde(default)]
    pub floorplan: Option<PathBuf>,
    /// The repository's ReID model that embeds every person's crop for tracking and fusion
    /// (batched per pose batch, on the pose model's device); empty for none. A missing model
    /// is logged and geometry alone is used.
    #[serde(default = "d_reid")]
    pub reid_model: Option<String>,
    /// Gate scans waiting for the fusion stage before the oldest is dropped.
    #[serde(default = "d_scans")]
    pub max_pending_scans: usize,
    /// Bytes of queued frames and requests across all cameras, clients and models; past it
    /// frames drop (counted) and requests get RESOURCE_EXHAUSTED.
    #[serde(default = "d_queued_bytes")]
    pub max_queued_bytes: usize,
    /// Bytes of compiled plans each loaded model keeps (weights as its executor holds them,
    /// buffers or intermediates); the least recently used go first.
    #[serde(default = "d_plan_cache_bytes")]
    pub max_plan_cache_bytes: usize,
    /// Compute one request may ask of a model, in GFLOP per batch item: ModelInfer shapes
    /// over it get RESOURCE_EXHAUSTED before they are queued or compiled.
    #[serde(default = "d_request_gflop")]
    pub max_request_gflop: f64,
    /// Connections open at once per port (gRPC and HTTP each); more wait in the backlog.
    #[serde(default = "d_max_connections")]
    pub max_connections: usize,
    /// Seconds an HTTP client has to finish its TLS handshake and to send a request's headers.
    #[serde(default = "d_header_timeout")]
    pub header_read_timeout_s: f64,
    /// Seconds SIGTERM waits for queued work and open streams before the listeners close.
    #[serde(default = "d_drain")]
    pub drain_timeout_s: f64,
    /// Longest per-camera queue a client may ask for (AddCamera's `queue_size`).
    #[serde(default = "d_max_camera_queue")]
    pub max_camera_queue: usize,
    /// Push cameras that registered themselves by sending a frame are removed after this many
    /// seconds without one.
    #[serde(default = "d_push_idle")]
    pub push_camera_idle_s: f64,
    /// Folders whose files and globs cameras added over the network (AddCamera) may read;
    /// none: network clients cannot add file cameras. Cameras in this file are the
    /// operator's and are not confined.
    #[serde(default)]
    pub media_roots: Vec<PathBuf>,
    /// URL prefixes (`scheme://host[:port]`) that cameras added over the network may open;
    /// none: network clients cannot add stream cameras.
    #[serde(default)]
    pub allowed_urls: Vec<String>,
    /// PEM certificate chain: with `tls_key`, both edges speak TLS only.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual TLS).
    #[serde(default)]
    pub tls_client_ca: Option<PathBuf>,
    /// Bearer token of the `admin` role (repository load/unload, cameras, store reports,
    /// anything that changes the server; it may also infer). `WALKOUT_ADMIN_TOKEN` overrides.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Bearer token of the `infer` role (inference, streams, listings).
    /// `WALKOUT_INFER_TOKEN` overrides.
    #[serde(default)]
    pub infer_token: Option<Secret>,
}

/// A credential: kept out of `Debug` output and logs.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn d_max_camera_queue() -> usize {
    256
}

fn d_queued_bytes() -> usize {
    2 << 30
}
fn d_plan_cache_bytes() -> usize {
    1 << 30
}
fn d_request_gflop() -> f64 {
    64.0
}

fn d_max_connections() -> usize {
    256
}

fn d_header_timeout() -> f64 {
    10.0
}

fn d_drain() -> f64 {
    10.0
}

fn d_push_idle() -> f64 {
    300.0
}

fn d_reid() -> Option<String> {
    Some("reid-sim".into())
}

fn d_scans() -> usize {
    1024
}

fn d_true() -> bool {
    true
}

fn d_grpc() -> String {
    "0.0.0.0:8001".into()
}
fn d_http() -> String {
    "0.0.0.0:8000".into()
}
fn d_repo() -> PathBuf {
    PathBuf::from("models")
}
fn d_queue() -> usize {
    4
}
fn d_frame_bytes() -> usize {
    32 << 20
}
fn d_frame_side() -> u32 {
    4096
}
fn d_max_cameras() -> usize {
    256
}
fn d_results() -> usize {
    1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("all fields have defaults"))
    }
}

impl ServerConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |msg: String| ConfigError::File { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Invalid(msg) => err(msg),
            e => e,
        })
    }

    /// Parses and validates the text of a TOML config.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let c: ServerConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Applies `WALKOUT_GRPC_ADDR`, `WALKOUT_HTTP_ADDR`, `WALKOUT_MODEL_REPOSITORY`,
    /// `WALKOUT_DEVICE`, `WALKOUT_CAMERA_QUEUE_SIZE`, `WALKOUT_MAX_FRAME_BYTES`,
    /// `WALKOUT_MAX_FRAME_SIDE`, `WALKOUT_MAX_CAMERAS`, `WALKOUT_ADMIN_TOKEN` and
    /// `WALKOUT_INFER_TOKEN` from `vars`.
    pub fn apply_env(&mut self, vars: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(var: &str, v: String) -> Result<T, ConfigError> {
            v.parse().map_err(|_| ConfigError::Env { var: var.into(), msg: format!("'{v}' is not a number") })
        }
        if let Some(v) = vars("WALKOUT_GRPC_ADDR") {
            self.grpc_addr = v;
        }
        if let Some(v) = vars("WALKOUT_HTTP_ADDR") {
            self.http_addr = v;
        }
        if let Some(v) = vars("WALKOUT_MODEL_REPOSITORY") {
            self.model_repository = v.into();
        }
        if let Some(v) = vars("WALKOUT_DEVICE") {
            self.device = v
                .parse()
                .map_err(|e: crate::runtime::RuntimeError| ConfigError::Env { var: "WALKOUT_DEVICE".into(), msg: e.to_string() })?;
        }
        if let Some(v) = vars("WALKOUT_CAMERA_QUEUE_SIZE") {
            self.camera_queue_size = num("WALKOUT_CAMERA_QUEUE_SIZE", v)?;
        }
        if let Some(v) = vars("WALKOUT_MAX_FRAME_BYTES") {
            self.max_frame_bytes = num("WALKOUT_MAX_FRAME_BYTES", v)?;
        }
        if let Some(v) = vars("WALKOUT_MAX_FRAME_SIDE") {
            self.max_frame_side = num("WALKOUT_MAX_FRAME_SIDE", v)?;
        }
        if let Some(v) = vars("WALKOUT_MAX_CAMERAS") {
            self.max_cameras = num("WALKOUT_MAX_CAMERAS", v)?;
        }
        if let Some(v) = vars("WALKOUT_ADMIN_TOKEN") {
            self.admin_token = Some(Secret(v));
        }
        if let Some(v) = vars("WALKOUT_INFER_TOKEN") {
            self.infer_token = Some(Secret(v));
        }
        self.validate()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.camera_queue_size == 0 || self.result_buffer == 0 || self.max_cameras == 0 {
            return Err(ConfigError::Invalid("camera_queue_size, result_buffer and max_cameras must be at least 1".into()));
        }
        if self.camera_queue_size > self.max_camera_queue {
            return Err(ConfigError::Invalid(format!("camera_queue_size is over max_camera_queue ({})", self.max_camera_queue)));
        }
        if !(self.drain_timeout_s.is_finite() && self.drain_timeout_s > 0.0 && self.drain_timeout_s <= 3600.0) {
            return Err(ConfigError::Invalid("drain_timeout_s must be in (0, 3600]".into()));
        }
        if self.max_connections == 0 || !(self.header_read_timeout_s.is_finite() && self.header_read_timeout_s > 0.0) {
            return Err(ConfigError::Invalid("max_connections and header_read_timeout_s must be positive".into()));
        }
        if self.max_plan_cache_bytes < 1 << 20 || !(self.max_request_gflop.is_finite() && self.max_request_gflop > 0.0) {
            return Err(ConfigError::Invalid("max_plan_cache_bytes must be at least 1 MiB and max_request_gflop positive".into()));
        }
        if !(self.push_camera_idle_s.is_finite() && self.push_camera_idle_s > 0.0) {
            return Err(ConfigError::Invalid("push_camera_idle_s must be positive".into()));
        }
        for (what, t) in [("admin_token", &self.admin_token), ("infer_token", &self.infer_token)] {
            if t.as_ref().is_some_and(|t| t.0.len() < 16 || t.0.chars().any(|c| !c.is_ascii_graphic())) {
                return Err(ConfigError::Invalid(format!("{what} must be at least 16 printable characters without spaces")));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() || (self.tls_client_ca.is_some() && self.tls_cert.is_none()) {
            return Err(ConfigError::Invalid("tls_cert and tls_key go together, and tls_client_ca needs them".into()));
        }
        if self.admin_token.is_some() && self.admin_token == self.infer_token {
            return Err(ConfigError::Invalid("admin_token and infer_token must differ".into()));
        }
        for u in &self.allowed_urls {
            if !u.contains("://") {
                return Err(ConfigError::Invalid(format!("allowed_urls entry '{u}' is not scheme://host")));
            }
        }
        for m in &self.models {
            if let Some(b) = &m.batching {
                b.validate().map_err(|e| ConfigError::Invalid(format!("model '{}': {e}", m.name)))?;
            }
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.cameras {
            if !ids.insert(&c.id) {
                return Err(ConfigError::Invalid(format!("camera '{}' is listed twice", c.id)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_env_overrides_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/walkout.example.toml");
        let mut c = ServerConfig::load(&path).expect("example config");
        assert_eq!(c.models[0].batching.as_ref().map(|b| b.preferred_batch_sizes.clone()), Some(vec![4, 8]));
        assert_eq!(c.cameras.len(), 2);
        let env = |k: &str| match k {
            "WALKOUT_GRPC_ADDR" => Some("127.0.0.1:9001".to_string()),
            "WALKOUT_CAMERA_QUEUE_SIZE" => Some("9".to_string()),
            _ => None,
        };
        c.apply_env(env).expect("env");
        assert_eq!((c.grpc_addr.as_str(), c.camera_queue_size, c.http_addr.as_str()), ("127.0.0.1:9001", 9, "0.0.0.0:8000"));
        let bad = |k: &str| (k == "WALKOUT_MAX_FRAME_SIDE").then(|| "big".to_string());
        assert!(c.apply_env(bad).unwrap_err().to_string().contains("WALKOUT_MAX_FRAME_SIDE"));
        assert!(toml::from_str::<ServerConfig>("grpc_adr = \"x\"").is_err(), "unknown keys are rejected");
        let c: ServerConfig =
            toml::from_str("[[models]]\nname = \"m\"\n[models.batching]\nmax_batch_size = 4\npreferred_batch_sizes = [8]\n").expect("toml");
        assert!(c.validate().is_err(), "a preferred size over the max batch is rejected");
    }
}
