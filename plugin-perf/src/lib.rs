//! Performance counters through perf_event: the plugin `perf` counts the events `perf
//! stat` counts (cycles, instructions, cache and branch misses, task-clock, page faults,
//! context switches, ...) for the processes and cgroups that exec and watch measure, and
//! optionally for the whole machine per CPU (see `README.md`).
//!
//! ```toml
//! [plugins.perf]
//! events = ["cycles", "instructions", "task-clock", "page-faults"]
//! ```

mod cgroups;
mod config;
pub mod events;
mod source;

use std::path::{Path, PathBuf};

use alumet::prelude::*;
use perf_counter::{Counter, Target};

pub use config::{Config, DEFAULT_EVENTS};
pub use source::{Measured, PerfSource};

/// The `perf` plugin.
pub struct PerfPlugin {
    config: Config,
}

/// Why an event cannot be counted here, with the fix where there is one.
fn unavailable_reason(e: &std::io::Error, event: &events::Event) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV | libc::EINVAL) => format!(
            "{}: not supported here ({e}): no hardware PMU exposes it (most virtual machines have none)",
            event.name
        ),
        _ => source::open_error(e, &event.name).to_string(),
    }
}

/// The online CPUs (0 to n-1).
pub(crate) fn cpus() -> Vec<u32> {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (0..u32::try_from(n).unwrap_or(1).max(1)).collect()
}

/// The cgroup directory a consumer's path names, in cgroup v2 or in v1's `perf_event`
/// hierarchy (hybrid hosts have v2 under `unified`).
pub(crate) fn cgroup_dir(root: &Path, path: &str) -> Option<std::fs::File> {
    let rel = path.trim_start_matches('/');
    let candidates = [
        root.join("perf_event").join(rel),
        root.join(rel),
        root.join("unified").join(rel),
    ];
    candidates
        .iter()
        .filter(|dir| dir.is_dir())
        .find_map(|dir| std::fs::File::open(dir).ok())
}

impl Plugin for PerfPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "perf"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.events()?;
        config.trigger()?;
        Ok(PerfPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let c = &self.config;
        // Each event tried on the agent itself: what this machine and these rights allow.
        let me = Target::Process {
            pid: 0,
            inherit: false,
        };
        let mut events = Vec::new();
        let mut missing = Vec::new();
        for e in c.events()? {
            match Counter::open(&e.spec, me) {
                Ok(_) => events.push(e),
                Err(err) => missing.push(unavailable_reason(&err, &e)),
            }
        }
        if events.is_empty() {
            return Err(Unavailable::new(
                format!("no event can be counted: {}", missing.join("; ")),
                "list software events (task-clock, page-faults, context-switches) to count those here",
            )
            .into());
        }
        for why in &missing {
            log::warn!("perf: {why}; the other events are counted");
        }
        let mut metrics = Vec::new();
        for e in &events {
            let unit = if e.nanoseconds {
                Unit::Nanosecond
            } else {
                Unit::Unity
            };
            let description = format!("perf_event {} since the previous reading, scaled for multiplexing (attribute running_ratio)", e.name);
            metrics.push(alumet.create_metric::<u64>(&e.metric, unit, &description)?);
        }
        let measured = Measured {
            events: events.into(),
            metrics: metrics.into(),
        };
        let trigger = c.trigger()?;
        if c.machine {
            let source = PerfSource::machine(&measured, &cpus()).map_err(|e| {
                anyhow::Error::from(Unavailable::new(
                    format!("{e:#}"),
                    "set `machine = false` to count the measured processes only",
                ))
            })?;
            alumet.add_source("machine", source, trigger.clone())?;
        }
        let cgroup_root = alumet.host_paths().cgroup_root_or(&c.cgroup_root);
        if c.cgroups && !alumet.run_mode().follows_announced_processes() {
            let follower = cgroups::Follower::new(
                measured.clone(),
                trigger.clone(),
                cgroup_root.clone(),
                alumet.consumers().cgroups(),
            );
            alumet.add_task_with_control("cgroups", move |control, shutdown| {
                follower.run(control, shutdown)
            })?;
        }
        if c.follow_announced {
            let handler = Follow {
                measured,
                trigger,
                cgroup_root,
                pending: std::sync::Mutex::new(None),
            };
            alumet.on_event(move |event, control| handler.handle(event, control));
        }
        Ok(())
    }
}

/// Adds and removes the sources of the announced processes and cgroups.
struct Follow {
    measured: Measured,
    trigger: Trigger,
    cgroup_root: PathBuf,
    /// The counters opened for the command exec is about to start.
    pending: std::sync::Mutex<Option<Vec<Counter>>>,
}

/// A source's name for a consumer.
pub(crate) fn source_name(consumer: &ResourceConsumer) -> Option<String> {
    match consumer {
        ResourceConsumer::Process { pid } => Some(format!("process-{pid}")),
        ResourceConsumer::ControlGroup { path } => Some(format!(
            "cgroup-{}",
            path.trim_start_matches('/').replace(['/', '*'], "_")
        )),
        _ => None,
    }
}

impl Follow {
    fn handle(&self, event: &Event, control: &PluginControl) {
        match event {
            Event::CommandStarting => match PerfSource::open_for_command(&self.measured) {
                Ok(counters) => {
                    *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(counters)
                }
                Err(e) => log::error!("perf: {e:#}"),
            },
            Event::ConsumerStarted(consumer) | Event::ConsumerWatched(consumer) => {
                let started = matches!(event, Event::ConsumerStarted(_));
                if let Err(e) = self.add(consumer, control, started) {
                    log::error!("perf: {e:#}");
                }
            }
            Event::ConsumerEnded(consumer) => {
                if let Some(name) = source_name(consumer) {
                    if let Ok(selector) = Selector::parse(&format!("perf/{name}")) {
                        let _ = control.remove_source(selector);
                    }
                }
            }
            _ => {}
        }
    }

    fn add(
        &self,
        consumer: &ResourceConsumer,
        control: &PluginControl,
        started: bool,
    ) -> anyhow::Result<()> {
        let Some(name) = source_name(consumer) else {
            return Ok(());
        };
        let pending = match started {
            true => self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
            false => None,
        };
        let source = match consumer {
            // Counting since its exec, with the counters opened before it started.
            ResourceConsumer::Process { pid } if pending.is_some() => {
                PerfSource::command(&self.measured, *pid, pending.unwrap_or_default())
            }
            ResourceConsumer::Process { pid } => PerfSource::process(&self.measured, *pid)?,
            ResourceConsumer::ControlGroup { path } => {
                let dir = cgroup_dir(&self.cgroup_root, path).ok_or_else(|| {
                    anyhow::anyhow!(
                        "cgroup {path}: not found under {} (cgroup v2, or v1's perf_event hierarchy): not counted",
                        self.cgroup_root.display()
                    )
                })?;
                PerfSource::cgroup(&self.measured, &dir, path, &cpus())?
            }
            _ => return Ok(()),
        };
        control.add_source(&name, source, self.trigger.clone())?;
        Ok(())
    }
}
