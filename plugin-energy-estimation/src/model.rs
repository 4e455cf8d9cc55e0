//! The models: joules from CPU ticks, exact arithmetic on two readings of `/proc/stat`.

use linux_parse::proc::CpuTicks;

/// The `cpu` line's columns this plugin reads, by index in the kernel's order.
const USER: usize = 0;
const NICE: usize = 1;
const SYSTEM: usize = 2;
const IDLE: usize = 3;
const IOWAIT: usize = 4;
const IRQ: usize = 5;
const SOFTIRQ: usize = 6;
const STEAL: usize = 7;

/// What one reading of the `cpu` line says, in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticks {
    /// Time the CPUs ran something: user, nice, system, irq and softirq (guest time is
    /// inside user and nice already).
    pub busy: u64,
    /// Every column but guest: busy, idle, iowait and steal (time the hypervisor gave
    /// another machine is neither this machine's work nor its idleness, but it is time).
    pub total: u64,
}

impl Ticks {
    /// From the counters of the `cpu` line.
    pub fn of(t: &CpuTicks) -> Ticks {
        let v = |i| t.get(i).unwrap_or(0);
        let busy = v(USER) + v(NICE) + v(SYSTEM) + v(IRQ) + v(SOFTIRQ);
        Ticks {
            busy,
            total: busy + v(IDLE) + v(IOWAIT) + v(STEAL),
        }
    }

    /// The ticks from `earlier` to `self`; `None` when a counter went down (a reset: the
    /// interval is not estimated).
    pub fn since(&self, earlier: &Ticks) -> Option<Ticks> {
        let busy = self.busy.checked_sub(earlier.busy)?;
        let total = self.total.checked_sub(earlier.total)?;
        Some(Ticks {
            busy: busy.min(total),
            total,
        })
    }
}

/// How joules follow from CPU time.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// `tdp` watts when all `nb_cpu` logical CPUs of the package are busy, nothing when
    /// idle, in proportion between: each busy CPU-second costs `tdp / nb_cpu` joules.
    Tdp {
        /// Watts of the CPU package(s) at full load.
        tdp: f64,
        /// The logical CPUs those watts feed.
        nb_cpu: f64,
    },
    /// The host's power at a utilisation, interpolated linearly between points
    /// (utilisation in %, watts), of which this machine's share is `nb_vcpu / nb_cpu`.
    Curve {
        /// The points, sorted by utilisation, from 0 % to 100 %.
        points: Vec<(f64, f64)>,
        /// The host's logical CPUs.
        nb_cpu: f64,
        /// This machine's CPUs.
        nb_vcpu: f64,
    },
}

impl Model {
    /// Its name, for the `model` attribute.
    pub fn name(&self) -> &'static str {
        match self {
            Model::Tdp { .. } => "tdp",
            Model::Curve { .. } => "curve",
        }
    }

    /// The joules of an interval of `delta` ticks, on a machine whose `/proc/stat` counts
    /// `cpus` CPUs at `clk_tck` ticks per second.
    pub fn joules(&self, delta: &Ticks, cpus: u32, clk_tck: u64) -> f64 {
        let hz = clk_tck as f64;
        match self {
            Model::Tdp { tdp, nb_cpu } => delta.busy as f64 / hz * tdp / nb_cpu,
            Model::Curve {
                points,
                nb_cpu,
                nb_vcpu,
            } => {
                if delta.total == 0 || cpus == 0 {
                    return 0.0;
                }
                let utilisation = 100.0 * delta.busy as f64 / delta.total as f64;
                let seconds = delta.total as f64 / hz / f64::from(cpus);
                interpolate(points, utilisation) * nb_vcpu / nb_cpu * seconds
            }
        }
    }
}

/// The watts at `utilisation` (%) on the curve: linear between the two points around it,
/// the end points' watts beyond them.
pub fn interpolate(points: &[(f64, f64)], utilisation: f64) -> f64 {
    let Some(&(first_u, first_w)) = points.first() else {
        return 0.0;
    };
    if utilisation <= first_u {
        return first_w;
    }
    for pair in points.windows(2) {
        let ((u0, w0), (u1, w1)) = (pair[0], pair[1]);
        if utilisation <= u1 {
            if u1 <= u0 {
                return w1;
            }
            return w0 + (w1 - w0) * (utilisation - u0) / (u1 - u0);
        }
    }
    points.last().map_or(0.0, |&(_, w)| w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(values: [u64; 10]) -> CpuTicks {
        CpuTicks { values, len: 10 }
    }

    #[test]
    fn busy_leaves_out_idle_iowait_steal_and_the_guest_columns() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let t = Ticks::of(&cpu([10, 2, 5, 100, 7, 1, 3, 4, 6, 1]));
        assert_eq!(
            t,
            Ticks {
                busy: 21,
                total: 132
            }
        );
    }

    #[test]
    fn a_counter_that_went_down_is_a_reset() {
        let a = Ticks {
            busy: 50,
            total: 400,
        };
        let b = Ticks {
            busy: 40,
            total: 500,
        };
        assert_eq!(b.since(&a), None);
        assert_eq!(a.since(&a), Some(Ticks { busy: 0, total: 0 }));
    }

    #[test]
    fn the_curve_interpolates_between_points_and_holds_beyond_them() {
        let points = [(0.0, 12.0), (10.0, 32.0), (50.0, 75.0), (100.0, 102.0)];
        assert_eq!(interpolate(&points, 0.0), 12.0);
        assert_eq!(interpolate(&points, 5.0), 22.0);
        assert_eq!(interpolate(&points, 30.0), 53.5);
        assert_eq!(interpolate(&points, 100.0), 102.0);
        assert_eq!(interpolate(&[(20.0, 40.0), (80.0, 100.0)], 10.0), 40.0);
        assert_eq!(interpolate(&[(20.0, 40.0), (80.0, 100.0)], 90.0), 100.0);
    }

    #[test]
    fn tdp_joules_are_busy_cpu_seconds_times_the_watts_of_one_cpu() {
        let model = Model::Tdp {
            tdp: 120.0,
            nb_cpu: 8.0,
        };
        // 250 busy ticks at 100 Hz: 2.5 CPU-seconds at 15 W each.
        let delta = Ticks {
            busy: 250,
            total: 800,
        };
        assert_eq!(model.joules(&delta, 4, 100), 37.5);
        assert_eq!(model.joules(&Ticks::default(), 4, 100), 0.0);
    }

    #[test]
    fn curve_joules_are_the_host_watts_at_the_utilisation_times_the_share_and_the_time() {
        let model = Model::Curve {
            points: vec![(0.0, 10.0), (100.0, 110.0)],
            nb_cpu: 16.0,
            nb_vcpu: 4.0,
        };
        // 4 CPUs, 400 ticks at 100 Hz: 1 s; 25 % busy: 35 W for the host, a quarter of it.
        let delta = Ticks {
            busy: 100,
            total: 400,
        };
        assert_eq!(model.joules(&delta, 4, 100), 8.75);
        // Idle: the idle watts still count.
        let idle = Ticks {
            busy: 0,
            total: 400,
        };
        assert_eq!(model.joules(&idle, 4, 100), 2.5);
    }
}
