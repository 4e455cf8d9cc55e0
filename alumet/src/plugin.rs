//! The plugin API: a [`Plugin`] has a typed config, starts by registering its elements
//! through a [`Registrar`], and may say that its hardware is [`Unavailable`].

pub mod host_identity;
pub mod host_paths;
mod instance;
mod registrar;
mod run_mode;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::pipeline::PluginControl;
pub use host_identity::HostIdentity;
pub use host_paths::HostPaths;
pub use registrar::{probe_start, Registrar, RegistrationError};
pub(crate) use registrar::{AutonomousStart, Elements, TaskStart};
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

    /// Called once every plugin has started, with the plugin's control handle: it reaches
    /// the plugin's own sources only, and reads every element's statistics.
    fn post_start(&mut self, _control: &PluginControl) -> anyhow::Result<()> {
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
    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()>;
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
    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()> {
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
