//! Prometheus remote write: the plugin `prometheus-remote-write` pushes every point it
//! receives to a remote-write receiver (Prometheus, VictoriaMetrics, Mimir, Cortex,
//! Thanos receive) with remote write 1.0 (protobuf, snappy), in batches, through the
//! shared delivery engine (retries, bounded buffer, counts). Names and labels are those of
//! the `prometheus` exporter, plus the host identity (see `README.md`).
//!
//! ```toml
//! [plugins.prometheus-remote-write]
//! url = "http://127.0.0.1:9090/api/v1/write"
//! ```

mod config;
pub mod encode;
mod output;

use std::sync::Arc;

use alumet::pipeline::OutputOptions;
use alumet::prelude::*;
use alumet_delivery::Engine;

pub use config::Config;
pub use output::{Batch, RemoteWrite, RemoteWriteOutput};

/// The `prometheus-remote-write` plugin: one output, `prometheus-remote-write/remote-write`.
pub struct RemoteWritePlugin {
    config: Config,
    engine: Arc<Engine<Batch>>,
}

/// The counts of the plugin's output, usable after the pipeline has taken it.
pub type StatsHandle = alumet_delivery::StatsHandle<Batch>;

impl RemoteWritePlugin {
    /// The counts of the plugin's output (for tests and benchmarks).
    pub fn stats_handle(&self) -> StatsHandle {
        alumet_delivery::StatsHandle(Arc::clone(&self.engine))
    }
}

impl Plugin for RemoteWritePlugin {
    type Config = Config;

    fn name() -> &'static str {
        "prometheus-remote-write"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let engine = Arc::new(Engine::new(
            config.max_buffered_points,
            "prometheus-remote-write",
        ));
        Ok(RemoteWritePlugin { config, engine })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        self.engine.set_name(alumet.plugin_name());
        let output = output::start(
            &self.config,
            alumet.host_identity(),
            Arc::clone(&self.engine),
        )?;
        // Its own thread: `write` converts and queues; the engine's thread sends and
        // reports what became of each point.
        let options = OutputOptions::default().reports_delivery();
        alumet.add_output_with("remote-write", output, options)?;
        Ok(())
    }

    /// Runs after the outputs finished, or after the core's shutdown deadline: gives up on
    /// what is still buffered (counted as lost).
    fn stop(&mut self) -> anyhow::Result<()> {
        self.engine.abort();
        Ok(())
    }
}
