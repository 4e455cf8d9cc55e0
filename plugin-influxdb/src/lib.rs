//! InfluxDB output: the plugin `influxdb` writes every point it receives as one line of
//! InfluxDB's line protocol, in batches, over HTTP (API v1, v2 or v3). While the server is
//! unreachable it keeps up to `max_buffered_points` and retries (see `README.md`).
//!
//! ```toml
//! [plugins.influxdb]
//! api_version = "v2"
//! host = "http://localhost:8086"
//! token = "${INFLUX_TOKEN}"
//! org = "my-org"
//! bucket = "alumet"
//! ```

mod client;
mod collide;
mod config;
mod delivery;
pub mod line;
mod output;
mod queue;
mod reject;

use std::sync::Arc;

use alumet::pipeline::OutputOptions;
use alumet::prelude::*;

pub use config::{ApiVersion, AttributesAs, Config};
pub use delivery::Stats;
pub use output::{InfluxOutput, StatsHandle};

use delivery::Shared;

/// The `influxdb` plugin: one output, `influxdb/influxdb`.
pub struct InfluxDbPlugin {
    config: Config,
    shared: Arc<Shared>,
}

impl InfluxDbPlugin {
    /// The counts of the plugin's output (for tests and benchmarks).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.shared))
    }
}

impl Plugin for InfluxDbPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "influxdb"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let shared = Arc::new(Shared::new(config.max_buffered_points));
        Ok(InfluxDbPlugin { config, shared })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        // Log lines start with the instance's name (`influx_eu` for [plugins.influx_eu]).
        self.shared.set_name(alumet.plugin_name());
        let output = InfluxOutput::start(
            &self.config,
            alumet.host_identity(),
            Arc::clone(&self.shared),
        )?;
        // Its own thread (never inline): `write` only queues, but it takes a lock that
        // the sender thread shares. The sender reports what became of each point.
        let options = OutputOptions::default().reports_delivery();
        alumet.add_output_with("influxdb", output, options)?;
        Ok(())
    }

    /// Runs after the outputs finished, or after the core's shutdown deadline: gives up on
    /// what is still buffered (the core has counted it as lost and said how many points).
    fn stop(&mut self) -> anyhow::Result<()> {
        self.shared.abort();
        Ok(())
    }
}
