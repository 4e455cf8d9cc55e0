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

use alumet::plugin::HostIdentity;
use alumet_delivery::{Engine, PushKind, PushPlugin};

pub use config::Config;
pub use output::{Batch, RemoteWrite, RemoteWriteOutput};

/// The `prometheus-remote-write` plugin: one output, `prometheus-remote-write/remote-write`.
pub type RemoteWritePlugin = PushPlugin<RemoteWriteKind>;

/// What the `prometheus-remote-write` plugin is, for [`PushPlugin`].
pub struct RemoteWriteKind;

/// The counts of the plugin's output, usable after the pipeline has taken it.
pub type StatsHandle = alumet_delivery::StatsHandle<Batch>;

impl PushKind for RemoteWriteKind {
    type Config = Config;
    type Batch = Batch;
    type Output = RemoteWriteOutput;
    const NAME: &'static str = "prometheus-remote-write";
    const OUTPUT: &'static str = "remote-write";

    fn validate(config: &Config) -> anyhow::Result<()> {
        config.validate()
    }

    fn max_buffered_points(config: &Config) -> usize {
        config.max_buffered_points
    }

    fn start_output(
        config: &Config,
        _plugin: &str,
        identity: &HostIdentity,
        engine: Arc<Engine<Batch>>,
    ) -> anyhow::Result<RemoteWriteOutput> {
        output::start(config, identity, engine)
    }
}
