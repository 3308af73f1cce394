//! The dynamic batcher: one actor per model, with Triton's semantics.
//!
//! - Camera frames wait in per-camera lanes; a full lane drops its oldest frame (counted).
//! - Requests (AnalyzeImage, ModelInfer) wait in a bounded queue; a full queue rejects new
//!   ones with RESOURCE_EXHAUSTED.
//! - A batch is formed when `max_batch_size` items are queued, when a preferred batch size
//!   can be formed, or when the oldest item has waited `max_queue_delay_us`. Lanes are
//!   served round-robin, one frame per camera per round.
//! - Frames of any sizes are letterboxed into one batch tensor (on the GPU through the
//!   preprocessing kernel when the model runs there).
//! - The batcher thread prepares the next batch while the inference thread runs the current
//!   one; at most one prepared batch waits, so batches form from what arrived meanwhile.

use super::config::BatchingParams;
use super::metrics::Metrics;
use super::model::{LoadedModel, ModelHandle};
use super::{FrameResult, ServeError};
use crate::graph::{DType, Layout, Tensor};
use crate::runtime;
use crate::serve::source::CameraFrame;
use crate::vision::image_io::{self, Letterbox};
use crate::vision::pose;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};

/// Outputs of one ModelInfer request.
#[derive(Debug)]
pub struct TensorReply {
    pub outputs: Vec<Tensor>,
    pub version: u64,
}

pub type FrameReply = oneshot::Sender<Result<Arc<FrameResult>, ServeError>>;
pub type TensorReplyTx = oneshot::Sender<Result<TensorReply, ServeError>>;

enum Work {
    /// A camera frame (no reply; results are published) or an AnalyzeImage request.
    Frame {
        frame: CameraFrame,
        reply: Option<FrameReply>,
    },
    Tensors {
        inputs: Vec<Tensor>,
        reply: TensorReplyTx,
    },
}

struct Item {
    work: Work,
    arrived: Instant,
}

struct Lane {
    camera: String,
    items: VecDeque<Item>,
    cap: usize,
}

#[derive(Default)]
struct State {
    lanes: Vec<Lane>,
    rr: usize,
    frames: usize,
    requests: VecDeque<Item>,
    tensors: VecDeque<Item>,
    in_flight: usize,
    closed: bool,
}

impl State {
    fn pending(&self) -> usize {
        self.frames + self.requests.len() + self.tensors.len()
    }
}

struct Shared {
    model_name: String,
    handle: Arc<ModelHandle>,
    params: RwLock<BatchingParams>,
    state: Mutex<State>,
    cv: Condvar,
    metrics: Metrics,
    results: broadcast::Sender<Arc<FrameResult>>,
    keep_frames: bool,
}

impl Shared {
    fn publish_depth(&self, st: &State) {
        self.metrics.queue_depth.with_label_values(&[&self.model_name]).set(st.pending() as i64);
    }
}

/// Handle to a model's batcher; dropping it does not stop the threads, [`Batcher::close`] does.
pub struct Batcher {
    shared: Arc<Shared>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("model", &self.shared.model_name).finish()
    }
}

/// What happened to a pushed camera frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// Queued after dropping this many of the camera's oldest frames.
    QueuedDropping(usize),
}

struct Prepared {
    model: Option<Arc<LoadedModel>>,
    items: Vec<Item>,
    kind: PreparedKind,
}

enum PreparedKind {
    Frames {
        input: Tensor,
        boxes: Vec<Letterbox>,
    },
    /// Frames the inference thread letterboxes on the device (GPU models).
    DeviceFrames,
    Tensors {
        inputs: Vec<Tensor>,
        frame_shapes: Vec<Vec<usize>>,
        batch: usize,
    },
    Failed(ServeError),
}

impl Batcher {
    pub fn start(
        model_name: &str,
        handle: Arc<ModelHandle>,
        params: BatchingParams,
        metrics: Metrics,
        results: broadcast::Sender<Arc<FrameResult>>,
        keep_frames: bool,
    ) -> Result<Self, ServeError> {
        let shared = Arc::new(Shared {
            model_name: model_name.to_string(),
            handle,
            params: RwLock::new(params),
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            metrics,
            results,
            keep_frames,
        });
        let (tx, rx) = mpsc::sync_channel::<Prepared>(1);
        let s1 = shared.clone();
        let s2 = shared.clone();
        let spawn_err = |e: std::io::Error| ServeError::Internal(format!("spawning batcher threads: {e}"));
        let former =
            std::thread::Builder::new().name(format!("batch-{model_name}")).spawn(move || form_batches(s1, tx)).map_err(spawn_err)?;
        let infer =
            std::thread::Builder::new().name(format!("infer-{model_name}")).spawn(move || run_batches(s2, rx)).map_err(spawn_err)?;
        Ok(Batcher { shared, threads: Mutex::new(vec![former, infer]), closed: AtomicBool::new(false) })
    }

    pub fn params(&self) -> BatchingParams {
        self.shared.params.read().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn set_params(&self, p: BatchingParams) {
        if let Ok(mut g) = self.shared.params.write() {
            *g = p;
        }
        self.shared.cv.notify_all();
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, ServeError> {
        self.shared.state.lock().map_err(|_| ServeError::Internal("batcher state lock poisoned".into()))
    }

    /// Queues a camera frame in its camera's lane (created with capacity `cap` if new),
    /// dropping the lane's oldest frames when it is full.
    pub fn push_frame(&self, frame: CameraFrame, cap: usize, arrived: Instant) -> Result<PushOutcome, ServeError> {
        let mut st = self.lock()?;
        if st.closed {
            return Err(ServeError::Unavailable("server is shutting down".into()));
        }
        let cap = cap.max(1);
        let idx = match st.lanes.iter().position(|l| l.camera == frame.camera) {
            Some(i) => i,
            None => {
                st.lanes.push(Lane { camera: frame.camera.clone(), items: VecDeque::with_capacity(cap), cap });
                st.lanes.len() - 1
            }
        };
        let mut dropped = 0;
        {
            let lane = &mut st.lanes[idx];
            lane.cap = cap;
            while lane.items.len() >= lane.cap {
                lane.items.pop_front();
                dropped += 1;
            }
            lane.items.push_back(Item { work: Work::Frame { frame, reply: None }, arrived });
        }
        st.frames = st.frames + 1 - dropped;
        self.shared.publish_depth(&st);
        drop(st);
        self.shared.cv.notify_all();
        Ok(if dropped == 0 { PushOutcome::Queued } else { PushOutcome::QueuedDropping(dropped) })
    }

    /// Removes a camera's lane; returns how many queued frames were discarded.
    pub fn remove_lane(&self, camera: &str) -> usize {
        let Ok(mut st) = self.lock() else { return 0 };
        let Some(i) = st.lanes.iter().position(|l| l.camera == camera) else { return 0 };
        let lane = st.lanes.remove(i);
        st.frames -= lane.items.len();
        if st.rr >= st.lanes.len() {
            st.rr = 0;
        }
        lane.items.len()
    }

    fn admit(&self, st: &State) -> Result<(), ServeError> {
        if st.closed {
            return Err(ServeError::Unavailable("server is shutting down".into()));
        }
        let max = self.params().max_queue_size;
        if st.requests.len() + st.tensors.len() >= max {
            return Err(ServeError::QueueFull { model: self.shared.model_name.clone(), size: max });
        }
        Ok(())
    }

    /// Queues an AnalyzeImage request; the result arrives on the returned channel.
    pub fn analyze(&self, frame: CameraFrame) -> Result<oneshot::Receiver<Result<Arc<FrameResult>, ServeError>>, ServeError> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock()?;
        self.admit(&st)?;
        st.requests.push_back(Item { work: Work::Frame { frame, reply: Some(tx) }, arrived: Instant::now() });
        self.shared.publish_depth(&st);
        drop(st);
        self.shared.cv.notify_all();
        Ok(rx)
    }

    /// Queues a ModelInfer request.
    pub fn infer(&self, inputs: Vec<Tensor>) -> Result<oneshot::Receiver<Result<TensorReply, ServeError>>, ServeError> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock()?;
        self.admit(&st)?;
        st.tensors.push_back(Item { work: Work::Tensors { inputs, reply: tx }, arrived: Instant::now() });
        self.shared.publish_depth(&st);
        drop(st);
        self.shared.cv.notify_all();
        Ok(rx)
    }

    /// Items waiting (frames and requests).
    pub fn pending(&self) -> usize {
        self.lock().map(|s| s.pending()).unwrap_or(0)
    }

    /// Stops taking work, runs everything already queued, and joins the threads.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut st) = self.lock() {
            st.closed = true;
        }
        self.shared.cv.notify_all();
        let threads = self.threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.close();
    }
}

/// How many items to take now, or None to wait. Triton's rule: a full batch at once; else the
/// largest preferred size that can be formed; else whatever is there once the oldest item has
/// waited `max_queue_delay` (or at shutdown).
fn decide(avail: usize, waited: Duration, p: &BatchingParams, closing: bool) -> Option<usize> {
    if avail == 0 {
        return None;
    }
    if avail >= p.max_batch_size {
        return Some(p.max_batch_size);
    }
    if let Some(&pref) = p.preferred_batch_sizes.iter().filter(|&&s| s <= avail).max() {
        return Some(pref);
    }
    if waited >= p.delay() || closing {
        return Some(avail);
    }
    None
}

fn same_shapes(a: &Item, b: &Item) -> bool {
    match (&a.work, &b.work) {
        (Work::Tensors { inputs: x, .. }, Work::Tensors { inputs: y, .. }) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.shape[1..] == q.shape[1..] && p.dtype() == q.dtype())
        }
        _ => false,
    }
}

fn lead(item: &Item) -> usize {
    match &item.work {
        Work::Tensors { inputs, .. } => inputs.first().and_then(|t| t.shape.first().copied()).unwrap_or(1),
        Work::Frame { .. } => 1,
    }
}

/// The batcher thread: forms batches and prepares their input tensors.
fn form_batches(sh: Arc<Shared>, tx: mpsc::SyncSender<Prepared>) {
    loop {
        let Ok(mut st) = sh.state.lock() else { return };
        let params = sh.params.read().map(|p| p.clone()).unwrap_or_default();
        // At most one prepared batch waits behind the running one.
        if st.in_flight >= 2 || st.pending() == 0 {
            if st.closed && st.pending() == 0 {
                return;
            }
            let _ = sh.cv.wait_timeout(st, Duration::from_millis(100));
            continue;
        }
        let now = Instant::now();
        let oldest_frame =
            st.lanes.iter().filter_map(|l| l.items.front().map(|i| i.arrived)).chain(st.requests.front().map(|i| i.arrived)).min();
        let oldest_tensor = st.tensors.front().map(|i| i.arrived);
        let take_tensors = match (oldest_frame, oldest_tensor) {
            (Some(f), Some(t)) => t < f,
            (None, Some(_)) => true,
            _ => false,
        };
        let model = sh.handle.current();
        let batchable = model.as_ref().is_none_or(|m| m.batchable());
        let (avail, oldest) = if take_tensors {
            let head = &st.tensors[0];
            let n = if batchable {
                let mut total = 0;
                for it in st.tensors.iter().filter(|it| same_shapes(head, it)) {
                    if total + lead(it) > params.max_batch_size {
                        break;
                    }
                    total += lead(it);
                }
                total.max(lead(head).min(params.max_batch_size)).max(1)
            } else {
                1
            };
            (n, oldest_tensor.unwrap_or(now))
        } else {
            (st.frames + st.requests.len(), oldest_frame.unwrap_or(now))
        };
        let waited = now.saturating_duration_since(oldest);
        let Some(n) = decide(avail, waited, &params, st.closed) else {
            let left = params.delay().saturating_sub(waited).max(Duration::from_micros(50));
            let _ = sh.cv.wait_timeout(st, left);
            continue;
        };
        let mut items = Vec::with_capacity(n);
        if take_tensors {
            let Some(head) = st.tensors.pop_front() else { continue };
            let mut total = lead(&head);
            let mut keep = VecDeque::new();
            let mut rest = std::mem::take(&mut st.tensors);
            while let Some(it) = rest.pop_front() {
                if batchable && total + lead(&it) <= n && same_shapes(&head, &it) {
                    total += lead(&it);
                    items.push(it);
                } else {
                    keep.push_back(it);
                }
            }
            items.insert(0, head);
            st.tensors = keep;
        } else {
            items = take_frames(&mut st, n);
        }
        st.in_flight += 1;
        sh.publish_depth(&st);
        drop(st);
        let prepared = prepare(&sh, model, items, take_tensors);
        if tx.send(prepared).is_err() {
            return;
        }
    }
}

/// Takes up to `n` frames: requests first (a caller is waiting), then the camera lanes
/// round-robin, one frame per camera per round, continuing where the last batch stopped.
fn take_frames(st: &mut State, n: usize) -> Vec<Item> {
    let mut items = Vec::with_capacity(n);
    while items.len() < n {
        match st.requests.pop_front() {
            Some(it) => items.push(it),
            None => break,
        }
    }
    let nl = st.lanes.len();
    while items.len() < n && st.frames > 0 && nl > 0 {
        let i = st.rr % nl;
        st.rr = (i + 1) % nl;
        if let Some(it) = st.lanes[i].items.pop_front() {
            st.frames -= 1;
            items.push(it);
        }
    }
    items
}

fn prepare(sh: &Shared, model: Option<Arc<LoadedModel>>, items: Vec<Item>, tensors: bool) -> Prepared {
    let Some(model) = model else {
        let kind = PreparedKind::Failed(ServeError::Unavailable(format!("model '{}' is not loaded", sh.model_name)));
        return Prepared { model: None, items, kind };
    };
    let kind = if tensors {
        prepare_tensors(&model, &items)
    } else if !model.is_pose() {
        PreparedKind::Failed(ServeError::InvalidArgument(format!("model '{}' is not a pose model; frames need one", model.name)))
    } else {
        prepare_frames(&model, &items)
    };
    Prepared { model: Some(model), items, kind }
}

fn prepare_tensors(model: &LoadedModel, items: &[Item]) -> PreparedKind {
    let mut per_input: Vec<Vec<Tensor>> = vec![Vec::new(); model.graph.inputs.len()];
    let mut batch = 0;
    let mut frame_shapes = Vec::new();
    for it in items {
        if let Work::Tensors { inputs, .. } = &it.work {
            if inputs.len() != per_input.len() {
                return PreparedKind::Failed(ServeError::InvalidArgument(format!(
                    "model '{}' has {} inputs, got {}",
                    model.name,
                    per_input.len(),
                    inputs.len()
                )));
            }
            batch += inputs.first().and_then(|t| t.shape.first().copied()).unwrap_or(1);
            if frame_shapes.is_empty() {
                frame_shapes = inputs.iter().map(|t| t.shape.clone()).collect();
            }
            for (acc, t) in per_input.iter_mut().zip(inputs) {
                acc.push(t.clone());
            }
        }
    }
    if items.len() == 1 {
        // a single request runs at its own shapes
        return PreparedKind::Tensors { inputs: per_input.into_iter().flatten().collect(), frame_shapes, batch: 1 };
    }
    for s in &mut frame_shapes {
        if let Some(d) = s.first_mut() {
            *d = 1;
        }
    }
    let inputs = per_input.iter().map(|parts| runtime::concat_batch(parts)).collect();
    PreparedKind::Tensors { inputs, frame_shapes, batch }
}

fn frames_of(items: &[Item]) -> Vec<&image::RgbImage> {
    items
        .iter()
        .filter_map(|it| match &it.work {
            Work::Frame { frame, .. } => Some(&frame.image),
            _ => None,
        })
        .collect()
}

fn prepare_frames(model: &LoadedModel, items: &[Item]) -> PreparedKind {
    if model.exec.name() == "gpu" {
        // the GPU letterbox kernel fills the plan's input buffer on the inference thread
        return PreparedKind::DeviceFrames;
    }
    match letterbox_batch(model, &frames_of(items)) {
        Ok((input, boxes)) => PreparedKind::Frames { input, boxes },
        Err(e) => PreparedKind::Failed(e),
    }
}

/// Letterboxes frames of any sizes into one batch tensor on the CPU.
fn letterbox_batch(model: &LoadedModel, frames: &[&image::RgbImage]) -> Result<(Tensor, Vec<Letterbox>), ServeError> {
    let spec = model.frame_spec().ok_or_else(|| ServeError::Internal("pose model without an input config".into()))?;
    let (h, w, layout, dtype) = (spec.height, spec.width, spec.layout, spec.dtype);
    // letterbox every frame straight into its slice of the batch tensor
    let n = frames.len();
    let plane = h * w;
    let shape = match layout {
        Layout::Nhwc => vec![n, h, w, 3],
        Layout::Nchw => vec![n, 3, h, w],
    };
    let index = move |y: usize, x: usize, c: usize| match layout {
        Layout::Nhwc => (y * w + x) * 3 + c,
        Layout::Nchw => c * plane + y * w + x,
    };
    let identity = spec.mean == [0.0; 3] && spec.std == [1.0; 3];
    if dtype == DType::I32 && identity {
        let mut vals = vec![0i32; n * plane * 3];
        let boxes: Vec<Letterbox> = vals
            .par_chunks_mut(plane * 3)
            .zip(frames.par_iter())
            .map(|(dst, f)| {
                image_io::letterbox_with(f, w, h, |y, x, rgb| {
                    for (c, v) in rgb.into_iter().enumerate() {
                        dst[index(y, x, c)] = v as i32;
                    }
                })
            })
            .collect();
        return Ok((Tensor::i32(shape, vals), boxes));
    }
    let (mean, std) = (spec.mean, spec.std);
    let mut vals = vec![0f32; n * plane * 3];
    let boxes: Vec<Letterbox> = vals
        .par_chunks_mut(plane * 3)
        .zip(frames.par_iter())
        .map(|(dst, f)| {
            // the bars hold what a black pixel normalises to
            for c in 0..3 {
                let bar = (0.0 - mean[c]) / std[c];
                for y in 0..h {
                    for x in 0..w {
                        dst[index(y, x, c)] = bar;
                    }
                }
            }
            image_io::letterbox_with(f, w, h, |y, x, rgb| {
                for (c, v) in rgb.into_iter().enumerate() {
                    dst[index(y, x, c)] = (v - mean[c]) / std[c];
                }
            })
        })
        .collect();
    let input = if dtype == DType::F32 { Tensor::f32(shape, vals) } else { Tensor::f32(shape, vals).cast(dtype) };
    Ok((input, boxes))
}

/// The inference thread: runs prepared batches, decodes, replies and publishes.
fn run_batches(sh: Arc<Shared>, rx: mpsc::Receiver<Prepared>) {
    while let Ok(p) = rx.recv() {
        run_one(&sh, p);
        if let Ok(mut st) = sh.state.lock() {
            st.in_flight -= 1;
        }
        sh.cv.notify_all();
    }
}

fn fail(items: Vec<Item>, e: &ServeError) {
    for it in items {
        match it.work {
            Work::Frame { reply: Some(r), .. } => {
                let _ = r.send(Err(e.clone()));
            }
            Work::Tensors { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
            Work::Frame { frame, reply: None } => tracing::warn!(camera = %frame.camera, seq = frame.seq, "frame failed: {e}"),
        }
    }
}

fn run_one(sh: &Shared, p: Prepared) {
    let Prepared { model, items, kind } = p;
    // queue time: arrival to the start of its batch's run (waiting in a lane, being
    // letterboxed, waiting behind the running batch); compute: the run and decoding
    let started = Instant::now();
    let model = match (model, kind) {
        (_, PreparedKind::Failed(e)) => return fail(items, &e),
        (None, _) => return fail(items, &ServeError::Unavailable(format!("model '{}' is not loaded", sh.model_name))),
        (Some(m), k) => (m, k),
    };
    let (model, kind) = model;
    let m = &sh.metrics;
    let name = sh.model_name.as_str();
    let n = items.len();
    let version = model.version.to_string();
    for it in &items {
        m.queue_latency.with_label_values(&[name]).observe(started.saturating_duration_since(it.arrived).as_secs_f64());
    }
    match kind {
        PreparedKind::Failed(e) => fail(items, &e),
        PreparedKind::Tensors { inputs, frame_shapes, batch } => {
            let out = model.run(&frame_shapes, batch, &inputs);
            let compute = started.elapsed();
            m.compute_latency.with_label_values(&[name]).observe(compute.as_secs_f64());
            m.batch_size.with_label_values(&[name]).observe(batch as f64);
            let outs = match out {
                Ok(o) => o,
                Err(e) => return fail(items, &e),
            };
            m.inferences.with_label_values(&[name, &version]).inc_by(batch as u64);
            let single = items.len() == 1;
            let mut offset = 0;
            for it in items {
                let k = lead(&it);
                if let Work::Tensors { reply, .. } = it.work {
                    let outputs = if single { outs.clone() } else { outs.iter().map(|o| slice_rows(o, offset, k)).collect() };
                    offset += k;
                    m.e2e_latency.with_label_values(&[name]).observe(it.arrived.elapsed().as_secs_f64());
                    let _ = reply.send(Ok(TensorReply { outputs, version: model.version }));
                }
            }
        }
        kind @ (PreparedKind::Frames { .. } | PreparedKind::DeviceFrames) => {
            let out = match kind {
                PreparedKind::Frames { input, boxes } => model.run(&model.frame_shapes(), n, &[input]).map(|o| (o, boxes)),
                _ => {
                    let frames = frames_of(&items);
                    match model.run_frames(&frames) {
                        Some(r) => r,
                        // the plan cannot take frames on the device: letterbox on the CPU
                        None => letterbox_batch(&model, &frames)
                            .and_then(|(input, boxes)| Ok((model.run(&model.frame_shapes(), n, &[input])?, boxes))),
                    }
                }
            };
            let decode_min = model.config.as_ref().map(|c| c.output.min_score).unwrap_or(0.25);
            let (outs, boxes) = match out {
                Ok(o) => o,
                Err(e) => return fail(items, &e),
            };
            let compute = started.elapsed();
            m.compute_latency.with_label_values(&[name]).observe(compute.as_secs_f64());
            m.batch_size.with_label_values(&[name]).observe(n as f64);
            m.inferences.with_label_values(&[name, &version]).inc_by(n as u64);
            for (b, (it, lb)) in items.into_iter().zip(boxes).enumerate() {
                let Work::Frame { frame, reply } = it.work else { continue };
                let persons = pose::decode_movenet(&outs[0], b, &lb, frame.image.width(), frame.image.height(), decode_min);
                let persons = match persons {
                    Ok(p) => p,
                    Err(e) => {
                        fail(vec![Item { work: Work::Frame { frame, reply }, arrived: it.arrived }], &ServeError::Internal(e.to_string()));
                        continue;
                    }
                };
                let e2e = it.arrived.elapsed();
                m.e2e_latency.with_label_values(&[name]).observe(e2e.as_secs_f64());
                let result = Arc::new(FrameResult {
                    camera: frame.camera.clone(),
                    seq: frame.seq,
                    capture_ts: frame.capture_ts,
                    model: name.to_string(),
                    version: model.version,
                    width: frame.image.width(),
                    height: frame.image.height(),
                    persons,
                    queue_s: started.saturating_duration_since(it.arrived).as_secs_f64(),
                    compute_s: compute.as_secs_f64(),
                    e2e_s: e2e.as_secs_f64(),
                    batch_size: n,
                    image: if sh.keep_frames && reply.is_none() { Some(Arc::new(frame.image)) } else { None },
                });
                match reply {
                    Some(r) => {
                        let _ = r.send(Ok(result));
                    }
                    None => {
                        m.frames_done.with_label_values(&[&result.camera]).inc();
                        let _ = sh.results.send(result);
                    }
                }
            }
        }
    }
}

/// Rows `[start, start + k)` along axis 0.
fn slice_rows(t: &Tensor, start: usize, k: usize) -> Tensor {
    let rows = t.shape.first().copied().unwrap_or(1).max(1);
    let per = t.numel() / rows;
    let mut shape = t.shape.clone();
    if let Some(d) = shape.first_mut() {
        *d = k;
    }
    let data = crate::map_data!(&t.data, v => v[start * per..(start + k) * per].to_vec());
    Tensor::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(max: usize, delay_us: u64, pref: Vec<usize>) -> BatchingParams {
        BatchingParams { max_batch_size: max, max_queue_delay_us: delay_us, preferred_batch_sizes: pref, max_queue_size: 8 }
    }

    #[test]
    fn decide_follows_triton_rules() {
        let d = Duration::from_micros;
        assert_eq!(decide(0, d(10_000), &p(8, 100, vec![]), true), None);
        assert_eq!(decide(9, d(0), &p(8, 100, vec![]), false), Some(8));
        assert_eq!(decide(3, d(0), &p(8, 100, vec![]), false), None);
        assert_eq!(decide(3, d(100), &p(8, 100, vec![]), false), Some(3));
        assert_eq!(decide(5, d(0), &p(8, 100, vec![2, 4]), false), Some(4));
        assert_eq!(decide(1, d(0), &p(8, 100, vec![2, 4]), false), None);
        assert_eq!(decide(1, d(0), &p(8, 100, vec![2, 4]), true), Some(1));
        assert_eq!(decide(2, d(0), &p(8, 0, vec![]), false), Some(2));
    }

    fn frame(camera: &str, seq: u64) -> Item {
        let f = CameraFrame { camera: camera.into(), seq, capture_ts: 0.0, image: image::RgbImage::new(1, 1) };
        Item { work: Work::Frame { frame: f, reply: None }, arrived: Instant::now() }
    }

    fn taken(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|it| match &it.work {
                Work::Frame { frame, reply } => format!("{}{}{}", if reply.is_some() { "req:" } else { "" }, frame.camera, frame.seq),
                Work::Tensors { .. } => "tensors".into(),
            })
            .collect()
    }

    #[test]
    fn cameras_are_served_round_robin_and_requests_first() {
        let mut st = State::default();
        let lane = |cam: &str, n: u64| Lane { camera: cam.into(), items: (0..n).map(|s| frame(cam, s)).collect(), cap: 8 };
        // a busy camera with 6 frames queued must not starve two quiet ones
        st.lanes = vec![lane("a", 6), lane("b", 1), lane("c", 2)];
        st.frames = 9;
        let (tx, _rx) = oneshot::channel();
        let mut req = frame("x", 0);
        req.work = match req.work {
            Work::Frame { frame, .. } => Work::Frame { frame, reply: Some(tx) },
            w => w,
        };
        st.requests.push_back(req);
        assert_eq!(taken(&take_frames(&mut st, 4)), ["req:x0", "a0", "b0", "c0"]);
        assert_eq!(taken(&take_frames(&mut st, 4)), ["a1", "c1", "a2", "a3"]);
        assert_eq!(taken(&take_frames(&mut st, 4)), ["a4", "a5"]);
        assert_eq!(st.frames, 0);
    }

    #[test]
    fn slice_rows_takes_leading_rows() {
        let t = Tensor::f32(vec![3, 2], vec![0., 1., 2., 3., 4., 5.]);
        let s = slice_rows(&t, 1, 2);
        assert_eq!(s.shape, vec![2, 2]);
        assert_eq!(s.as_f32(), Some(&[2., 3., 4., 5.][..]));
    }
}
