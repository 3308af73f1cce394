//! The batcher's prepare and inference threads: a formed batch becomes one input tensor
//! (the CPU letterbox, or stacked ModelInfer tensors), runs on the model's executor, and is
//! decoded by the model's head into results that are published or answered.

use super::{lead, Item, Shared, TensorReply, Work};
use crate::graph::Tensor;
use crate::models::heads::{self, FrameCtx};
use crate::runtime::{self, Letterbox};
use crate::serve::model::LoadedModel;
use crate::serve::result::FrameResult;
use crate::serve::stats::Phases;
use crate::serve::ServeError;
use crate::vision::crop::Crop;
use crate::vision::letterbox::letterbox_batch;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A batch taken from the queue, for the prepare thread.
pub(super) struct Formed {
    pub model: Option<Arc<LoadedModel>>,
    pub items: Vec<Item>,
    pub tensors: bool,
}

/// A batch ready to run, for the inference thread.
pub(super) struct Prepared {
    model: Option<Arc<LoadedModel>>,
    items: Vec<Item>,
    kind: PreparedKind,
    /// How long preparing took (the statistics' compute input).
    prep: Duration,
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

/// The prepare thread: letterboxes (or stacks) the next batch while the current one runs.
pub(super) fn prepare_batches(sh: Arc<Shared>, formed: Receiver<Formed>, prepared: Sender<Prepared>) {
    while let Ok(f) = formed.recv() {
        if prepared.send(prepare(&sh, f.model, f.items, f.tensors)).is_err() {
            return;
        }
    }
}

/// The inference thread: runs prepared batches, decodes, replies and publishes; tells the
/// queue actor when each batch is done.
pub(super) fn run_batches(sh: Arc<Shared>, prepared: Receiver<Prepared>, done: Sender<()>) {
    while let Ok(p) = prepared.recv() {
        run_one(&sh, p);
        if done.send(()).is_err() {
            return;
        }
    }
}

fn prepare(sh: &Shared, model: Option<Arc<LoadedModel>>, items: Vec<Item>, tensors: bool) -> Prepared {
    let began = Instant::now();
    let Some(model) = model else {
        let kind = PreparedKind::Failed(ServeError::Unavailable(format!("model '{}' is not loaded", sh.model_name)));
        return Prepared { model: None, items, kind, prep: Duration::ZERO };
    };
    let kind = if tensors {
        prepare_tensors(&model, &items)
    } else if !model.is_pose() {
        PreparedKind::Failed(ServeError::InvalidArgument(format!("model '{}' is not a pose model; frames need one", model.name)))
    } else {
        prepare_frames(&model, &items)
    };
    Prepared { model: Some(model), items, kind, prep: began.elapsed() }
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
    if model.device_frames {
        // the plan letterboxes on its device (the GPU kernel fills the plan's input buffer)
        // on the inference thread
        return PreparedKind::DeviceFrames;
    }
    let span = tracing::info_span!("letterbox", model = %model.name, frames = items.len());
    for it in items {
        span.follows_from(it.span.id());
    }
    let _in_span = span.enter();
    match cpu_letterbox(model, &frames_of(items)) {
        Ok((input, boxes)) => PreparedKind::Frames { input, boxes },
        Err(e) => PreparedKind::Failed(e),
    }
}

/// The CPU letterbox at the model's frame spec.
fn cpu_letterbox(model: &LoadedModel, frames: &[&image::RgbImage]) -> Result<(Tensor, Vec<Letterbox>), ServeError> {
    let spec = model.frame_spec().ok_or_else(|| ServeError::Internal("pose model without an input config".into()))?;
    Ok(letterbox_batch(frames, &spec))
}

fn fail(sh: &Shared, version: u64, items: Vec<Item>, e: &ServeError) {
    for it in items {
        sh.metrics.stats.failed(&sh.model_name, version, it.arrived.elapsed());
        let _in_span = it.span.enter();
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
    let Prepared { model, items, kind, prep } = p;
    // queue time: arrival to the start of its batch's run (waiting in a lane, being
    // letterboxed, waiting behind the running batch); compute: the run and decoding
    let started = Instant::now();
    let model = match (model, kind) {
        (m, PreparedKind::Failed(e)) => return fail(sh, m.map_or(0, |m| m.version), items, &e),
        (None, _) => return fail(sh, 0, items, &ServeError::Unavailable(format!("model '{}' is not loaded", sh.model_name))),
        (Some(m), k) => (m, k),
    };
    let (model, kind) = model;
    // one span for the batch, following from each item's span
    let batch_span = tracing::info_span!("batch", model = %sh.model_name, version = model.version, size = items.len());
    for it in &items {
        batch_span.follows_from(it.span.id());
    }
    let _in_batch = batch_span.enter();
    let m = &sh.metrics;
    let name = sh.model_name.as_str();
    let version = model.version.to_string();
    for it in &items {
        m.queue_latency.with_label_values(&[name]).observe(started.saturating_duration_since(it.arrived).as_secs_f64());
    }
    // the statistics' queue time: arrival to this run, less the batch's preparing
    let queued: Vec<Duration> = items.iter().map(|it| started.saturating_duration_since(it.arrived).saturating_sub(prep)).collect();
    match kind {
        PreparedKind::Failed(e) => fail(sh, model.version, items, &e),
        PreparedKind::Tensors { inputs, frame_shapes, batch } => {
            let out = model.run(&frame_shapes, batch, &inputs);
            let compute = started.elapsed();
            m.compute_latency.with_label_values(&[name]).observe(compute.as_secs_f64());
            m.batch_size.with_label_values(&[name]).observe(batch as f64);
            let outs = match out {
                Ok(o) => o,
                Err(e) => return fail(sh, model.version, items, &e),
            };
            let extracting = Instant::now();
            m.inferences.with_label_values(&[name, &version]).inc_by(batch as u64);
            let single = items.len() == 1;
            let mut offset = 0;
            let mut replies = Vec::with_capacity(items.len());
            for it in items {
                let k = lead(&it);
                if let Work::Tensors { reply, .. } = it.work {
                    let outputs = if single { outs.clone() } else { outs.iter().map(|o| slice_rows(o, offset, k)).collect() };
                    offset += k;
                    replies.push((reply, outputs, it.arrived.elapsed()));
                }
            }
            // the statistics count the execution and its answers at once, before any answer
            // leaves: a client never sees its answer missing from them
            let phases = Phases { input: prep, infer: compute, output: extracting.elapsed() };
            let totals: Vec<Duration> = replies.iter().map(|r| r.2).collect();
            m.stats.executed(name, model.version, batch as u64, &queued, phases, &totals);
            for (reply, outputs, total) in replies {
                m.e2e_latency.with_label_values(&[name]).observe(total.as_secs_f64());
                let _ = reply.send(Ok(TensorReply { outputs, version: model.version }));
            }
        }
        kind => run_frames(sh, &model, items, kind, started, (queued, prep)),
    }
}

/// Runs a batch of frames (letterboxed on the CPU, or on the device by the plan), decodes
/// each with the model's head, and answers or publishes its result.
fn run_frames(sh: &Shared, model: &LoadedModel, items: Vec<Item>, kind: PreparedKind, started: Instant, stats: (Vec<Duration>, Duration)) {
    let (m, name, n) = (&sh.metrics, sh.model_name.as_str(), items.len());
    let out = match kind {
        PreparedKind::Frames { input, boxes } => model.run(&model.frame_shapes(), n, &[input]).map(|o| (o, boxes)),
        _ => {
            let frames = frames_of(&items);
            match model.run_frames(&frames) {
                Some(r) => r,
                // the plan cannot take these frames on the device: letterbox on the CPU
                None => {
                    cpu_letterbox(model, &frames).and_then(|(input, boxes)| Ok((model.run(&model.frame_shapes(), n, &[input])?, boxes)))
                }
            }
        }
    };
    let (outs, boxes) = match out {
        Ok(o) => o,
        Err(e) => return fail(sh, model.version, items, &e),
    };
    let Some(cfg) = model.config.as_ref() else {
        return fail(sh, model.version, items, &ServeError::Internal(format!("model '{}' has no config to decode with", model.name)));
    };
    let compute = started.elapsed();
    let decoding = Instant::now();
    m.compute_latency.with_label_values(&[name]).observe(compute.as_secs_f64());
    m.batch_size.with_label_values(&[name]).observe(n as f64);
    m.inferences.with_label_values(&[name, &model.version.to_string()]).inc_by(n as u64);
    let mut done: Vec<(FrameResult, Option<super::FrameReply>, tracing::Span)> = Vec::with_capacity(n);
    for (b, (it, lb)) in items.into_iter().zip(boxes).enumerate() {
        let Item { work: Work::Frame { frame, reply }, arrived, span, _charge } = it else { continue };
        let _in_span = span.enter();
        let (width, height) = (frame.image.width(), frame.image.height());
        // camera frames go on to the tracker, which wants low-score people too (the tracking
        // stage drops those that continue no track); a request's reply gets the model's own
        let min_score = match sh.opts.track_floor {
            Some(floor) if reply.is_none() && cfg.task == crate::models::config::Task::Pose => cfg.output.min_score.min(floor),
            _ => cfg.output.min_score,
        };
        let f = FrameCtx { index: b, letterbox: &lb, width, height, min_score };
        let output = match heads::decode(cfg.output.decoder, &outs, f) {
            Ok(o) => o,
            Err(e) => {
                drop(_in_span);
                let e = ServeError::Internal(e.to_string());
                fail(sh, model.version, vec![Item { work: Work::Frame { frame, reply }, arrived, span, _charge }], &e);
                continue;
            }
        };
        let e2e = arrived.elapsed();
        m.e2e_latency.with_label_values(&[name]).observe(e2e.as_secs_f64());
        let result = FrameResult {
            camera: frame.camera.clone(),
            seq: frame.seq,
            capture_ts: frame.capture_ts,
            model: name.to_string(),
            version: model.version,
            width,
            height,
            output,
            min_score: cfg.output.min_score,
            identities: Vec::new(),
            embeddings: Vec::new(),
            queue_s: started.saturating_duration_since(arrived).as_secs_f64(),
            compute_s: compute.as_secs_f64(),
            e2e_s: e2e.as_secs_f64(),
            batch_size: n,
            image: Some(Arc::new(frame.image)),
        };
        drop(_in_span);
        done.push((result, reply, span));
    }
    embed_persons(sh, &mut done);
    let (queued, prep) = stats;
    let totals: Vec<Duration> = done.iter().map(|d| Duration::from_secs_f64(d.0.e2e_s)).collect();
    m.stats.executed(name, model.version, n as u64, &queued, Phases { input: prep, infer: compute, output: decoding.elapsed() }, &totals);
    for (mut result, reply, span) in done {
        let _in_span = span.enter();
        if !(sh.opts.keep_frames && reply.is_none()) {
            result.image = None;
        }
        let result = Arc::new(result);
        tracing::debug!(persons = result.persons().len(), e2e_ms = result.e2e_s * 1e3, "frame done");
        match reply {
            Some(r) => {
                let _ = r.send(Ok(result));
            }
            None => {
                m.frames_done.with_label_values(&[&result.camera]).inc();
                sh.results.send(result);
            }
        }
    }
}

/// Every person of the batch's camera frames through the ReID model in one batch (across
/// cameras); each result gets its persons' embeddings. A failure leaves them without (the
/// stages fall back to geometry) and is logged.
fn embed_persons(sh: &Shared, done: &mut [(FrameResult, Option<super::FrameReply>, tracing::Span)]) {
    let Some(reid) = &sh.reid else { return };
    let frames: Vec<&image::RgbImage> = done.iter().filter_map(|d| d.0.image.as_deref()).collect();
    if frames.len() != done.len() {
        return;
    }
    let crops: Vec<Crop> = done
        .iter()
        .enumerate()
        .filter(|(_, d)| d.1.is_none())
        .flat_map(|(i, d)| d.0.persons().iter().map(move |p| Crop { frame: i, bbox: p.bbox }))
        .collect();
    if crops.is_empty() {
        return;
    }
    let embedded = match reid.lock() {
        Ok(mut r) => r.embed(&frames, &crops),
        Err(_) => return,
    };
    match embedded {
        Ok(e) => {
            sh.metrics.reid_crops.with_label_values(&[&sh.model_name]).inc_by(e.len() as u64);
            let mut e = e.into_iter();
            for d in done.iter_mut().filter(|d| d.1.is_none()) {
                d.0.embeddings = e.by_ref().take(d.0.persons().len()).collect();
            }
        }
        Err(err) => tracing::warn!(error = %err, "reid failed; this batch is tracked on geometry alone"),
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

    #[test]
    fn slice_rows_takes_leading_rows() {
        let t = Tensor::f32(vec![3, 2], vec![0., 1., 2., 3., 4., 5.]);
        let s = slice_rows(&t, 1, 2);
        assert_eq!(s.shape, vec![2, 2]);
        assert_eq!(s.as_f32(), Some(&[2., 3., 4., 5.][..]));
    }
}
