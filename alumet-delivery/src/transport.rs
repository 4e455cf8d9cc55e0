//! What an output gives the engine: a [`Transport`] that sends one batch and says how it
//! went ([`Outcome`]), and how to batch ([`Settings`]).

use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::reject::{since_note, RejectLog};

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the server has the points.
    Delivered,
    /// Worth retrying: 5xx, 408, 429, a timeout, a refused or broken connection.
    Retry {
        /// Why, for the log (never a secret).
        reason: String,
        /// The server's `Retry-After`, when it gave one.
        after: Option<Duration>,
    },
    /// 413: the request is too large; the engine sends the batch again in halves.
    TooLarge {
        /// The server's message.
        message: String,
    },
    /// Another 4xx: not worth retrying, the points are given up.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's message (truncated).
        message: String,
    },
}

/// Sends one batch; runs on the sender thread.
pub trait Transport<B: Batch>: Send {
    /// Sends `batch` (encoding it if the output did not) and says how it went.
    fn send(&mut self, batch: &B) -> Outcome;

    /// Where the batches go, for the log (never a secret).
    fn target(&self) -> &str;

    /// A 4xx answer to `batch`: logs it (when `log` says so) and returns how many of its
    /// points the server refused (by default all of them).
    fn rejected(
        &mut self,
        name: &str,
        batch: &B,
        status: u16,
        message: &str,
        log: &mut RejectLog,
    ) -> u64 {
        let n = batch.len() as u64;
        if let Some((batches, points)) = log.check(status, message, n, Instant::now()) {
            log::error!(
                "{name}: HTTP {status} from {}, {n} points lost (not retried): {message}{}",
                self.target(),
                since_note(batches, points)
            );
        }
        n
    }
}

/// How the sender batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Most points in one request.
    pub batch_size: usize,
    /// Longest time a point waits for its batch to fill.
    pub flush_interval: Duration,
}
