//! Keeps repeated log messages (an error at every poll at 1 kHz) to one per second.

use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_secs(1);

/// Decides whether a repeated message is logged now.
#[derive(Debug, Default)]
pub(crate) struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    /// `Some(n)` when the message should be logged now, `n` being how many were suppressed
    /// since the last one; `None` when it should be suppressed.
    pub(crate) fn check(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < PERIOD => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// A suffix that says how many similar messages were suppressed, if any.
pub(crate) fn suppressed_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} similar messages suppressed)")
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-text panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_logs_then_suppresses() {
        let mut r = RateLimited::default();
        assert_eq!(r.check(), Some(0));
        assert_eq!(r.check(), None);
        assert_eq!(r.check(), None);
        r.last = Some(Instant::now() - PERIOD);
        assert_eq!(r.check(), Some(2));
        assert_eq!(suppressed_note(2), " (2 similar messages suppressed)");
        assert_eq!(suppressed_note(0), "");
    }
}
