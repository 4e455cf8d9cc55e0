//! System and per-process metrics from `/proc`: the plugin `procfs` (see `README.md`).
//!
//! ```toml
//! [plugins.procfs]
//! procfs_root = "/proc"
//! [plugins.procfs.kernel]     # /proc/stat
//! enabled = true
//! [plugins.procfs.memory]     # /proc/meminfo
//! enabled = true
//! [plugins.procfs.network]    # /proc/net/dev
//! enabled = false
//! [plugins.procfs.processes]  # /proc/PID/stat and statm
//! enabled = false
//! ```
//!
//! Files are opened once and re-read with `pread` into buffers kept by the sources; the
//! kernel and memory sections allocate nothing per poll. [`parse`] holds the parsers.

mod config;
mod discovery;
mod events;
mod kernel;
mod memory;
mod network;
/// The parsers of the /proc files (the `linux-parse` crate, shared with the agent and the
/// NVIDIA plugin).
pub use linux_parse::proc as parse;
mod process;
mod procfile;
#[cfg(test)]
mod test_alloc;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alumet::consumers::{Discovery, ProcessEntry};
use alumet::prelude::*;
use anyhow::Context;

pub use config::{
    Config, EventsConfig, GroupConfig, KernelConfig, MemoryConfig, MemoryMode, NetworkConfig,
    ProcessesConfig, Strategy, DEFAULT_MEMORY_METRICS,
};

/// The `procfs` plugin.
pub struct ProcfsPlugin {
    config: Config,
}

impl Plugin for ProcfsPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "procfs"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(ProcfsPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let c = &self.config;
        let root = alumet.host_paths().proc_root_or(&c.procfs_root);
        let (env, stat) = Env::new(&root, alumet.consumers().processes(&root))?;
        let env = Arc::new(env);
        if c.kernel.enabled {
            kernel::start(&c.kernel, &env, stat, alumet).context("kernel section")?;
        }
        if c.memory.enabled {
            memory::start(&c.memory, &env, alumet).context("memory section")?;
        }
        if c.network.enabled {
            network::start(&c.network, &env, alumet).context("network section")?;
        }
        let processes = c.processes.for_run_mode(alumet.run_mode());
        if processes.enabled {
            process::start(&processes, &env, alumet).context("processes section")?;
        }
        Ok(())
    }
}

/// What every source needs to know about the system.
pub(crate) struct Env {
    /// `procfs_root`.
    root: PathBuf,
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of CPU times in `/proc`.
    clk_tck: u64,
    /// Bytes per page (`sysconf(_SC_PAGESIZE)`), the unit of `/proc/PID/statm`.
    page_size: u64,
    /// The processes of `root`, listed by the core for every plugin that asks.
    processes: Discovery<ProcessEntry>,
    warnings: Warnings,
}

/// Warnings logged at most once per plugin instance.
#[derive(Default)]
pub(crate) struct Warnings {
    /// A process file that cannot be read (hidepid, permissions).
    denied: procfile::Once,
    /// An `exe` link that cannot be read.
    exe: procfile::Once,
    /// No file descriptor left to open a process's files.
    files: procfile::Once,
}

impl Env {
    /// Checks that `root` holds a `stat` that can be opened for reading: otherwise the
    /// plugin is unavailable. (Opening is the check: reading `/proc/stat` costs the kernel
    /// a walk of every CPU, and the kernel section reads it right after.) Returns the open
    /// `stat` too, for the kernel section.
    fn new(
        root: &Path,
        processes: Discovery<ProcessEntry>,
    ) -> anyhow::Result<(Self, std::fs::File)> {
        let stat = root.join("stat");
        let opened = std::fs::File::open(&stat).and_then(|f| match f.metadata()?.is_file() {
            true => Ok(f),
            false => Err(std::io::Error::other("not a file")),
        });
        let file = opened.map_err(|e| {
            Unavailable::new(
                format!("cannot read {}: {e}", stat.display()),
                "set the general proc_root (or this plugin's procfs_root) to the directory where procfs is mounted (`/host/proc` in a container that mounts the host's there)",
            )
        })?;
        let env = Env {
            root: root.to_owned(),
            clk_tck: sysconf(libc::_SC_CLK_TCK, 100),
            page_size: sysconf(libc::_SC_PAGESIZE, 4096),
            processes,
            warnings: Warnings::default(),
        };
        Ok((env, file))
    }
}

fn sysconf(name: libc::c_int, fallback: u64) -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(fallback)
}

/// Polled every `poll`; buffered and handed on every `flush` when that is longer (the
/// config's validation checked both with [`Trigger::from_config`]).
pub(crate) fn trigger(poll: Duration, flush: Duration) -> Trigger {
    Trigger::from_config("", poll, flush).unwrap_or_else(|_| Trigger::every(poll))
}
