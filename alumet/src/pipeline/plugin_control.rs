//! A plugin's control handle: the calls of [`PipelineControl`] on sources, confined to the
//! plugin's own, and the pipeline's statistics to read.

use std::sync::Arc;
use std::time::Duration;

use super::completion::Completion;
use super::control::{ControlError, PipelineControl};
use super::element::{Event, Output, OutputOptions, Source, Transform, Trigger};
use super::output::OutputStats;
use super::registry::{SourceId, Target};
use super::selector::ElementName;
use super::stats::ElementStats;
use super::subscribers::{Subscriber, SubscriberId};

/// What a plugin gets to control the pipeline (in [`Plugin::post_start`](crate::plugin::Plugin::post_start)
/// and in its event handlers): it adds, removes, pauses, resumes, re-times and triggers
/// its **own** sources, and reads every element's statistics. Shutdown, events for the
/// other plugins, and other plugins' elements are the agent's
/// ([`RunningPipeline::control`](super::RunningPipeline::control)).
///
/// A plugin's own sources are those named after it (after its instance, when the agent
/// runs several instances of it): what its registrar and this handle add. A call by the
/// id of another plugin's source, or with a selector whose plugin part cannot match this
/// plugin (`rapl/*` from `procfs`), is refused with [`ControlError::NotOwned`]; a selector
/// whose plugin part matches it (`*`, `*/kernel`, `proc*`) is confined to this plugin's
/// sources. Cloneable and cheap.
#[derive(Clone)]
pub struct PluginControl {
    plugin: Arc<str>,
    pipeline: PipelineControl,
}

impl PluginControl {
    pub(crate) fn new(plugin: Arc<str>, pipeline: PipelineControl) -> Self {
        PluginControl { plugin, pipeline }
    }

    /// The plugin's name (its instance's, when the agent runs several).
    pub fn plugin_name(&self) -> &str {
        &self.plugin
    }

    fn not_owned(&self, what: String) -> ControlError {
        ControlError::NotOwned {
            what,
            plugin: self.plugin.to_string(),
        }
    }

    /// `target`, confined to this plugin's sources.
    fn own(&self, target: impl Into<Target>) -> Result<Target, ControlError> {
        match target.into() {
            Target::Id(id) => {
                let owner = self.pipeline.inner.registry().get(id).map(|e| {
                    // Ids are never reused: an id checked here never reaches another
                    // plugin's source later.
                    e.name.plugin == *self.plugin
                });
                match owner {
                    None => Err(ControlError::NoSuchSource(id)),
                    Some(false) => Err(self.not_owned(id.to_string())),
                    Some(true) => Ok(Target::Id(id)),
                }
            }
            Target::Matching(selector) => match selector.within(&self.plugin) {
                Some(own) => Ok(Target::Matching(own)),
                None => Err(self.not_owned(format!("selector `{selector}`"))),
            },
        }
    }

    /// [`PipelineControl::pause`], on this plugin's sources only.
    pub fn pause(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        self.pipeline.pause(self.own(target)?)
    }

    /// [`PipelineControl::resume`], on this plugin's sources only.
    pub fn resume(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        self.pipeline.resume(self.own(target)?)
    }

    /// [`PipelineControl::set_interval`], on this plugin's sources only.
    pub fn set_interval(
        &self,
        target: impl Into<Target>,
        interval: Duration,
    ) -> Result<usize, ControlError> {
        self.pipeline.set_interval(self.own(target)?, interval)
    }

    /// [`PipelineControl::trigger_now`], on this plugin's sources only: an error when the
    /// target is not this plugin's (or, by id, no longer exists).
    pub fn trigger_now(&self, target: impl Into<Target>) -> Result<Completion, ControlError> {
        Ok(self.pipeline.trigger_now(self.own(target)?))
    }

    /// [`PipelineControl::poll_now`], on this plugin's sources only.
    pub fn poll_now(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        self.pipeline.poll_now(self.own(target)?)
    }

    /// [`PipelineControl::remove_source`], on this plugin's sources only: flushes what
    /// they buffered, then removes them.
    pub fn remove_source(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        self.pipeline.remove_source(self.own(target)?)
    }

    /// Adds a source of this plugin while running, named `PLUGIN/name`; returns its id
    /// (see [`PipelineControl::add_source`]).
    pub fn add_source(
        &self,
        name: &str,
        source: impl Source + 'static,
        trigger: Trigger,
    ) -> Result<SourceId, ControlError> {
        self.pipeline
            .add_source(&self.plugin, name, Box::new(source), trigger)
    }

    /// Adds a blocking output of this plugin while running, named `PLUGIN/name` (see
    /// [`PipelineControl::add_output`]).
    pub fn add_output(
        &self,
        name: &str,
        output: impl Output + 'static,
        options: OutputOptions,
    ) -> Result<(), ControlError> {
        self.pipeline
            .add_output(&self.plugin, name, Box::new(output), options)
    }

    /// Adds a transform of this plugin while running, after the others, named
    /// `PLUGIN/name` (see [`PipelineControl::add_transform`]).
    pub fn add_transform(
        &self,
        name: &str,
        transform: impl Transform + 'static,
    ) -> Result<(), ControlError> {
        self.pipeline
            .add_transform(&self.plugin, name, Box::new(transform))
    }

    /// This plugin's sources, with whether each is active, in the order of their ids'
    /// places.
    pub fn sources(&self) -> Vec<(ElementName, bool)> {
        let registry = self.pipeline.inner.registry();
        let own = registry
            .iter()
            .filter(|(_, e)| e.name.plugin == *self.plugin);
        own.map(|(_, e)| (e.name.clone(), e.counters.active()))
            .collect()
    }

    /// The id of this plugin's source named `name` (without the plugin part), if it exists.
    pub fn source_id(&self, name: &str) -> Option<SourceId> {
        let full = ElementName::new(self.plugin.to_string(), name);
        self.pipeline.source_id(&full)
    }

    /// Subscribes to [`Event`]s while running, as [`Registrar::on_event`](crate::plugin::Registrar::on_event)
    /// does at start: the handler is called from the next emit on.
    pub fn on_event(
        &self,
        handler: impl Fn(&Event, &PluginControl) + Send + Sync + 'static,
    ) -> SubscriberId {
        let id = SubscriberId::next();
        self.pipeline.inner.subscribers.add(Subscriber {
            id,
            plugin: Arc::clone(&self.plugin),
            handler: Box::new(handler),
        });
        id
    }

    /// Removes one of this plugin's event handlers: emits that start afterwards do not
    /// call it. `Ok(false)` when it was removed already; [`ControlError::NotOwned`] when it
    /// is another plugin's.
    pub fn remove_subscriber(&self, id: SubscriberId) -> Result<bool, ControlError> {
        let subscribers = &self.pipeline.inner.subscribers;
        match subscribers.owner(id) {
            None => Ok(false),
            Some(owner) if owner != self.plugin => Err(self.not_owned(id.to_string())),
            Some(_) => Ok(subscribers.remove(|s| s.id == id) > 0),
        }
    }

    /// Every source's, transform's and output's statistics, every plugin's included (see
    /// [`PipelineControl::element_stats`]): reading is not confined.
    pub fn element_stats(&self) -> Vec<ElementStats> {
        self.pipeline.element_stats()
    }

    /// Every output's figures (see [`PipelineControl::output_stats`]).
    pub fn output_stats(&self) -> Vec<OutputStats> {
        self.pipeline.output_stats()
    }
}
