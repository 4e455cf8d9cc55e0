//! NVIDIA GPUs through NVML: energy, power, utilization, memory, clocks, temperature, and
//! per-process use. One source per GPU; NVML is loaded at run time, so a machine without
//! the driver gets the *unavailable* warning, not a crash.
//!
//! The driver is reached through the small [`backend::Backend`] trait: [`nvml`] is the
//! real library, [`fake`] is for tests.

pub mod backend;
pub mod config;
pub mod energy;
pub mod fake;
mod metrics;
pub mod nvml;
mod process;
mod setup;
mod source;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use alumet::prelude::*;

use crate::backend::Backend;
pub use crate::config::Config;
use crate::config::{Mode, Processes};
use crate::metrics::{EnergyMetrics, FullMetrics};
use crate::process::{Announced, ProcessFilter, Selection};
use crate::source::GpuSource;

/// The `nvidia` plugin.
pub struct NvidiaPlugin {
    config: Config,
    backend: Option<Box<dyn Backend>>,
}

impl NvidiaPlugin {
    /// The plugin on another backend than NVML (the tests' fake).
    pub fn with_backend(config: Config, backend: Box<dyn Backend>) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(NvidiaPlugin {
            config,
            backend: Some(backend),
        })
    }
}

impl Plugin for NvidiaPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "nvidia"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(NvidiaPlugin {
            config,
            backend: None,
        })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let backend = match self.backend.take() {
            Some(b) => b,
            None => Box::new(nvml::NvmlBackend::load(self.config.library())?),
        };
        let c = &self.config;
        let devices = setup::open_all(backend.as_ref(), c.mode, c.skip_failed_devices)?;
        let energy = EnergyMetrics::register(alumet)?;
        let full = match c.mode {
            Mode::Full => Some(Arc::new(FullMetrics::register(alumet)?)),
            Mode::Minimal => None,
        };
        let filter = self.process_filter(alumet);
        let trigger = Trigger::from_config("", c.poll_interval, c.flush_interval)?;
        for probed in devices {
            let name = format!("gpu-{}", probed.bus_id);
            let selection = Selection::new(filter.clone());
            let source = GpuSource::new(
                probed,
                energy.clone(),
                full.clone(),
                selection,
                c.poll_interval,
            );
            alumet.add_source(&name, source, trigger.clone())?;
        }
        Ok(())
    }
}

impl NvidiaPlugin {
    /// The process filter of the config, as the run mode makes it (see
    /// [`Processes::for_run_mode`]); for `event`, an event handler keeps the announced pids.
    fn process_filter(&self, alumet: &mut Registrar<'_>) -> ProcessFilter {
        match self.config.processes.for_run_mode(alumet.run_mode()) {
            Processes::All => ProcessFilter::All,
            Processes::None => ProcessFilter::Nothing,
            Processes::Event => {
                let roots = Arc::new(Mutex::new(HashSet::new()));
                let shared = Arc::clone(&roots);
                alumet.on_event(move |event, _| {
                    let mut roots = match shared.lock() {
                        Ok(r) => r,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    match event {
                        Event::ConsumerStarted(ResourceConsumer::Process { pid })
                        | Event::ConsumerWatched(ResourceConsumer::Process { pid }) => {
                            roots.insert(*pid);
                        }
                        Event::ConsumerEnded(ResourceConsumer::Process { pid }) => {
                            roots.remove(pid);
                        }
                        _ => {}
                    }
                });
                let procfs_root = alumet.host_paths().proc_root_or(&self.config.procfs_root);
                ProcessFilter::Announced(Announced {
                    roots,
                    processes: alumet.consumers().processes(&procfs_root),
                    procfs_root,
                })
            }
        }
    }
}
