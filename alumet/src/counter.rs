//! Differences of hardware counters, exact across wrap-around.
//!
//! Energy counters such as RAPL's `energy_uj` grow until a known maximum, then start again
//! from zero. [`CounterDiff`] keeps the previous reading and returns the exact increase
//! since it, including across one wrap. A counter that cannot wrap and goes down was reset
//! (a driver reload, a reboot of a device): that is reported as such, never as a huge
//! bogus increase.
//!
//! Devices that give only power, no energy counter, have their energy integrated from the
//! power readings by [`PowerIntegral`]: trapezoids over the monotonic clock.

use std::time::Instant;

/// The result of one reading given to [`CounterDiff::update`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CounterUpdate {
    /// The first reading: it only sets the baseline, there is no difference yet.
    First,
    /// The increase since the previous reading.
    Difference(u64),
    /// The counter went down although it cannot wrap: it was reset. The current value
    /// is the new baseline; there is no difference for this interval.
    Reset {
        /// The previous reading.
        previous: u64,
        /// The current reading, now the baseline.
        current: u64,
    },
    /// The reading is above the counter's maximum: it is ignored, the baseline is kept.
    OutOfRange {
        /// The reading.
        value: u64,
        /// The counter's maximum.
        max: u64,
    },
}

impl CounterUpdate {
    /// The difference, if this update has one.
    pub fn difference(self) -> Option<u64> {
        match self {
            CounterUpdate::Difference(d) => Some(d),
            _ => None,
        }
    }
}

/// Turns successive readings of a counter into differences.
#[derive(Clone, Debug)]
pub struct CounterDiff {
    max: Option<u64>,
    previous: Option<u64>,
}

impl CounterDiff {
    /// A counter that goes from 0 to `max` included, then wraps to 0
    /// (so differences are modulo `max + 1`).
    pub fn with_max(max: u64) -> Self {
        CounterDiff {
            max: Some(max),
            previous: None,
        }
    }

    /// A counter that never wraps: any decrease is a reset.
    pub fn without_wrap() -> Self {
        CounterDiff {
            max: None,
            previous: None,
        }
    }

    /// The maximum value, if the counter wraps.
    pub fn max(&self) -> Option<u64> {
        self.max
    }

    /// Forgets the baseline: the next reading is a [`CounterUpdate::First`] again.
    pub fn forget(&mut self) {
        self.previous = None;
    }

    /// Takes a new reading and returns the increase since the previous one.
    pub fn update(&mut self, value: u64) -> CounterUpdate {
        if let Some(max) = self.max {
            if value > max {
                return CounterUpdate::OutOfRange { value, max };
            }
        }
        let Some(previous) = self.previous.replace(value) else {
            return CounterUpdate::First;
        };
        if value >= previous {
            return CounterUpdate::Difference(value - previous);
        }
        match self.max {
            // Wrapped once: up to max, then from 0 to value. Computed in u128 because
            // `max - previous + value + 1` may not fit in u64 for large maxima.
            Some(max) => {
                let diff = u128::from(max - previous) + u128::from(value) + 1;
                CounterUpdate::Difference(u64::try_from(diff).unwrap_or(u64::MAX))
            }
            None => CounterUpdate::Reset {
                previous,
                current: value,
            },
        }
    }
}

/// Power readings integrated with the trapezoidal rule over the monotonic clock: the
/// energy of an interval is the mean of the power at its two ends times its length,
/// whether the power rose or fell. The energy is in the power's unit times seconds
/// (W gives J, mW gives mJ).
#[derive(Clone, Debug, Default)]
pub struct PowerIntegral {
    previous: Option<(Instant, f64)>,
}

impl PowerIntegral {
    /// Takes a power reading taken at `at`; returns the energy since the previous reading,
    /// `None` for the first one (a baseline) or for a second reading at the same instant
    /// (a manual trigger right after a scheduled poll), which keeps the earlier reading as
    /// the start of the next interval.
    pub fn update(&mut self, power: f64, at: Instant) -> Option<f64> {
        let Some((then, before)) = self.previous else {
            self.previous = Some((at, power));
            return None;
        };
        let seconds = at.saturating_duration_since(then).as_secs_f64();
        if seconds == 0.0 {
            return None;
        }
        self.previous = Some((at, power));
        Some((before + power) / 2.0 * seconds)
    }

    /// Forgets the previous reading (after a failed read): the next one is a baseline.
    pub fn forget(&mut self) {
        self.previous = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reading_gives_no_value() {
        let mut c = CounterDiff::with_max(1000);
        assert_eq!(c.update(10), CounterUpdate::First);
        assert_eq!(c.update(15), CounterUpdate::Difference(5));
        c.forget();
        assert_eq!(c.update(20), CounterUpdate::First);
    }

    #[test]
    fn no_wrap_and_no_change() {
        let mut c = CounterDiff::with_max(262_143_328_850);
        c.update(1_000_000);
        assert_eq!(c.update(1_000_000), CounterUpdate::Difference(0));
        assert_eq!(c.update(3_500_000), CounterUpdate::Difference(2_500_000));
    }

    #[test]
    fn exact_across_one_wrap() {
        // max_energy_range_uj of a real Intel package domain.
        let max = 262_143_328_850;
        let mut c = CounterDiff::with_max(max);
        c.update(max - 100);
        // 100 µJ up to max, 1 µJ from max to 0, 50 µJ after: 151.
        assert_eq!(c.update(50), CounterUpdate::Difference(151));
        // To exactly max and to exactly 0 also work.
        c.update(max - 1);
        assert_eq!(c.update(max), CounterUpdate::Difference(1));
        assert_eq!(c.update(0), CounterUpdate::Difference(1));
    }

    #[test]
    fn full_range_u64_counter_wraps_without_overflow() {
        let mut c = CounterDiff::with_max(u64::MAX);
        c.update(u64::MAX - 1);
        assert_eq!(c.update(3), CounterUpdate::Difference(5));
    }

    #[test]
    fn decrease_without_wrap_is_a_reset() {
        let mut c = CounterDiff::without_wrap();
        c.update(5_000_000);
        assert_eq!(
            c.update(1_000),
            CounterUpdate::Reset {
                previous: 5_000_000,
                current: 1_000
            }
        );
        // The reset value is the new baseline.
        assert_eq!(c.update(1_500), CounterUpdate::Difference(500));
    }

    #[test]
    fn value_above_max_is_ignored_and_keeps_baseline() {
        let mut c = CounterDiff::with_max(1000);
        c.update(100);
        assert_eq!(
            c.update(5000),
            CounterUpdate::OutOfRange {
                value: 5000,
                max: 1000
            }
        );
        assert_eq!(c.update(130), CounterUpdate::Difference(30));
        assert_eq!(CounterUpdate::First.difference(), None);
    }

    #[test]
    fn power_is_integrated_by_trapezoids_rising_and_falling() {
        let t0 = Instant::now();
        let mut p = PowerIntegral::default();
        assert_eq!(p.update(100.0, t0), None);
        // Rising 100 W -> 300 W over 2 s: 400 J; falling back over 0.5 s: 100 J.
        let t1 = t0 + std::time::Duration::from_secs(2);
        assert_eq!(p.update(300.0, t1), Some(400.0));
        assert_eq!(p.update(300.0, t1), None);
        let t2 = t1 + std::time::Duration::from_millis(500);
        assert_eq!(p.update(100.0, t2), Some(100.0));
        p.forget();
        assert_eq!(p.update(100.0, t2), None);
    }
}
