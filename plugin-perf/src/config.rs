//! The `[plugins.perf]` table.

use std::path::PathBuf;
use std::time::Duration;

use alumet::pipeline::{Trigger, TriggerConfigError};
use serde::{Deserialize, Serialize};

use crate::events::{self, Event};

/// Config of the `perf` plugin. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The events, by the names `perf stat -e` takes: "cycles", "instructions", "task-clock", "page-faults", "L1-dcache-load-misses", raw "r01c2", with ":u" (user space only) or ":k" (kernel only).
    pub events: Vec<String>,
    /// The public Alumet agent's hardware event names ("REF_CPU_CYCLES", "CACHE_MISSES"), added to `events`.
    pub hardware_events: Vec<String>,
    /// The public Alumet agent's software event names ("PAGE_FAULTS", "CONTEXT_SWITCHES"), added to `events`.
    pub software_events: Vec<String>,
    /// The public Alumet agent's cache event names ("LL_READ_MISS"), added to `events`.
    pub cache_events: Vec<String>,
    /// Count the processes and cgroups that exec and watch measure (a process with its children, as `perf stat` counts a command).
    pub follow_announced: bool,
    /// Count every cgroup that the cgroups plugin measures (run mode), in cgroup mode on every CPU, following the ones it adds and removes (needs the cgroups plugin, and v2 or v1's perf_event hierarchy).
    pub cgroups: bool,
    /// Also count every process of the machine, per CPU (needs CAP_PERFMON or kernel.perf_event_paranoid at 0 or below).
    pub machine: bool,
    /// How often to read the counters.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the readings to the outputs.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Where the cgroup tree is (a watched cgroup is counted in cgroup mode): `/sys/fs/cgroup` takes the general `cgroup_root`.
    pub cgroup_root: PathBuf,
}

/// The default events: the hardware counters `perf stat` shows (a machine without a
/// hardware PMU has none of them: the default config disables the plugin there).
pub const DEFAULT_EVENTS: [&str; 6] = [
    "cycles",
    "instructions",
    "branches",
    "branch-misses",
    "cache-references",
    "cache-misses",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            events: DEFAULT_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
            hardware_events: Vec::new(),
            software_events: Vec::new(),
            cache_events: Vec::new(),
            follow_announced: true,
            cgroups: false,
            machine: false,
            poll_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(5),
            cgroup_root: PathBuf::from(alumet::plugin::host_paths::CGROUP_ROOT),
        }
    }
}

impl Config {
    /// Every event, parsed, without repeats; an unknown name is an error naming its key.
    pub fn events(&self) -> anyhow::Result<Vec<Event>> {
        let mut out: Vec<Event> = Vec::new();
        for (key, list) in [
            ("events", &self.events),
            ("hardware_events", &self.hardware_events),
            ("software_events", &self.software_events),
            ("cache_events", &self.cache_events),
        ] {
            for (i, name) in list.iter().enumerate() {
                let e = events::parse(name).map_err(|e| anyhow::anyhow!("{key}[{i}]: {e}"))?;
                if !out.iter().any(|o| o.name == e.name) {
                    out.push(e);
                }
            }
        }
        anyhow::ensure!(
            !out.is_empty(),
            "no event: give `events`, such as [\"cycles\", \"instructions\", \"task-clock\"]"
        );
        Ok(out)
    }

    /// The sources' trigger.
    pub fn trigger(&self) -> Result<Trigger, TriggerConfigError> {
        Trigger::from_config("", self.poll_interval, self.flush_interval)
    }
}
