//! Cumulative usage known at sample times, and its value at any time in between.
//!
//! procfs reports CPU time as differences since its previous reading, at its own poll
//! times; NVML reports SM utilization per poll. Both become a [`Series`]: a cumulative
//! amount (CPU seconds, or percent-seconds of SM use) at each sample time, starting at 0.
//! Its value at a time `t` between two samples `(t0, v0)` and `(t1, v1)` is the linear
//! interpolation `v0 + (v1 - v0) * (t - t0) / (t1 - t0)`: the usage is assumed to be spread
//! evenly over the sample period.
//!
//! **Error bound.** Usage is never negative, so the true cumulative value at `t` lies in
//! `[v0, v1]`. The interpolated value sits at the fraction `λ = (t - t0) / (t1 - t0)` of
//! that range, hence it is off by at most `(v1 - v0) * max(λ, 1 - λ)`
//! ([`Series::bound_at`]): at most the usage of the straddling sample period, and zero when
//! `t` is a sample time (energy and CPU time read in the same wake-up). A difference
//! `value_at(b) - value_at(a)` is off by at most `bound_at(a) + bound_at(b)`.
//!
//! Outside its samples a series is flat: before its first sample it keeps its first value,
//! 0 (the consumer did not exist yet, or was not measured), after its last one its last value (the
//! consumer ended, or its next reading has not arrived).

use std::collections::VecDeque;

/// A sample: time in nanoseconds since the epoch, cumulative amount.
type Sample = (u64, f64);

/// A cumulative amount at sample times (nanoseconds since the epoch), non-decreasing in
/// time, linearly interpolated in between.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    samples: VecDeque<Sample>,
    /// The time of a first sample whose period start was unknown: further amounts read at
    /// that same time (other `kind`s or `cpu_state`s of the same reading) are dropped too.
    anchor_only_at: Option<u64>,
}

impl Series {
    /// An empty series.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `amount` used over the period `(start, end]`. `start` is the time of the
    /// previous reading when known; `None` for a first reading whose period is unknown:
    /// its amount cannot be placed in time, so it is dropped and `end` becomes the
    /// series' origin. Readings at the time of the last sample add to it (several points
    /// of one reading). Returns false, ignoring the reading, when `end` is older than
    /// the last sample (out of order).
    pub fn add(&mut self, start: Option<u64>, end: u64, amount: f64) -> bool {
        let amount = if amount.is_finite() {
            amount.max(0.0)
        } else {
            0.0
        };
        let Some(&(last_t, last_v)) = self.samples.back() else {
            match start {
                Some(s) if s < end => {
                    self.samples.push_back((s, 0.0));
                    self.samples.push_back((end, amount));
                }
                _ => {
                    self.samples.push_back((end, 0.0));
                    self.anchor_only_at = Some(end);
                }
            }
            return true;
        };
        if end < last_t {
            return false;
        }
        if end == last_t {
            if self.anchor_only_at != Some(end) {
                if let Some(back) = self.samples.back_mut() {
                    back.1 += amount;
                }
            }
            return true;
        }
        if let Some(s) = start {
            if s > last_t && s < end {
                // Nothing used between the last sample and the start of this period.
                self.samples.push_back((s, last_v));
            }
        }
        self.samples.push_back((end, last_v + amount));
        self.anchor_only_at = None;
        true
    }

    /// Whether the series has no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Time of the first sample.
    pub fn first_time(&self) -> Option<u64> {
        self.samples.front().map(|s| s.0)
    }

    /// Time of the last sample.
    pub fn last_time(&self) -> Option<u64> {
        self.samples.back().map(|s| s.0)
    }

    /// Time between the last two samples.
    pub fn last_gap(&self) -> Option<u64> {
        let n = self.samples.len();
        (n >= 2).then(|| self.samples[n - 1].0 - self.samples[n - 2].0)
    }

    /// The samples around `t`: `Err(value)` when `t` is outside them or on a sample.
    fn around(&self, t: u64) -> Result<[Sample; 2], f64> {
        let (Some(&first), Some(&last)) = (self.samples.front(), self.samples.back()) else {
            return Err(0.0);
        };
        if t <= first.0 {
            return Err(first.1);
        }
        if t >= last.0 {
            return Err(last.1);
        }
        // First sample strictly after t: index >= 1 since t > first.0.
        let i = self.samples.partition_point(|s| s.0 <= t);
        let (s0, s1) = (self.samples[i - 1], self.samples[i]);
        if s0.0 == t {
            return Err(s0.1);
        }
        Ok([s0, s1])
    }

    /// The cumulative amount at `t`, interpolated (see the module docs).
    pub fn value_at(&self, t: u64) -> f64 {
        match self.around(t) {
            Err(v) => v,
            Ok([(t0, v0), (t1, v1)]) => v0 + (v1 - v0) * ((t - t0) as f64 / (t1 - t0) as f64),
        }
    }

    /// The largest possible error of [`Series::value_at`] at `t` for a non-decreasing true
    /// amount that goes through every sample: `(v1 - v0) * max(λ, 1 - λ)`.
    pub fn bound_at(&self, t: u64) -> f64 {
        match self.around(t) {
            Err(_) => 0.0,
            Ok([(t0, v0), (t1, v1)]) => {
                let lambda = (t - t0) as f64 / (t1 - t0) as f64;
                (v1 - v0) * lambda.max(1.0 - lambda)
            }
        }
    }

    /// The amount used over `(a, b]`: `value_at(b) - value_at(a)`, never negative.
    pub fn delta(&self, a: u64, b: u64) -> f64 {
        (self.value_at(b) - self.value_at(a)).max(0.0)
    }

    /// Forgets the samples no interval starting at or after `horizon` needs: all but the
    /// last one at or before it.
    pub fn prune(&mut self, horizon: u64) {
        let keep_from = self.samples.partition_point(|s| s.0 <= horizon);
        if keep_from > 1 {
            self.samples.drain(..keep_from - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_clamps_and_bounds() {
        let mut s = Series::new();
        assert!(s.add(Some(100), 200, 10.0));
        assert!(s.add(None, 300, 30.0));
        assert_eq!(s.value_at(50), 0.0);
        assert_eq!(s.value_at(100), 0.0);
        assert_eq!(s.value_at(150), 5.0);
        assert_eq!(s.value_at(200), 10.0);
        assert_eq!(s.value_at(250), 25.0);
        assert_eq!(s.value_at(400), 40.0);
        assert_eq!(s.delta(150, 250), 20.0);
        assert_eq!(s.bound_at(200), 0.0);
        assert_eq!(s.bound_at(125), 10.0 * 0.75);
        assert_eq!(s.bound_at(275), 30.0 * 0.75);
        assert_eq!(s.bound_at(400), 0.0);
        assert_eq!(s.last_gap(), Some(100));
    }

    #[test]
    fn a_first_reading_without_start_is_only_an_origin() {
        let mut s = Series::new();
        s.add(None, 100, 7.0);
        s.add(None, 100, 3.0);
        assert_eq!(s.value_at(100), 0.0);
        s.add(Some(100), 200, 4.0);
        s.add(Some(100), 200, 1.0);
        assert_eq!(s.value_at(200), 5.0);
        assert!(!s.add(Some(0), 150, 1.0), "out of order");
        assert_eq!(s.value_at(200), 5.0);
    }

    #[test]
    fn a_gap_in_readings_is_flat_until_the_period_starts() {
        let mut s = Series::new();
        s.add(Some(0), 100, 1.0);
        s.add(Some(300), 400, 2.0);
        assert_eq!(s.value_at(300), 1.0);
        assert_eq!(s.value_at(350), 2.0);
    }

    #[test]
    fn prune_keeps_the_sample_before_the_horizon() {
        let mut s = Series::new();
        for t in 1..=5 {
            s.add(Some((t - 1) * 100), t * 100, 1.0);
        }
        s.prune(250);
        assert_eq!(s.first_time(), Some(200));
        assert_eq!(s.value_at(250), 2.5);
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn negative_and_nan_amounts_count_as_zero() {
        let mut s = Series::new();
        s.add(Some(0), 10, -5.0);
        s.add(Some(10), 20, f64::NAN);
        assert_eq!(s.value_at(20), 0.0);
    }
}
