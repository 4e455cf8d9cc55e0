//! A 4xx answer (other than 408 and 429): the batch is given up, and the server's message
//! is logged each time it changes, and at least once a minute while it lasts.

use std::time::{Duration, Instant};

use crate::queue::Chunk;

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
    fn check(
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

/// A 4xx answer to `batch`: returns how many of its points the server refused (all of
/// them, but for a partial write), and logs the message when `log` says so.
pub fn rejected(name: &str, batch: &Chunk, status: u16, message: &str, log: &mut RejectLog) -> u64 {
    let n = batch.len() as u64;
    let refused = refused_points(message).map_or(n, |r| r.clamp(1, n));
    let Some((batches, points)) = log.check(status, message, refused, Instant::now()) else {
        return refused;
    };
    let advice = match status {
        400 => {
            let line = first_bad_line(message, batch);
            format!("the server refused a line: {message}; first bad line: {line}")
        }
        401 | 403 => format!("check the token (or username and password for v1): {message}"),
        404 => {
            format!("the database or bucket does not exist (create it, or check org): {message}")
        }
        413 => format!("the request is too large: lower batch_size: {message}"),
        _ => message.to_owned(),
    };
    let since = if batches == 0 {
        String::new()
    } else {
        format!(
            " ({batches} more batches, {points} points, were rejected since the last such message)"
        )
    };
    log::error!("{name}: HTTP {status}, {refused} points lost (not retried): {advice}{since}");
    refused
}

/// In a partial write (InfluxDB 1.x), how many points the server refused.
fn refused_points(message: &str) -> Option<u64> {
    if !message.contains("partial write") {
        return None;
    }
    let dropped = message
        .split("dropped=")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let unparsed = message.matches("unable to parse").count() as u64;
    Some(dropped.max(unparsed))
}

/// The line the server complains about: by number (`line 3`, v2 and v3), quoted (`unable
/// to parse '...'`, v1), or else the batch's first line; at most 300 bytes.
fn first_bad_line(message: &str, batch: &Chunk) -> String {
    let by_number = message
        .split("line ")
        .skip(1)
        .find_map(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .and_then(|n| batch.line(n.checked_sub(1)?));
    let text = match by_number {
        Some(line) => String::from_utf8_lossy(line).into_owned(),
        None => match message.split_once("unable to parse '") {
            Some((_, rest)) => rest.split("': ").next().unwrap_or(rest).to_owned(),
            None => String::from_utf8_lossy(batch.line(0).unwrap_or_default()).into_owned(),
        },
    };
    text.chars().take(300).collect()
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

    #[test]
    fn partial_writes_count_what_was_refused() {
        let v1 = r#"partial write: field type conflict: input field "value" on measurement "m" is type integer, already exists as type float dropped=3"#;
        assert_eq!(refused_points(v1), Some(3));
        let parse = "partial write: unable to parse 'a': x\nunable to parse 'b': y dropped=0";
        assert_eq!(refused_points(parse), Some(2));
        assert_eq!(refused_points("database not found: \"x\""), None);
    }
}
