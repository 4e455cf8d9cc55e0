//! The `[plugins.nvidia]` table.

use std::path::PathBuf;
use std::time::Duration;

use alumet::pipeline::Trigger;
use serde::{Deserialize, Serialize};

/// Config of the `nvidia` plugin: the `[plugins.nvidia]` table. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How often to query each GPU (NVML refreshes its readings every 20 to 100 ms: polling faster only repeats them).
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the measurements to the outputs.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Measure the other GPUs when one cannot be opened at start (false: such a GPU stops the agent).
    pub skip_failed_devices: bool,
    /// "full": every metric; "minimal": energy and power only (the cheapest).
    pub mode: Mode,
    /// Which processes get per-process metrics: "all" (every process using a GPU), "event" (the processes announced by exec and watch modes, and their descendants) or "none".
    pub processes: Processes,
    /// Where procfs is mounted, to find the descendants of announced processes: `/proc` takes the general `proc_root`; another path (a container's `/host/proc`) overrides it for this plugin.
    pub procfs_root: PathBuf,
    /// The NVML library to load; empty: the driver's `libnvidia-ml.so.1` from the library path.
    pub nvml_library: PathBuf,
}

/// How much to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every metric.
    Full,
    /// Energy and power only.
    Minimal,
}

/// Which processes get per-process metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Processes {
    /// Every process that uses a GPU.
    All,
    /// The processes announced by the agent (exec, watch) and their descendants.
    Event,
    /// None.
    None,
}

impl Processes {
    /// The choice as the agent's run mode makes it: exec and watch report the processes
    /// they announce (`Event`), unless the file says `"none"`; run mode keeps the file's.
    pub fn for_run_mode(self, mode: alumet::plugin::RunMode) -> Processes {
        match self {
            Processes::None => Processes::None,
            _ if mode.follows_announced_processes() => Processes::Event,
            other => other,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(5),
            skip_failed_devices: true,
            mode: Mode::Full,
            processes: Processes::All,
            procfs_root: PathBuf::from(alumet::plugin::host_paths::PROC_ROOT),
            nvml_library: PathBuf::new(),
        }
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        Trigger::from_config("", self.poll_interval, self.flush_interval)?;
        Ok(())
    }

    /// The library to load, `None` for the system's.
    pub fn library(&self) -> Option<&std::path::Path> {
        (!self.nvml_library.as_os_str().is_empty()).then_some(self.nvml_library.as_path())
    }
}
