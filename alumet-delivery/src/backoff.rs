//! Retry delays: exponential backoff with jitter, the server's `Retry-After`, and the
//! rate limit of repeated log lines.

use std::time::{Duration, Instant};

/// First retry delay; it doubles after each failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay while running.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest retry delay once shutdown has begun (the core's deadline is short).
pub const MAX_BACKOFF_CLOSING: Duration = Duration::from_millis(500);
/// Longest wait a server's `Retry-After` can ask for (a longer one is cut to this).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Exponential backoff with jitter: the nominal delay `d` starts at [`FIRST_BACKOFF`] and
/// doubles after each failure up to [`MAX_BACKOFF`]; each delay is drawn in `[d/2, d]`,
/// so that many agents that lost the same server do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }

    /// The nominal delay of the next failure (before jitter).
    pub fn nominal(&self) -> Duration {
        self.next
    }

    /// The delay after one more failure, with `unit` in `[0, 1)` choosing where in
    /// `[d/2, d]` it falls; during shutdown (`closing`) at most [`MAX_BACKOFF_CLOSING`].
    pub fn delay_with(&mut self, closing: bool, unit: f64) -> Duration {
        let cap = if closing {
            MAX_BACKOFF_CLOSING
        } else {
            MAX_BACKOFF
        };
        let d = self.next.min(cap);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        d.mul_f64(0.5 + unit.clamp(0.0, 1.0) * 0.5)
    }

    /// The delay after one more failure, with random jitter.
    pub fn delay(&mut self, closing: bool) -> Duration {
        self.delay_with(closing, fastrand::f64())
    }

    /// The delay after a failure whose answer may carry `Retry-After`: the server's wish
    /// when it gave one (at most [`MAX_RETRY_AFTER`], or [`MAX_BACKOFF_CLOSING`] during
    /// shutdown), else the backoff's. The backoff advances either way.
    pub fn retry_delay(&mut self, retry_after: Option<Duration>, closing: bool) -> Duration {
        let own = self.delay(closing);
        match retry_after {
            Some(after) if closing => after.min(MAX_BACKOFF_CLOSING),
            Some(after) => after.min(MAX_RETRY_AFTER),
            None => own,
        }
    }
}

/// At most one message per interval; counts the others.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// At most one message per `interval`.
    pub fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(suppressed)` when a message may be logged at `now`: how many were not since.
    pub fn check_at(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now < t + self.interval) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// As [`RateLimit::check_at`], now.
    pub fn check(&mut self) -> Option<u64> {
        self.check_at(Instant::now())
    }
}

/// `" (n similar messages suppressed)"`, or nothing.
pub fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} similar messages suppressed)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_schedule_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let top: Vec<Duration> = (0..9).map(|_| b.delay_with(false, 1.0)).collect();
        let expected = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(MS);
        assert_eq!(top, expected);
        b.reset();
        assert_eq!(b.delay_with(false, 0.0), MS(50), "half of the first delay");
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        let mut b = Backoff::default();
        for _ in 0..10 {
            let d = b.nominal().min(MAX_BACKOFF);
            for _ in 0..200 {
                let mut probe = b.clone();
                let j = probe.delay(false);
                assert!(j >= d / 2 && j <= d, "{j:?} outside [{:?}, {d:?}]", d / 2);
            }
            b.delay(false);
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let b = Backoff::default();
        let distinct: std::collections::HashSet<Duration> =
            (0..50).map(|_| b.clone().delay(false)).collect();
        assert!(
            distinct.len() > 10,
            "only {} distinct delays",
            distinct.len()
        );
    }

    #[test]
    fn shutdown_caps_the_delay() {
        let mut b = Backoff::default();
        for _ in 0..8 {
            b.delay(false);
        }
        assert_eq!(b.delay_with(true, 1.0), MAX_BACKOFF_CLOSING);
        assert_eq!(
            b.delay_with(false, 1.0),
            MAX_BACKOFF,
            "not lowered for later"
        );
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let mut b = Backoff::default();
        let s = Duration::from_secs;
        assert_eq!(b.retry_delay(Some(s(7)), false), s(7));
        assert_eq!(b.nominal(), MS(200), "the backoff advanced");
        assert_eq!(b.retry_delay(Some(s(3600)), false), MAX_RETRY_AFTER);
        assert_eq!(b.retry_delay(Some(s(7)), true), MAX_BACKOFF_CLOSING);
        let own = b.retry_delay(None, false);
        assert!(own >= MS(400) && own <= MS(800), "{own:?}");
    }

    #[test]
    fn rate_limit_counts_what_it_suppressed() {
        let mut r = RateLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(r.check_at(t0), Some(0));
        assert_eq!(r.check_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(r.check_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(r.check_at(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(suppressed_note(2), " (2 similar messages suppressed)");
        assert_eq!(suppressed_note(0), "");
    }
}
