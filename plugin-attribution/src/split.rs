//! Dividing the energy of one interval: the idle part, the consumers' shares and the busy
//! time that no measured consumer accounts for.
//!
//! With `E` the energy, `I` the idle baseline (clamped to `[0, E]`), `B` the machine's busy
//! CPU time (for a GPU: the sum of its processes' SM use) and `u_p` each consumer's usage
//! over the interval, `D = max(B, Σ u_p)`:
//!
//! - `D = 0` (nothing ran): everything is idle;
//! - otherwise idle is `I`, consumer `p` gets `(E - I) * u_p / D`, and the rest,
//!   `(E - I) * (D - Σ u_p) / D`, is *untracked*.
//!
//! Taking `D` as the larger of the two keeps every share within `[0, 1]` even when
//! interpolation or clock-tick rounding makes the consumers' sum exceed the machine's
//! busy time, so the parts always add up to `E`.

/// How the energy of one interval is divided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Energy reported as idle.
    pub idle: f64,
    /// Energy of busy time that no measured consumer accounts for.
    pub untracked: f64,
    /// Joules per unit of usage: a consumer's energy is its usage times this.
    pub per_usage: f64,
}

/// Divides `energy` given the idle baseline `idle_base`, the machine's busy time `busy`
/// and the sum of the consumers' usage `usage_sum` (see the module docs).
pub fn split(energy: f64, idle_base: f64, busy: f64, usage_sum: f64) -> Split {
    let denom = busy.max(usage_sum);
    if denom.is_nan() || denom <= 0.0 {
        return Split {
            idle: energy,
            untracked: 0.0,
            per_usage: 0.0,
        };
    }
    let idle = idle_base.max(0.0).min(energy.max(0.0));
    let active = energy - idle;
    Split {
        idle,
        untracked: active * ((denom - usage_sum) / denom),
        per_usage: active / denom,
    }
}

/// The largest error, caused by interpolation, of the energy `(E - I) * u / D` given to one
/// consumer: `active` is `E - I`, `usage` its usage `u` and `usage_err` that usage's bound
/// (the sum of [`Series::bound_at`](crate::Series::bound_at) at both ends of the
/// interval), `denom` is `D` and `denom_err` its bound: the larger of the machine's bound
/// and the sum of every consumer's bound.
///
/// With the true values `u + x` and `D + y`, `|x| <= usage_err`, `|y| <= denom_err`, the
/// share's error is `|(x - y u / D) / (D + y)| <= (usage_err + u / D * denom_err) / (D - denom_err)`;
/// and a share is within `[0, 1]` anyway, so the bound never exceeds `|active|`.
pub fn error_bound(active: f64, usage: f64, usage_err: f64, denom: f64, denom_err: f64) -> f64 {
    if denom <= denom_err {
        return active.abs();
    }
    let share_err = (usage_err + usage / denom * denom_err) / (denom - denom_err);
    (active.abs() * share_err).min(active.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_not_covered_by_consumers_is_untracked() {
        let s = split(100.0, 20.0, 10.0, 6.0);
        assert_eq!(s.idle, 20.0);
        assert_eq!(s.per_usage, 8.0);
        assert_eq!(s.untracked, 32.0);
        assert_eq!(s.idle + s.untracked + 6.0 * s.per_usage, 100.0);
    }

    #[test]
    fn nothing_ran_so_all_is_idle() {
        let s = split(50.0, 5.0, 0.0, 0.0);
        assert_eq!((s.idle, s.untracked, s.per_usage), (50.0, 0.0, 0.0));
    }

    #[test]
    fn consumers_above_busy_time_share_everything() {
        let s = split(10.0, 0.0, 4.0, 5.0);
        assert_eq!((s.idle, s.untracked, s.per_usage), (0.0, 0.0, 2.0));
    }

    #[test]
    fn idle_baseline_is_clamped_to_the_energy() {
        let s = split(3.0, 10.0, 1.0, 1.0);
        assert_eq!((s.idle, s.untracked, s.per_usage), (3.0, 0.0, 0.0));
    }

    #[test]
    fn bound_is_zero_when_aligned_and_capped_by_the_energy() {
        assert_eq!(error_bound(10.0, 2.0, 0.0, 4.0, 0.0), 0.0);
        assert_eq!(error_bound(10.0, 2.0, 1.0, 4.0, 0.0), 2.5);
        assert_eq!(error_bound(10.0, 2.0, 1.0, 4.0, 5.0), 10.0);
    }
}
