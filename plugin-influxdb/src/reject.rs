//! A 4xx answer (other than 408, 413 and 429): the batch is given up, and the server's
//! message is logged (when the engine's [`RejectLog`] says so) with InfluxDB's advice.

use std::time::Instant;

use alumet_delivery::reject::since_note;
use alumet_delivery::{Batch, RejectLog};

use crate::queue::Chunk;

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
    let since = since_note(batches, points);
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
    fn partial_writes_count_what_was_refused() {
        let v1 = r#"partial write: field type conflict: input field "value" on measurement "m" is type integer, already exists as type float dropped=3"#;
        assert_eq!(refused_points(v1), Some(3));
        let parse = "partial write: unable to parse 'a': x\nunable to parse 'b': y dropped=0";
        assert_eq!(refused_points(parse), Some(2));
        assert_eq!(refused_points("database not found: \"x\""), None);
    }
}
