//! The config file: general keys at the top, one `[plugins.NAME]` table per plugin.
//!
//! Every problem is a [`ConfigError`] (exit code 78) found before any plugin starts, so
//! before any file or socket is opened.

mod dynamic;
mod env;
pub mod generate;
mod locate;
mod select;
mod socket_control;

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use alumet::plugin::{AnyPlugin, PluginInitError};
use serde::{Deserialize, Serialize};

use crate::cli::CommonArgs;
use crate::plugins::Entry;
pub use dynamic::DynamicSelection;
use locate::{closest, expected_fields, suggestion, Located, Override};
pub use select::{Selected, INPUTS_KEY, PLUGIN_KEY};

/// A config problem: the agent exits with code 78 (EX_CONFIG).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The general keys, at the top of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GeneralConfig {
    /// How long to wait at shutdown for the outputs to write what is still queued (at least 100ms).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub shutdown_timeout: Duration,
    /// Directories searched for plugin libraries: `libNAME.so` is loaded for a [plugins.NAME] table that has no `path` (see docs/developer/dynamic-plugins.md).
    pub plugin_dirs: Vec<PathBuf>,
    /// Where the measured host's procfs is mounted, for every plugin that reads it (`/host/proc` in a container that mounts the host's there); a plugin's own `procfs_root`, set elsewhere than `/proc`, wins.
    pub proc_root: PathBuf,
    /// Where the measured host's sysfs is mounted, for every plugin that reads it (`/host/sys` in a container); a plugin's own `sysfs_root`, set elsewhere than `/sys`, wins.
    pub sys_root: PathBuf,
    /// Where the measured host's cgroup tree is mounted (`/host/sys/fs/cgroup` in a container), for the plugins that read cgroups.
    pub cgroup_root: PathBuf,
    /// The control socket (`alumet-agent control`): a Unix socket path, created mode 0600; unset: no socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    /// A group whose members may use the control socket too: the socket is then mode 0660, of that group (the agent's user must belong to it); unset: mode 0600, the agent's user alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_socket_group: Option<String>,
    /// The [labels] table: labels that every network output (InfluxDB, OpenTelemetry, Prometheus remote write and exporter) adds to every point, e.g. `cluster = "a"`; `host` is this machine's hostname unless set here (`host = ""` leaves it out).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Default for GeneralConfig {
    fn default() -> Self {
        GeneralConfig {
            shutdown_timeout: Duration::from_secs(5),
            plugin_dirs: Vec::new(),
            proc_root: PathBuf::from(alumet::plugin::host_paths::PROC_ROOT),
            sys_root: PathBuf::from(alumet::plugin::host_paths::SYS_ROOT),
            cgroup_root: PathBuf::from(alumet::plugin::host_paths::CGROUP_ROOT),
            control_socket: None,
            control_socket_group: None,
            labels: BTreeMap::new(),
        }
    }
}

impl GeneralConfig {
    /// The labels naming this machine, for [`alumet::pipeline::PipelineBuilder::host_identity`].
    pub fn host_identity(&self) -> alumet::plugin::HostIdentity {
        alumet::plugin::HostIdentity::with_hostname(&self.labels)
    }

    /// The host root paths, for [`alumet::pipeline::PipelineBuilder::host_paths`].
    pub fn host_paths(&self) -> alumet::plugin::HostPaths {
        alumet::plugin::HostPaths {
            proc_root: self.proc_root.clone(),
            sys_root: self.sys_root.clone(),
            cgroup_root: self.cgroup_root.clone(),
        }
    }
}

/// A loaded and checked config: the plugins to run, created from their tables.
pub struct Loaded {
    /// The general keys.
    pub general: GeneralConfig,
    /// The enabled plugins, in start order.
    pub plugins: Vec<Box<dyn AnyPlugin>>,
    /// The outputs that receive the points of some plugins only, with those plugins.
    pub inputs: Vec<(String, Vec<String>)>,
    /// The config of each plugin in `plugins`, in the same order (what a reload compares).
    pub instances: Vec<InstanceConfig>,
}

/// What a plugin instance was created from: two instances with equal configs behave alike.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    /// The instance's name (`[plugins.NAME]`).
    pub name: String,
    /// The built-in plugin it is (its name), or the library it was loaded from (its path).
    pub origin: String,
    /// Its table, without the agent's keys.
    pub table: toml::Table,
    /// For an output: the plugin instances whose points it receives.
    pub inputs: Option<Vec<String>>,
}

impl Loaded {
    /// Hands the general settings, the plugins and the outputs' inputs to `builder`.
    pub fn configure(self, builder: &mut alumet::pipeline::PipelineBuilder) {
        builder.shutdown_timeout(self.general.shutdown_timeout);
        builder.host_paths(self.general.host_paths());
        builder.host_identity(self.general.host_identity());
        for plugin in self.plugins {
            builder.plugin(plugin);
        }
        for (output, inputs) in &self.inputs {
            builder.output_inputs(output, inputs);
        }
    }
}

/// Which plugins the config enables, and their tables (before creating them).
pub struct Selection {
    /// The general keys.
    pub general: GeneralConfig,
    /// Every built-in plugin and its other instances, with their tables, whether enabled
    /// or not, in start order.
    pub plugins: Vec<Selected>,
    /// The plugins loaded from shared libraries, with their tables.
    pub dynamic: Vec<DynamicSelection>,
    /// The config text (the file's, or the default one).
    text: String,
    /// The values set on the command line, applied over the text.
    overrides: Vec<Override>,
}

/// Reads the config file (or the default), applies the command-line flags and checks it.
pub fn select(args: &CommonArgs, entries: &[Entry]) -> Result<Selection, ConfigError> {
    let text = read_or_default(args, entries)?;
    let mut root: toml::Table = toml::from_str(&text)
        .map_err(|e| ConfigError(format!("{} is not valid TOML: {e}", args.config.display())))?;
    let overrides = apply_overrides(&mut root, args)?;
    let file = args.config.as_path();
    let located = Located::new(&text, file, &overrides, args.plugins.as_deref());
    env::substitute(&mut root, &|name| std::env::var(name).ok()).map_err(|e| {
        let path: Vec<&str> = e.key.split('.').collect();
        ConfigError(format!(
            "{}: key `{}`: {}",
            located.place(&path),
            e.key,
            e.message
        ))
    })?;
    let plugins = match root.remove("plugins") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(_) => {
            return Err(ConfigError(format!(
                "{}: `plugins` must be a table of [plugins.NAME] tables",
                located.place(&["plugins"])
            )))
        }
    };
    ignore_alumet_keys(&mut root);
    let mut general = parse_general(root, &located)?;
    let mut plugins = plugins;
    socket_control::take(&mut plugins, &mut general, &located)?;
    let builtin = crate::plugins::names(entries);
    let dynamic =
        dynamic::take_dynamic(&mut plugins, &general.plugin_dirs, &builtin, args, &located)?;
    let plugins = select::select_plugins(plugins, args, entries, &dynamic, &located)?;
    Ok(Selection {
        general,
        plugins,
        dynamic,
        text,
        overrides,
    })
}

/// [`select`], then creates the enabled plugins from their tables.
pub fn load(args: &CommonArgs, entries: &[Entry]) -> Result<Loaded, ConfigError> {
    let selection = select(args, entries)?;
    let located = Located::new(
        &selection.text,
        args.config.as_path(),
        &selection.overrides,
        args.plugins.as_deref(),
    );
    let mut plugins = Vec::new();
    let mut inputs = Vec::new();
    let mut instances = Vec::new();
    for selected in selection.plugins.into_iter().filter(|s| s.enabled) {
        if let Some(from) = &selected.inputs {
            inputs.push((selected.name.clone(), from.clone()));
        }
        instances.push(InstanceConfig {
            name: selected.name.clone(),
            origin: selected.entry.meta.name.to_owned(),
            table: selected.table.clone(),
            inputs: selected.inputs.clone(),
        });
        let plugin = (selected.entry.meta)
            .init_instance(&selected.name, selected.table)
            .map_err(|e| init_error(e, &located))?;
        plugins.push(plugin);
    }
    for selected in selection.dynamic.into_iter().filter(|d| d.enabled) {
        instances.push(InstanceConfig {
            name: selected.name.clone(),
            origin: selected.path.display().to_string(),
            table: selected.table.clone(),
            inputs: None,
        });
        plugins.push(dynamic::load(selected, &located)?);
    }
    Ok(Loaded {
        general: selection.general,
        plugins,
        inputs,
        instances,
    })
}

/// Creates a built-in plugin instance again from its config (a reload's fallback); `None`
/// for a plugin library, or a config that no longer initialises.
pub fn instantiate(config: &InstanceConfig, entries: &[Entry]) -> Option<Box<dyn AnyPlugin>> {
    let entry = entries.iter().find(|e| e.meta.name == config.origin)?;
    match entry.meta.init_instance(&config.name, config.table.clone()) {
        Ok(plugin) => Some(plugin),
        Err(e) => {
            log::error!("plugin {}: {e}", config.name);
            None
        }
    }
}

fn read_or_default(args: &CommonArgs, entries: &[Entry]) -> Result<String, ConfigError> {
    let path = &args.config;
    match read_config_file(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if args.no_default_config {
                return Err(ConfigError(format!(
                    "config file {} not found; create it (`alumet-agent config regen --config {}`) or drop --no-default-config",
                    path.display(),
                    path.display()
                )));
            }
            let text = generate::default_config(entries);
            match std::fs::write(path, &text) {
                Ok(()) => log::info!("{} not found: wrote the default config there", path.display()),
                Err(e) => log::warn!("{} not found, and the default config could not be written there ({e}): running with it anyway", path.display()),
            }
            Ok(text)
        }
        Err(e) => Err(ConfigError(format!(
            "cannot read config file {}: {e}",
            path.display()
        ))),
    }
}

/// The largest config file read: 4 MiB (a config with every plugin is a few KiB).
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Reads a config file: a regular file (not a FIFO, which would block, nor a device such
/// as /dev/zero, which never ends) of at most [`MAX_CONFIG_BYTES`].
fn read_config_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    // O_NONBLOCK: opening a FIFO with no writer must not wait for one.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, a socket or a device)"
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is {what}; give the path of a TOML file"),
        ));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "it is larger than 4 MiB, the most a config file may hold",
        ));
    }
    Ok(text)
}

/// Sets the --config-override and --output-file values; returns them, for messages.
fn apply_overrides(
    root: &mut toml::Table,
    args: &CommonArgs,
) -> Result<Vec<Override>, ConfigError> {
    let mut values: Vec<(String, toml::Value, String)> = Vec::new();
    for o in &args.config_override {
        let (key, value) = o.split_once('=').ok_or_else(|| {
            ConfigError(format!("--config-override {o:?}: expected KEY=VALUE, e.g. plugins.csv.output_path=\"out.csv\""))
        })?;
        let key = key.trim();
        if key.contains(['[', ']']) {
            return Err(ConfigError(format!(
                "--config-override {o:?}: `{key}` names an array element, which cannot be set alone: set the whole array, e.g. plugins.procfs.processes.groups=[{{ exe_regex = \"^python\" }}]"
            )));
        }
        let parsed: toml::Table = toml::from_str(&format!("v = {}", value.trim())).map_err(|e| {
            ConfigError(format!("--config-override {o:?}: the value is not a TOML value (quote strings: \"...\"): {e}"))
        })?;
        if let Some(extra) = parsed.keys().find(|k| *k != "v") {
            return Err(ConfigError(format!(
                "--config-override {o:?}: the value must be one TOML value, but `{extra}` follows it (one --config-override per key)"
            )));
        }
        let value = parsed
            .get("v")
            .cloned()
            .unwrap_or(toml::Value::Boolean(false));
        values.push((key.to_owned(), value, format!("--config-override {o}")));
    }
    if let Some(path) = &args.output_file {
        values.push((
            "plugins.csv.output_path".into(),
            toml::Value::String(path.display().to_string()),
            format!("--output-file {}", path.display()),
        ));
    }
    let mut overrides = Vec::new();
    for (key, value, flag) in values {
        let key: Vec<String> = key.split('.').map(str::to_owned).collect();
        set_dotted(root, &key, value, &flag)?;
        overrides.push(Override { key, flag });
    }
    Ok(overrides)
}

/// Sets `value` at the dotted key split into `key`, creating the tables on the way; errors
/// name `flag`, the command-line flag that set it.
fn set_dotted(
    root: &mut toml::Table,
    key: &[String],
    value: toml::Value,
    flag: &str,
) -> Result<(), ConfigError> {
    let (last, parents) = key
        .split_last()
        .ok_or_else(|| ConfigError("empty override key".into()))?;
    let mut table = root;
    for part in parents {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            ConfigError(format!(
                "{flag}: `{part}` in `{}` is not a table",
                key.join(".")
            ))
        })?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// The public Alumet agent's top-level keys that mean nothing for this agent's pipeline,
/// with why: accepted (its config files load unchanged), logged once, without effect.
const ALUMET_GENERAL_KEYS: [(&str, &str); 2] = [
    (
        "max_update_interval",
        "this agent's source threads apply control commands between every two polls",
    ),
    (
        "source_channel_size",
        "this agent's queues are per output (and per transform stage), drop the oldest when full and count it",
    ),
];

/// Takes the public Alumet agent's top-level keys that have no effect here out of `root`,
/// saying so.
fn ignore_alumet_keys(root: &mut toml::Table) {
    for (key, why) in ALUMET_GENERAL_KEYS {
        if root.remove(key).is_some() {
            log::info!(
                "config: `{key}` (a key of the public Alumet agent) has no effect here: {why}"
            );
        }
    }
}

/// The shortest `shutdown_timeout`: below it, the outputs could not write what is queued.
const MIN_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(100);

fn parse_general(root: toml::Table, located: &Located<'_>) -> Result<GeneralConfig, ConfigError> {
    let general: GeneralConfig = serde_path_to_error::deserialize(toml::Value::Table(root))
        .map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message();
            describe_key_error(located, &[], &key, message)
        })?;
    if general.shutdown_timeout < MIN_SHUTDOWN_TIMEOUT {
        let message = "too short: at least 100ms, so that the outputs can write what is queued at stop (the default is 5s)";
        return Err(describe_key_error(
            located,
            &[],
            "shutdown_timeout",
            message,
        ));
    }
    for name in general.labels.keys() {
        if let Some(problem) = label_name_problem(name) {
            let message = format!("{problem}: a label name is letters, digits and `_`, not starting with a digit nor with `__` (every network output must carry it as is)");
            return Err(describe_key_error(
                located,
                &[],
                &format!("labels.{name}"),
                &message,
            ));
        }
    }
    Ok(general)
}

/// Why `name` cannot be a label of every network output (Prometheus is the strictest).
fn label_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.starts_with("__") {
        return Some("names starting with `__` are reserved by Prometheus");
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Some("starts with a digit");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("invalid character");
    }
    None
}

/// "PLACE: key `k`: message. Did you mean `x`?" for a serde error at `key` under `prefix`,
/// where PLACE is where the value was written ([`Located::place`]).
fn describe_key_error(
    located: &Located<'_>,
    prefix: &[&str],
    key: &str,
    message: &str,
) -> ConfigError {
    let mut path: Vec<&str> = prefix.to_vec();
    if key != "." && !key.is_empty() {
        path.extend(key.split('.'));
    }
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next());
    let hint = unknown.map_or_else(String::new, |u| {
        suggestion(closest(u, expected_fields(message)))
    });
    let what = if path.is_empty() {
        "top-level keys".to_owned()
    } else {
        format!("key `{}`", path.join("."))
    };
    ConfigError(format!(
        "{}: {what}: {message}.{hint}",
        located.place(&path)
    ))
}

fn init_error(e: PluginInitError, located: &Located<'_>) -> ConfigError {
    match e {
        PluginInitError::Config(c) => {
            describe_key_error(located, &["plugins", &c.plugin], &c.key, &c.message)
        }
        PluginInitError::Init { plugin, error } => ConfigError(format!(
            "{}: invalid config for plugin `{plugin}`: {error:#}",
            located.place(&["plugins", &plugin])
        )),
    }
}
