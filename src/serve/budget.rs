//! One memory budget for everything queued on the server, across all cameras, clients and
//! models: each queued frame or request holds a [`Charge`] of its bytes until it is dropped
//! (run, discarded or drained). Past the budget, camera frames are dropped and counted
//! (`walkout_frames_dropped_total{reason="memory"}`) and requests get RESOURCE_EXHAUSTED.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct MemoryBudget {
    used: AtomicUsize,
    limit: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget { used: AtomicUsize::new(0), limit })
    }

    /// Takes `bytes` from the budget, or `None` when they do not fit.
    pub fn charge(self: &Arc<Self>, bytes: usize) -> Option<Charge> {
        let mut cur = self.used.load(Ordering::SeqCst);
        loop {
            let next = cur.checked_add(bytes).filter(|&n| n <= self.limit)?;
            match self.used.compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Some(Charge { budget: self.clone(), bytes }),
                Err(now) => cur = now,
            }
        }
    }

    /// Bytes held by queued work now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Bytes held from the budget; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_bounded_and_given_back() {
        let b = MemoryBudget::new(100);
        let a = b.charge(60).unwrap();
        assert!(b.charge(50).is_none());
        let c = b.charge(40).unwrap();
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 40);
        drop(c);
        assert_eq!(b.used(), 0);
        assert!(b.charge(usize::MAX).is_none());
    }
}
