//! The plugin of a push output ([`PushPlugin`]): its config checked at init, one
//! [`Engine`] whose counts stay readable after the pipeline took the output, the output
//! added with delivery reports at start, and the engine aborted at stop (after the core's
//! shutdown deadline, what is still buffered is counted as lost). Each output says what
//! differs in a [`PushKind`].

use std::sync::Arc;

use alumet::pipeline::{Output, OutputOptions};
use alumet::plugin::{HostIdentity, Plugin, Registrar};

use crate::{Batch, Engine, StatsHandle};

/// What one push output is: its names, config, batch and output.
pub trait PushKind: Send + 'static {
    /// The `[plugins.NAME]` table.
    type Config: serde::Serialize
        + serde::de::DeserializeOwned
        + Default
        + schemars::JsonSchema
        + Send
        + 'static;
    /// What the engine queues.
    type Batch: Batch;
    /// The output element.
    type Output: Output + 'static;
    /// The plugin's name.
    const NAME: &'static str;
    /// The output element's name (`NAME/OUTPUT`).
    const OUTPUT: &'static str;
    /// Checks the config (at init: opens nothing).
    fn validate(config: &Self::Config) -> anyhow::Result<()>;
    /// The engine's capacity (`max_buffered_points`).
    fn max_buffered_points(config: &Self::Config) -> usize;
    /// The output, with its sender thread started on `engine`; `plugin` is the instance's
    /// name, for its logs.
    fn start_output(
        config: &Self::Config,
        plugin: &str,
        identity: &HostIdentity,
        engine: Arc<Engine<Self::Batch>>,
    ) -> anyhow::Result<Self::Output>;
}

/// The plugin of the push output `K`.
pub struct PushPlugin<K: PushKind> {
    config: K::Config,
    engine: Arc<Engine<K::Batch>>,
}

impl<K: PushKind> PushPlugin<K> {
    /// The counts of the plugin's output (for tests and benchmarks).
    pub fn stats_handle(&self) -> StatsHandle<K::Batch> {
        StatsHandle(Arc::clone(&self.engine))
    }
}

impl<K: PushKind> Plugin for PushPlugin<K> {
    type Config = K::Config;

    fn name() -> &'static str {
        K::NAME
    }

    fn init(config: K::Config) -> anyhow::Result<Self> {
        K::validate(&config)?;
        let engine = Arc::new(Engine::new(K::max_buffered_points(&config), K::NAME));
        Ok(PushPlugin { config, engine })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        self.engine.set_name(alumet.plugin_name());
        let output = K::start_output(
            &self.config,
            alumet.plugin_name(),
            alumet.host_identity(),
            Arc::clone(&self.engine),
        )?;
        // Its own thread: `write` converts and queues; the engine's thread sends and
        // reports what became of each point.
        let options = OutputOptions::default().reports_delivery();
        alumet.add_output_with(K::OUTPUT, output, options)?;
        Ok(())
    }

    /// Runs after the outputs finished, or after the core's shutdown deadline: gives up on
    /// what is still buffered (counted as lost).
    fn stop(&mut self) -> anyhow::Result<()> {
        self.engine.abort();
        Ok(())
    }
}
