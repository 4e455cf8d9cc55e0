//! One bounded queue per output, drop-oldest on overflow, and the workers that drain them.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::measurement::MeasurementBuffer;

use super::delivery::Delivery;
use super::element::{AsyncOutput, ElementError, Output, OutputContext, OutputOptions};
use super::ratelimit::{caught, judge, panic_message, suppressed_note, Called, RateLimited};
use super::selector::ElementName;
use super::stats::Counters;

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
    /// The output's final write (`finish`: a flush, a last request) failed or panicked:
    /// some of the points counted as written may not have reached their destination.
    pub finish_failed: bool,
}

#[derive(Default)]
struct Queue {
    buffers: VecDeque<Arc<MeasurementBuffer>>,
    points: usize,
    /// No more buffers will come: drain and finish.
    closed: bool,
    /// The output stopped (fatal error, panic, or abandoned at the deadline).
    stopped: bool,
    /// A blocking worker is waiting on the condition variable (idle).
    waiting: bool,
    /// A flushing thread is writing a buffer inline.
    busy: bool,
    /// The last write took longer than [`INLINE_MAX`]: hand buffers to the worker.
    slow: bool,
    /// The blocking worker thread was started (an output that is written inline gets it
    /// only when a buffer must wait: a short run may never need it).
    started: bool,
    drop_log: RateLimited,
}

/// What starting a blocking output's worker thread needs.
struct PendingWorker {
    thread_name: String,
    /// Dropped when the worker ends: the pipeline waits for every such sender.
    done: std::sync::mpsc::Sender<()>,
}

/// A write that takes longer than this sends the next buffers to the output's own thread
/// instead of writing them inline in the flushing thread, until a write is fast again.
const INLINE_MAX: Duration = Duration::from_micros(100);

/// The queue of one output, shared by the flushing threads and the output's worker.
pub(crate) struct OutputSlot {
    pub(crate) name: ElementName,
    me: Weak<OutputSlot>,
    /// The blocking worker, until it is started.
    worker: Mutex<Option<PendingWorker>>,
    capacity: usize,
    /// The blocking output (`None` for an async output, or once stopped).
    output: Mutex<Option<Box<dyn Output>>>,
    /// Whether an idle, fast output may be written by the flushing thread itself.
    inline: bool,
    ctx: OutputContext,
    write_log: Mutex<RateLimited>,
    queue: Mutex<Queue>,
    cv: Condvar,
    notify: tokio::sync::Notify,
    /// The output counts its own deliveries ([`OutputOptions::reports_delivery`]).
    reports: bool,
    finish_failed: AtomicBool,
    pub(crate) counters: Arc<Counters>,
}

/// What a worker does after one write.
enum Next {
    Continue,
    Stop,
}

impl OutputSlot {
    /// A slot for an async output (`output` is `None`: its task drains the queue), or
    /// for a blocking one, whose worker thread is started by [`OutputSlot::start_worker`]
    /// or, when the output may be written inline, the first time a buffer must wait.
    /// `done` goes with the blocking output and is dropped when its worker (or, for a
    /// worker never started, the inline finish at close) is done.
    pub(crate) fn new(
        name: ElementName,
        options: &OutputOptions,
        output: Option<(Box<dyn Output>, std::sync::mpsc::Sender<()>)>,
        ctx: OutputContext,
    ) -> Arc<Self> {
        let (output, worker) = match output {
            Some((output, done)) => {
                let thread_name = format!("alumet-out-{}", name.element);
                (Some(output), Some(PendingWorker { thread_name, done }))
            }
            None => (None, None),
        };
        let counters = Arc::new(Counters::of_output(ctx.delivery.clone()));
        Arc::new_cyclic(|me| OutputSlot {
            name,
            me: me.clone(),
            worker: Mutex::new(worker),
            capacity: options.queue_capacity.max(1),
            inline: output.is_some() && options.inline_when_idle,
            output: Mutex::new(output),
            ctx,
            write_log: Mutex::new(RateLimited::default()),
            queue: Mutex::new(Queue::default()),
            cv: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            reports: options.reports_delivery,
            finish_failed: AtomicBool::new(false),
            counters,
        })
    }

    /// Whether the blocking worker must start with the pipeline (the output is never
    /// written inline).
    pub(crate) fn needs_worker_now(&self) -> bool {
        !self.inline && self.lock_worker().is_some()
    }

    fn lock_worker(&self) -> MutexGuard<'_, Option<PendingWorker>> {
        self.worker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the blocking worker thread (once; nothing for an async output).
    pub(crate) fn start_worker(&self) -> std::io::Result<()> {
        let Some(pending) = self.lock_worker().take() else {
            return Ok(());
        };
        let Some(slot) = self.me.upgrade() else {
            return Ok(());
        };
        // Marked before the spawn, so that `close` never finishes the output inline
        // while the worker does.
        self.lock().started = true;
        let PendingWorker { thread_name, done } = pending;
        let spawned = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let _done = done;
                run_blocking(slot);
            });
        if let Err(e) = spawned {
            self.lock().started = false;
            return Err(e);
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic never happens while the lock is held (no user code runs under it).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a buffer; drops the oldest buffers while the queue would exceed its capacity.
    pub(crate) fn push(&self, buffer: &Arc<MeasurementBuffer>) {
        let n = buffer.len();
        let mut q = self.lock();
        if q.stopped || q.closed {
            self.delivery().given_lost(n as u64);
            return;
        }
        self.delivery().given(n as u64);
        let idle = q.waiting || !q.started;
        if self.inline && idle && !q.busy && !q.slow && q.buffers.is_empty() {
            // The worker is idle (or not started) and the output fast: writing here saves
            // waking a thread.
            q.busy = true;
            drop(q);
            self.write(buffer);
            self.lock().busy = false;
            return;
        }
        let mut dropped = 0;
        while q.points + n > self.capacity {
            let Some(old) = q.buffers.pop_front() else {
                break;
            };
            q.points -= old.len();
            dropped += old.len();
        }
        q.buffers.push_back(Arc::clone(buffer));
        q.points += n;
        if dropped > 0 {
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
        let wake = q.waiting;
        let start = self.inline && !q.started;
        drop(q);
        if start {
            if let Err(e) = self.start_worker() {
                log::error!(
                    "output {}: cannot start its thread ({e}): writing from the sources' threads",
                    self.name
                );
                self.drain_inline();
            }
        }
        if wake {
            self.cv.notify_one();
        }
        self.notify.notify_one();
    }

    /// Writes the queued buffers on this thread (no worker thread runs).
    fn drain_inline(&self) {
        loop {
            let next = self.try_pop(&mut self.lock());
            match next {
                Some(Ok(buffer)) => self.write(&buffer),
                _ => return,
            }
        }
    }

    /// No more buffers will come: the worker drains the queue, finishes and exits. A
    /// blocking output whose worker never started, whose writes were all quick and none
    /// of which is in progress, is drained and finished here, on the calling thread;
    /// otherwise its worker starts to do it (a write that blocks then only holds the
    /// worker, which the shutdown deadline gives up on).
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        let (started, busy, slow) = (q.started, q.busy, q.slow);
        drop(q);
        if !started && self.inline {
            let idle = !busy && !slow;
            match self.output.try_lock() {
                Ok(output) if idle => {
                    drop(output);
                    self.drain_inline();
                    finish_blocking(self);
                    drop(self.lock_worker().take());
                }
                _ => {
                    if let Err(e) = self.start_worker() {
                        log::error!(
                            "output {}: cannot start its thread to finish: {e}",
                            self.name
                        );
                        drop(self.lock_worker().take());
                    }
                }
            }
        }
        self.cv.notify_one();
        self.notify.notify_one();
    }

    /// Gives up on the queued points and the write in progress (shutdown deadline passed);
    /// returns how many points that is.
    pub(crate) fn abandon(&self) -> u64 {
        let mut q = self.lock();
        q.stopped = true;
        q.buffers.clear();
        q.points = 0;
        drop(q);
        let lost = self.delivery().settle();
        self.cv.notify_one();
        self.notify.notify_one();
        lost
    }

    fn delivery(&self) -> &Delivery {
        &self.ctx.delivery
    }

    /// The output is done: the points it did not account for are lost (logged).
    fn settle(&self) {
        let lost = self.delivery().settle();
        if lost > 0 {
            log::error!(
                "output {}: {lost} points it was given were not delivered",
                self.name
            );
        }
    }

    fn record_finish_failure(&self, what: std::fmt::Arguments<'_>) {
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
            finish_failed: self.finish_failed.load(Ordering::Relaxed),
        }
    }

    /// Takes the next buffer; `Err(())` once the queue is closed and empty, or stopped.
    fn try_pop(&self, q: &mut Queue) -> Option<Result<Arc<MeasurementBuffer>, ()>> {
        if q.stopped {
            return Some(Err(()));
        }
        match q.buffers.pop_front() {
            Some(b) => {
                q.points -= b.len();
                Some(Ok(b))
            }
            None if q.closed => Some(Err(())),
            None => None,
        }
    }

    fn pop_blocking(&self) -> Option<Arc<MeasurementBuffer>> {
        let mut q = self.lock();
        loop {
            if let Some(next) = self.try_pop(&mut q) {
                return next.ok();
            }
            q.waiting = true;
            q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            q.waiting = false;
        }
    }

    async fn pop_async(&self) -> Option<Arc<MeasurementBuffer>> {
        loop {
            if let Some(next) = self.try_pop(&mut self.lock()) {
                return next.ok();
            }
            // notify_one stores a permit when no task waits, so no wake-up is missed.
            self.notify.notified().await;
        }
    }

    /// Accounts for one write and decides whether the output goes on.
    fn after_write(&self, points: usize, result: Result<Result<(), ElementError>, String>) -> Next {
        let n = points as u64;
        let failed = format_args!("failed to write {n} points");
        let log = || {
            self.write_log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .check()
        };
        let called = judge("output", &self.name, result, failed, log);
        if !self.reports {
            match called {
                Called::Done => self.delivery().written(n),
                Called::Failed | Called::Stopped => self.delivery().lost(n),
            }
        }
        match called {
            Called::Done => Next::Continue,
            Called::Failed => {
                self.counters.retryable();
                Next::Continue
            }
            Called::Stopped => {
                self.counters.stopped();
                Next::Stop
            }
        }
    }

    /// Stops the output: what is queued or comes later is counted as failed.
    fn stop(&self) {
        self.abandon();
    }
}

impl OutputSlot {
    /// Writes one buffer into the blocking output (from its thread or inline), in order:
    /// the output's lock serializes the two paths.
    fn write(&self, buffer: &MeasurementBuffer) {
        let mut output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        let Some(out) = output.as_mut() else {
            self.delivery().lost(buffer.len() as u64);
            return;
        };
        let start = Instant::now();
        let result = caught(|| out.write(buffer, &self.ctx));
        let slow = start.elapsed() > INLINE_MAX;
        if let Next::Stop = self.after_write(buffer.len(), result) {
            *output = None;
            drop(output);
            self.stop();
            return;
        }
        drop(output);
        self.lock().slow = slow;
    }
}

/// Drains the queue into the blocking output until the queue is closed; runs on its own
/// thread, and writes whatever the flushing threads could not write inline.
pub(crate) fn run_blocking(slot: Arc<OutputSlot>) {
    while let Some(buffer) = slot.pop_blocking() {
        slot.write(&buffer);
    }
    finish_blocking(&slot);
}

/// Calls the blocking output's `finish`, once its queue is drained (not once it was
/// abandoned), then drops the output: handles on the pipeline that outlive it (a control
/// handle kept by another thread) keep no output alive.
fn finish_blocking(slot: &OutputSlot) {
    let mut output = slot.output.lock().unwrap_or_else(|e| e.into_inner());
    let abandoned = slot.lock().stopped;
    if let Some(out) = output.as_mut().filter(|_| !abandoned) {
        match caught(|| out.finish(&slot.ctx)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => slot.record_finish_failure(format_args!("failed to finish: {e}")),
            Err(panic) => {
                slot.record_finish_failure(format_args!("panicked while finishing: {panic}"))
            }
        }
    }
    let done = output.take();
    drop(output);
    if caught(|| drop(done)).is_err() {
        log::error!("output {} panicked while being dropped", slot.name);
    }
    slot.settle();
}

/// Drains the queue into an async output until the queue is closed; runs as a task.
pub(crate) async fn run_async(slot: Arc<OutputSlot>, mut output: Box<dyn AsyncOutput>) {
    let ctx = slot.ctx.clone();
    use futures_lite::FutureExt as _;
    while let Some(buffer) = slot.pop_async().await {
        let result = AssertUnwindSafe(output.write(&buffer, &ctx))
            .catch_unwind()
            .await
            .map_err(|p| panic_message(&*p).to_owned());
        if let Next::Stop = slot.after_write(buffer.len(), result) {
            slot.stop();
            return;
        }
    }
    if slot.lock().stopped {
        return;
    }
    let result = AssertUnwindSafe(output.finish(&ctx)).catch_unwind().await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => slot.record_finish_failure(format_args!("failed to finish: {e}")),
        Err(p) => slot.record_finish_failure(format_args!(
            "panicked while finishing: {}",
            panic_message(&*p)
        )),
    }
    // Dropped before the pipeline learns that the output is done (`_done` of its task).
    drop(output);
    slot.settle();
}
