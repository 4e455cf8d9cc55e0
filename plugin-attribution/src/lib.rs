//! Energy attribution: the plugin `attribution` splits the energy that RAPL measures per
//! CPU package (and DRAM) over the processes, or control groups, that used CPU time, and
//! the energy NVML measures per GPU over the processes that used its SMs (and AMD GPUs'
//! energy from the hwmon plugin over the processes that used their engines). For every
//! interval of an energy counter, what it emits adds up to what was measured:
//!
//! ```text
//! Σ attributed_energy + idle_energy + Σ unattributed_energy = measured energy
//! ```
//!
//! and it emits the difference, `attribution_imbalance` (0 up to rounding), to show it.
//!
//! # Method
//!
//! - **Intervals.** Each reading of an energy counter (`rapl_consumed_energy` per package
//!   and domain, `nvml_energy_consumption` per GPU) is the energy of `(a, b]`, from its
//!   previous reading to this one. The counter's first reading has no known start: it is
//!   `unattributed_energy` with `reason = first_reading`.
//! - **Usage.** Per-consumer CPU time (`cpu_time_delta`, kinds user and system), the
//!   machine's busy CPU time (`kernel_cpu_time`, states user, nice, system, irq, softirq)
//!   and per-process SM utilization (`nvml_sm_utilization`, as percent × seconds since the
//!   GPU's previous reading) are summed into cumulative [`Series`].
//! - **Alignment.** The sources poll at their own times and flush in their own buffers, so
//!   the transform keeps its state across buffers: an interval is attributed in the first
//!   buffer after the machine's CPU time and every live consumer's CPU time reach `b`.
//!   A consumer has vanished when another consumer read at the same time as its last
//!   reading has been read again (its source polled without it), or when its last
//!   reading is more than `max_delay` older than the newest data. Usage over `(a, b]`
//!   is `value_at(b) - value_at(a)`, interpolated linearly between readings; see
//!   [`series`] for the error bound, `(v1 - v0) * max(λ, 1 - λ)` at each end, 0 when the
//!   readings share the energy counter's timestamps (same poll interval).
//! - **Split.** See [`split`]: the idle part is the idle baseline (`idle = "fixed"`:
//!   `idle_power` watts × duration; `"measured"`: the lowest power seen so far), or all of
//!   the energy when no CPU time was used; the rest goes to consumer `p` in proportion
//!   `u_p / max(B, Σ u)`, `B` the machine's busy time; busy time of no measured consumer
//!   (kernel threads, interrupts, unmeasured processes, processes that exited between
//!   two readings) is `unattributed_energy` with `reason = untracked`. Each package's
//!   energy is split by machine-wide CPU time (procfs does not say on which package a
//!   process ran).
//! - **Missing data.** The part of `(a, b]` that the machine's CPU time does not cover is
//!   `unattributed_energy` with `reason = no_usage_data`. An interval still waiting after
//!   `max_delay` of newer measurements, or at shutdown, is attributed with the data
//!   received.
//!
//! The consumers are of one kind (`consumers`): processes (procfs) or cgroups (the
//! `cgroups` plugin); nested cgroups are counted once, the deepest measured ones receiving
//! the energy (see the README's "Nested cgroups": `parent_cgroup`).

mod config;
mod consumers;
mod inputs;
pub mod series;
mod settle;
pub mod split;
mod transform;
mod usage;

use alumet::prelude::*;

pub use config::{Config, Consumers, IdleMode};
pub use inputs::OutputMetrics;
pub use series::Series;
pub use transform::Attribution;

/// The `attribution` plugin: one transform, `attribution/attribution`.
pub struct AttributionPlugin {
    config: Config,
}

impl Plugin for AttributionPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "attribution"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(AttributionPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let outputs = OutputMetrics::create(alumet)?;
        let proc_root = alumet.host_paths().proc_root.clone();
        let state = Attribution::with_run_mode(self.config.clone(), outputs, alumet.run_mode())
            .with_proc_root(proc_root);
        transform::register(alumet, state)
    }
}
