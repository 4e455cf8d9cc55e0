//! The `[plugins.rapl]` table.

use alumet::plugin::host_paths;
use std::path::PathBuf;
use std::time::Duration;

use alumet::pipeline::Trigger;
use serde::{Deserialize, Serialize};

/// Config of the `rapl` plugin: the `[plugins.rapl]` table. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How often to read the energy counters; keep it well below the minutes a powercap counter takes to wrap around (a warning says so at start).
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the measurements to the outputs (fewer, larger batches cost less).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Never use perf_event (the `power` PMU), always read the powercap sysfs files.
    pub no_perf_events: bool,
    /// Where sysfs is mounted: `/sys` takes the general `sys_root` (itself `/sys` by default); another path (a container's `/host/sys`) overrides it for this plugin.
    pub sysfs_root: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(5),
            no_perf_events: false,
            sysfs_root: PathBuf::from(host_paths::SYS_ROOT),
        }
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        Trigger::from_config("", self.poll_interval, self.flush_interval)?;
        host_paths::ensure_root("sysfs_root", &self.sysfs_root, host_paths::SYS_ROOT)?;
        Ok(())
    }
}
