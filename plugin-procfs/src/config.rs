//! The `[plugins.procfs]` table. Its sections are those of the public Alumet's procfs
//! plugin, so that its users' configs keep working; missing keys take their default.

use alumet::plugin::host_paths;
use std::path::PathBuf;
use std::time::Duration;

use alumet::pipeline::Trigger;
use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Config of the `procfs` plugin: the `[plugins.procfs]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where procfs is mounted: `/proc` takes the general `proc_root` (itself `/proc` by default); another path (a container's `/host/proc`) overrides it for this plugin.
    pub procfs_root: PathBuf,
    /// System-wide CPU time, context switches, forks and runnable or blocked tasks, from `/proc/stat`.
    pub kernel: KernelConfig,
    /// Chosen entries of `/proc/meminfo`.
    pub memory: MemoryConfig,
    /// Bytes, packets, drops and errors of each network interface, from `/proc/net/dev`.
    pub network: NetworkConfig,
    /// CPU time and memory of chosen processes, from `/proc/PID/stat` and `/proc/PID/statm`.
    pub processes: ProcessesConfig,
}

/// The `[plugins.procfs.kernel]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Measure this section.
    pub enabled: bool,
    /// How often to read `/proc/stat`.
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the buffered points to the outputs (at least every poll when it is shorter than `poll_interval`).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Also measure the CPU time of each CPU core (resource `cpu_core`), not only of the whole machine.
    pub per_cpu: bool,
}

/// The `[plugins.procfs.memory]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Measure this section.
    pub enabled: bool,
    /// How often to read `/proc/meminfo`.
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the buffered points to the outputs.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// The `/proc/meminfo` keys to measure, as the kernel writes them; each becomes a metric named in snake_case (`MemTotal`: `mem_total`), in bytes.
    pub metrics: Vec<String>,
}

/// The `[plugins.procfs.network]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Measure this section.
    pub enabled: bool,
    /// How often to read `/proc/net/dev`.
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the buffered points to the outputs.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Only these interfaces (`["eth0", "wlan0"]`); empty: every interface.
    pub interfaces: Vec<String>,
}

/// How processes are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Scan `/proc` every `refresh_interval` for processes that match `groups`.
    Watcher,
    /// Measure only the processes announced by the agent (exec and watch modes), with `events`.
    Event,
}

/// The `[plugins.procfs.processes]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessesConfig {
    /// Measure this section.
    pub enabled: bool,
    /// `"watcher"`: scan for processes that match `groups`; `"event"`: measure the processes that exec and watch modes announce.
    pub strategy: Strategy,
    /// How often to look for new processes (matching `groups`, or children of announced processes); `"0s"` looks at every poll.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub refresh_interval: Duration,
    /// Settings of the `"event"` strategy.
    pub events: EventsConfig,
    /// Groups of processes to measure with the `"watcher"` strategy; a process joins the first group it matches.
    pub groups: Vec<GroupConfig>,
}

/// How a process's memory is read.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MemoryMode {
    /// `/proc/PID/statm`: `memory_usage` of kind resident, shared and virtual.
    #[default]
    Quick,
    /// Also `/proc/PID/smaps_rollup`: `memory_usage` of kind `proportional` (PSS: each shared page divided among the processes that map it). The kernel walks every mapping of the process to answer: much slower (see the README).
    #[serde(alias = "full")]
    SlowButAccurate,
}

/// The `[plugins.procfs.processes.events]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// How often to measure an announced process.
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand its buffered points to the outputs.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Also measure the descendants of an announced process (found every `refresh_interval`), each as its own consumer.
    pub follow_children: bool,
    /// `"quick"` (`statm`) or `"slow_but_accurate"` (also the proportional set size from `smaps_rollup`), as the public Alumet agent names them.
    pub memory_mode: MemoryMode,
}

/// One `[[plugins.procfs.processes.groups]]` entry: a process matches when it matches every criterion given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// Only the process with this pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Only the processes whose parent has this pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Only the processes whose executable path (the target of `/proc/PID/exe`) matches this regular expression (`\w`, `\d`, `\s` and `(?i)` are ASCII-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_regex: Option<String>,
    /// How often to measure the processes of this group.
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand their buffered points to the outputs.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// `"quick"` (`statm`) or `"slow_but_accurate"` (also the proportional set size from `smaps_rollup`), as the public Alumet agent names them.
    pub memory_mode: MemoryMode,
}

const SECOND: Duration = Duration::from_secs(1);
const FIVE_SECONDS: Duration = Duration::from_secs(5);

impl Default for Config {
    fn default() -> Self {
        Config {
            procfs_root: PathBuf::from(host_paths::PROC_ROOT),
            kernel: KernelConfig::default(),
            memory: MemoryConfig::default(),
            network: NetworkConfig::default(),
            processes: ProcessesConfig::default(),
        }
    }
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            enabled: true,
            poll_interval: SECOND,
            flush_interval: FIVE_SECONDS,
            per_cpu: false,
        }
    }
}

/// The `/proc/meminfo` keys measured by default.
pub const DEFAULT_MEMORY_METRICS: [&str; 11] = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapCached",
    "SwapTotal",
    "SwapFree",
    "Active",
    "Inactive",
    "Mapped",
];

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            enabled: true,
            poll_interval: SECOND,
            flush_interval: FIVE_SECONDS,
            metrics: DEFAULT_MEMORY_METRICS.map(String::from).to_vec(),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enabled: false,
            poll_interval: SECOND,
            flush_interval: FIVE_SECONDS,
            interfaces: Vec::new(),
        }
    }
}

impl Default for ProcessesConfig {
    fn default() -> Self {
        ProcessesConfig {
            enabled: false,
            strategy: Strategy::Watcher,
            refresh_interval: Duration::from_secs(2),
            events: EventsConfig::default(),
            groups: vec![GroupConfig::default()],
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            poll_interval: SECOND,
            flush_interval: FIVE_SECONDS,
            follow_children: true,
            memory_mode: MemoryMode::Quick,
        }
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            pid: None,
            ppid: None,
            exe_regex: None,
            poll_interval: Duration::from_secs(2),
            flush_interval: FIVE_SECONDS,
            memory_mode: MemoryMode::Quick,
        }
    }
}

impl Config {
    /// Checks what serde cannot; the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        host_paths::ensure_root("procfs_root", &self.procfs_root, host_paths::PROC_ROOT)?;
        Trigger::from_config(
            "kernel",
            self.kernel.poll_interval,
            self.kernel.flush_interval,
        )?;
        Trigger::from_config(
            "memory",
            self.memory.poll_interval,
            self.memory.flush_interval,
        )?;
        Trigger::from_config(
            "network",
            self.network.poll_interval,
            self.network.flush_interval,
        )?;
        if self.memory.enabled {
            anyhow::ensure!(
                !self.memory.metrics.is_empty(),
                "memory.metrics is empty: list /proc/meminfo keys, or set memory.enabled = false"
            );
        }
        let p = &self.processes;
        let events = &p.events;
        Trigger::from_config(
            "processes.events",
            events.poll_interval,
            events.flush_interval,
        )?;
        for (i, g) in p.groups.iter().enumerate() {
            let table = format!("processes.groups[{i}]");
            Trigger::from_config(&table, g.poll_interval, g.flush_interval)?;
            g.regex()
                .with_context(|| format!("processes.groups[{i}].exe_regex"))?;
        }
        if p.enabled && p.strategy == Strategy::Watcher {
            anyhow::ensure!(
                !p.groups.is_empty(),
                "processes.groups is empty: add a [[plugins.procfs.processes.groups]] entry \
                 (with no criterion it matches every process), or use strategy = \"event\""
            );
        }
        Ok(())
    }
}

impl ProcessesConfig {
    /// The section as the agent's run mode makes it. Exec and watch measure the processes
    /// they announce: the section is enabled with the `"event"` strategy, whatever the
    /// file says (its `events` and `refresh_interval` apply). Run mode keeps the file's.
    pub fn for_run_mode(&self, mode: alumet::plugin::RunMode) -> std::borrow::Cow<'_, Self> {
        if !mode.follows_announced_processes() {
            return std::borrow::Cow::Borrowed(self);
        }
        std::borrow::Cow::Owned(ProcessesConfig {
            enabled: true,
            strategy: Strategy::Event,
            ..self.clone()
        })
    }
}

impl GroupConfig {
    /// The compiled `exe_regex`, if any.
    ///
    /// The syntax is `regex-lite`'s: that of the `regex` crate, but `\w`, `\d`, `\s`, `\b`
    /// and case folding are ASCII-only, and there are no Unicode classes (`\p{..}`),
    /// nested classes or class set operations. Executable paths need none of these, and
    /// the `regex` crate's Unicode tables took half of the relocations the dynamic loader
    /// applies at each start of the agent (issue #5: `exec -- true`).
    pub fn regex(&self) -> anyhow::Result<Option<regex_lite::Regex>> {
        let Some(pattern) = self.exe_regex.as_deref() else {
            return Ok(None);
        };
        regex_lite::Regex::new(pattern).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "invalid regular expression `{pattern}`: {e} (the syntax is that of the Rust \
                 regex crate, with ASCII-only \\w, \\d, \\s, \\b and case folding, and no \\p{{..}} \
                 classes, nested classes or class set operations)"
            )
        })
    }
}
