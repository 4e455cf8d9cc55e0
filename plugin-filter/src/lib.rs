//! The plugin `filter`: keeps or drops points by metric name, resource and consumer kind,
//! consumer id and attribute values (`*` wildcards), before every output (a transform) or
//! before chosen output instances only (see `README.md`).
//!
//! ```toml
//! [plugins.filter]
//! include = [{ consumer_kind = "cgroup", attributes = { namespace = "prod" } }]
//! outputs = ["influxdb"]
//! ```

mod config;
mod rules;

use alumet::prelude::*;

pub use config::{Config, Rule};
pub use rules::Rules;

/// The `filter` plugin.
pub struct FilterPlugin {
    config: Config,
}

impl Plugin for FilterPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "filter"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(FilterPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let rules = Rules::of(&self.config);
        if self.config.outputs.is_empty() {
            let transform = move |buffer: &mut MeasurementBuffer, ctx: &TransformContext| {
                buffer
                    .as_mut_vec()
                    .retain(|p| rules.keeps(p, ctx.metrics()));
                Ok(())
            };
            alumet.add_transform("filter", transform)?;
        } else {
            for output in &self.config.outputs {
                let rules = rules.clone();
                alumet.add_output_filter(output, move |p, metrics| rules.keeps(p, metrics));
            }
        }
        Ok(())
    }

    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()> {
        let running: Vec<String> = control
            .output_stats()
            .into_iter()
            .map(|o| o.name.plugin)
            .collect();
        for output in &self.config.outputs {
            anyhow::ensure!(
                running.contains(output),
                "outputs names `{output}`, which is not an output plugin instance that runs; those that run: {}",
                running.join(", ")
            );
        }
        Ok(())
    }
}
