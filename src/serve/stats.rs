//! Per model and version inference statistics, as Triton's statistics extension reports them
//! (`ModelStatistics` over gRPC, `GET /v2/models[/NAME[/versions/V]]/stats` over HTTP):
//! counts and cumulative nanoseconds of success, failure, queueing and the three compute
//! phases per request, and the compute phases per executed batch size. The same durations
//! feed the Prometheus histograms, so both views agree.
//!
//! Memory is bounded: one entry per model version that has run, and per batch size up to
//! the model's maximum batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A count and a cumulative duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub ns: u64,
}

impl Tally {
    fn add(&mut self, n: u64, d: Duration) {
        self.count += n;
        self.ns = self.ns.saturating_add((d.as_nanos() as u64).saturating_mul(n));
    }
}

/// The compute phases of one execution: preparing the input (letterbox or stacking),
/// running the model, and extracting the outputs (slicing per request, decoding).
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    pub input: Duration,
    pub infer: Duration,
    pub output: Duration,
}

/// One batch size's executions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchTally {
    pub compute_input: Tally,
    pub compute_infer: Tally,
    pub compute_output: Tally,
}

/// One model version's statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Milliseconds since the epoch of the last inference.
    pub last_inference_ms: u64,
    /// Batch items inferred successfully.
    pub inference_count: u64,
    /// Model executions (one per batch).
    pub execution_count: u64,
    pub success: Tally,
    pub fail: Tally,
    pub queue: Tally,
    pub compute_input: Tally,
    pub compute_infer: Tally,
    pub compute_output: Tally,
    /// By executed batch size.
    pub batches: BTreeMap<u64, BatchTally>,
}

/// The statistics of every model version that has run. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct StatsBook {
    inner: Arc<Mutex<HashMap<(String, u64), ModelStats>>>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl StatsBook {
    fn with(&self, model: &str, version: u64, f: impl FnOnce(&mut ModelStats)) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry((model.to_string(), version)).or_default());
    }

    /// One execution of `batch` items for the requests that waited `queued` each, and the
    /// successful answers among them (`done`: each request's time from arrival), recorded at
    /// once so that a reader never sees one without the other. Each request is charged the
    /// execution's phases, as Triton does.
    pub fn executed(&self, model: &str, version: u64, batch: u64, queued: &[Duration], p: Phases, done: &[Duration]) {
        let n = queued.len() as u64;
        self.with(model, version, |s| {
            for &d in done {
                s.success.add(1, d);
            }
            s.last_inference_ms = now_ms();
            s.inference_count += batch;
            s.execution_count += 1;
            for &q in queued {
                s.queue.add(1, q);
            }
            s.compute_input.add(n, p.input);
            s.compute_infer.add(n, p.infer);
            s.compute_output.add(n, p.output);
            let b = s.batches.entry(batch).or_default();
            b.compute_input.add(1, p.input);
            b.compute_infer.add(1, p.infer);
            b.compute_output.add(1, p.output);
        });
    }

    /// A request that failed, `total` after it arrived.
    pub fn failed(&self, model: &str, version: u64, total: Duration) {
        self.with(model, version, |s| s.fail.add(1, total));
    }

    /// The statistics of `model` (all when `None`) and `version` (all when `None`), sorted by
    /// name and version.
    pub fn snapshot(&self, model: Option<&str>, version: Option<u64>) -> Vec<(String, u64, ModelStats)> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(String, u64, ModelStats)> = m
            .iter()
            .filter(|((n, ver), _)| model.is_none_or(|w| w == n) && version.is_none_or(|w| w == *ver))
            .map(|((n, ver), s)| (n.clone(), *ver, s.clone()))
            .collect();
        v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        v
    }

    /// Forgets a model's statistics (it was unloaded).
    pub fn forget(&self, model: &str) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).retain(|(n, _), _| n != model);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_charge_each_request_and_each_batch_size() {
        let book = StatsBook::default();
        let ms = Duration::from_millis;
        let p = Phases { input: ms(1), infer: ms(10), output: ms(2) };
        book.executed("m", 1, 3, &[ms(5), ms(7)], p, &[ms(20)]);
        book.executed("m", 1, 1, &[ms(1)], p, &[]);
        book.failed("m", 1, ms(3));
        let s = &book.snapshot(Some("m"), None)[0].2;
        assert_eq!((s.inference_count, s.execution_count), (4, 2));
        assert_eq!(s.queue, Tally { count: 3, ns: 13_000_000 });
        assert_eq!(s.compute_infer, Tally { count: 3, ns: 30_000_000 });
        assert_eq!(s.batches[&3].compute_infer, Tally { count: 1, ns: 10_000_000 });
        assert_eq!(s.batches[&1].compute_output, Tally { count: 1, ns: 2_000_000 });
        assert_eq!((s.success.count, s.fail.count), (1, 1));
        assert!(book.snapshot(Some("other"), None).is_empty());
        book.forget("m");
        assert!(book.snapshot(None, None).is_empty());
    }
}
