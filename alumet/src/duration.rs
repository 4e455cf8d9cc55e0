//! Serde helpers for durations written as humantime strings (`"500ms"`, `"1s"`): put
//! `#[serde(with = "alumet::humantime_serde")]` on a `Duration` config field, or
//! `#[serde(with = "alumet::humantime_serde::interval")]` on a poll interval.
//!
//! Every duration is at most [`MAX`] (a longer one overflows the clock arithmetic of a
//! schedule or a deadline); a poll interval is at least [`interval::MIN`].

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The `humantime` crate, to format durations as the config writes them.
pub use ::humantime_serde::re;

/// The longest duration a config may hold: 100 years, of humantime's 365.25 days (so that
/// `"100y"` itself is accepted).
pub const MAX: Duration = Duration::from_secs(100 * 31_557_600);

/// Writes `d` as a humantime string.
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    ::humantime_serde::serialize(d, serializer)
}

/// Reads a humantime string of at most [`MAX`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Parses a humantime string of at most [`MAX`]; the error says what to write instead.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = ::humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write a number and a unit: \"500ms\", \"10s\", \"1h\")")
    })?;
    if d > MAX {
        return Err(format!(
            "the duration {text:?} is too long: at most 100 years"
        ));
    }
    Ok(d)
}

/// Poll intervals: at least [`MIN`](interval::MIN), at most [`MAX`](super::MAX).
pub mod interval {
    use super::*;

    /// The shortest poll interval: 10 µs (100 kHz). Each wake-up of a source thread costs
    /// about 17 µs of CPU on a typical server, so even 10 µs cannot be kept on every
    /// machine (polls are then late, never piled up); below it, no schedule holds, and the
    /// points of a few seconds fill the memory.
    pub const MIN: Duration = Duration::from_micros(10);

    /// Writes `d` as a humantime string.
    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        super::serialize(d, serializer)
    }

    /// Reads a humantime string between [`MIN`] and [`MAX`](super::MAX).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        let d = parse(&text).map_err(serde::de::Error::custom)?;
        if d < MIN {
            return Err(serde::de::Error::custom(format!(
                "the interval {text:?} is too short: at least 10us (100 kHz)"
            )));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_longest_duration_is_100_years_as_written() {
        assert_eq!(super::parse("100y"), Ok(super::MAX));
        let refused = super::parse("100y 1s").expect_err("over 100 years");
        assert!(refused.contains("at most 100 years"), "{refused}");
    }
}
