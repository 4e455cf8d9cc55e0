//! The bounded buffer between the output and the sender thread, and the sender's loop:
//! batches, retries with exponential backoff and jitter, drop-oldest, and the counts.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use alumet::pipeline::Delivery;

use crate::client::{Client, Outcome};
use crate::queue::{Chunk, LineQueue};
use crate::reject::{rejected, RejectLog};

/// First retry delay; it doubles after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay while running.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest retry delay once shutdown has begun (the core's deadline is short).
const MAX_BACKOFF_CLOSING: Duration = Duration::from_millis(500);
/// At most one log line per kind of trouble in this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What happened to the points the output received, so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Points received from the pipeline.
    pub received: u64,
    /// Points the server accepted.
    pub delivered: u64,
    /// Points dropped (the oldest first) because `max_buffered_points` were waiting.
    pub dropped: u64,
    /// Points the server refused (4xx): not retried; lost.
    pub rejected: u64,
    /// Points skipped because their value was NaN or infinite; lost.
    pub skipped_non_finite: u64,
    /// Points not sent because an earlier point of their buffer had the same series and
    /// timestamp (some attribute written as a field told them apart); lost.
    pub collided: u64,
    /// `u64` values above `i64::MAX` written as string fields (`value_u64`, API v1 only).
    pub large_u64_as_string: u64,
    /// Write requests that failed and were retried (5xx, timeout, refused connection).
    pub failed_attempts: u64,
    /// Points waiting for delivery now, the batch being sent included.
    pub buffered: u64,
    /// Points still buffered, or whose request failed, after the output was stopped at
    /// shutdown; lost.
    pub undelivered: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    skipped_non_finite: AtomicU64,
    collided: AtomicU64,
    large_u64_as_string: AtomicU64,
    failed_attempts: AtomicU64,
    undelivered: AtomicU64,
}

/// At most one message per [`LOG_INTERVAL`]; counts the others.
#[derive(Default)]
struct RateLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// `Some(suppressed)` when a message may be logged now.
    fn check(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now < t + LOG_INTERVAL) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[derive(Default)]
struct State {
    queue: LineQueue,
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

/// Shared by the output (which queues), the sender thread and the plugin's `stop`.
pub struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    counters: Counters,
    capacity: usize,
    /// Where the pipeline learns what became of the points: set at the first `write`.
    delivery: OnceLock<Delivery>,
    /// The plugin instance's name (`influxdb`, or `influx_eu` for `[plugins.influx_eu]`),
    /// which starts every log line: set at start.
    name: OnceLock<String>,
}

impl Shared {
    /// A buffer of at most `capacity` points.
    pub fn new(capacity: usize) -> Self {
        Shared {
            state: Mutex::default(),
            cv: Condvar::new(),
            counters: Counters::default(),
            capacity,
            delivery: OnceLock::new(),
            name: OnceLock::new(),
        }
    }

    /// Sets the name that starts the log lines (the plugin instance's).
    pub fn set_name(&self, name: &str) {
        self.name.get_or_init(|| name.to_owned());
    }

    /// The name that starts the log lines: the plugin instance's, `influxdb` by default.
    pub fn name(&self) -> &str {
        self.name.get().map_or("influxdb", String::as_str)
    }

    /// Keeps the pipeline's delivery handle of this output (the first one given).
    pub fn set_delivery(&self, delivery: &Delivery) {
        self.delivery.get_or_init(|| delivery.clone());
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts points received, skipped, colliding and written as strings.
    pub fn count_received(&self, received: usize, non_finite: u64, collided: u64, large_u64: u64) {
        let c = &self.counters;
        c.received.fetch_add(received as u64, Relaxed);
        c.skipped_non_finite.fetch_add(non_finite, Relaxed);
        c.collided.fetch_add(collided, Relaxed);
        c.large_u64_as_string.fetch_add(large_u64, Relaxed);
    }

    /// Queues formatted lines for the sender, dropping the oldest past the capacity.
    pub fn enqueue(&self, chunk: Chunk) {
        if chunk.is_empty() {
            return;
        }
        let mut st = self.lock();
        if st.queue.is_empty() {
            st.pending_since = Some(Instant::now());
        }
        st.queue.push_back(chunk);
        self.enforce_capacity(&mut st);
        drop(st);
        self.cv.notify_all();
    }

    fn enforce_capacity(&self, st: &mut State) {
        let excess = (st.queue.len() + st.in_flight).saturating_sub(self.capacity);
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
                note(suppressed)
            );
        }
    }

    /// A 4xx answer to a batch of `n` points, of which the server refused `refused` (all of
    /// them, but for a partial write): those are lost, the others written.
    fn count_rejected(&self, n: u64, refused: u64) {
        let c = &self.counters;
        c.rejected.fetch_add(refused, Relaxed);
        c.delivered.fetch_add(n - refused, Relaxed);
        self.report(false, refused);
        self.report(true, n - refused);
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        let buffered = {
            let st = self.lock();
            (st.queue.len() + st.in_flight) as u64
        };
        let c = &self.counters;
        Stats {
            received: c.received.load(Relaxed),
            delivered: c.delivered.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            skipped_non_finite: c.skipped_non_finite.load(Relaxed),
            collided: c.collided.load(Relaxed),
            large_u64_as_string: c.large_u64_as_string.load(Relaxed),
            failed_attempts: c.failed_attempts.load(Relaxed),
            buffered,
            undelivered: c.undelivered.load(Relaxed),
        }
    }

    /// Shutdown: no more points; blocks until the sender has delivered everything, or
    /// until [`Shared::abort`]. Returns how many points are left undelivered.
    pub fn close_and_wait(&self) -> usize {
        let mut st = self.lock();
        st.closing = true;
        self.cv.notify_all();
        while !st.done && !st.abort {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.queue.len() + st.in_flight
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

    /// Waits for the next batch to send: full, or its first point waited `flush_interval`,
    /// or shutdown began; never before `retry_at`. `None`: the sender must exit.
    fn next_batch(&self, batch_size: usize, flush: Duration, retry_at: Instant) -> Option<Chunk> {
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
}

fn note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} similar messages suppressed)")
    }
}

/// Exponential backoff with jitter: each delay is drawn in [d/2, d], d doubling.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn delay(&mut self, closing: bool) -> Duration {
        let cap = if closing {
            MAX_BACKOFF_CLOSING
        } else {
            MAX_BACKOFF
        };
        let d = self.next.min(cap);
        self.next = (d * 2).min(MAX_BACKOFF);
        d.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// The sender thread: sends batches until shutdown (or abort).
pub fn run_sender(shared: &Shared, client: &Client, batch_size: usize, flush: Duration) {
    let mut backoff = Backoff {
        next: FIRST_BACKOFF,
    };
    let mut retry_at = Instant::now();
    let mut failures = 0u64;
    let mut reject_log = RejectLog::default();
    while let Some(batch) = shared.next_batch(batch_size, flush, retry_at) {
        let outcome = client.send(batch.body());
        let n = batch.len() as u64;
        let mut st = shared.lock();
        st.in_flight = 0;
        match outcome {
            Outcome::Delivered => {
                shared.counters.delivered.fetch_add(n, Relaxed);
                shared.report(true, n);
                if failures > 0 {
                    log::info!(
                        "{}: delivering again after {failures} failed attempts",
                        shared.name()
                    );
                }
                failures = 0;
                backoff.next = FIRST_BACKOFF;
            }
            Outcome::Retry(_) if st.abort => {
                shared.counters.undelivered.fetch_add(n, Relaxed);
                shared.report(false, n);
            }
            Outcome::Retry(reason) => {
                shared.counters.failed_attempts.fetch_add(1, Relaxed);
                failures += 1;
                st.queue.push_front(batch);
                shared.enforce_capacity(&mut st);
                let delay = backoff.delay(st.closing);
                retry_at = Instant::now() + delay;
                if failures == 1 || failures % 20 == 0 {
                    log::warn!(
                        "{}: writing to {} failed ({reason}), attempt {failures}: {} points buffered, retrying in {delay:.1?}",
                        shared.name(),
                        client.url(),
                        st.queue.len()
                    );
                }
            }
            Outcome::Rejected { status, message } => {
                drop(st);
                let refused = rejected(shared.name(), &batch, status, &message, &mut reject_log);
                shared.count_rejected(n, refused);
            }
        }
    }
}
