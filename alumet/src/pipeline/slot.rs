//! One source inside its group: its trigger, its buffers, and how it is polled and
//! flushed (the group's thread and `poll_now` both go through here).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::measurement::{MeasurementBuffer, Timestamp};

use super::dispatch::Dispatcher;
use super::element::{Source, Trigger};
use super::ratelimit::{caught, judge, Called, RateLimited};
use super::registry::SourceId;
use super::selector::ElementName;
use super::stats::Counters;

/// How many sent buffers a source keeps to reuse once the outputs are done with them.
const SPARE_BUFFERS: usize = 4;

/// Counts the sources polled for one `trigger_now`; reports when the last one is done.
pub(crate) struct TriggerAck {
    polled: AtomicUsize,
    tx: Option<tokio::sync::oneshot::Sender<usize>>,
}

impl TriggerAck {
    pub(crate) fn new(tx: tokio::sync::oneshot::Sender<usize>) -> Arc<Self> {
        Arc::new(TriggerAck {
            polled: AtomicUsize::new(0),
            tx: Some(tx),
        })
    }
}

impl Drop for TriggerAck {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // The receiver may be gone (nobody waits): that is fine.
            let _ = tx.send(self.polled.load(Ordering::Relaxed));
        }
    }
}

pub(crate) struct SourceSlot {
    pub(crate) id: SourceId,
    pub(crate) name: ElementName,
    /// `None` once the source is stopped.
    pub(super) source: Option<Box<dyn Source>>,
    paused: bool,
    pub(super) poll_interval: Option<Duration>,
    pub(super) flush_interval: Option<Duration>,
    pub(super) next_poll: Option<Instant>,
    pub(super) last_flush: Instant,
    pub(super) buffer: Arc<MeasurementBuffer>,
    spare: Vec<Arc<MeasurementBuffer>>,
    pub(super) triggers: Vec<Arc<TriggerAck>>,
    error_log: RateLimited,
    /// Whether the overrun of its interval was logged (once per source).
    overrun_logged: bool,
    pub(crate) counters: Arc<Counters>,
    /// The timestamp of its last poll (Unix nanoseconds; 0 before the first).
    polled_at: u64,
    /// Every reading it took up to this time (Unix nanoseconds) is flushed: the time of
    /// its last flushed poll, or of its creation (see [`Dispatcher::watermark`]).
    pub(super) delivered_until: u64,
}

impl SourceSlot {
    /// A slot whose first poll is one interval after `now`: sources created with the same
    /// `now` and interval keep the same phase, and are polled in the same wake-up.
    pub(crate) fn new(
        (id, name): (SourceId, ElementName),
        source: Box<dyn Source>,
        trigger: &Trigger,
        now: Instant,
    ) -> Self {
        let counters: Arc<Counters> = Arc::default();
        counters.set_interval(trigger.poll_interval);
        SourceSlot {
            id,
            name,
            source: Some(source),
            paused: false,
            poll_interval: trigger.poll_interval,
            flush_interval: trigger.flush_interval,
            next_poll: trigger.poll_interval.map(|i| after(now, i)),
            last_flush: now,
            buffer: Arc::new(MeasurementBuffer::new()),
            spare: Vec::with_capacity(SPARE_BUFFERS),
            triggers: Vec::new(),
            error_log: RateLimited::default(),
            overrun_logged: false,
            counters,
            polled_at: 0,
            delivered_until: Timestamp::now().unix_nanos(),
        }
    }

    pub(super) fn active(&self) -> bool {
        self.source.is_some() && !self.paused
    }

    /// What this source adds to its group's watermark: the time up to which its readings
    /// are flushed, when it is active and polled on a schedule (`u64::MAX` otherwise: a
    /// paused or manual source holds nothing back).
    pub(super) fn watermark(&self) -> u64 {
        if self.active() && self.poll_interval.is_some() {
            self.delivered_until
        } else {
            u64::MAX
        }
    }

    /// Polls once; a fatal error or a panic stops the source (what it measured is kept).
    pub(super) fn poll(&mut self, timestamp: Timestamp) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        self.polled_at = timestamp.unix_nanos();
        let before = self.buffer.len();
        let acc = Arc::make_mut(&mut self.buffer).as_accumulator();
        let result = caught(|| source.poll(acc, timestamp));
        let failed = "failed, it will poll again";
        match judge("source", &self.name, result, failed, || {
            self.error_log.check()
        }) {
            Called::Done => {
                let produced = self.buffer.len().saturating_sub(before);
                self.counters.success(produced, timestamp);
            }
            Called::Failed => self.counters.poll_failed(),
            Called::Stopped => {
                self.source = None;
                self.counters.stopped();
            }
        }
        for ack in &self.triggers {
            ack.polled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands the buffered points on, then takes a free buffer (a recycled one if possible).
    pub(super) fn flush(&mut self, dispatcher: &Dispatcher, now: Instant) {
        self.last_flush = now;
        self.delivered_until = self.delivered_until.max(self.polled_at);
        if self.buffer.is_empty() {
            return;
        }
        let capacity = self.buffer.len();
        dispatcher.dispatch(&mut self.buffer, capacity);
        let free = self.spare.iter().position(|b| Arc::strong_count(b) == 1);
        let next = match free {
            Some(i) => {
                let mut b = self.spare.swap_remove(i);
                Arc::make_mut(&mut b).clear();
                b
            }
            None => Arc::new(MeasurementBuffer::with_capacity(capacity)),
        };
        let sent = std::mem::replace(&mut self.buffer, next);
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(sent);
        }
    }

    /// Moves the buffered points into the buffer of the group's tick, which is handed on
    /// once for every source it flushes.
    pub(super) fn flush_into(&mut self, tick: &mut MeasurementBuffer, now: Instant) {
        self.last_flush = now;
        self.delivered_until = self.delivered_until.max(self.polled_at);
        if self.buffer.is_empty() {
            return;
        }
        let points = Arc::make_mut(&mut self.buffer).as_mut_vec();
        tick.as_mut_vec().append(points);
    }

    /// Moves the next poll one interval on, after a poll of the tick that began at
    /// `tick` and ended at `ended`. Deadlines that passed are skipped, not polled back to
    /// back, and counted: those up to `ended` when the poll overran its interval (logged
    /// once per source), those up to `tick` when the thread woke up late. The phase is kept.
    pub(super) fn advance(&mut self, tick: Instant, ended: Instant) {
        let (Some(interval), Some(next)) = (self.poll_interval, self.next_poll) else {
            return;
        };
        let overran = ended.saturating_duration_since(tick) >= interval;
        let late_from = if overran { ended } else { tick };
        let mut next = after(next, interval);
        if next <= late_from {
            let missed = (late_from - next).as_nanos() / interval.as_nanos().max(1) + 1;
            let missed = u32::try_from(missed).unwrap_or(u32::MAX);
            next = after(next, interval.saturating_mul(missed));
            self.counters.skipped(u64::from(missed));
            if overran && !self.overrun_logged {
                self.overrun_logged = true;
                log::warn!(
                    "source {} overran its poll interval of {interval:?} (a poll took {:?}): \
                     missed polls are skipped, not made up, and counted in skipped_polls \
                     (logged once)",
                    self.name,
                    ended.saturating_duration_since(tick)
                );
            }
        }
        self.next_poll = Some(next);
    }
}

/// `t + d`, or a century after `t` when that overflows the clock (an interval of a
/// billion years from a program that does not check its config).
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(crate::humantime_serde::MAX))
        .unwrap_or(t)
}

pub(crate) fn pause(slot: &mut SourceSlot) {
    slot.paused = true;
    slot.counters.set_paused(true);
}

pub(crate) fn resume(slot: &mut SourceSlot) {
    if slot.paused {
        slot.paused = false;
        slot.counters.set_paused(false);
        slot.next_poll = slot.poll_interval.map(|i| after(Instant::now(), i));
    }
}

pub(crate) fn set_interval(slot: &mut SourceSlot, interval: Duration) {
    slot.poll_interval = Some(interval);
    slot.counters.set_interval(Some(interval));
    slot.next_poll = Some(after(Instant::now(), interval));
}

pub(crate) fn trigger(slot: &mut SourceSlot, ack: &Arc<TriggerAck>) {
    if slot.active() {
        slot.triggers.push(Arc::clone(ack));
    }
}
