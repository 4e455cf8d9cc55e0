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

use alumet::plugin::HostIdentity;
use alumet_delivery::{Engine, PushKind, PushPlugin};

pub use config::{Compression, Config, Encoding};
pub use output::{Batch, Otlp, OtlpOutput};

/// The `opentelemetry` plugin: one output, `opentelemetry/otlp`.
pub type OpenTelemetryPlugin = PushPlugin<OtlpKind>;

/// What the `opentelemetry` plugin is, for [`PushPlugin`].
pub struct OtlpKind;

/// The counts of the plugin's output, usable after the pipeline has taken it.
pub type StatsHandle = alumet_delivery::StatsHandle<Batch>;

impl PushKind for OtlpKind {
    type Config = Config;
    type Batch = Batch;
    type Output = OtlpOutput;
    const NAME: &'static str = "opentelemetry";
    const OUTPUT: &'static str = "otlp";

    fn validate(config: &Config) -> anyhow::Result<()> {
        config.validate()
    }

    fn max_buffered_points(config: &Config) -> usize {
        config.max_buffered_points
    }

    fn start_output(
        config: &Config,
        plugin: &str,
        identity: &HostIdentity,
        engine: Arc<Engine<Batch>>,
    ) -> anyhow::Result<OtlpOutput> {
        if config.endpoint().trim_end_matches('/').ends_with(":4317") {
            log::warn!(
                "{plugin}: {} is the port of OTLP over gRPC (the public Alumet agent's protocol); this agent sends OTLP over HTTP: point it at the collector's OTLP/HTTP receiver (port 4318 by default)",
                config.endpoint()
            );
        }
        output::start(config, identity, engine)
    }
}
