//! What became of the points handed to one output: `written`, `dropped` and `lost`, which
//! add up to what the output was given once it has finished.
//!
//! Most outputs are done with a point when `write` returns: the core counts for them from
//! the result. An output that delivers later (its own queue and sender thread, retries of
//! a failed write) says itself what became of each point, through [`Delivery`], and asks
//! for it with [`OutputOptions::reports_delivery`](super::OutputOptions::reports_delivery).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
struct Counts {
    given: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    lost: AtomicU64,
    /// The output is done (finished, stopped or abandoned): whatever it had not reported
    /// was counted as lost, and later reports are ignored.
    settled: AtomicBool,
}

/// Where an output reports what became of its points (see [`OutputContext::delivery`](super::OutputContext::delivery)).
///
/// Cheap to clone: an output may hand it to a thread of its own that sends the points.
/// Reports made after the output is settled (it finished, was stopped, or was abandoned at
/// the shutdown deadline) are ignored: by then, what it had not reported was counted as lost.
#[derive(Clone, Debug, Default)]
pub struct Delivery(Arc<Counts>);

/// The figures of one output at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    pub(crate) written: u64,
    pub(crate) dropped: u64,
    pub(crate) lost: u64,
    /// Given but not accounted for yet: queued, being written, or held by the output.
    pub(crate) pending: u64,
}

impl Delivery {
    /// `n` points reached their destination (rows in the file, points the server accepted).
    pub fn written(&self, n: u64) {
        self.add(&self.0.written, n);
    }

    /// `n` points were removed because a queue was full (the output's own, for one that
    /// keeps points while its destination is unreachable).
    pub fn dropped(&self, n: u64) {
        self.add(&self.0.dropped, n);
    }

    /// `n` points will never reach their destination (rejected by the server, a write
    /// error that was not recovered, ...).
    pub fn lost(&self, n: u64) {
        self.add(&self.0.lost, n);
    }

    fn add(&self, counter: &AtomicU64, n: u64) {
        if n > 0 && !self.0.settled.load(Ordering::Acquire) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `n` more points were handed to the output.
    pub(crate) fn given(&self, n: u64) {
        self.0.given.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` points were handed to an output that had already stopped: lost at once.
    /// Points given that the output does not receive after all (not among its inputs).
    pub(crate) fn withdraw(&self, n: u64) {
        self.0.given.fetch_sub(n, Ordering::Relaxed);
    }

    pub(crate) fn given_lost(&self, n: u64) {
        self.0.given.fetch_add(n, Ordering::Relaxed);
        self.0.lost.fetch_add(n, Ordering::Relaxed);
    }

    /// The output is done: what it had not accounted for is lost. Returns how many points
    /// that was (0 when it was settled already).
    pub(crate) fn settle(&self) -> u64 {
        if self.0.settled.swap(true, Ordering::AcqRel) {
            return 0;
        }
        let pending = self.figures().pending;
        self.0.lost.fetch_add(pending, Ordering::Relaxed);
        pending
    }

    pub(crate) fn figures(&self) -> Figures {
        let c = &self.0;
        // Read `given` last: a point is given before it is accounted for, so pending is
        // never negative (saturating, in case an output over-reports).
        let written = c.written.load(Ordering::Relaxed);
        let dropped = c.dropped.load(Ordering::Relaxed);
        let lost = c.lost.load(Ordering::Relaxed);
        let given = c.given.load(Ordering::Relaxed);
        Figures {
            written,
            dropped,
            lost,
            pending: given.saturating_sub(written + dropped + lost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_reported_when_settled_is_lost_and_later_reports_are_ignored() {
        let d = Delivery::default();
        d.given(10);
        d.written(4);
        d.dropped(1);
        d.lost(2);
        assert_eq!(
            d.figures(),
            Figures {
                written: 4,
                dropped: 1,
                lost: 2,
                pending: 3
            }
        );
        assert_eq!(d.settle(), 3);
        assert_eq!(d.settle(), 0, "settled once");
        d.written(3);
        d.given_lost(2);
        let f = d.figures();
        assert_eq!((f.written, f.dropped, f.lost, f.pending), (4, 1, 7, 0));
    }
}
