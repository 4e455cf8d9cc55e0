//! Which built-in plugins run, each under which name and with which table: a plugin's own
//! `[plugins.NAME]` table, and its other instances, `[plugins.INSTANCE]` tables with
//! `plugin = "NAME"`.

use super::locate::{closest, suggestion, Located};
use super::{ConfigError, DynamicSelection};
use crate::cli::CommonArgs;
use crate::plugins::{Entry, Role};

/// The agent's key that makes a table an instance of a plugin.
pub const PLUGIN_KEY: &str = "plugin";

/// The agent's key that makes an output receive the points of some plugins only.
pub const INPUTS_KEY: &str = "inputs";

/// One instance of a built-in plugin, with its table.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The plugin.
    pub entry: Entry,
    /// The instance's name: the `NAME` of its `[plugins.NAME]` table, which is the
    /// plugin's own name unless the table says `plugin = "..."`. Its elements are named
    /// `NAME/element`.
    pub name: String,
    /// Its table, without the agent's keys (`enable`, `plugin`, `inputs`).
    pub table: toml::Table,
    /// Whether it runs.
    pub enabled: bool,
    /// For an output: the plugin instances whose points it receives (`inputs = [...]`);
    /// `None`: every point.
    pub inputs: Option<Vec<String>>,
}

impl Selected {
    /// Whether this is another instance than the plugin's own (`[plugins.NAME]`) table.
    pub fn is_instance(&self) -> bool {
        self.name != self.entry.meta.name
    }
}

/// Selects the built-in plugins and their instances from the tables left once those of
/// plugin libraries are taken: every plugin, each followed by its other instances (start
/// order), whether enabled or not.
pub(super) fn select_plugins(
    mut tables: toml::Table,
    args: &CommonArgs,
    entries: &[Entry],
    dynamic: &[DynamicSelection],
    located: &Located<'_>,
) -> Result<Vec<Selected>, ConfigError> {
    let instances = take_instances(&mut tables, entries, located)?;
    let builtin = crate::plugins::names(entries);
    skip_alumet_only(&mut tables, &builtin, args, located)?;
    if let Some(name) = tables.keys().find(|n| !builtin.contains(&n.as_str())) {
        return Err(ConfigError(format!(
            "{}: unknown plugin `{name}` in [plugins.{name}]; the plugins are: {}.{} A plugin from a shared library needs `path = \".../lib{name}.so\"` in its table, or its library in a directory of `plugin_dirs`; another instance of a plugin needs `plugin = \"NAME\"` in its table.",
            located.place(&["plugins", name]),
            builtin.join(", "),
            suggestion(closest(name, builtin.iter().copied()))
        )));
    }
    let mut names: Vec<&str> = builtin.clone();
    names.extend(instances.iter().map(|(name, _, _)| name.as_str()));
    names.extend(dynamic.iter().map(|d| d.name.as_str()));
    check_plugins_flag(args, &names)?;
    let mut selected = Vec::new();
    for entry in entries {
        let name = entry.meta.name;
        let (table, present) = match tables.remove(name) {
            Some(toml::Value::Table(t)) => (t, true),
            Some(_) => {
                return Err(ConfigError(format!(
                    "{}: `plugins.{name}` must be a table",
                    located.place(&["plugins", name])
                )));
            }
            None => (default_table(entry)?, false),
        };
        selected.push(selection(
            *entry,
            name.to_owned(),
            table,
            present,
            args,
            located,
        )?);
        for (instance, _, table) in instances.iter().filter(|i| i.1 == name) {
            let table = table.clone();
            selected.push(selection(
                *entry,
                instance.clone(),
                table,
                true,
                args,
                located,
            )?);
        }
    }
    check_some_output(&selected, entries, dynamic)?;
    check_inputs(&selected, dynamic, located)?;
    Ok(selected)
}

/// The public Alumet agent's keys whose meaning cannot hold in this agent's plugin: an
/// error that says what to write instead.
fn refuse_alumet_keys(
    plugin: &str,
    name: &str,
    table: &toml::Table,
    located: &Located<'_>,
) -> Result<(), ConfigError> {
    if plugin == "attribution" && table.contains_key("formulas") {
        return Err(ConfigError(format!(
            "{}: [plugins.{name}] key `formulas`: this agent's attribution does not evaluate formulas. It splits each RAPL domain's energy (and each GPU's) among the consumers by their share of CPU time (of GPU utilization), so that the parts, the idle part and the unattributed rest add up to what was measured, and writes them as `attributed_energy`. Remove `formulas`; choose the inputs with `rapl_metric`, `domains`, `cpu_time_metric`, `gpu_energy_metric` and `consumers` (docs/user/migrating-from-alumet.md has the correspondence)",
            located.place(&["plugins", name, "formulas"])
        )));
    }
    Ok(())
}

/// The tables of the public Alumet agent's plugins that this agent lacks: left out, with
/// an INFO line, when they say `enable = false` (or `enabled`) or `--plugins` leaves them
/// out; otherwise an error naming the plugin, what this agent offers instead, and how to
/// leave the table out.
fn skip_alumet_only(
    tables: &mut toml::Table,
    builtin: &[&str],
    args: &CommonArgs,
    located: &Located<'_>,
) -> Result<(), ConfigError> {
    let names: Vec<String> = tables.keys().cloned().collect();
    let mut refused = Vec::new();
    for name in names {
        if builtin.contains(&name.as_str()) {
            continue;
        }
        let Some(instead) = crate::plugins::alumet_only(&name) else {
            continue;
        };
        let disabled = tables
            .get(&name)
            .and_then(|t| t.as_table())
            .is_some_and(|t| {
                ["enable", "enabled"]
                    .iter()
                    .any(|k| t.get(*k).and_then(toml::Value::as_bool) == Some(false))
            });
        let left_out = args
            .plugins
            .as_ref()
            .is_some_and(|list| !list.contains(&name));
        if disabled || left_out {
            log::info!(
                "[plugins.{name}]: the public Alumet agent's plugin `{name}` is not part of this agent, and this table is {}: left out ({instead})",
                if disabled { "disabled" } else { "not in --plugins" }
            );
            tables.remove(&name);
            continue;
        }
        refused.push(format!(
            "{}: [plugins.{name}]: {instead}",
            located.place(&["plugins", &name])
        ));
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(ConfigError(format!(
        "the config has tables of the public Alumet agent's plugins that this agent does not have:\n  {}\nRemove these tables, set `enable = false` in them, or name the plugins to run with --plugins (the others are then left out)",
        refused.join("\n  ")
    )))
}

/// One instance, enabled when its table is `present` unless it says `enable = false`, or
/// when `--plugins` names it.
fn selection(
    entry: Entry,
    name: String,
    mut table: toml::Table,
    present: bool,
    args: &CommonArgs,
    located: &Located<'_>,
) -> Result<Selected, ConfigError> {
    // The public Alumet agent's `enabled` means `enable` (both at once: which one?).
    if let Some(enabled) = table.remove("enabled") {
        if table.contains_key("enable") {
            return Err(ConfigError(format!(
                "{}: [plugins.{name}] has both `enable` and `enabled` (the public Alumet agent's name of it): keep one",
                located.place(&["plugins", &name, "enabled"])
            )));
        }
        table.insert("enable".into(), enabled);
    }
    let enable = match table.remove("enable") {
        None => present,
        Some(toml::Value::Boolean(b)) => present && b,
        Some(other) => {
            return Err(ConfigError(format!(
                "{}: key `plugins.{name}.enable` must be true or false, not {other}",
                located.place(&["plugins", &name, "enable"])
            )))
        }
    };
    let enabled = match &args.plugins {
        Some(list) => list.contains(&name),
        None => enable,
    };
    refuse_alumet_keys(entry.meta.name, &name, &table, located)?;
    let inputs = take_inputs(&mut table, &name, located)?;
    Ok(Selected {
        entry,
        name,
        table,
        enabled,
        inputs,
    })
}

/// The agent's key `inputs`: a list of plugin instance names.
fn take_inputs(
    table: &mut toml::Table,
    name: &str,
    located: &Located<'_>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(value) = table.remove(INPUTS_KEY) else {
        return Ok(None);
    };
    let place = || located.place(&["plugins", name, INPUTS_KEY]);
    let list = match value {
        toml::Value::Array(list) => list,
        other => {
            return Err(ConfigError(format!(
                "{}: key `plugins.{name}.inputs` must be a list of plugin names, like [\"rapl\", \"attribution\"], not {other}",
                place()
            )))
        }
    };
    let mut names = Vec::new();
    for item in list {
        match item {
            toml::Value::String(s) => names.push(s),
            other => {
                return Err(ConfigError(format!(
                    "{}: `plugins.{name}.inputs` holds {other}: write plugin names as strings",
                    place()
                )))
            }
        }
    }
    Ok(Some(names))
}

/// `inputs` is for outputs, and names plugins that run and produce points.
fn check_inputs(
    selected: &[Selected],
    dynamic: &[DynamicSelection],
    located: &Located<'_>,
) -> Result<(), ConfigError> {
    for s in selected {
        let Some(inputs) = &s.inputs else { continue };
        let place = || located.place(&["plugins", &s.name, INPUTS_KEY]);
        if s.entry.role != Role::Output {
            return Err(ConfigError(format!(
                "{}: `inputs` is for outputs, and `{}` is not one: remove the key",
                place(),
                s.name
            )));
        }
        let producers: Vec<&str> = (selected.iter())
            .filter(|p| p.entry.role != Role::Output)
            .map(|p| p.name.as_str())
            .chain(dynamic.iter().map(|d| d.name.as_str()))
            .collect();
        for input in inputs {
            match selected.iter().find(|p| p.name == *input) {
                None if dynamic.iter().any(|d| d.name == *input) => {}
                None => {
                    return Err(ConfigError(format!(
                        "{}: `inputs` names `{input}`, which is no plugin; the plugins that produce points are: {}.{}",
                        place(),
                        producers.join(", "),
                        suggestion(closest(input, producers.iter().copied()))
                    )))
                }
                Some(p) if p.entry.role == Role::Output => {
                    return Err(ConfigError(format!(
                        "{}: `inputs` names `{input}`, an output: name the plugins whose points `{}` should receive",
                        place(),
                        s.name
                    )))
                }
                Some(p) if s.enabled && !p.enabled => log::warn!(
                    "{}: `inputs` names `{input}`, which is not enabled: `{}` receives none of its points",
                    place(),
                    s.name
                ),
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Takes out of `tables` those with `plugin = "NAME"` (less that key): the instances, as
/// (instance name, plugin name, table), in the file's order. A plugin's own table that
/// says `plugin = "NAME"` with its own name stays, less that key.
fn take_instances(
    tables: &mut toml::Table,
    entries: &[Entry],
    located: &Located<'_>,
) -> Result<Vec<(String, &'static str, toml::Table)>, ConfigError> {
    let builtin = crate::plugins::names(entries);
    let mut instances = Vec::new();
    let names: Vec<String> = tables.keys().cloned().collect();
    for name in names {
        let Some(toml::Value::Table(table)) = tables.get_mut(&name) else {
            continue;
        };
        let value = match (table.remove(PLUGIN_KEY), crate::plugins::alias_of(&name)) {
            (Some(value), _) => value,
            // The public Alumet agent's name of a plugin: an instance of it.
            (None, Some(plugin)) if builtin.contains(&plugin) => {
                if tables.contains_key(plugin) {
                    return Err(ConfigError(format!(
                        "{}: [plugins.{name}] (the public Alumet agent's name of plugin `{plugin}`) and [plugins.{plugin}] both configure plugin `{plugin}`: keep one of the two tables",
                        located.place(&["plugins", &name])
                    )));
                }
                toml::Value::String(plugin.to_owned())
            }
            (None, _) => continue,
        };
        let place = || located.place(&["plugins", &name, PLUGIN_KEY]);
        let plugin = match value.as_str() {
            Some(p) => builtin.iter().copied().find(|b| *b == p).ok_or_else(|| {
                ConfigError(format!(
                    "{}: key `plugins.{name}.plugin`: unknown plugin `{p}`; the plugins are: {}.{}",
                    place(),
                    builtin.join(", "),
                    suggestion(closest(p, builtin.iter().copied()))
                ))
            })?,
            None => {
                return Err(ConfigError(format!(
                    "{}: key `plugins.{name}.plugin` must be the name of a plugin (a string), not {value}",
                    place()
                )))
            }
        };
        if plugin == name {
            continue;
        }
        check_instance_name(&name, plugin, &builtin, &place)?;
        if let Some(toml::Value::Table(table)) = tables.remove(&name) {
            instances.push((name, plugin, table));
        }
    }
    Ok(instances)
}

/// An instance's name is not another plugin's, and fits in element names and selectors.
fn check_instance_name(
    name: &str,
    plugin: &str,
    builtin: &[&str],
    place: &dyn Fn() -> String,
) -> Result<(), ConfigError> {
    if builtin.contains(&name) {
        return Err(ConfigError(format!(
            "{}: [plugins.{name}] is the table of the plugin {name}, so it cannot be an instance of {plugin}; give this instance another name, such as [plugins.{plugin}_2]",
            place()
        )));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !name.chars().all(valid) {
        return Err(ConfigError(format!(
            "{}: [plugins.\"{name}\"]: the name of an instance of {plugin} may hold only ASCII letters, digits, `_` and `-` (it names its elements, `{plugin}_2/...`)",
            place()
        )));
    }
    Ok(())
}

/// Every name of `--plugins` is a plugin's, an instance's or a library's.
fn check_plugins_flag(args: &CommonArgs, names: &[&str]) -> Result<(), ConfigError> {
    let Some(list) = &args.plugins else {
        return Ok(());
    };
    match list.iter().find(|n| !names.contains(&n.as_str())) {
        Some(name) => Err(ConfigError(format!(
            "--plugins: unknown plugin `{name}`; the plugins are: {}.{}",
            names.join(", "),
            suggestion(closest(name, names.iter().copied()))
        ))),
        None => Ok(()),
    }
}

/// Measurements must go somewhere: an output is enabled (or a library, which may bring
/// one: only its start tells).
fn check_some_output(
    selected: &[Selected],
    entries: &[Entry],
    dynamic: &[DynamicSelection],
) -> Result<(), ConfigError> {
    let some_output = selected
        .iter()
        .any(|s| s.enabled && s.entry.role == Role::Output);
    if some_output || dynamic.iter().any(|d| d.enabled) {
        return Ok(());
    }
    let outputs: Vec<&str> = entries
        .iter()
        .filter(|e| e.role == Role::Output)
        .map(|e| e.meta.name)
        .collect();
    Err(ConfigError(format!(
        "no output plugin is enabled, so measurements would go nowhere: enable one of {} (add its [plugins.NAME] table, or use --plugins / --output-file)",
        outputs.join(", ")
    )))
}

fn default_table(entry: &Entry) -> Result<toml::Table, ConfigError> {
    entry.meta.default_config().map_err(|e| {
        ConfigError(format!(
            "plugin `{}`: cannot build its default config: {e}",
            entry.meta.name
        ))
    })
}
