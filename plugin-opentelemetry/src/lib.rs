//! OpenTelemetry: the plugin `opentelemetry` sends every point it receives to an OTLP/HTTP
//! receiver (an OpenTelemetry Collector, or any backend that takes OTLP) as metrics data
//! points, protobuf (or JSON), gzip by default, through the shared delivery engine. Energy
//! is a monotonic cumulative `Sum`, everything else a `Gauge` (see `README.md`).
//!
//! ```toml
//! [plugins.opentelemetry]
//! endpoint = "http://127.0.0.1:4318"
//! ```

mod config;
pub mod encode;
mod output;

use std::sync::Arc;

use alumet::pipeline::OutputOptions;
use alumet::prelude::*;
use alumet_delivery::Engine;

pub use config::{Compression, Config, Encoding};
pub use output::{Batch, Otlp, OtlpOutput};

/// The `opentelemetry` plugin: one output, `opentelemetry/otlp`.
pub struct OpenTelemetryPlugin {
    config: Config,
    engine: Arc<Engine<Batch>>,
}

/// The counts of the plugin's output, usable after the pipeline has taken it.
pub type StatsHandle = alumet_delivery::StatsHandle<Batch>;

impl OpenTelemetryPlugin {
    /// The counts of the plugin's output (for tests and benchmarks).
    pub fn stats_handle(&self) -> StatsHandle {
        alumet_delivery::StatsHandle(Arc::clone(&self.engine))
    }
}

impl Plugin for OpenTelemetryPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "opentelemetry"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let engine = Arc::new(Engine::new(config.max_buffered_points, "opentelemetry"));
        Ok(OpenTelemetryPlugin { config, engine })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        self.engine.set_name(alumet.plugin_name());
        if self
            .config
            .endpoint()
            .trim_end_matches('/')
            .ends_with(":4317")
        {
            log::warn!(
                "{}: {} is the port of OTLP over gRPC (the public Alumet agent's protocol); this agent sends OTLP over HTTP: point it at the collector's OTLP/HTTP receiver (port 4318 by default)",
                alumet.plugin_name(),
                self.config.endpoint()
            );
        }
        let output = output::start(
            &self.config,
            alumet.host_identity(),
            Arc::clone(&self.engine),
        )?;
        let options = OutputOptions::default().reports_delivery();
        alumet.add_output_with("otlp", output, options)?;
        Ok(())
    }

    /// Runs after the outputs finished, or after the core's shutdown deadline: gives up on
    /// what is still buffered (counted as lost).
    fn stop(&mut self) -> anyhow::Result<()> {
        self.engine.abort();
        Ok(())
    }
}
