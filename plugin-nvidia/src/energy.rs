//! Energy from one GPU, whatever it offers: differences of the total-energy counter, or,
//! on devices without one, the power readings integrated over the monotonic clock.
//!
//! Pure arithmetic on readings, unit-tested without NVML.

use std::time::Instant;

use alumet::counter::PowerIntegral;

/// What an energy reading gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EnergyStep {
    /// Energy since the previous emitted reading, in millijoules.
    Energy(f64),
    /// Nothing to emit: the first reading (a baseline), or a counter that did not move
    /// since the previous reading (NVML refreshes it every 20 to 100 ms: an unchanged value
    /// means "not refreshed yet", not "zero energy"; the next change covers the whole span).
    Nothing,
    /// The counter went down: the driver was reloaded or the GPU reset. The interval is
    /// discarded and the new value is the baseline.
    Reset {
        /// The previous value, in millijoules.
        from: u64,
        /// The new value, in millijoules.
        to: u64,
    },
}

/// Differences of the total-energy counter (millijoules since the driver was loaded).
#[derive(Debug, Default)]
pub struct CounterMeter {
    previous: Option<u64>,
}

impl CounterMeter {
    /// Takes a counter reading.
    pub fn update(&mut self, counter_mj: u64) -> EnergyStep {
        let Some(previous) = self.previous else {
            self.previous = Some(counter_mj);
            return EnergyStep::Nothing;
        };
        if counter_mj == previous {
            return EnergyStep::Nothing;
        }
        self.previous = Some(counter_mj);
        if counter_mj < previous {
            return EnergyStep::Reset {
                from: previous,
                to: counter_mj,
            };
        }
        // Counts of millijoules: exact in an f64 up to 2^53 mJ (285 years at 1 kW).
        EnergyStep::Energy((counter_mj - previous) as f64)
    }
}

/// Power readings integrated with the trapezoidal rule over the monotonic clock (the
/// core's [`PowerIntegral`]): the energy of an interval is the mean of the power at its
/// two ends times its length, whether the power rose or fell.
#[derive(Debug, Default)]
pub struct PowerIntegrator(PowerIntegral);

impl PowerIntegrator {
    /// Takes a power reading (milliwatts) taken at `at`.
    pub fn update(&mut self, power_mw: u32, at: Instant) -> EnergyStep {
        // mW × s = mJ.
        match self.0.update(f64::from(power_mw), at) {
            Some(mj) => EnergyStep::Energy(mj),
            None => EnergyStep::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counter_differences_are_exact_and_the_first_reading_is_a_baseline() {
        let mut m = CounterMeter::default();
        assert_eq!(m.update(1_000_000), EnergyStep::Nothing);
        assert_eq!(m.update(1_000_250), EnergyStep::Energy(250.0));
        assert_eq!(m.update(1_300_250), EnergyStep::Energy(300_000.0));
    }

    #[test]
    fn an_unchanged_counter_emits_nothing_and_the_next_change_covers_the_whole_span() {
        let mut m = CounterMeter::default();
        m.update(500);
        assert_eq!(m.update(500), EnergyStep::Nothing);
        assert_eq!(m.update(500), EnergyStep::Nothing);
        assert_eq!(m.update(800), EnergyStep::Energy(300.0));
    }

    #[test]
    fn a_decrease_is_a_reset_and_the_new_value_is_the_baseline() {
        let mut m = CounterMeter::default();
        m.update(u64::MAX - 10);
        assert_eq!(
            m.update(40),
            EnergyStep::Reset {
                from: u64::MAX - 10,
                to: 40
            }
        );
        assert_eq!(m.update(100), EnergyStep::Energy(60.0));
    }

    #[test]
    fn power_is_integrated_by_trapezoids_in_both_directions() {
        let t0 = Instant::now();
        let mut p = PowerIntegrator::default();
        assert_eq!(p.update(100_000, t0), EnergyStep::Nothing);
        // Rising 100 W -> 300 W over 2 s: 400 J.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(p.update(300_000, t1), EnergyStep::Energy(400_000.0));
        // Falling 300 W -> 100 W over 0.5 s: 100 J (the public plugin counts nothing here).
        let t2 = t1 + Duration::from_millis(500);
        assert_eq!(p.update(100_000, t2), EnergyStep::Energy(100_000.0));
    }

    #[test]
    fn a_second_reading_at_the_same_instant_keeps_the_interval_start() {
        let t0 = Instant::now();
        let mut p = PowerIntegrator::default();
        p.update(50_000, t0);
        assert_eq!(p.update(70_000, t0), EnergyStep::Nothing);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(p.update(50_000, t1), EnergyStep::Energy(50_000.0));
    }
}
