//! CPU energy estimated from CPU time, for machines without an energy counter (virtual
//! machines, ARM boards): the plugin `energy-estimation` reads `/proc/stat` and emits
//! `estimated_energy` (J) per interval, with a TDP model or a power curve (see
//! `README.md`). The `attribution` plugin takes it as its CPU energy where no RAPL
//! energy is registered.
//!
//! ```toml
//! [plugins.energy-estimation]
//! model = "tdp"
//! tdp = 120.0
//! ```

mod config;
pub mod model;
mod source;

use alumet::prelude::*;

pub use config::{Config, ModelName, When, TEADS_CURVE};
pub use source::{read_stat, EstimationSource};

/// The name of the metric: estimated joules since the previous reading.
pub const METRIC: &str = "estimated_energy";

/// The name of the RAPL plugin's energy metric: when it is registered, CPU energy is
/// measured, and `when = "no-rapl"` leaves the estimate out.
const MEASURED: &str = "rapl_consumed_energy";

/// The `energy-estimation` plugin: one source, `energy-estimation/cpu`.
pub struct EnergyEstimationPlugin {
    config: Config,
}

impl Plugin for EnergyEstimationPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "energy-estimation"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(EnergyEstimationPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let c = &self.config;
        if c.when == When::NoRapl && alumet.metrics().by_name(MEASURED).is_some() {
            return Err(Unavailable::new(
                "the rapl plugin measures CPU energy here",
                "set `when = \"always\"` to estimate beside the measure",
            )
            .into());
        }
        let stat = alumet
            .host_paths()
            .proc_root_or(&c.procfs_root)
            .join("stat");
        let text =
            std::fs::read(&stat).map_err(|e| anyhow::anyhow!("reading {}: {e}", stat.display()))?;
        let Some((_, cpus)) = read_stat(&text) else {
            anyhow::bail!("{}: no `cpu` line: is it a procfs?", stat.display());
        };
        let model = c.model(cpus);
        let metric = alumet.create_metric::<f64>(
            METRIC,
            Unit::Joule,
            "CPU energy estimated by a model from CPU time since the previous reading (attribute model), not measured",
        )?;
        let clk_tck = clock_ticks_per_second();
        log::info!(
            "energy-estimation: model {} ({model:?}) over {cpus} CPUs at {clk_tck} ticks/s",
            model.name()
        );
        let source = EstimationSource::new(stat, model, metric, clk_tck);
        alumet.add_source("cpu", source, c.trigger()?)?;
        Ok(())
    }
}

/// `CLK_TCK`: the unit of `/proc/stat` (100 on every Linux architecture in practice).
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&hz| hz > 0).unwrap_or(100)
}
