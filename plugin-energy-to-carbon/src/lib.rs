//! Grams of CO2e from energy: the plugin `energy-to-carbon` adds a `carbon_emissions`
//! point (g) for each point of an energy metric, from a fixed intensity, a country's
//! yearly average or an intensity time series (see `README.md`).
//!
//! ```toml
//! [plugins.energy-to-carbon]
//! country = "FR"
//! ```

mod config;
pub mod intensity;
mod transform;

use alumet::prelude::*;

pub use config::Config;
pub use transform::CarbonTransform;

/// The `energy-to-carbon` plugin: one transform, `energy-to-carbon/carbon`.
pub struct EnergyToCarbonPlugin {
    config: Config,
    intensity: intensity::Intensity,
}

impl Plugin for EnergyToCarbonPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "energy-to-carbon"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        let intensity = config.intensity()?;
        Ok(EnergyToCarbonPlugin { config, intensity })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let metric = alumet.create_metric::<f64>(
            "carbon_emissions",
            Unit::Custom("g".into()),
            "grams of CO2e of the energy of the point it was computed from (attributes energy_metric, intensity_source)",
        )?;
        let transform =
            CarbonTransform::new(self.intensity.clone(), self.config.metrics.clone(), metric);
        alumet.add_transform("carbon", transform)?;
        Ok(())
    }
}
