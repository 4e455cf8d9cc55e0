//! Counters of each element (polls, points, errors, whether it stopped), updated with
//! relaxed atomics: no lock and no allocation on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::measurement::Timestamp;

use super::delivery::Delivery;

use super::selector::ElementName;

/// The kind of a pipeline element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementKind {
    /// A source.
    Source,
    /// A transform.
    Transform,
    /// An output.
    Output,
}

impl ElementKind {
    /// `source`, `transform` or `output`.
    pub fn as_str(self) -> &'static str {
        match self {
            ElementKind::Source => "source",
            ElementKind::Transform => "transform",
            ElementKind::Output => "output",
        }
    }
}

/// What happened so far to one element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementStats {
    /// The element (`plugin/name`).
    pub name: ElementName,
    /// Its kind.
    pub kind: ElementKind,
    /// Sources: polls (or buffers sent, for an autonomous source). Others: 0.
    pub polls: u64,
    /// Sources: points produced. Outputs: points written. Transforms: 0.
    pub points: u64,
    /// Errors marked retryable (the element went on).
    pub retryable_errors: u64,
    /// Whether the element stopped after a fatal error or a panic.
    pub stopped: bool,
    /// Sources: when the last successful poll took place.
    pub last_success: Option<Timestamp>,
    /// Sources: periodic polls skipped because their deadline had passed when the previous
    /// poll ended (a poll longer than the interval, a late wake-up). Others: 0.
    pub skipped_polls: u64,
    /// Managed sources: the current poll interval (`None` for a source polled only on
    /// trigger). Others: `None`.
    pub poll_interval: Option<std::time::Duration>,
}

/// The live counters behind [`ElementStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    polls: AtomicU64,
    points: AtomicU64,
    errors: AtomicU64,
    stopped: AtomicBool,
    paused: AtomicBool,
    skipped: AtomicU64,
    last_success_ns: AtomicU64,
    /// Managed sources: the poll interval in nanoseconds (0: none).
    interval_ns: AtomicU64,
    /// Outputs: where their written points are counted.
    delivery: Option<Delivery>,
}

impl Counters {
    pub(crate) fn success(&self, points: usize, at: Timestamp) {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.points.fetch_add(points as u64, Ordering::Relaxed);
        self.last_success_ns
            .store(at.unix_nanos(), Ordering::Relaxed);
    }

    pub(crate) fn retryable(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn poll_failed(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub(crate) fn skipped(&self, polls: u64) {
        self.skipped.fetch_add(polls, Ordering::Relaxed);
    }

    pub(crate) fn set_interval(&self, interval: Option<std::time::Duration>) {
        let ns = interval.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.interval_ns.store(ns, Ordering::Relaxed);
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Sources: neither paused nor stopped.
    pub(crate) fn active(&self) -> bool {
        !self.paused.load(Ordering::Relaxed) && !self.stopped.load(Ordering::Relaxed)
    }

    /// The counters of an output, whose points written are those of its delivery report.
    pub(crate) fn of_output(delivery: Delivery) -> Self {
        Counters {
            delivery: Some(delivery),
            ..Counters::default()
        }
    }

    pub(crate) fn snapshot(&self, name: &ElementName, kind: ElementKind) -> ElementStats {
        let last = self.last_success_ns.load(Ordering::Relaxed);
        ElementStats {
            name: name.clone(),
            kind,
            polls: self.polls.load(Ordering::Relaxed),
            points: match &self.delivery {
                Some(d) => d.figures().written,
                None => self.points.load(Ordering::Relaxed),
            },
            retryable_errors: self.errors.load(Ordering::Relaxed),
            stopped: self.stopped.load(Ordering::Relaxed),
            last_success: (last != 0).then(|| Timestamp::from_unix_nanos(last)),
            skipped_polls: self.skipped.load(Ordering::Relaxed),
            poll_interval: match self.interval_ns.load(Ordering::Relaxed) {
                0 => None,
                ns => Some(std::time::Duration::from_nanos(ns)),
            },
        }
    }
}
