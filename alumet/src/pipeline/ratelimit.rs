//! Keeps repeated log messages (an error at every poll at 1 kHz) to one per second, and
//! judges how a call to an element's method ended (the same policy for sources,
//! transforms and outputs).

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::element::{ElementError, ErrorKind};

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

/// What a call to an element's method came to, once logged by [`judge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Called {
    /// It succeeded.
    Done,
    /// A retryable error: the element goes on.
    Failed,
    /// A fatal error or a panic: the element stops.
    Stopped,
}

/// Calls `f`, turning a panic into its message.
pub(crate) fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p).to_owned())
}

/// Judges and logs how a call to `kind name` (`source p/x`) ended, its panic caught: a
/// retryable error is a warning, when `log` allows one (a [`RateLimited`] check), that
/// says what happens next (`failed`: "failed, it will poll again"); a fatal error or a
/// panic is an error, and the element stops.
pub(crate) fn judge(
    kind: &str,
    name: &dyn Display,
    result: Result<Result<(), ElementError>, String>,
    failed: impl Display,
    log: impl FnOnce() -> Option<u64>,
) -> Called {
    match result {
        Ok(Ok(())) => Called::Done,
        Ok(Err(e)) if e.kind() == ErrorKind::Retryable => {
            if let Some(n) = log() {
                log::warn!("{kind} {name} {failed}: {e}{}", suppressed_note(n));
            }
            Called::Failed
        }
        Ok(Err(e)) => {
            log::error!("{kind} {name} stopped after a fatal error: {e}");
            Called::Stopped
        }
        Err(panic) => {
            log::error!("{kind} {name} panicked and is stopped: {panic}");
            Called::Stopped
        }
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
    fn a_call_is_judged_and_only_a_retryable_error_consults_the_rate_limit() {
        let judged = |result: Result<Result<(), ElementError>, String>| {
            let asked = std::cell::Cell::new(false);
            let called = judge("source", &"p/x", result, "failed", || {
                asked.set(true);
                Some(0)
            });
            (called, asked.get())
        };
        assert_eq!(judged(Ok(Ok(()))), (Called::Done, false));
        let retry = ElementError::retryable(anyhow::anyhow!("busy"));
        assert_eq!(judged(Ok(Err(retry))), (Called::Failed, true));
        let fatal = ElementError::fatal(anyhow::anyhow!("gone"));
        assert_eq!(judged(Ok(Err(fatal))), (Called::Stopped, false));
        assert_eq!(judged(caught(|| panic!("boom"))), (Called::Stopped, false));
        assert_eq!(caught(|| -> () { panic!("boom") }), Err("boom".to_owned()));
    }

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
