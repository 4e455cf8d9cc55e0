//! The engine: the bounded buffer between an output and its sender thread, and the
//! sender's loop (batches, retries, drop-oldest, 413 splits, shutdown) with its counts.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use alumet::pipeline::Delivery;

use crate::backoff::{suppressed_note, Backoff, RateLimit};
use crate::batch::{Batch, Queue};
use crate::reject::RejectLog;
use crate::transport::{Outcome, Settings, Transport};

/// At most one log line per kind of trouble in this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What happened to the points handed to the engine, so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Points the server accepted.
    pub delivered: u64,
    /// Points dropped (the oldest first) because the buffer was full.
    pub dropped: u64,
    /// Points the server refused (4xx, or 413 for a single point): not retried; lost.
    pub rejected: u64,
    /// Requests that failed and were retried (5xx, 408, 429, timeout, refused connection).
    pub failed_attempts: u64,
    /// Batches split in two because the server found them too large (413).
    pub splits: u64,
    /// Points waiting for delivery now, the batch being sent included.
    pub buffered: u64,
    /// Points still buffered, or whose request failed, when the output was stopped at
    /// shutdown; lost.
    pub undelivered: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    failed_attempts: AtomicU64,
    splits: AtomicU64,
    undelivered: AtomicU64,
}

struct State<B> {
    queue: Queue<B>,
    /// Points of the batch being sent.
    in_flight: usize,
    /// Since when the oldest queued point waits for its batch to fill.
    pending_since: Option<Instant>,
    /// No more points will come: send everything now.
    closing: bool,
    /// Give up (the shutdown deadline passed): the sender exits after its current request.
    abort: bool,
    /// The sender exited.
    done: bool,
    drop_log: RateLimit,
}

/// An engine's counts, readable after the pipeline has taken its output (tests and
/// benchmarks keep one from the plugin).
pub struct StatsHandle<B>(pub std::sync::Arc<Engine<B>>);

impl<B> Clone for StatsHandle<B> {
    fn clone(&self) -> Self {
        StatsHandle(std::sync::Arc::clone(&self.0))
    }
}

impl<B: Batch> StatsHandle<B> {
    /// The counts so far.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }
}

/// Shared by the output (which queues), the sender thread and the plugin's `stop`.
pub struct Engine<B> {
    state: Mutex<State<B>>,
    cv: Condvar,
    counters: Counters,
    capacity: usize,
    /// Where the pipeline learns what became of the points: set at the first `write`.
    delivery: OnceLock<Delivery>,
    /// The plugin instance's name, which starts every log line: set at start.
    name: OnceLock<String>,
    default_name: &'static str,
}

impl<B: Batch> Engine<B> {
    /// A buffer of at most `capacity` points; `default_name` starts the log lines until
    /// [`Engine::set_name`].
    pub fn new(capacity: usize, default_name: &'static str) -> Self {
        Engine {
            state: Mutex::new(State {
                queue: Queue::default(),
                in_flight: 0,
                pending_since: None,
                closing: false,
                abort: false,
                done: false,
                drop_log: RateLimit::new(LOG_INTERVAL),
            }),
            cv: Condvar::new(),
            counters: Counters::default(),
            capacity,
            delivery: OnceLock::new(),
            name: OnceLock::new(),
            default_name,
        }
    }

    /// Sets the name that starts the log lines (the plugin instance's).
    pub fn set_name(&self, name: &str) {
        self.name.get_or_init(|| name.to_owned());
    }

    /// The name that starts the log lines.
    pub fn name(&self) -> &str {
        self.name.get().map_or(self.default_name, String::as_str)
    }

    /// Keeps the pipeline's delivery handle of this output (the first one given).
    pub fn set_delivery(&self, delivery: &Delivery) {
        self.delivery.get_or_init(|| delivery.clone());
    }

    /// Most points buffered.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Reports `n` points as written, or lost when `written` is false.
    fn report(&self, written: bool, n: u64) {
        if let Some(d) = self.delivery.get() {
            if written {
                d.written(n);
            } else {
                d.lost(n);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the sender thread, named `thread`.
    pub fn spawn<T: Transport<B> + 'static>(
        self: &Arc<Self>,
        thread: &str,
        mut transport: T,
        settings: Settings,
    ) -> std::io::Result<JoinHandle<()>> {
        let engine = Arc::clone(self);
        std::thread::Builder::new()
            .name(thread.to_owned())
            .spawn(move || engine.run_sender(&mut transport, settings))
    }

    /// Queues a batch for the sender, dropping the oldest points past the capacity.
    pub fn enqueue(&self, batch: B) {
        if batch.is_empty() {
            return;
        }
        let mut st = self.lock();
        if st.queue.is_empty() {
            st.pending_since = Some(Instant::now());
        }
        st.queue.push_back(batch);
        self.enforce_capacity(&mut st);
        drop(st);
        self.cv.notify_all();
    }

    /// Drops the oldest queued points past the capacity. The batch in flight is not counted:
    /// it holds the oldest points, and if its request fails it comes back to the front of
    /// the queue, where this drops it first. (Counting it here would drop younger points
    /// in its place, and keep the oldest if it then failed.)
    fn enforce_capacity(&self, st: &mut State<B>) {
        let excess = st.queue.len().saturating_sub(self.capacity);
        if excess == 0 {
            return;
        }
        let dropped = st.queue.drop_oldest(excess) as u64;
        if let Some(d) = self.delivery.get() {
            d.dropped(dropped);
        }
        let total = self.counters.dropped.fetch_add(dropped, Relaxed) + dropped;
        if let Some(suppressed) = st.drop_log.check() {
            log::warn!(
                "{}: {} points are waiting (max_buffered_points): dropped the {dropped} oldest, {total} in all{}",
                self.name(),
                self.capacity,
                suppressed_note(suppressed)
            );
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        let buffered = {
            let st = self.lock();
            (st.queue.len() + st.in_flight) as u64
        };
        let c = &self.counters;
        Stats {
            delivered: c.delivered.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            failed_attempts: c.failed_attempts.load(Relaxed),
            splits: c.splits.load(Relaxed),
            buffered,
            undelivered: c.undelivered.load(Relaxed),
        }
    }

    /// Shutdown: no more points; blocks until the sender has delivered everything, or
    /// until [`Engine::abort`]. Returns how many points are left undelivered.
    pub fn close_and_wait(&self) -> usize {
        let mut st = self.lock();
        st.closing = true;
        self.cv.notify_all();
        while !st.done && !st.abort {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.queue.len() + st.in_flight
    }

    /// An output's `finish`: closes the engine and waits for the sender to deliver what
    /// is buffered (or for [`Engine::abort`]); joins the `sender` thread when it is done,
    /// and returns the final figures.
    pub fn finish(&self, sender: &mut Option<std::thread::JoinHandle<()>>) -> Stats {
        if self.close_and_wait() == 0 {
            if let Some(sender) = sender.take() {
                let _ = sender.join();
            }
        }
        self.stats()
    }

    /// [`Engine::finish`], then one log line with what became of the points.
    pub fn finish_and_log(&self, sender: &mut Option<std::thread::JoinHandle<()>>) {
        let s = self.finish(sender);
        log::info!(
            "{}: {} points delivered, {} dropped, {} rejected, {} not delivered",
            self.name(),
            s.delivered,
            s.dropped,
            s.rejected,
            s.undelivered,
        );
    }

    /// Gives up on what is buffered (the shutdown deadline passed, or the output is gone)
    /// and counts it as lost; the batch in flight, if any, is counted when its request
    /// ends. Returns how many points were given up (0 when everything was delivered).
    pub fn abort(&self) -> u64 {
        let mut st = self.lock();
        if st.abort {
            return 0;
        }
        st.abort = true;
        let left = st.queue.drop_oldest(usize::MAX) as u64;
        self.counters.undelivered.fetch_add(left, Relaxed);
        self.report(false, left);
        drop(st);
        self.cv.notify_all();
        left
    }

    /// Waits for the next batch to send: full, or its first point waited `flush`, or
    /// shutdown began; never before `retry_at`. `None`: the sender must exit.
    fn next_batch(&self, batch_size: usize, flush: Duration, retry_at: Instant) -> Option<B> {
        let mut st = self.lock();
        loop {
            if st.abort {
                return None;
            }
            if st.queue.is_empty() {
                if st.closing {
                    st.done = true;
                    self.cv.notify_all();
                    return None;
                }
                st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let now = Instant::now();
            let full = st.closing || st.queue.len() >= batch_size;
            let due = if full {
                now
            } else {
                st.pending_since.map_or(now, |t| t + flush)
            };
            let due = due.max(retry_at);
            if due <= now {
                let batch = st.queue.take(batch_size);
                st.in_flight = batch.len();
                st.pending_since = (!st.queue.is_empty()).then_some(now);
                return Some(batch);
            }
            st = self
                .cv
                .wait_timeout(st, due - now)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
        }
    }

    /// The sender's loop: sends batches until shutdown (or abort).
    pub fn run_sender<T: Transport<B>>(&self, transport: &mut T, settings: Settings) {
        let mut sender = Sender {
            backoff: Backoff::default(),
            retry_at: Instant::now(),
            failures: 0,
            reject_log: RejectLog::default(),
            batch_size: settings.batch_size.max(1),
        };
        while let Some(batch) =
            self.next_batch(sender.batch_size, settings.flush_interval, sender.retry_at)
        {
            let outcome = transport.send(&batch);
            self.settle(&mut sender, transport, batch, outcome);
        }
    }

    fn settle<T: Transport<B>>(
        &self,
        s: &mut Sender,
        transport: &mut T,
        batch: B,
        outcome: Outcome,
    ) {
        let n = batch.len() as u64;
        let c = &self.counters;
        let mut st = self.lock();
        st.in_flight = 0;
        match outcome {
            Outcome::Delivered => {
                c.delivered.fetch_add(n, Relaxed);
                self.report(true, n);
                if s.failures > 0 {
                    log::info!(
                        "{}: delivering again after {} failed attempts",
                        self.name(),
                        s.failures
                    );
                }
                s.failures = 0;
                s.backoff.reset();
            }
            Outcome::Retry { .. } | Outcome::TooLarge { .. } if st.abort => {
                c.undelivered.fetch_add(n, Relaxed);
                self.report(false, n);
            }
            Outcome::Retry { reason, after } => {
                c.failed_attempts.fetch_add(1, Relaxed);
                s.failures += 1;
                st.queue.push_front(batch);
                self.enforce_capacity(&mut st);
                let delay = s.backoff.retry_delay(after, st.closing);
                s.retry_at = Instant::now() + delay;
                if s.failures == 1 || s.failures % 20 == 0 {
                    log::warn!(
                        "{}: writing to {} failed ({reason}), attempt {}: {} points buffered, retrying in {delay:.1?}",
                        self.name(),
                        transport.target(),
                        s.failures,
                        st.queue.len()
                    );
                }
            }
            Outcome::TooLarge { .. } if n > 1 => {
                c.splits.fetch_add(1, Relaxed);
                s.batch_size = (batch.len() / 2).max(1);
                log::warn!(
                    "{}: {} found a request of {n} points too large (413): sending at most {} points per request from now on (lower batch_size)",
                    self.name(),
                    transport.target(),
                    s.batch_size
                );
                st.queue.push_front(batch);
            }
            Outcome::TooLarge { message } => {
                drop(st);
                let refused =
                    transport.rejected(self.name(), &batch, 413, &message, &mut s.reject_log);
                self.count_rejected(n, refused);
            }
            Outcome::Rejected { status, message } => {
                drop(st);
                let refused =
                    transport.rejected(self.name(), &batch, status, &message, &mut s.reject_log);
                self.count_rejected(n, refused);
            }
        }
    }

    /// A 4xx answer to a batch of `n` points, of which the server refused `refused`: those
    /// are lost, the others written.
    fn count_rejected(&self, n: u64, refused: u64) {
        let refused = refused.min(n);
        let c = &self.counters;
        c.rejected.fetch_add(refused, Relaxed);
        c.delivered.fetch_add(n - refused, Relaxed);
        self.report(false, refused);
        self.report(true, n - refused);
    }
}

/// The sender thread's own state.
struct Sender {
    backoff: Backoff,
    retry_at: Instant,
    failures: u64,
    reject_log: RejectLog,
    /// Most points per request: the configured batch size, halved at each 413.
    batch_size: usize,
}
