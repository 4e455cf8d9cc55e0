//! The plugin `aggregation`: each series (metric, resource, consumer, attributes) of the
//! chosen metrics becomes, per window aligned to the wall clock, one point per function
//! (sum, mean, min, max, last, count) in metrics `NAME_FUNCTION` (see `README.md`).
//!
//! ```toml
//! [plugins.aggregation]
//! interval = "1m"
//! metrics = ["rapl_*"]
//! ```

mod config;
mod transform;

use alumet::prelude::*;

pub use config::{Config, Function};
pub use transform::Aggregation;

/// The `aggregation` plugin: one transform, `aggregation/windows`.
pub struct AggregationPlugin {
    config: Config,
}

impl Plugin for AggregationPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "aggregation"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(AggregationPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        alumet.add_transform("windows", Aggregation::new(&self.config))?;
        Ok(())
    }
}
