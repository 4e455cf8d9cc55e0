//! The output's share of the delivery engine (`alumet-delivery`): the engine buffers,
//! batches, retries and counts; this adds the counts only InfluxDB has (points skipped
//! before they were queued) and the transport that sends line-protocol bodies.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use alumet::pipeline::Delivery;
use alumet_delivery::{Engine, Outcome, RejectLog, Transport};

use crate::client::Client;
use crate::queue::Chunk;
use crate::reject::rejected;

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
    /// Batches split in two because the server found them too large (413).
    pub splits: u64,
    /// Points waiting for delivery now, the batch being sent included.
    pub buffered: u64,
    /// Points still buffered, or whose request failed, after the output was stopped at
    /// shutdown; lost.
    pub undelivered: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    skipped_non_finite: AtomicU64,
    collided: AtomicU64,
    large_u64_as_string: AtomicU64,
}

/// Shared by the output (which queues), the sender thread and the plugin's `stop`.
pub struct Shared {
    pub(crate) engine: Arc<Engine<Chunk>>,
    counters: Counters,
}

impl Shared {
    /// A buffer of at most `capacity` points.
    pub fn new(capacity: usize) -> Self {
        Shared {
            engine: Arc::new(Engine::new(capacity, "influxdb")),
            counters: Counters::default(),
        }
    }

    /// Sets the name that starts the log lines (the plugin instance's).
    pub fn set_name(&self, name: &str) {
        self.engine.set_name(name);
    }

    /// The name that starts the log lines: the plugin instance's, `influxdb` by default.
    pub fn name(&self) -> &str {
        self.engine.name()
    }

    /// Keeps the pipeline's delivery handle of this output (the first one given).
    pub fn set_delivery(&self, delivery: &Delivery) {
        self.engine.set_delivery(delivery);
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
        self.engine.enqueue(chunk);
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        let e = self.engine.stats();
        let c = &self.counters;
        Stats {
            received: c.received.load(Relaxed),
            delivered: e.delivered,
            dropped: e.dropped,
            rejected: e.rejected,
            skipped_non_finite: c.skipped_non_finite.load(Relaxed),
            collided: c.collided.load(Relaxed),
            large_u64_as_string: c.large_u64_as_string.load(Relaxed),
            failed_attempts: e.failed_attempts,
            splits: e.splits,
            buffered: e.buffered,
            undelivered: e.undelivered,
        }
    }

    /// Shutdown: no more points; blocks until the sender has delivered everything, or
    /// until [`Shared::abort`]. Returns how many points are left undelivered.
    pub fn close_and_wait(&self) -> usize {
        self.engine.close_and_wait()
    }

    /// Gives up on what is buffered and counts it as lost (see [`Engine::abort`]).
    pub fn abort(&self) -> u64 {
        self.engine.abort()
    }
}

impl Transport<Chunk> for Client {
    fn send(&mut self, batch: &Chunk) -> Outcome {
        self.http().post(batch.body())
    }

    fn target(&self) -> &str {
        self.http().url()
    }

    /// InfluxDB's own advice per status, and its partial writes (some points refused).
    fn rejected(
        &mut self,
        name: &str,
        batch: &Chunk,
        status: u16,
        message: &str,
        log: &mut RejectLog,
    ) -> u64 {
        rejected(name, batch, status, message, log)
    }
}
