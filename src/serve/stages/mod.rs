//! Stages after the model: where per-camera tracking, multi-camera fusion, interaction events
//! and the event log plug in. Each stage is an actor on its own thread, fed by a bounded
//! channel; the last one publishes on the server's result fan-out. A stage that falls behind
//! drops the frame results it cannot take (counted in `walkout_stage_dropped_total`), so a
//! slow stage never stalls the model.

pub mod fusion;
pub mod tracking;

use super::metrics::Metrics;
use super::result::FrameResult;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// One step of the chain.
pub trait Stage: Send + 'static {
    /// Short name for metrics and thread names.
    fn name(&self) -> &'static str;
    /// Takes one frame result (in each camera's order) and hands on what it makes.
    fn on_frame(&mut self, result: Arc<FrameResult>, emit: &mut dyn FnMut(Arc<FrameResult>));
}

/// Where the batcher hands finished frame results: straight to the fan-out when there are no
/// stages, else into the first stage's queue.
#[derive(Clone, Debug)]
pub struct ResultSink {
    first: Option<(Sender<Arc<FrameResult>>, &'static str)>,
    publish: broadcast::Sender<Arc<FrameResult>>,
    metrics: Metrics,
}

impl ResultSink {
    pub fn send(&self, r: Arc<FrameResult>) {
        match &self.first {
            None => {
                let _ = self.publish.send(r);
            }
            Some((tx, name)) => offer(tx, r, name, &self.metrics),
        }
    }
}

fn offer(tx: &Sender<Arc<FrameResult>>, r: Arc<FrameResult>, stage: &str, metrics: &Metrics) {
    match tx.try_send(r) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(r)) => {
            metrics.stage_dropped.with_label_values(&[stage, &r.camera]).inc();
        }
    }
}

/// The running chain of stages.
#[derive(Debug)]
pub struct Stages {
    sink: ResultSink,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Stages {
    /// Starts one thread per stage, each behind a queue of `queue` results.
    pub fn start(
        stages: Vec<Box<dyn Stage>>,
        publish: broadcast::Sender<Arc<FrameResult>>,
        metrics: Metrics,
        queue: usize,
    ) -> std::io::Result<Stages> {
        let mut threads = Vec::new();
        // built back to front: each stage hands on to the next one's queue
        let mut next: Option<(Sender<Arc<FrameResult>>, &'static str)> = None;
        for mut stage in stages.into_iter().rev() {
            let name = stage.name();
            let (tx, rx): (Sender<Arc<FrameResult>>, Receiver<Arc<FrameResult>>) = bounded(queue.max(1));
            let (to, publish, metrics) = (next.take(), publish.clone(), metrics.clone());
            threads.push(std::thread::Builder::new().name(format!("stage-{name}")).spawn(move || {
                let mut emit = |r: Arc<FrameResult>| match &to {
                    Some((tx, next_name)) => offer(tx, r, next_name, &metrics),
                    None => {
                        let _ = publish.send(r);
                    }
                };
                while let Ok(r) = rx.recv() {
                    let _span = tracing::info_span!("stage", stage = name, camera = %r.camera, seq = r.seq).entered();
                    stage.on_frame(r, &mut emit);
                }
            })?);
            next = Some((tx, name));
        }
        Ok(Stages { sink: ResultSink { first: next, publish, metrics }, threads: Mutex::new(threads) })
    }

    pub fn sink(&self) -> ResultSink {
        self.sink.clone()
    }

    /// Ends the chain once every sink is dropped and the queues are empty; joins the threads.
    pub fn join(self) {
        drop(self.sink);
        let threads = self.threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tag(&'static str);
    impl Stage for Tag {
        fn name(&self) -> &'static str {
            self.0
        }
        fn on_frame(&mut self, r: Arc<FrameResult>, emit: &mut dyn FnMut(Arc<FrameResult>)) {
            let mut r = (*r).clone();
            r.model.push_str(self.0);
            emit(Arc::new(r));
        }
    }

    fn result(seq: u64) -> Arc<FrameResult> {
        Arc::new(FrameResult::sample("c", seq, Vec::new()))
    }

    #[test]
    fn results_pass_every_stage_in_order() {
        let (tx, mut rx) = broadcast::channel(16);
        let stages = Stages::start(vec![Box::new(Tag("a")), Box::new(Tag("b"))], tx, Metrics::new(), 8).expect("threads");
        let sink = stages.sink();
        for s in 0..5 {
            sink.send(result(s));
        }
        drop(sink);
        stages.join();
        let got: Vec<(u64, String)> = (0..5).map(|_| rx.try_recv().map(|r| (r.seq, r.model.clone())).expect("published")).collect();
        assert_eq!(got, (0..5).map(|s| (s, "ab".to_string())).collect::<Vec<_>>());
    }

    #[test]
    fn no_stages_publish_directly() {
        let (tx, mut rx) = broadcast::channel(4);
        let stages = Stages::start(Vec::new(), tx, Metrics::new(), 8).expect("threads");
        stages.sink().send(result(7));
        assert_eq!(rx.try_recv().expect("published").seq, 7);
    }
}
