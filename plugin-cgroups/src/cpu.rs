//! The CPU time of one cgroup, cumulated, split into user and system time.
//!
//! v2's `cpu.stat` gives the split itself (`user_usec` + `system_usec` = `usage_usec`). v1
//! gives a precise total (`cpuacct.usage`, from the scheduler, in ns) and a tick-sampled
//! split (`cpuacct.stat`, in clock ticks) that does not add up to it; [`Split`] scales the
//! sampled split onto the precise total, as the kernel does for v2 and for
//! `/proc/PID/stat`, so that user + system = the total and neither ever goes back.

use crate::parse::UserSystem;

/// Cumulated user and system time in ns, scaled onto a precise total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    prev: UserSystem,
}

impl Split {
    /// Splits `total` (ns) in the ratio of the sampled `ticks`, never below the previous
    /// split. Returns (user, system) in ns, adding up to `total` (unless `total` went
    /// back, which a cgroup's counter does not: then the previous split is kept).
    pub fn update(&mut self, total: u64, ticks: UserSystem) -> UserSystem {
        let prev = self.prev;
        if total < prev.user.saturating_add(prev.system) {
            return prev;
        }
        let sampled = u128::from(ticks.user) + u128::from(ticks.system);
        // No tick sampled yet: nothing tells; keep the previous system part.
        let scaled = (u128::from(total) * u128::from(ticks.system)).checked_div(sampled);
        let mut system = scaled.map_or(prev.system, |s| s as u64);
        system = system.max(prev.system);
        let mut user = total - system.min(total);
        if user < prev.user {
            user = prev.user;
            system = total - user;
        }
        self.prev = UserSystem { user, system };
        self.prev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(user: u64, system: u64) -> UserSystem {
        UserSystem { user, system }
    }

    #[test]
    fn the_split_adds_up_to_the_total_in_the_ratio_of_the_ticks() {
        let mut s = Split::default();
        assert_eq!(s.update(1000, us(3, 1)), us(750, 250));
        assert_eq!(s.update(2000, us(6, 2)), us(1500, 500));
    }

    #[test]
    fn neither_part_goes_back() {
        let mut s = Split::default();
        assert_eq!(s.update(1000, us(1, 1)), us(500, 500));
        // The ticks now say 90% user: system may not go below 500.
        assert_eq!(s.update(1200, us(9, 1)), us(700, 500));
        // And user may not go below 700.
        assert_eq!(s.update(1300, us(1, 9)), us(700, 600));
        let sum = |u: UserSystem| u.user + u.system;
        assert_eq!(sum(s.update(5000, us(0, 0))), 5000);
    }

    #[test]
    fn a_total_that_goes_back_keeps_the_previous_split() {
        let mut s = Split::default();
        s.update(1000, us(1, 0));
        assert_eq!(s.update(10, us(1, 0)), us(1000, 0));
    }

    #[test]
    fn no_ticks_yet_counts_as_user() {
        let mut s = Split::default();
        assert_eq!(s.update(40, us(0, 0)), us(40, 0));
    }
}
