//! Prometheus metrics, all named `walkout_*`.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The server's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub frames_in: IntCounterVec,
    pub frames_dropped: IntCounterVec,
    pub frames_rejected: IntCounterVec,
    pub frames_done: IntCounterVec,
    pub source_reconnects: IntCounterVec,
    pub queue_depth: IntGaugeVec,
    pub batch_size: HistogramVec,
    pub queue_latency: HistogramVec,
    pub compute_latency: HistogramVec,
    pub e2e_latency: HistogramVec,
    pub inferences: IntCounterVec,
    pub requests: IntCounterVec,
    pub stream_skipped: IntCounterVec,
    pub adapter: IntGaugeVec,
    pub model_loads: IntCounterVec,
    pub stage_dropped: IntCounterVec,
    pub store_reports: IntCounterVec,
    pub reid_crops: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub memory: IntGaugeVec,
    /// Triton-style per model version statistics (`ModelStatistics`).
    pub stats: super::stats::StatsBook,
}

/// Every reason a queued frame is dropped (`walkout_frames_dropped_total{reason}`).
pub const DROP_REASONS: [&str; 5] = ["queue_full", "removed", "shutdown", "no_model", "memory"];
/// Every reason a frame is rejected before it is queued (`walkout_frames_rejected_total{reason}`).
pub const REJECT_REASONS: [&str; 1] = ["invalid"];

const LATENCY_BUCKETS: [f64; 16] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry.register(Box::new(c.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry.register(Box::new(g.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            g
        };
        let hist = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["model"])
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry.register(Box::new(h.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            h
        };
        let lat = LATENCY_BUCKETS.to_vec();
        Metrics {
            frames_in: counter("walkout_frames_in_total", "Frames received per camera.", &["camera"]),
            frames_dropped: counter(
                "walkout_frames_dropped_total",
                "Frames dropped per camera (queue_full: oldest dropped; removed; shutdown; no_model; memory: over the queued-work budget).",
                &["camera", "reason"],
            ),
            frames_rejected: counter(
                "walkout_frames_rejected_total",
                "Frames rejected per camera (invalid: undecodable or over the size limit).",
                &["camera", "reason"],
            ),
            frames_done: counter("walkout_frames_done_total", "Frames inferred per camera.", &["camera"]),
            source_reconnects: counter("walkout_source_reconnects_total", "Reconnects of stream sources per camera.", &["camera"]),
            queue_depth: gauge("walkout_queue_depth", "Items queued per model (camera frames and requests).", &["model"]),
            batch_size: hist(
                "walkout_batch_size",
                "Batch sizes run per model.",
                vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0],
            ),
            queue_latency: hist(
                "walkout_queue_latency_seconds",
                "Time from arrival until its batch starts running (queued, letterboxed, waiting for the model).",
                lat.clone(),
            ),
            compute_latency: hist("walkout_compute_latency_seconds", "Time a batch runs on the model, decoding included.", lat.clone()),
            e2e_latency: hist("walkout_e2e_latency_seconds", "Time from arrival to result.", lat),
            inferences: counter(
                "walkout_inferences_total",
                "Inferences (frames or request items) per model and version.",
                &["model", "version"],
            ),
            requests: counter("walkout_requests_total", "Requests per model, API and outcome.", &["model", "api", "code"]),
            stream_skipped: counter(
                "walkout_stream_results_skipped_total",
                "Results skipped by StreamPoses readers that read too slowly.",
                &[],
            ),
            adapter: gauge("walkout_adapter_info", "The adapter and storage precision each model runs on (value 1).", &["model", "backend", "adapter", "precision"]),
            model_loads: counter("walkout_model_loads_total", "Model loads per model and outcome.", &["model", "outcome"]),
            stage_dropped: counter(
                "walkout_stage_dropped_total",
                "Frame results a pipeline stage could not take (its queue was full), per stage and camera.",
                &["stage", "camera"],
            ),
            store_reports: counter(
                "walkout_store_reports_total",
                "Reports from the store's devices: gate scans and shelf readings (and shelf readings dropped when their queue was full).",
                &["kind"],
            ),
            reid_crops: counter(
                "walkout_reid_crops_total",
                "Person crops embedded by the ReID model, per pose model whose batches they came from.",
                &["model"],
            ),
            auth_failures: counter(
                "walkout_auth_failures_total",
                "Calls refused by authentication (unauthenticated: no or unknown token; permission_denied: the token's role may not).",
                &["edge", "reason"],
            ),
            memory: gauge(
                "walkout_memory_bytes",
                "Bytes held by the bounded pools: queued (frames and requests waiting, against max_queued_bytes) and plans (compiled plans of every model, each against max_plan_cache_bytes).",
                &["pool"],
            ),
            stats: super::stats::StatsBook::default(),
            registry,
        }
    }

    /// Removes a camera's series (a removed or expired camera).
    pub fn forget_camera(&self, camera: &str) {
        let _ = self.frames_in.remove_label_values(&[camera]);
        let _ = self.frames_done.remove_label_values(&[camera]);
        let _ = self.source_reconnects.remove_label_values(&[camera]);
        for r in DROP_REASONS {
            let _ = self.frames_dropped.remove_label_values(&[camera, r]);
        }
        for r in REJECT_REASONS {
            let _ = self.frames_rejected.remove_label_values(&[camera, r]);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            return format!("# encoding metrics failed: {e}\n");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}
