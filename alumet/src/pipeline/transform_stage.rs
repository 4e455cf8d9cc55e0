//! The transforms' own stage: one thread (`alumet-transforms`) that takes the flushed
//! buffers from a bounded queue, runs the transforms on them in order, and queues the
//! result for every output. A source thread only queues: a slow transform delays the
//! buffers that flow through it, never a poll.
//!
//! The queue works as an output's (`output.rs`): drop-oldest when full, the dropped
//! points counted for every output (they would have reached each of them); the worker is
//! woken only when it is parked, and lingers for [`LINGER`] after writing, so that the
//! buffers of several ticks cost one wake-up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

use crate::measurement::MeasurementBuffer;

use super::dispatch::Dispatcher;
use super::output::{Idle, State, LINGER};
use super::ratelimit::{suppressed_note, RateLimited};

/// How many points the stage's queue holds before it drops the oldest buffers.
pub(crate) const STAGE_CAPACITY: usize = 1 << 17;

/// How many buffers the pipeline keeps to reuse once the outputs are done with them.
const SPARE_BUFFERS: usize = 128;

struct Queue {
    buffers: VecDeque<Arc<MeasurementBuffer>>,
    points: usize,
    state: State,
    /// Buffers queued so far, and buffers the worker is done with (transformed and pushed
    /// to the outputs, or dropped): [`TransformStage::sync`] waits for the second to
    /// reach the first.
    pushed: u64,
    handled: u64,
    drop_log: RateLimited,
}

/// The queue of the transforms, and their worker's state.
pub(crate) struct TransformStage {
    queue: Mutex<Queue>,
    cv: Condvar,
    /// Wakes the callers of [`TransformStage::sync`] and [`TransformStage::wait_done`].
    handled_cv: Condvar,
    /// Whether the worker may start (the source threads have started, or the pipeline
    /// is closing), and whether it was started.
    may_start: AtomicBool,
    started: AtomicBool,
    done: AtomicBool,
    /// Points in the queue, readable without the lock (for a forced exit's report).
    queued: AtomicU64,
    /// Points of the buffer being transformed (changed under the queue's lock).
    in_flight: AtomicU64,
    /// Buffers the outputs are done with, to reuse for the next ticks.
    spare: Mutex<VecDeque<Arc<MeasurementBuffer>>>,
}

impl Default for TransformStage {
    fn default() -> Self {
        TransformStage {
            queue: Mutex::new(Queue {
                buffers: VecDeque::new(),
                points: 0,
                state: State::Parked,
                pushed: 0,
                handled: 0,
                drop_log: RateLimited::default(),
            }),
            cv: Condvar::new(),
            handled_cv: Condvar::new(),
            may_start: AtomicBool::new(false),
            started: AtomicBool::new(false),
            done: AtomicBool::new(false),
            queued: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            spare: Mutex::new(VecDeque::new()),
        }
    }
}

impl TransformStage {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No user code runs under this lock.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a flushed buffer for the transforms (the caller gives up its reference);
    /// drops the oldest buffers when it would not fit, counting their points as dropped
    /// for every output. Once the stage is closed, the points are lost for every output.
    pub(crate) fn push(&self, buffer: Arc<MeasurementBuffer>, dispatcher: &Dispatcher) {
        let n = buffer.len();
        let mut q = self.lock();
        if !matches!(q.state, State::Parked | State::Lingering | State::Draining) {
            drop(q);
            for output in &dispatcher.current().outputs {
                output.delivery().given_lost(n as u64);
            }
            return;
        }
        let mut dropped = 0;
        while q.points + n > STAGE_CAPACITY {
            let Some(old) = q.buffers.pop_front() else {
                break;
            };
            q.points -= old.len();
            q.handled += 1;
            dropped += old.len();
        }
        q.buffers.push_back(buffer);
        q.points += n;
        q.pushed += 1;
        self.queued.store(q.points as u64, Ordering::Relaxed);
        if dropped > 0 {
            let log = q.drop_log.check();
            drop(q);
            self.count_dropped(dropped, log, dispatcher);
            q = self.lock();
            self.handled_cv.notify_all();
        }
        let half_full = q.points.saturating_mul(2) >= STAGE_CAPACITY;
        let wake = q.state.pushed(half_full);
        drop(q);
        if wake {
            self.cv.notify_one();
        }
        self.start_if_allowed(dispatcher);
    }

    fn count_dropped(&self, dropped: usize, log: Option<u64>, dispatcher: &Dispatcher) {
        for output in &dispatcher.current().outputs {
            output.delivery().given(dropped as u64);
            output.delivery().dropped(dropped as u64);
        }
        if let Some(suppressed) = log {
            log::warn!(
                "the transforms are too slow: their queue is full ({STAGE_CAPACITY} points), \
                 dropped {dropped} oldest points{}",
                suppressed_note(suppressed)
            );
        }
    }

    /// From now on, the worker starts with the first buffer (the source threads started).
    pub(crate) fn allow_start(&self, dispatcher: &Arc<Dispatcher>) {
        self.may_start.store(true, Ordering::Release);
        if self.lock().pushed > 0 {
            self.start(dispatcher);
        }
    }

    fn start_if_allowed(&self, dispatcher: &Dispatcher) {
        if self.may_start.load(Ordering::Acquire) && !self.started.load(Ordering::Acquire) {
            if let Some(dispatcher) = dispatcher.me.upgrade() {
                self.start(&dispatcher);
            }
        }
    }

    /// Starts the worker's thread, once.
    fn start(&self, dispatcher: &Arc<Dispatcher>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Dispatcher> = Arc::downgrade(dispatcher);
        let spawned = std::thread::Builder::new()
            .name("alumet-transforms".to_owned())
            .spawn(move || run(weak));
        if let Err(e) = spawned {
            log::error!("cannot start the transforms' thread: {e}; their points are lost");
            self.abandon(dispatcher);
            self.mark_done();
        }
    }

    /// No more buffers will come: the worker transforms what is queued, calls every
    /// transform's `finish`, and exits (started now if it was not).
    pub(crate) fn close(&self, dispatcher: &Arc<Dispatcher>) {
        let mut q = self.lock();
        q.state.close();
        let nothing_queued = q.pushed == 0;
        drop(q);
        if nothing_queued && !self.started.swap(true, Ordering::AcqRel) {
            // Never needed (no transform, or nothing flushed): no thread for `finish`.
            dispatcher.finish();
            self.mark_done();
            return;
        }
        self.may_start.store(true, Ordering::Release);
        self.start(dispatcher);
        self.cv.notify_one();
    }

    /// Gives up on the queued buffers (the deadline passed): their points are lost for
    /// every output; returns how many points that is.
    pub(crate) fn abandon(&self, dispatcher: &Dispatcher) -> u64 {
        let mut q = self.lock();
        q.state.stop();
        // The buffer being transformed too: the worker drops it when the call returns.
        let lost = q.points + self.in_flight.swap(0, Ordering::Relaxed) as usize;
        q.handled += q.buffers.len() as u64;
        q.buffers.clear();
        q.points = 0;
        self.queued.store(0, Ordering::Relaxed);
        drop(q);
        self.handled_cv.notify_all();
        self.cv.notify_one();
        for output in &dispatcher.current().outputs {
            output.delivery().given_lost(lost as u64);
        }
        lost as u64
    }

    /// Points queued for the transforms, or being transformed.
    pub(crate) fn queued_points(&self) -> u64 {
        self.queued.load(Ordering::Relaxed) + self.in_flight.load(Ordering::Relaxed)
    }

    /// Waits until every buffer queued before this call is transformed and queued for the
    /// outputs, or `deadline` passes; returns whether it was. Immediate when the worker
    /// has not started (its buffers wait for it).
    pub(crate) fn sync(&self, deadline: Instant) -> bool {
        let target = self.lock().pushed;
        if !self.started.load(Ordering::Acquire) {
            return self.lock().handled >= target;
        }
        self.wait_until(deadline, |q| {
            q.handled >= target || self.done.load(Ordering::Acquire)
        })
    }

    fn mark_done(&self) {
        self.done.store(true, Ordering::Release);
        drop(self.lock());
        self.handled_cv.notify_all();
    }

    /// Waits until the worker is done (or never started and nothing is queued), or
    /// `deadline` passes; returns whether it is done.
    pub(crate) fn wait_done(&self, deadline: Instant) -> bool {
        self.wait_until(deadline, |_| {
            self.done.load(Ordering::Acquire) || !self.started.load(Ordering::Acquire)
        })
    }

    /// Waits until `cond` holds (checked under the queue's lock, after each buffer the
    /// worker handles) or `deadline` passes; returns whether it holds.
    fn wait_until(&self, deadline: Instant, cond: impl Fn(&Queue) -> bool) -> bool {
        let mut q = self.lock();
        while !cond(&q) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            q = match self.handled_cv.wait_timeout(q, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// A buffer to fill, free of any other reference: one the outputs are done with, or a
    /// new one.
    pub(crate) fn fresh_buffer(&self, capacity: usize) -> Arc<MeasurementBuffer> {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.front().is_some_and(|b| Arc::strong_count(b) == 1) {
            if let Some(mut b) = spare.pop_front() {
                drop(spare);
                let points = Arc::make_mut(&mut b);
                points.clear();
                points.reserve(capacity);
                return b;
            }
        }
        drop(spare);
        Arc::new(MeasurementBuffer::with_capacity(capacity))
    }

    fn keep_spare(&self, buffer: Arc<MeasurementBuffer>) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_BUFFERS {
            spare.push_back(buffer);
        }
    }
}

/// The worker: transforms every queued buffer and queues it for the outputs; after each
/// batch (and about once a second while idle), the transforms' `on_tick`; at the end,
/// their `finish`.
fn run(dispatcher: Weak<Dispatcher>) {
    let Some(d) = dispatcher.upgrade() else {
        return;
    };
    let stage = &d.stage;
    let mut scratch = MeasurementBuffer::new();
    let mut lingered = false;
    loop {
        // Read before taking the buffers: the groups publish it after they dispatch.
        let watermark = d.watermark();
        let mut took = false;
        let end = loop {
            match pop(stage) {
                Pop::Buffer(buffer) => {
                    took = true;
                    lingered = false;
                    if !transform_one(&d, buffer) {
                        break Pop::Stopped;
                    }
                }
                other => break other,
            }
        };
        match end {
            Pop::Stopped => break,
            Pop::Closed => {
                d.tick(&mut scratch, watermark);
                d.finish();
                break;
            }
            _ => {}
        }
        if took || lingered {
            d.tick(&mut scratch, watermark);
        }
        lingered = wait(stage, lingered);
    }
    stage.mark_done();
}

/// Transforms one buffer and queues it for the outputs; `false` when the stage was
/// abandoned during the call (its points were counted lost then).
fn transform_one(d: &Dispatcher, mut buffer: Arc<MeasurementBuffer>) -> bool {
    let stage = &d.stage;
    let set = d.set.load();
    if !set.transforms.is_empty() {
        let points = Arc::make_mut(&mut buffer);
        for slot in &set.transforms {
            slot.apply(points, &d.ctx);
        }
    }
    let mut q = stage.lock();
    if q.state == State::Stopped {
        return false;
    }
    stage.in_flight.store(0, Ordering::Relaxed);
    if !buffer.is_empty() {
        for output in &set.outputs {
            output.push(&buffer);
        }
    }
    q.handled += 1;
    drop(q);
    drop(set);
    stage.handled_cv.notify_all();
    stage.keep_spare(buffer);
    true
}

enum Pop {
    Buffer(Arc<MeasurementBuffer>),
    Empty,
    Closed,
    Stopped,
}

fn pop(stage: &TransformStage) -> Pop {
    let mut q = stage.lock();
    if q.state == State::Stopped {
        return Pop::Stopped;
    }
    match q.buffers.pop_front() {
        Some(b) => {
            q.points -= b.len();
            stage.in_flight.store(b.len() as u64, Ordering::Relaxed);
            stage.queued.store(q.points as u64, Ordering::Relaxed);
            q.state.popped();
            Pop::Buffer(b)
        }
        None if q.state == State::Closed => Pop::Closed,
        None => Pop::Empty,
    }
}

/// How long a parked worker waits before it ticks the transforms anyway.
const IDLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits for buffers: lingers for [`LINGER`] after a batch, then parks (woken by a push,
/// or after [`IDLE_TICK`]); returns whether it has lingered since its last buffer.
fn wait(stage: &TransformStage, lingered: bool) -> bool {
    let q = stage.lock();
    if !q.buffers.is_empty() || matches!(q.state, State::Closed | State::Stopped) {
        return lingered;
    }
    let mut q = q;
    let timeout = match q.state.emptied(lingered, true) {
        Idle::Exit => return lingered,
        Idle::Linger => LINGER,
        Idle::Park => IDLE_TICK,
    };
    drop(stage.cv.wait_timeout(q, timeout));
    true
}
