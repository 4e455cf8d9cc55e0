//! Plugins loaded from shared libraries: a `[plugins.NAME]` table with `path`, or a
//! `libNAME.so` found in one of the `plugin_dirs`. Their table, less `path` and `enable`,
//! goes to the plugin's `init` as TOML text.

use std::path::PathBuf;

use alumet::plugin::AnyPlugin;
use alumet_dynamic::host::PluginLibrary;

use super::locate::Located;
use super::ConfigError;
use crate::cli::CommonArgs;

/// A plugin to load from a shared library, with its table.
#[derive(Debug, Clone)]
pub struct DynamicSelection {
    /// The `NAME` of `[plugins.NAME]`: the plugin's name in the agent.
    pub name: String,
    /// The library.
    pub path: PathBuf,
    /// Its table, without `path` and `enable`.
    pub table: toml::Table,
    /// Whether it runs.
    pub enabled: bool,
}

/// The `libNAME.so` files of the directories, as `(NAME, path)`; the first directory that
/// holds a name wins.
fn scan(dirs: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, ConfigError> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            ConfigError(format!(
                "plugin_dirs: cannot read the directory {}: {e}; create it or remove it from plugin_dirs",
                dir.display()
            ))
        })?;
        let mut names: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                let name = file.strip_prefix("lib")?.strip_suffix(".so")?.to_owned();
                (!name.is_empty()).then(|| (name, e.path()))
            })
            .collect();
        names.sort();
        for (name, path) in names {
            if !found.iter().any(|(n, _)| *n == name) {
                found.push((name, path));
            }
        }
    }
    Ok(found)
}

/// Takes out of `tables` the plugins that come from libraries; the tables left are those
/// of built-in plugins (or unknown ones).
pub(super) fn take_dynamic(
    tables: &mut toml::Table,
    plugin_dirs: &[PathBuf],
    builtin: &[&str],
    args: &CommonArgs,
    located: &Located<'_>,
) -> Result<Vec<DynamicSelection>, ConfigError> {
    let scanned = scan(plugin_dirs)?;
    let mut selected = Vec::new();
    let names: Vec<String> = tables.keys().cloned().collect();
    for name in names {
        let Some(toml::Value::Table(table)) = tables.get(&name) else {
            continue;
        };
        // Another instance of a built-in plugin.
        if table.contains_key(super::PLUGIN_KEY) {
            if table.contains_key("path") {
                return Err(ConfigError(format!(
                    "{}: [plugins.{name}] has both `plugin` (an instance of a built-in plugin) and `path` (a plugin library): keep one",
                    located.place(&["plugins", &name, "path"])
                )));
            }
            continue;
        }
        let path = match table.get("path") {
            Some(toml::Value::String(p)) if builtin.contains(&name.as_str()) => {
                return Err(ConfigError(format!(
                    "{}: [plugins.{name}] is a built-in plugin, so it cannot be loaded from {p}; give the table of a plugin library another name",
                    located.place(&["plugins", &name, "path"])
                )));
            }
            Some(toml::Value::String(p)) => PathBuf::from(p),
            Some(other) => {
                return Err(ConfigError(format!(
                    "{}: key `plugins.{name}.path` must be the path of a plugin library (a string), not {other}",
                    located.place(&["plugins", &name, "path"])
                )));
            }
            None => match scanned.iter().find(|(n, _)| *n == name) {
                Some((_, p)) if !builtin.contains(&name.as_str()) => p.clone(),
                _ => continue,
            },
        };
        let Some(toml::Value::Table(mut table)) = tables.remove(&name) else {
            continue;
        };
        table.remove("path");
        let enable = match table.remove("enable") {
            None => true,
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => {
                return Err(ConfigError(format!(
                    "{}: key `plugins.{name}.enable` must be true or false, not {other}",
                    located.place(&["plugins", &name, "enable"])
                )))
            }
        };
        selected.push(DynamicSelection {
            enabled: args.plugins.as_ref().map_or(enable, |l| l.contains(&name)),
            name,
            path,
            table,
        });
    }
    // Libraries of plugin_dirs without a table run only when --plugins names them.
    for (name, path) in scanned {
        let taken = selected.iter().any(|s| s.name == name);
        if taken || builtin.contains(&name.as_str()) || tables.contains_key(&name) {
            continue;
        }
        selected.push(DynamicSelection {
            enabled: args.plugins.as_ref().is_some_and(|l| l.contains(&name)),
            name,
            path,
            table: toml::Table::new(),
        });
    }
    Ok(selected)
}

/// Loads the library of an enabled plugin and creates the plugin from its table.
pub(super) fn load(
    selection: DynamicSelection,
    located: &Located<'_>,
) -> Result<Box<dyn AnyPlugin>, ConfigError> {
    let name = selection.name;
    let error = |e: alumet_dynamic::host::LoadError| {
        ConfigError(format!(
            "{}: [plugins.{name}]: {e}",
            located.place(&["plugins", &name])
        ))
    };
    let library = PluginLibrary::open(&selection.path).map_err(error)?;
    let text = toml::to_string(&selection.table).map_err(|e| {
        ConfigError(format!(
            "plugin `{name}`: cannot write its config as TOML: {e}"
        ))
    })?;
    log::info!(
        "plugin {name}: loaded {} (plugin {} version {})",
        library.path().display(),
        library.name(),
        library.version()
    );
    let plugin = library.init(&name, &text).map_err(error)?;
    Ok(Box::new(plugin))
}
