//! The plugin API: a [`Plugin`] has a typed config, starts by registering its elements
//! through a [`Registrar`], and may say that its hardware is [`Unavailable`].

mod instance;
mod run_mode;

use std::fmt;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::measurement::MeasurementType;
use crate::metrics::{MetricError, MetricId, MetricRegistry, Unit};
use crate::pipeline::{
    AsyncOutput, BoxFuture, ElementName, Event, Output, OutputOptions, PipelineControl, Shutdown,
    Source, SourceSink, Transform, Trigger,
};
pub use run_mode::RunMode;

/// A plugin: a statically linked crate that registers sources, transforms and outputs.
///
/// Only [`name`](Plugin::name), [`init`](Plugin::init) and [`start`](Plugin::start) need
/// writing. The config is a serde struct with `#[serde(deny_unknown_fields)]`, read from
/// the agent's `[plugins.NAME]` table; its `Default` is the generated default config, and
/// its `///` doc lines (collected by `#[derive(schemars::JsonSchema)]`) become the comments
/// of the generated config file.
pub trait Plugin: Sized + Send + 'static {
    /// The typed config.
    type Config: Serialize + DeserializeOwned + Default + schemars::JsonSchema;

    /// The plugin's name: `snake_case`, the `NAME` of its `[plugins.NAME]` table.
    fn name() -> &'static str;

    /// Creates the plugin from its config. Check the config here, open nothing yet.
    fn init(config: Self::Config) -> anyhow::Result<Self>;

    /// Registers metrics and elements. Return [`Unavailable`] (with `?` or `.into()`) when
    /// the hardware or driver is absent: the agent then warns and runs the other plugins.
    /// Any other error stops the agent.
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()>;

    /// Called once every plugin has started, with the pipeline's control handle.
    fn post_start(&mut self, _control: &PipelineControl) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called at shutdown, after every queue is drained.
    fn stop(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The hardware, driver or interface a plugin needs is absent here: not a failure of the
/// agent. Says why, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({fix})")]
pub struct Unavailable {
    /// What is missing, for example "no RAPL interface under /sys/class/powercap".
    pub reason: String,
    /// What would make it work, for example "run on bare metal with an Intel or AMD CPU".
    pub fix: String,
}

impl Unavailable {
    /// A new unavailability.
    pub fn new(reason: impl Into<String>, fix: impl Into<String>) -> Self {
        Unavailable {
            reason: reason.into(),
            fix: fix.into(),
        }
    }

    /// The unavailability inside an error chain, if there is one.
    pub fn find(error: &anyhow::Error) -> Option<&Unavailable> {
        error.chain().find_map(|e| e.downcast_ref::<Unavailable>())
    }
}

/// A plugin behind a pointer, as the pipeline sees it. Every [`Plugin`] is one.
pub trait AnyPlugin: Send {
    /// The plugin's name: its instance's, when it runs as one of several instances.
    fn name(&self) -> &str;
    /// The name of the plugin this is an instance of (`influxdb` for the instance
    /// `influx_eu`); by default [`name`](AnyPlugin::name).
    fn plugin_name(&self) -> &str {
        self.name()
    }
    /// See [`Plugin::start`].
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()>;
    /// See [`Plugin::post_start`].
    fn post_start(&mut self, control: &PipelineControl) -> anyhow::Result<()>;
    /// See [`Plugin::stop`].
    fn stop(&mut self) -> anyhow::Result<()>;
}

impl<P: Plugin> AnyPlugin for P {
    fn name(&self) -> &str {
        P::name()
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        Plugin::start(self, alumet)
    }
    fn post_start(&mut self, control: &PipelineControl) -> anyhow::Result<()> {
        Plugin::post_start(self, control)
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        Plugin::stop(self)
    }
}

/// A config that could not be read: names the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config for plugin `{plugin}`{}: {message}", key_part(.key))]
pub struct ConfigError {
    /// The plugin.
    pub plugin: String,
    /// The dotted path of the faulty key inside the plugin's table (empty for the table itself).
    pub key: String,
    /// What is wrong (serde's words: "unknown field `x`, expected one of ...").
    pub message: String,
}

fn key_part(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(", key `{key}`")
    }
}

/// Reads a typed config from a TOML table; errors name the faulty key.
pub fn parse_config<C: DeserializeOwned>(
    plugin: &str,
    table: toml::Table,
) -> Result<C, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        ConfigError {
            plugin: plugin.to_owned(),
            key: if path == "." { String::new() } else { path },
            message: e.into_inner().message().to_owned(),
        }
    })
}

/// `table` over `defaults`: keys absent from `table` (at any depth) take their default.
fn merge_defaults(mut defaults: toml::Table, table: toml::Table) -> toml::Table {
    for (key, value) in table {
        let merged = match (defaults.remove(&key), value) {
            (Some(toml::Value::Table(d)), toml::Value::Table(t)) => {
                toml::Value::Table(merge_defaults(d, t))
            }
            (_, v) => v,
        };
        defaults.insert(key, merged);
    }
    defaults
}

/// Why a plugin could not be created from its config.
#[derive(Debug, thiserror::Error)]
pub enum PluginInitError {
    /// The config is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `init` failed.
    #[error("plugin `{plugin}` failed to initialize: {error:#}")]
    Init {
        /// The plugin.
        plugin: String,
        /// What `init` returned.
        error: anyhow::Error,
    },
}

type InitFn = fn(&str, toml::Table) -> Result<Box<dyn AnyPlugin>, PluginInitError>;

/// What the agent knows about a statically linked plugin before creating it.
#[derive(Clone, Copy)]
pub struct PluginMetadata {
    /// The plugin's name.
    pub name: &'static str,
    init: InitFn,
    default_config: fn() -> Result<toml::Table, toml::ser::Error>,
    config_schema: fn() -> serde_json::Value,
}

impl fmt::Debug for PluginMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginMetadata")
            .field("name", &self.name)
            .finish()
    }
}

impl PluginMetadata {
    /// The metadata of plugin `P`.
    pub fn of<P: Plugin>() -> Self {
        PluginMetadata {
            name: P::name(),
            init: |name, table| {
                let defaults = toml::Table::try_from(P::Config::default()).unwrap_or_default();
                let config = parse_config::<P::Config>(name, merge_defaults(defaults, table))?;
                let plugin = P::init(config).map_err(|error| PluginInitError::Init {
                    plugin: name.to_owned(),
                    error,
                })?;
                Ok(Box::new(plugin))
            },
            default_config: || toml::Table::try_from(P::Config::default()),
            config_schema: || schemars::schema_for!(P::Config).to_value(),
        }
    }

    /// Creates the plugin from its `[plugins.NAME]` table; keys it leaves out take their
    /// default values.
    pub fn init(&self, config: toml::Table) -> Result<Box<dyn AnyPlugin>, PluginInitError> {
        (self.init)(self.name, config)
    }

    /// Creates an instance of the plugin named `instance` (one of several instances of
    /// the plugin, each with its own table): its elements are named `INSTANCE/element`,
    /// and errors name `instance`. With the plugin's own name, the same as [`init`](Self::init).
    pub fn init_instance(
        &self,
        instance: &str,
        config: toml::Table,
    ) -> Result<Box<dyn AnyPlugin>, PluginInitError> {
        let plugin = (self.init)(instance, config)?;
        if instance == self.name {
            return Ok(plugin);
        }
        Ok(Box::new(instance::Instance {
            name: instance.to_owned(),
            plugin,
        }))
    }

    /// The default config, as a TOML table.
    pub fn default_config(&self) -> Result<toml::Table, toml::ser::Error> {
        (self.default_config)()
    }

    /// The JSON schema of the config: field types, and descriptions from the `///` lines.
    pub fn config_schema(&self) -> serde_json::Value {
        (self.config_schema)()
    }
}

/// Why an element could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Another element of the same kind has this name.
    #[error("a {kind} named `{name}` exists already; choose another name")]
    DuplicateName {
        /// source, transform or output.
        kind: &'static str,
        /// The full name.
        name: ElementName,
    },
    /// A poll or flush interval of zero.
    #[error("invalid trigger for source `{0}`: intervals must be longer than zero")]
    ZeroInterval(ElementName),
    /// The metric could not be registered.
    #[error(transparent)]
    Metric(#[from] MetricError),
}

type AutonomousStart =
    Box<dyn FnOnce(SourceSink, Shutdown) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

pub(crate) enum OutputKind {
    Blocking(Box<dyn Output>),
    Async(Box<dyn AsyncOutput>),
}

/// The elements registered by the plugins, before the pipeline starts.
#[derive(Default)]
pub(crate) struct Elements {
    pub(crate) sources: Vec<(ElementName, Box<dyn Source>, Trigger)>,
    pub(crate) autonomous: Vec<(ElementName, AutonomousStart)>,
    pub(crate) transforms: Vec<(ElementName, Box<dyn Transform>)>,
    pub(crate) outputs: Vec<(ElementName, OutputKind, OutputOptions)>,
    pub(crate) subscribers: Vec<(String, crate::pipeline::Subscriber)>,
}

impl Elements {
    fn source_names(&self) -> impl Iterator<Item = &ElementName> {
        self.sources
            .iter()
            .map(|s| &s.0)
            .chain(self.autonomous.iter().map(|s| &s.0))
    }

    pub(crate) fn append(&mut self, other: Elements) {
        self.sources.extend(other.sources);
        self.autonomous.extend(other.autonomous);
        self.transforms.extend(other.transforms);
        self.outputs.extend(other.outputs);
        self.subscribers.extend(other.subscribers);
    }
}

/// Through it, a starting plugin creates metrics and adds its elements.
pub struct Registrar<'a> {
    plugin: &'a str,
    run_mode: RunMode,
    metrics: &'a mut MetricRegistry,
    committed: &'a Elements,
    staged: Elements,
}

impl<'a> Registrar<'a> {
    pub(crate) fn new(
        plugin: &'a str,
        metrics: &'a mut MetricRegistry,
        committed: &'a Elements,
    ) -> Self {
        Registrar {
            plugin,
            run_mode: RunMode::Run,
            metrics,
            committed,
            staged: Elements::default(),
        }
    }

    pub(crate) fn with_run_mode(mut self, run_mode: RunMode) -> Self {
        self.run_mode = run_mode;
        self
    }

    pub(crate) fn into_staged(self) -> Elements {
        self.staged
    }

    /// The name of the plugin being started: the name of its instance, when the agent
    /// runs several (`influx_eu` for `[plugins.influx_eu]` with `plugin = "influxdb"`).
    pub fn plugin_name(&self) -> &str {
        self.plugin
    }

    /// What the agent runs for: the machine until stopped, or one command or process
    /// (see [`RunMode`]).
    pub fn run_mode(&self) -> RunMode {
        self.run_mode
    }

    /// The metrics registered so far (by this plugin and the ones started before it).
    pub fn metrics(&self) -> &MetricRegistry {
        self.metrics
    }

    /// Creates a metric, or returns the id of the same metric created by another plugin.
    pub fn create_metric<T: MeasurementType>(
        &mut self,
        name: &str,
        unit: Unit,
        description: &str,
    ) -> Result<MetricId<T>, MetricError> {
        self.metrics.register(name, unit, description)
    }

    fn name(&self, kind: &'static str, name: &str) -> Result<ElementName, RegistrationError> {
        let full = ElementName::new(self.plugin, name);
        let taken = match kind {
            "source" => {
                self.committed.source_names().any(|n| *n == full)
                    || self.staged.source_names().any(|n| *n == full)
            }
            "transform" => [self.committed, &self.staged]
                .iter()
                .any(|e| e.transforms.iter().any(|t| t.0 == full)),
            _ => [self.committed, &self.staged]
                .iter()
                .any(|e| e.outputs.iter().any(|t| t.0 == full)),
        };
        if taken {
            Err(RegistrationError::DuplicateName { kind, name: full })
        } else {
            Ok(full)
        }
    }

    /// Adds a source polled by the pipeline according to `trigger`.
    pub fn add_source(
        &mut self,
        name: &str,
        source: impl Source + 'static,
        trigger: Trigger,
    ) -> Result<(), RegistrationError> {
        let full = self.name("source", name)?;
        let zero = |d: Option<std::time::Duration>| d.is_some_and(|d| d.is_zero());
        if zero(trigger.poll_interval) || zero(trigger.flush_interval) {
            return Err(RegistrationError::ZeroInterval(full));
        }
        self.staged.sources.push((full, Box::new(source), trigger));
        Ok(())
    }

    /// Adds a source that produces on its own, as an async task: `start` receives where to
    /// send its buffers and a [`Shutdown`] signal; it must return once shutdown begins.
    pub fn add_autonomous_source<F, Fut>(
        &mut self,
        name: &str,
        start: F,
    ) -> Result<(), RegistrationError>
    where
        F: FnOnce(SourceSink, Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let full = self.name("source", name)?;
        self.staged.autonomous.push((
            full,
            Box::new(move |sink, shutdown| Box::pin(start(sink, shutdown))),
        ));
        Ok(())
    }

    /// Adds a transform; transforms run in registration order.
    pub fn add_transform(
        &mut self,
        name: &str,
        transform: impl Transform + 'static,
    ) -> Result<(), RegistrationError> {
        let full = self.name("transform", name)?;
        self.staged.transforms.push((full, Box::new(transform)));
        Ok(())
    }

    /// Adds a blocking output, run on its own thread, with the default queue.
    pub fn add_output(
        &mut self,
        name: &str,
        output: impl Output + 'static,
    ) -> Result<(), RegistrationError> {
        self.add_output_with(name, output, OutputOptions::default())
    }

    /// Adds a blocking output with options.
    pub fn add_output_with(
        &mut self,
        name: &str,
        output: impl Output + 'static,
        options: OutputOptions,
    ) -> Result<(), RegistrationError> {
        let full = self.name("output", name)?;
        self.staged
            .outputs
            .push((full, OutputKind::Blocking(Box::new(output)), options));
        Ok(())
    }

    /// Adds an async output, run as a task on the pipeline's runtime, with the default queue.
    pub fn add_async_output(
        &mut self,
        name: &str,
        output: impl AsyncOutput + 'static,
    ) -> Result<(), RegistrationError> {
        self.add_async_output_with(name, output, OutputOptions::default())
    }

    /// Adds an async output with options.
    pub fn add_async_output_with(
        &mut self,
        name: &str,
        output: impl AsyncOutput + 'static,
        options: OutputOptions,
    ) -> Result<(), RegistrationError> {
        let full = self.name("output", name)?;
        self.staged
            .outputs
            .push((full, OutputKind::Async(Box::new(output)), options));
        Ok(())
    }

    /// Subscribes to [`Event`]s; the handler runs in the thread that emits the event and
    /// may use the control handle (to add a source for a new consumer, say).
    pub fn on_event(&mut self, handler: impl Fn(&Event, &PipelineControl) + Send + Sync + 'static) {
        self.staged
            .subscribers
            .push((self.plugin.to_owned(), Box::new(handler)));
    }
}

/// Runs a plugin's `start` against a scratch registrar and drops what it registered: tells
/// whether the plugin can run here (an [`Unavailable`] error says why not) without
/// starting a pipeline. Used to generate a config that disables absent hardware.
pub fn probe_start(plugin: &mut dyn AnyPlugin) -> anyhow::Result<()> {
    let name = plugin.name().to_owned();
    let mut metrics = MetricRegistry::new();
    let committed = Elements::default();
    let mut registrar = Registrar::new(&name, &mut metrics, &committed);
    plugin.start(&mut registrar)
}
