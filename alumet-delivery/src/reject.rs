//! When to log a batch the server refused (a 4xx answer, not retried): each time the
//! server's answer changes, and at least once a minute while it lasts, never a flood.

use std::time::{Duration, Instant};

/// A message that does not change is logged again after this long.
const REPEAT: Duration = Duration::from_secs(60);
/// At most this many changed messages are logged within [`REPEAT`]; past that, one a
/// [`REPEAT`] (a batch whose every rejection names another bad line must not flood the log).
const MAX_CHANGES: u32 = 10;

/// When to log a rejection: each time the server's answer changes, at least every minute.
#[derive(Default)]
pub struct RejectLog {
    /// The status and message last logged.
    last: Option<(u16, String)>,
    /// When a line was last logged, and the first line of the current window.
    last_at: Option<Instant>,
    window_start: Option<Instant>,
    /// Lines logged since `window_start`.
    in_window: u32,
    /// Rejected batches and points not logged since the last line.
    quiet_batches: u64,
    quiet_points: u64,
}

impl RejectLog {
    /// Whether this rejection is logged; when it is, returns the batches and points
    /// rejected without a line since the last one.
    pub fn check(
        &mut self,
        status: u16,
        message: &str,
        refused: u64,
        now: Instant,
    ) -> Option<(u64, u64)> {
        let changed = self
            .last
            .as_ref()
            .is_none_or(|(s, m)| *s != status || m != message);
        let due = self.last_at.is_none_or(|t| now >= t + REPEAT);
        if self.window_start.is_none_or(|t| now >= t + REPEAT) {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if !(due || changed && self.in_window < MAX_CHANGES) {
            self.quiet_batches += 1;
            self.quiet_points += refused;
            return None;
        }
        self.in_window += 1;
        self.last_at = Some(now);
        if changed {
            self.last = Some((status, message.to_owned()));
        }
        Some((
            std::mem::take(&mut self.quiet_batches),
            std::mem::take(&mut self.quiet_points),
        ))
    }
}

/// `" (n more batches, m points, were rejected since the last such message)"`, or nothing.
pub fn since_note(batches: u64, points: u64) -> String {
    if batches == 0 {
        String::new()
    } else {
        format!(
            " ({batches} more batches, {points} points, were rejected since the last such message)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_is_logged_when_its_message_changes_and_every_minute() {
        let mut log = RejectLog::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(log.check(404, "no db", 5, at(0)), Some((0, 0)));
        assert_eq!(log.check(404, "no db", 5, at(1)), None);
        assert_eq!(log.check(404, "no db", 7, at(59)), None);
        assert_eq!(
            log.check(404, "no db", 5, at(60)),
            Some((2, 12)),
            "a minute later"
        );
        assert_eq!(
            log.check(401, "bad token", 5, at(61)),
            Some((0, 0)),
            "changed"
        );
        assert_eq!(
            log.check(404, "no db", 5, at(62)),
            Some((0, 0)),
            "changed back"
        );
    }

    #[test]
    fn changing_messages_are_bounded() {
        let mut log = RejectLog::default();
        let t0 = Instant::now();
        let logged = (0..100)
            .filter(|i| log.check(400, &format!("line {i}"), 1, t0).is_some())
            .count();
        assert_eq!(logged, MAX_CHANGES as usize);
        let later = t0 + REPEAT;
        assert_eq!(log.check(400, "line 100", 1, later), Some((90, 90)));
    }
}
