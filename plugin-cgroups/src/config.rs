//! The `[plugins.cgroups]` table.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pattern::PathPattern;

/// Config of the `cgroups` plugin: the `[plugins.cgroups]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the cgroup tree is mounted: `/sys/fs/cgroup` takes the general `cgroup_root` (itself `/sys/fs/cgroup` by default); another path (a container's `/host/sys/fs/cgroup`) overrides it for this plugin.
    pub cgroup_root: PathBuf,
    /// How often to measure each cgroup (a cgroup created while running gets its first reading when it is found, counted from its creation).
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the buffered points to the outputs (at least every poll when it is shorter than `poll_interval`).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// How often to read the costlier figures, the memory breakdown (`memory.stat`) and the pressure stall times (`*.pressure`): in whole poll intervals, at least one; the cheap ones (CPU, memory usage and limit, I/O) are read at every poll.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub details_interval: Duration,
    /// How often to list the whole tree again, besides following it with inotify (a safety net for events the kernel drops).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub rescan_interval: Duration,
    /// The cgroups to measure, as paths from the hierarchy's root: `*` matches within one path segment, `?` one character, `**` any number of segments; the default measures services, user sessions, pods, containers and batch jobs, not every leaf.
    pub include: Vec<String>,
    /// Cgroups not to measure even when `include` matches them (same syntax).
    pub exclude: Vec<String>,
    /// How deep below the root to look for cgroups (`/system.slice/nginx.service` is at depth 2).
    pub max_depth: usize,
}

/// The cgroups measured by default: what a user of each system expects to see as one
/// consumer. Pods and their containers are both measured (a pod's figures include its
/// containers'); a Slurm job and its steps likewise.
pub const DEFAULT_INCLUDE: [&str; 16] = [
    // systemd services and user sessions
    "/system.slice/*.service",
    "/user.slice/user-*.slice",
    // Kubernetes pods and containers, systemd and cgroupfs drivers (nested runtimes too)
    "**/kubepods*.slice/**/kubepods-*pod*.slice",
    "**/kubepods*.slice/**/kubepods-*pod*.slice/*.scope",
    "**/kubepods/pod*",
    "**/kubepods/pod*/*",
    "**/kubepods/*/pod*",
    "**/kubepods/*/pod*/*",
    // Docker and Podman containers outside Kubernetes
    "/system.slice/docker-*.scope",
    "/docker/*",
    "**/libpod-*.scope",
    // Slurm jobs and steps
    "**/slurmstepd.scope/job_*",
    "**/slurmstepd.scope/job_*/step_*",
    "**/slurm/uid_*/job_*",
    "**/slurm/uid_*/job_*/step_*",
    // OAR jobs
    "/oar/*_*",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            cgroup_root: PathBuf::from(alumet::plugin::host_paths::CGROUP_ROOT),
            poll_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(5),
            details_interval: Duration::from_secs(10),
            rescan_interval: Duration::from_secs(30),
            include: DEFAULT_INCLUDE.map(String::from).to_vec(),
            exclude: Vec::new(),
            max_depth: 6,
        }
    }
}

impl Config {
    /// Checks what serde cannot; the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.cgroup_root.as_os_str().is_empty(),
            "cgroup_root is empty: give the directory where the cgroup tree is mounted (`/sys/fs/cgroup`)"
        );
        for (key, d) in [
            ("poll_interval", self.poll_interval),
            ("flush_interval", self.flush_interval),
            ("rescan_interval", self.rescan_interval),
            ("details_interval", self.details_interval),
        ] {
            anyhow::ensure!(!d.is_zero(), "{key} must be longer than zero");
        }
        anyhow::ensure!(
            self.max_depth >= 1,
            "max_depth is 0: give at least 1 (the cgroups right under the root)"
        );
        anyhow::ensure!(
            !self.include.is_empty(),
            "include is empty: nothing would be measured; give patterns such as \"/system.slice/*.service\" (\"/**\" measures every cgroup)"
        );
        self.patterns()?;
        Ok(())
    }

    /// Every how many polls the costlier figures are read (see `details_interval`).
    pub(crate) fn details_every(&self) -> u32 {
        let polls = self.details_interval.as_nanos() / self.poll_interval.as_nanos().max(1);
        u32::try_from(polls).unwrap_or(u32::MAX).max(1)
    }

    /// `include` and `exclude`, compiled.
    pub(crate) fn patterns(&self) -> anyhow::Result<(Vec<PathPattern>, Vec<PathPattern>)> {
        let compile = |key: &str, list: &[String]| {
            (list.iter().enumerate())
                .map(|(i, p)| {
                    PathPattern::new(p).map_err(|e| anyhow::anyhow!("{key}[{i}] = {p:?}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        Ok((
            compile("include", &self.include)?,
            compile("exclude", &self.exclude)?,
        ))
    }
}
