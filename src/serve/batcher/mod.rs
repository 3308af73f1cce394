//! The dynamic batcher: one actor per model, with Triton's semantics.
//!
//! - Camera frames wait in per-camera lanes; a full lane drops its oldest frame (counted).
//! - Requests (AnalyzeImage, ModelInfer) wait in a bounded queue; a full queue rejects new
//!   ones with RESOURCE_EXHAUSTED.
//! - A batch is formed when `max_batch_size` items are queued, when a preferred batch size
//!   can be formed, or when the oldest item has waited `max_queue_delay_us`. Lanes are
//!   served round-robin, one frame per camera per round.
//!
//! Three threads per model, joined by bounded channels (as text-embeddings-inference's
//! queue): the queue actor owns every lane and request queue and takes commands as messages
//! ([`Cmd`]); the prepare thread letterboxes the next batch (`run::prepare`) while the
//! inference thread runs the current one (`run::run_one`). At most two batches are out of
//! the queue at once (one running, one prepared), so batches form from what arrived
//! meanwhile. Each item carries its own `tracing` span (camera, sequence number) from push
//! to result.

mod run;

use super::budget::Charge;
use super::config::BatchingParams;
use super::metrics::Metrics;
use super::model::ModelHandle;
use super::result::FrameResult;
use super::stages::ResultSink;
use super::ServeError;
use crate::graph::Tensor;
use crate::sources::CameraFrame;
use crossbeam_channel::{bounded, select, Receiver, Sender};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Outputs of one ModelInfer request.
#[derive(Debug)]
pub struct TensorReply {
    pub outputs: Vec<Tensor>,
    pub version: u64,
}

pub type FrameReply = oneshot::Sender<Result<Arc<FrameResult>, ServeError>>;
pub type TensorReplyTx = oneshot::Sender<Result<TensorReply, ServeError>>;

/// Commands waiting for the queue actor; past this, senders wait (backpressure).
const COMMAND_QUEUE: usize = 1024;

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
    /// Its bytes held from the server's memory budget until the item is dropped.
    _charge: Option<Charge>,
    /// Follows the item from its arrival to its result.
    span: tracing::Span,
}

impl Item {
    fn new(work: Work, arrived: Instant, charge: Option<Charge>) -> Item {
        let span = match &work {
            Work::Frame { frame, reply } => {
                tracing::info_span!("frame", camera = %frame.camera, seq = frame.seq, request = reply.is_some())
            }
            Work::Tensors { .. } => tracing::info_span!("infer_request"),
        };
        Item { work, arrived, _charge: charge, span }
    }
}

/// What the queue actor is asked to do. Each command that answers carries a bounded(1)
/// reply channel.
enum Cmd {
    PushFrame {
        frame: CameraFrame,
        cap: usize,
        arrived: Instant,
        charge: Option<Charge>,
        reply: Sender<Result<PushOutcome, ServeError>>,
    },
    Analyze {
        frame: CameraFrame,
        charge: Option<Charge>,
        reply: FrameReply,
        admitted: Sender<Result<(), ServeError>>,
    },
    Infer {
        inputs: Vec<Tensor>,
        charge: Option<Charge>,
        reply: TensorReplyTx,
        admitted: Sender<Result<(), ServeError>>,
    },
    RemoveLane {
        camera: String,
        reply: Sender<usize>,
    },
    Pending {
        reply: Sender<usize>,
    },
    /// Wake up: the batching parameters changed.
    Params,
    /// Stop taking work; run what is queued until `deadline`, then drop the rest.
    Close {
        deadline: Option<Instant>,
    },
}

struct Lane {
    camera: String,
    items: VecDeque<Item>,
    cap: usize,
}

/// The queue state; owned by the actor thread alone.
#[derive(Default)]
struct State {
    lanes: Vec<Lane>,
    rr: usize,
    frames: usize,
    requests: VecDeque<Item>,
    tensors: VecDeque<Item>,
    in_flight: usize,
    closed: bool,
    /// When closing: past this, what is still queued is dropped.
    deadline: Option<Instant>,
}

impl State {
    fn pending(&self) -> usize {
        self.frames + self.requests.len() + self.tensors.len()
    }
}

/// What the three threads share (read-only, or behind its own lock).
struct Shared {
    model_name: String,
    handle: Arc<ModelHandle>,
    params: RwLock<BatchingParams>,
    metrics: Metrics,
    results: ResultSink,
    opts: BatcherOptions,
    /// The ReID model that embeds each person's crop (pose models, when configured).
    reid: Option<Mutex<crate::pipeline::ReidPipeline>>,
}

/// What a batcher keeps and decodes beyond its model's config.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatcherOptions {
    /// Keep each frame in its result (a debug option).
    pub keep_frames: bool,
    /// With the tracking stage on: camera frames of pose models are decoded down to this
    /// score (the tracker's `low_score`; ByteTrack's second stage wants the half-hidden
    /// people the model scores low), not only to the model's `min_score`.
    pub track_floor: Option<f32>,
}

impl Shared {
    fn params(&self) -> BatchingParams {
        self.params.read().map(|p| p.clone()).unwrap_or_default()
    }
    fn publish_depth(&self, st: &State) {
        self.metrics.queue_depth.with_label_values(&[&self.model_name]).set(st.pending() as i64);
    }
}

/// Handle to a model's batcher; dropping it closes the batcher.
pub struct Batcher {
    shared: Arc<Shared>,
    cmds: Sender<Cmd>,
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

fn shutting_down() -> ServeError {
    ServeError::Unavailable("server is shutting down".into())
}

impl Batcher {
    pub fn start(
        model_name: &str,
        handle: Arc<ModelHandle>,
        params: BatchingParams,
        metrics: Metrics,
        results: ResultSink,
        opts: BatcherOptions,
        reid: Option<crate::pipeline::ReidPipeline>,
    ) -> Result<Self, ServeError> {
        let shared = Arc::new(Shared {
            model_name: model_name.to_string(),
            handle,
            params: RwLock::new(params),
            metrics,
            results,
            opts,
            reid: reid.map(Mutex::new),
        });
        let (cmd_tx, cmd_rx) = bounded::<Cmd>(COMMAND_QUEUE);
        // at most two batches are out of the queue, so none of these sends ever waits long
        let (form_tx, form_rx) = bounded::<run::Formed>(1);
        let (prep_tx, prep_rx) = bounded::<run::Prepared>(1);
        let (done_tx, done_rx) = bounded::<()>(4);
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f).map_err(|e| ServeError::Internal(format!("spawning batcher threads: {e}")))
        };
        let (s1, s2, s3) = (shared.clone(), shared.clone(), shared.clone());
        let threads = vec![
            spawn(format!("batch-{model_name}"), Box::new(move || queue_actor(s1, cmd_rx, done_rx, form_tx)))?,
            spawn(format!("prep-{model_name}"), Box::new(move || run::prepare_batches(s2, form_rx, prep_tx)))?,
            spawn(format!("infer-{model_name}"), Box::new(move || run::run_batches(s3, prep_rx, done_tx)))?,
        ];
        Ok(Batcher { shared, cmds: cmd_tx, threads: Mutex::new(threads), closed: AtomicBool::new(false) })
    }

    pub fn params(&self) -> BatchingParams {
        self.shared.params()
    }

    pub fn set_params(&self, p: BatchingParams) {
        if let Ok(mut g) = self.shared.params.write() {
            *g = p;
        }
        let _ = self.cmds.send(Cmd::Params);
    }

    /// Sends a command and waits for its answer.
    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Cmd) -> Result<T, ServeError> {
        let (tx, rx) = bounded(1);
        self.cmds.send(make(tx)).map_err(|_| shutting_down())?;
        rx.recv().map_err(|_| shutting_down())
    }

    /// Queues a camera frame in its camera's lane (created with capacity `cap` if new),
    /// dropping the lane's oldest frames when it is full.
    pub fn push_frame(&self, frame: CameraFrame, cap: usize, arrived: Instant, charge: Option<Charge>) -> Result<PushOutcome, ServeError> {
        self.ask(|reply| Cmd::PushFrame { frame, cap, arrived, charge, reply })?
    }

    /// Removes a camera's lane; returns how many queued frames were discarded.
    pub fn remove_lane(&self, camera: &str) -> usize {
        self.ask(|reply| Cmd::RemoveLane { camera: camera.to_string(), reply }).unwrap_or(0)
    }

    /// Queues an AnalyzeImage request; the result arrives on the returned channel.
    pub fn analyze(
        &self,
        frame: CameraFrame,
        charge: Option<Charge>,
    ) -> Result<oneshot::Receiver<Result<Arc<FrameResult>, ServeError>>, ServeError> {
        let (tx, rx) = oneshot::channel();
        self.ask(|admitted| Cmd::Analyze { frame, charge, reply: tx, admitted })??;
        Ok(rx)
    }

    /// Queues a ModelInfer request.
    pub fn infer(
        &self,
        inputs: Vec<Tensor>,
        charge: Option<Charge>,
    ) -> Result<oneshot::Receiver<Result<TensorReply, ServeError>>, ServeError> {
        let (tx, rx) = oneshot::channel();
        self.ask(|admitted| Cmd::Infer { inputs, charge, reply: tx, admitted })??;
        Ok(rx)
    }

    /// Items waiting (frames and requests).
    pub fn pending(&self) -> usize {
        self.ask(|reply| Cmd::Pending { reply }).unwrap_or(0)
    }

    /// Stops taking work, runs everything already queued, and joins the threads.
    pub fn close(&self) {
        self.close_by(None)
    }

    /// Stops taking work, runs what is queued until `deadline` (a batch already running
    /// finishes), drops the rest (frames counted as `reason="shutdown"`, requests answered
    /// UNAVAILABLE), and joins the threads.
    pub fn close_by(&self, deadline: Option<Instant>) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.cmds.send(Cmd::Close { deadline });
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

/// Applies one command to the queue state.
fn handle(sh: &Shared, st: &mut State, cmd: Cmd) {
    match cmd {
        Cmd::PushFrame { frame, cap, arrived, charge, reply } => {
            let _ = reply.send(push(st, frame, cap, arrived, charge));
        }
        Cmd::Analyze { frame, charge, reply, admitted } => {
            let ok = admit(sh, st);
            if ok.is_ok() {
                st.requests.push_back(Item::new(Work::Frame { frame, reply: Some(reply) }, Instant::now(), charge));
            }
            let _ = admitted.send(ok);
        }
        Cmd::Infer { inputs, charge, reply, admitted } => {
            let ok = admit(sh, st);
            if ok.is_ok() {
                st.tensors.push_back(Item::new(Work::Tensors { inputs, reply }, Instant::now(), charge));
            }
            let _ = admitted.send(ok);
        }
        Cmd::RemoveLane { camera, reply } => {
            let n = match st.lanes.iter().position(|l| l.camera == camera) {
                Some(i) => {
                    let lane = st.lanes.remove(i);
                    st.frames -= lane.items.len();
                    if st.rr >= st.lanes.len() {
                        st.rr = 0;
                    }
                    lane.items.len()
                }
                None => 0,
            };
            let _ = reply.send(n);
        }
        Cmd::Pending { reply } => {
            let _ = reply.send(st.pending());
        }
        Cmd::Params => {}
        Cmd::Close { deadline } => {
            st.closed = true;
            st.deadline = deadline;
        }
    }
    sh.publish_depth(st);
}

fn push(st: &mut State, frame: CameraFrame, cap: usize, arrived: Instant, charge: Option<Charge>) -> Result<PushOutcome, ServeError> {
    if st.closed {
        return Err(shutting_down());
    }
    let cap = cap.max(1);
    let idx = match st.lanes.iter().position(|l| l.camera == frame.camera) {
        Some(i) => i,
        None => {
            st.lanes.push(Lane { camera: frame.camera.clone(), items: VecDeque::with_capacity(cap.min(64)), cap });
            st.lanes.len() - 1
        }
    };
    let lane = &mut st.lanes[idx];
    lane.cap = cap;
    let mut dropped = 0;
    while lane.items.len() >= lane.cap {
        lane.items.pop_front();
        dropped += 1;
    }
    lane.items.push_back(Item::new(Work::Frame { frame, reply: None }, arrived, charge));
    st.frames = st.frames + 1 - dropped;
    Ok(if dropped == 0 { PushOutcome::Queued } else { PushOutcome::QueuedDropping(dropped) })
}

fn admit(sh: &Shared, st: &State) -> Result<(), ServeError> {
    if st.closed {
        return Err(shutting_down());
    }
    let max = sh.params().max_queue_size;
    if st.requests.len() + st.tensors.len() >= max {
        return Err(ServeError::QueueFull { model: sh.model_name.clone(), size: max });
    }
    Ok(())
}

/// The queue actor: applies commands, forms batches and hands them to the prepare thread.
fn queue_actor(sh: Arc<Shared>, cmds: Receiver<Cmd>, done: Receiver<()>, form: Sender<run::Formed>) {
    let mut st = State::default();
    let never = crossbeam_channel::never();
    let mut cmds_gone = false;
    loop {
        if st.closed && st.deadline.is_some_and(|d| Instant::now() >= d) && st.pending() > 0 {
            drop_queued(&sh, &mut st);
        }
        // form every batch that is due
        let wait = loop {
            match next_batch(&sh, &mut st) {
                Next::Batch(formed) => {
                    st.in_flight += 1;
                    sh.publish_depth(&st);
                    if form.send(formed).is_err() {
                        return;
                    }
                }
                Next::Wait(d) => break d,
            }
        };
        if st.closed && st.pending() == 0 && st.in_flight == 0 {
            return;
        }
        let mut wait = wait.unwrap_or(Duration::from_secs(3600));
        if let Some(d) = st.deadline.filter(|_| st.closed && st.pending() > 0) {
            wait = wait.min(d.saturating_duration_since(Instant::now()));
        }
        let timeout = crossbeam_channel::after(wait);
        select! {
            recv(if cmds_gone { &never } else { &cmds }) -> c => match c {
                Ok(c) => handle(&sh, &mut st, c),
                // every handle is gone: run what is queued, then end
                Err(_) => {
                    cmds_gone = true;
                    st.closed = true;
                }
            },
            recv(done) -> d => match d {
                Ok(()) => st.in_flight -= 1,
                // the inference thread is gone: nothing queued can run any more
                Err(_) => return,
            },
            recv(timeout) -> _ => {},
        }
    }
}

/// Drops everything still queued at the shutdown deadline: camera frames are counted as
/// dropped for `shutdown`, requests are answered UNAVAILABLE.
fn drop_queued(sh: &Shared, st: &mut State) {
    let items: Vec<Item> =
        st.lanes.iter_mut().flat_map(|l| l.items.drain(..)).chain(st.requests.drain(..)).chain(st.tensors.drain(..)).collect();
    st.frames = 0;
    tracing::warn!(model = %sh.model_name, items = items.len(), "shutdown deadline: dropping queued items");
    let gone = || ServeError::Unavailable("the server shut down before this ran (drain_timeout_s)".into());
    for item in items {
        match item.work {
            Work::Frame { frame, reply: None } => sh.metrics.frames_dropped.with_label_values(&[&frame.camera, "shutdown"]).inc(),
            Work::Frame { reply: Some(r), .. } => {
                let _ = r.send(Err(gone()));
            }
            Work::Tensors { reply, .. } => {
                let _ = reply.send(Err(gone()));
            }
        }
    }
    sh.publish_depth(st);
}

enum Next {
    Batch(run::Formed),
    /// Nothing is due; look again after this long (`None`: when something happens).
    Wait(Option<Duration>),
}

/// The next batch if one is due under Triton's rules.
fn next_batch(sh: &Shared, st: &mut State) -> Next {
    // at most one prepared batch waits behind the running one
    if st.in_flight >= 2 || st.pending() == 0 {
        return Next::Wait(None);
    }
    let params = sh.params();
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
        return Next::Wait(Some(params.delay().saturating_sub(waited).max(Duration::from_micros(50))));
    };
    let items = if take_tensors { take_tensor_items(st, n, batchable) } else { take_frames(st, n) };
    Next::Batch(run::Formed { model, items, tensors: take_tensors })
}

/// Takes the oldest request and the later ones of the same shapes, up to `n` rows.
fn take_tensor_items(st: &mut State, n: usize, batchable: bool) -> Vec<Item> {
    let Some(head) = st.tensors.pop_front() else { return Vec::new() };
    let mut total = lead(&head);
    let mut items = vec![];
    let mut keep = VecDeque::new();
    while let Some(it) = st.tensors.pop_front() {
        if batchable && total + lead(&it) <= n && same_shapes(&head, &it) {
            total += lead(&it);
            items.push(it);
        } else {
            keep.push_back(it);
        }
    }
    items.insert(0, head);
    st.tensors = keep;
    items
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
        Item::new(Work::Frame { frame: f, reply: None }, Instant::now(), None)
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
}
