//! CPU energy from RAPL: the plugin `rapl` measures the energy of each CPU package and its
//! domains (cores, uncore, DRAM) and of the platform, through perf_event (the `power` PMU)
//! or the powercap sysfs files, exactly across counter wrap-around and without counting a
//! domain twice on any layout (see `README.md`).
//!
//! ```toml
//! [plugins.rapl]
//! poll_interval = "1s"
//! flush_interval = "5s"
//! no_perf_events = false
//! sysfs_root = "/sys"
//! ```
#![deny(missing_docs)]

pub mod advice;
mod config;
pub mod domains;
pub mod parse;
pub mod perf;
pub mod powercap;
pub mod setup;
pub mod source;
pub mod topology;

use alumet::prelude::*;

pub use config::Config;
pub use source::RaplSource;

/// The name of the metric.
pub const METRIC: &str = "rapl_consumed_energy";

/// The `rapl` plugin: one source, `rapl/energy`.
pub struct RaplPlugin {
    config: Config,
}

impl Plugin for RaplPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "rapl"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(RaplPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let mut config = self.config.clone();
        config.sysfs_root = alumet.host_paths().sys_root_or(&config.sysfs_root);
        let opened = setup::open(&config)?;
        let metric = alumet.create_metric::<f64>(
            METRIC,
            Unit::Joule,
            "energy consumed since the previous reading, per package and RAPL domain",
        )?;
        let c = &self.config;
        let trigger = Trigger::from_config("", c.poll_interval, c.flush_interval)?;
        alumet.add_source("energy", RaplSource::new(metric, opened.groups), trigger)?;
        Ok(())
    }
}
