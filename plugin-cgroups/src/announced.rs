//! Exec and watch modes: the agent announces the one cgroup it measures
//! (`Event::ConsumerWatched` for `alumet-agent watch --cgroup PATH`), and the plugin
//! measures that cgroup alone, not what `include` selects. It adds the cgroup's source when
//! announced (a baseline reading at once: only what it uses from then on counts), and,
//! when the agent announces its end, takes a last reading and removes the source.

use std::collections::HashMap;
use std::sync::Mutex;

use alumet::prelude::*;

use crate::discovery::{source_name, Discovery};

/// The announced cgroups and their sources.
struct Announced {
    discovery: Discovery,
    sources: HashMap<String, SourceId>,
}

/// Subscribes to the agent's announcements; `discovery` opens the cgroups' files.
pub(crate) fn subscribe(alumet: &mut Registrar<'_>, discovery: Discovery) {
    let state = Mutex::new(Announced {
        discovery,
        sources: HashMap::new(),
    });
    alumet.on_event(move |event, control| {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::ConsumerWatched(ResourceConsumer::ControlGroup { path }) => {
                state.start(path, false, control)
            }
            Event::ConsumerStarted(ResourceConsumer::ControlGroup { path }) => {
                state.start(path, true, control)
            }
            Event::ConsumerEnded(ResourceConsumer::ControlGroup { path }) => {
                state.end(path, control)
            }
            _ => {}
        }
    });
}

impl Announced {
    /// Adds the source of the cgroup at `path` and reads it now: a baseline, or (with
    /// `from_zero`, a cgroup that has just been created) what it used since its creation.
    fn start(&mut self, path: &str, from_zero: bool, control: &PluginControl) {
        if self.sources.contains_key(path) {
            return;
        }
        let Some((source, _events)) = self.discovery.source(path, from_zero) else {
            log::warn!(
                "cgroups: no hierarchy gives any figure of the cgroup {path}: it is not measured"
            );
            return;
        };
        let trigger = self.discovery.trigger().clone();
        match control.add_source(&source_name(path), source, trigger) {
            Ok(id) => {
                self.sources.insert(path.to_owned(), id);
                if let Err(e) = control.trigger_now(id) {
                    log::warn!("cgroups: first reading of {path}: {e}");
                }
            }
            Err(e) => log::warn!("cgroups: cannot measure {path}: {e}"),
        }
    }

    /// A last reading of the cgroup at `path` (nothing once it is removed), then its
    /// source goes.
    fn end(&mut self, path: &str, control: &PluginControl) {
        let Some(id) = self.sources.remove(path) else {
            return;
        };
        let _ = control.poll_now(id);
        if let Err(e) = control.remove_source(id) {
            log::warn!("cgroups: removing the source of {path}: {e}");
        }
    }
}
