//! Reload (SIGHUP, `alumet-agent control reload`): the config file is read again and, if
//! it is valid, the difference is applied to the running pipeline without losing a point.
//!
//! - a plugin instance whose table is gone (or disabled) is removed: its sources flushed,
//!   its outputs drained ([`RunningPipeline::remove_plugin`]);
//! - a new one is started (outputs first, so that the new sources' first points reach them);
//! - one whose table changed is replaced ([`RunningPipeline::replace_plugin`]): the new
//!   instance starts beside the old, takes its place in one step, and an output's new
//!   instance writes once the old one has delivered its queue (a CSV file is appended to);
//!   when only `poll_interval` changed, its sources are re-timed in place instead;
//! - what only a restart can change (general keys, an output's `inputs`) is logged and
//!   left as it is.
//!
//! An invalid file changes nothing: the error is logged as at start, and the agent goes
//! on with the config it runs.

use std::collections::HashMap;
use std::time::Duration;

use alumet::pipeline::{ElementKind, PluginChangeError, RunningPipeline};
use alumet::plugin::AnyPlugin;

use crate::config::{GeneralConfig, InstanceConfig, Loaded};

/// Creates a plugin instance from its config; `None` when it cannot (see [`apply`]).
pub type Instantiate = dyn Fn(&InstanceConfig) -> Option<Box<dyn AnyPlugin>>;

/// What the main thread of `run` waits for.
pub enum MainEvent {
    /// Read the config again and apply it.
    Reload(Request),
    /// The shutdown was requested (a signal, the control socket, a plugin).
    Shutdown,
}

/// A request to reload, and where to answer (the control socket's connection).
pub struct Request {
    /// Who asked: "SIGHUP" or "the control socket".
    pub origin: &'static str,
    /// Where the outcome goes, if someone waits for it.
    pub reply: Option<std::sync::mpsc::Sender<Result<String, String>>>,
}

/// The config the pipeline runs.
pub struct Current {
    /// The general keys.
    pub general: GeneralConfig,
    /// Each running plugin instance's config.
    pub instances: Vec<InstanceConfig>,
}

/// What a reload did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Instances started.
    pub added: Vec<String>,
    /// Instances removed.
    pub removed: Vec<String>,
    /// Instances replaced by one with their new config.
    pub replaced: Vec<String>,
    /// Instances whose sources got a new poll interval.
    pub retimed: Vec<String>,
    /// Instances left out because their hardware is absent.
    pub unavailable: Vec<String>,
    /// What could not be applied, and why (the previous config of it runs on).
    pub failed: Vec<String>,
    /// What takes effect at the next restart only.
    pub restart_needed: Vec<String>,
}

impl Outcome {
    /// One line: what changed.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (what, names) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("replaced", &self.replaced),
            ("re-timed", &self.retimed),
            ("unavailable", &self.unavailable),
        ] {
            if !names.is_empty() {
                parts.push(format!("{what}: {}", names.join(", ")));
            }
        }
        if parts.is_empty() {
            parts.push("no plugin changed".to_owned());
        }
        if !self.failed.is_empty() {
            parts.push(format!("not applied: {}", self.failed.join("; ")));
        }
        if !self.restart_needed.is_empty() {
            parts.push(format!(
                "at the next restart only: {}",
                self.restart_needed.join("; ")
            ));
        }
        parts.join("; ")
    }
}

/// Applies `new` to the running pipeline; `current` becomes what runs afterwards.
/// `instantiate` creates a plugin again from a config (the fallback of a replacement that
/// could not start beside the old instance).
pub fn apply(
    pipeline: &mut RunningPipeline,
    current: &mut Current,
    new: Loaded,
    instantiate: &Instantiate,
) -> Outcome {
    let mut outcome = Outcome::default();
    general_changes(&current.general, &new.general, &mut outcome);
    let mut incoming: Vec<(InstanceConfig, Box<dyn AnyPlugin>)> =
        new.instances.into_iter().zip(new.plugins).collect();
    let old: HashMap<String, InstanceConfig> = current
        .instances
        .iter()
        .map(|i| (i.name.clone(), i.clone()))
        .collect();
    let mut running: HashMap<String, InstanceConfig> = old.clone();

    // Removed, in start order: sources first, so that their last points reach outputs
    // that are removed too.
    for before in &current.instances {
        if incoming.iter().any(|(c, _)| c.name == before.name) {
            continue;
        }
        match pipeline.remove_plugin(&before.name) {
            Ok(_) => {
                running.remove(&before.name);
                outcome.removed.push(before.name.clone());
            }
            Err(e) => outcome
                .failed
                .push(format!("removing {}: {e}", before.name)),
        }
    }

    // Changed, in start order.
    let mut added = Vec::new();
    for (config, plugin) in incoming.drain(..) {
        let Some(before) = old.get(&config.name) else {
            added.push((config, plugin));
            continue;
        };
        if *before == config {
            continue;
        }
        if before.inputs != config.inputs {
            outcome.restart_needed.push(format!(
                "the inputs of {} (an output's inputs are fixed at start)",
                config.name
            ));
            continue;
        }
        if before.origin == config.origin && retime(pipeline, before, &config) {
            outcome.retimed.push(config.name.clone());
            running.insert(config.name.clone(), config);
            continue;
        }
        match replace(pipeline, plugin, &config, instantiate, before) {
            Ok(()) => {
                outcome.replaced.push(config.name.clone());
                running.insert(config.name.clone(), config);
            }
            Err(why) => outcome.failed.push(why),
        }
    }

    // Added, outputs first (the reverse of the start order).
    let inputs_of: Vec<(String, Vec<String>)> = running
        .values()
        .filter_map(|c| Some((c.name.clone(), c.inputs.clone()?)))
        .collect();
    for (config, plugin) in added.into_iter().rev() {
        if config.inputs.is_some() {
            outcome.restart_needed.push(format!(
                "the new output {} with `inputs` (an output's inputs are fixed at start)",
                config.name
            ));
            continue;
        }
        match pipeline.add_plugin(plugin) {
            Ok(()) => {
                for (output, from) in &inputs_of {
                    if from.contains(&config.name) {
                        outcome.restart_needed.push(format!(
                            "output {output} receives the points of the new plugin {} (its inputs are fixed at start)",
                            config.name
                        ));
                    }
                }
                outcome.added.push(config.name.clone());
                running.insert(config.name.clone(), config);
            }
            Err(PluginChangeError::Unavailable { plugin, reason }) => {
                log::warn!("plugin {plugin} is unavailable and will not run: {reason}");
                outcome.unavailable.push(plugin);
            }
            Err(e) => outcome.failed.push(format!("adding {}: {e}", config.name)),
        }
    }

    // What runs now, in the pipeline's order.
    current.instances = pipeline
        .plugin_names()
        .into_iter()
        .filter_map(|name| running.remove(&name))
        .collect();
    outcome
}

/// Logs the general keys that changed: they take effect at the next restart.
fn general_changes(old: &GeneralConfig, new: &GeneralConfig, outcome: &mut Outcome) {
    let table = |g: &GeneralConfig| toml::Table::try_from(g).unwrap_or_default();
    let (old, new) = (table(old), table(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if old.get(key) != new.get(key) {
            outcome.restart_needed.push(format!("general key `{key}`"));
        }
    }
}

/// When only `poll_interval` differs: sets the new interval on the instance's sources
/// that ran at the old one. `false` when that does not apply (then it is replaced).
fn retime(pipeline: &RunningPipeline, before: &InstanceConfig, after: &InstanceConfig) -> bool {
    let interval = |c: &InstanceConfig| -> Option<Duration> {
        let text = c.table.get("poll_interval")?.as_str()?;
        humantime_serde::re::humantime::parse_duration(text).ok()
    };
    let (Some(old), Some(new)) = (interval(before), interval(after)) else {
        return false;
    };
    let others = |c: &InstanceConfig| {
        let mut t = c.table.clone();
        t.remove("poll_interval");
        t
    };
    if others(before) != others(after) || new.is_zero() {
        return false;
    }
    let control = pipeline.control();
    let sources: Vec<_> = control
        .element_stats()
        .into_iter()
        .filter(|e| e.kind == ElementKind::Source && e.name.plugin == before.name)
        .filter(|e| e.poll_interval == Some(old))
        .filter_map(|e| control.source_id(&e.name))
        .collect();
    if sources.is_empty() {
        return false;
    }
    sources
        .into_iter()
        .all(|id| control.set_interval(id, new).is_ok())
}

/// Replaces the running instance by `plugin`. When the new instance cannot start beside
/// the old one (a port both would listen on), the old one is stopped first, and restored
/// from its previous config if the new one still fails.
fn replace(
    pipeline: &mut RunningPipeline,
    plugin: Box<dyn AnyPlugin>,
    config: &InstanceConfig,
    instantiate: &Instantiate,
    before: &InstanceConfig,
) -> Result<(), String> {
    let name = &config.name;
    let beside = match pipeline.replace_plugin(plugin) {
        Ok(_) => return Ok(()),
        Err(PluginChangeError::Start { error, .. }) => format!("{error:#}"),
        Err(e) => return Err(format!("replacing {name}: {e}")),
    };
    let Some(fresh) = instantiate(config) else {
        return Err(format!("replacing {name}: {beside}"));
    };
    log::warn!(
        "plugin {name}: its new config could not start beside the running one ({beside}); stopping it and starting it again: what is measured in between does not reach its outputs"
    );
    if let Err(e) = pipeline.remove_plugin(name) {
        return Err(format!("replacing {name}: {e}"));
    }
    let Err(e) = pipeline.add_plugin(fresh) else {
        return Ok(());
    };
    let restored = instantiate(before).map(|p| pipeline.add_plugin(p));
    match restored {
        Some(Ok(())) => Err(format!(
            "replacing {name}: {e}; its previous config runs again"
        )),
        _ => Err(format!(
            "replacing {name}: {e}; its previous config could not start again either: it is stopped"
        )),
    }
}
