//! One bounded queue per output, drop-oldest on overflow, and when its worker is woken.
//!
//! A flushing (source) thread only queues a buffer: it never runs output code. Waking an
//! output's worker costs about as much CPU as the source thread's own wake-up, so the
//! worker is woken only when it waits with nothing to do ([`State::Parked`]). Once woken,
//! it writes everything queued, then lingers for [`LINGER`] before it looks again: the
//! buffers flushed meanwhile are written in one batch, without a wake-up each.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::measurement::MeasurementBuffer;

use super::delivery::Delivery;
use super::element::{Output, OutputContext, OutputOptions};
use super::inputs::MetricFilter;
use super::ratelimit::{suppressed_note, RateLimited};
use super::selector::ElementName;
use super::stats::Counters;

/// How long a worker that has written what was queued waits before it looks at the queue
/// again, without being woken: at 1 kHz, the buffers of 10 polls are written in one batch.
/// The queue filling past half its capacity wakes it earlier.
pub(crate) const LINGER: Duration = Duration::from_millis(10);

/// What happened to the points handed to one output. Once the output is done (finished,
/// stopped, or abandoned at the shutdown deadline), `written + dropped + failed` is every
/// point it was given, and `queued` is 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputStats {
    /// The output (`plugin/name`).
    pub name: ElementName,
    /// Points that reached their destination (rows in the file, points the server accepted).
    pub written_points: u64,
    /// Points dropped because a queue was full (the oldest go first): the pipeline's queue
    /// of the output, or the output's own.
    pub dropped_points: u64,
    /// Points lost: everything else (a write that failed and was not recovered, points the
    /// server rejected, points not delivered by the shutdown deadline, points handed to an
    /// output that had stopped).
    pub failed_points: u64,
    /// Points given to the output and not accounted for yet: waiting in the queue, being
    /// written, or held by the output until it delivers them.
    pub queued_points: u64,
    /// How many points its queue holds before it drops the oldest
    /// ([`OutputOptions::queue_capacity`]): with `queued_points`, how full it is.
    pub queue_capacity: u64,
    /// The output's final write (`finish`: a flush, a last request) failed or panicked:
    /// some of the points counted as written may not have reached their destination.
    pub finish_failed: bool,
}

/// Where an output's queue stands. Every change of state is one of the methods below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Open; the worker waits with no deadline: the next buffer wakes it.
    Parked,
    /// Open; the worker waits until its [`LINGER`] is over: a buffer wakes it only when
    /// the queue is half full.
    Lingering,
    /// Open; the worker is writing (or about to): nothing needs to wake it.
    Draining,
    /// No more buffers will come: the worker drains the queue, finishes and exits.
    Closed,
    /// The output stopped (fatal error, panic, or abandoned at the deadline): what is
    /// queued or comes later is lost.
    Stopped,
}

/// What the worker does once the queue is empty.
pub(crate) enum Idle {
    /// Wait until [`LINGER`] is over (or a wake-up), then look again.
    Linger,
    /// Wait for a wake-up.
    Park,
    /// The queue is closed or stopped: finish.
    Exit,
}

impl State {
    fn accepts(self) -> bool {
        matches!(self, State::Parked | State::Lingering | State::Draining)
    }

    /// A buffer was queued: whether the worker must be woken for it.
    pub(crate) fn pushed(&mut self, half_full: bool) -> bool {
        let wake = match *self {
            State::Parked => true,
            State::Lingering => half_full,
            _ => false,
        };
        if wake {
            *self = State::Draining;
        }
        wake
    }

    /// The worker took a buffer.
    pub(crate) fn popped(&mut self) {
        if matches!(self, State::Parked | State::Lingering) {
            *self = State::Draining;
        }
    }

    /// The worker found the queue empty; `lingered` says whether it has just lingered
    /// (or been woken for nothing) since its last buffer.
    pub(crate) fn emptied(&mut self, lingered: bool, can_linger: bool) -> Idle {
        match *self {
            State::Closed | State::Stopped => Idle::Exit,
            _ if can_linger && !lingered => {
                *self = State::Lingering;
                Idle::Linger
            }
            _ => {
                *self = State::Parked;
                Idle::Park
            }
        }
    }

    pub(crate) fn close(&mut self) {
        if *self != State::Stopped {
            *self = State::Closed;
        }
    }

    pub(crate) fn stop(&mut self) {
        *self = State::Stopped;
    }
}

pub(crate) struct Queue {
    buffers: VecDeque<Arc<MeasurementBuffer>>,
    points: usize,
    pub(crate) state: State,
    drop_log: RateLimited,
}

/// The next buffer, if any: `Err(())` once the queue is closed and empty, or stopped.
pub(crate) type Popped = Option<Result<Arc<MeasurementBuffer>, ()>>;

impl Queue {
    pub(crate) fn pop(&mut self) -> Popped {
        if self.state == State::Stopped {
            return Some(Err(()));
        }
        match self.buffers.pop_front() {
            Some(b) => {
                self.points -= b.len();
                self.state.popped();
                Some(Ok(b))
            }
            None if self.state == State::Closed => Some(Err(())),
            None => None,
        }
    }
}

/// The queue of one output, shared by the flushing threads and the output's worker.
pub(crate) struct OutputSlot {
    pub(crate) name: ElementName,
    me: Weak<OutputSlot>,
    /// What the blocking worker's thread drops when it is done, until it is started.
    worker: Mutex<Option<Sender<()>>>,
    capacity: usize,
    /// The output (`None` once stopped or done).
    pub(crate) output: Mutex<Option<Box<dyn Output>>>,
    pub(crate) ctx: OutputContext,
    pub(crate) write_log: Mutex<RateLimited>,
    queue: Mutex<Queue>,
    pub(crate) cv: Condvar,
    /// The output counts its own deliveries ([`OutputOptions::reports_delivery`]).
    pub(crate) reports: bool,
    /// The metrics it receives, when it names its inputs (its worker filters).
    pub(crate) filter: Option<Arc<MetricFilter>>,
    finish_failed: AtomicBool,
    pub(crate) counters: Arc<Counters>,
    /// Set once the worker is done (the output finished or stopped, and was dropped).
    done: Mutex<bool>,
    done_cv: Condvar,
}

impl OutputSlot {
    /// A slot for an output, whose worker thread is started by
    /// [`OutputSlot::start_worker`] and drops `done` when it is done.
    pub(crate) fn new(
        name: ElementName,
        options: &OutputOptions,
        (output, done): (Box<dyn Output>, Sender<()>),
        ctx: OutputContext,
        filter: Option<Arc<MetricFilter>>,
    ) -> Arc<Self> {
        let counters = Arc::new(Counters::of_output(ctx.delivery.clone()));
        Arc::new_cyclic(|me| OutputSlot {
            name,
            me: me.clone(),
            worker: Mutex::new(Some(done)),
            capacity: options.queue_capacity.max(1),
            output: Mutex::new(Some(output)),
            ctx,
            write_log: Mutex::new(RateLimited::default()),
            queue: Mutex::new(Queue {
                buffers: VecDeque::new(),
                points: 0,
                state: State::Parked,
                drop_log: RateLimited::default(),
            }),
            cv: Condvar::new(),
            reports: options.reports_delivery,
            filter,
            finish_failed: AtomicBool::new(false),
            counters,
            done: Mutex::new(false),
            done_cv: Condvar::new(),
        })
    }

    /// Starts the worker's thread (once). Until
    /// then, buffers wait in the queue: a pipeline whose source threads are deferred
    /// starts it with them, or at [`OutputSlot::close`].
    pub(crate) fn start_worker(&self) -> std::io::Result<()> {
        let done = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (done, self.me.upgrade()) {
            (Some(done), Some(slot)) => super::output_worker::spawn(slot, done),
            _ => Ok(()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic never happens while the lock is held (no user code runs under it).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a buffer; drops the oldest buffers while the queue would exceed its
    /// capacity; wakes the worker only when it waits with nothing to do.
    pub(crate) fn push(&self, buffer: &Arc<MeasurementBuffer>) {
        let n = buffer.len();
        let mut q = self.lock();
        if !q.state.accepts() {
            self.delivery().given_lost(n as u64);
            return;
        }
        self.delivery().given(n as u64);
        let mut dropped = 0;
        while q.points + n > self.capacity {
            let Some(old) = q.buffers.pop_front() else {
                break;
            };
            q.points -= old.len();
            dropped += self.received(&old);
        }
        q.buffers.push_back(Arc::clone(buffer));
        q.points += n;
        if dropped > 0 {
            self.log_dropped(&mut q, dropped);
        }
        let half_full = q.points.saturating_mul(2) >= self.capacity;
        let wake = q.state.pushed(half_full);
        drop(q);
        if wake {
            self.wake();
        }
    }

    /// How many points of a queued buffer the output receives (all, unless it names its
    /// inputs); the others are withdrawn from what it was given.
    pub(crate) fn received(&self, buffer: &MeasurementBuffer) -> usize {
        let Some(filter) = &self.filter else {
            return buffer.len();
        };
        let kept = filter.count(buffer, self.ctx.metrics());
        self.delivery().withdraw((buffer.len() - kept) as u64);
        kept
    }

    fn log_dropped(&self, q: &mut Queue, dropped: usize) {
        self.delivery().dropped(dropped as u64);
        let total = self.delivery().figures().dropped;
        if let Some(suppressed) = q.drop_log.check() {
            log::warn!(
                "output {} is too slow: its queue is full ({} points), dropped {dropped} oldest points, {total} in all{}",
                self.name,
                self.capacity,
                suppressed_note(suppressed)
            );
        }
    }

    fn wake(&self) {
        self.cv.notify_one();
    }

    /// No more buffers will come: the worker drains the queue, finishes and exits (its
    /// thread starts now if it has not yet: a short `exec` never needed it before).
    pub(crate) fn close(&self) {
        self.lock().state.close();
        if let Err(e) = self.start_worker() {
            log::error!(
                "output {}: cannot start its thread to finish: {e}",
                self.name
            );
            self.abandon();
            self.mark_done();
            return;
        }
        self.wake();
    }

    /// Gives up on the queued points and the write in progress (shutdown deadline passed);
    /// returns how many points that is.
    pub(crate) fn abandon(&self) -> u64 {
        let mut q = self.lock();
        q.state.stop();
        q.buffers.clear();
        q.points = 0;
        drop(q);
        let lost = self.delivery().settle();
        self.wake();
        lost
    }

    pub(crate) fn delivery(&self) -> &Delivery {
        &self.ctx.delivery
    }

    /// The output is done: the points it did not account for are lost (logged).
    pub(crate) fn settle(&self) {
        let lost = self.delivery().settle();
        if lost > 0 {
            log::error!(
                "output {}: {lost} points it was given were not delivered",
                self.name
            );
        }
    }

    pub(crate) fn record_finish_failure(&self, what: std::fmt::Arguments<'_>) {
        self.finish_failed.store(true, Ordering::Relaxed);
        log::error!(
            "output {} {what}: points it reported as written may be missing",
            self.name
        );
    }

    pub(crate) fn stats(&self) -> OutputStats {
        let f = self.delivery().figures();
        OutputStats {
            name: self.name.clone(),
            written_points: f.written,
            dropped_points: f.dropped,
            failed_points: f.lost,
            queued_points: f.pending,
            queue_capacity: self.capacity as u64,
            finish_failed: self.finish_failed.load(Ordering::Relaxed),
        }
    }

    /// The worker is done: the output finished or stopped, and was dropped.
    pub(crate) fn mark_done(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.done_cv.notify_all();
    }

    /// Waits until the worker is done or `deadline` passes; returns whether it is done.
    pub(crate) fn wait_done(&self, deadline: std::time::Instant) -> bool {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            done = match self.done_cv.wait_timeout(done, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// Stops the output: what is queued or comes later is counted as failed.
    pub(crate) fn stop(&self) {
        self.abandon();
    }
}
