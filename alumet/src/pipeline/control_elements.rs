//! Transforms and outputs added while running, and a plugin instance's elements removed as
//! a unit (`dispatch_change.rs` does the read-copy-update of the dispatch set).

use std::sync::Arc;
use std::time::Instant;

use super::control::{ControlError, PipelineControl};
use super::dispatch::TransformSlot;
use super::dispatch_change::AddError;
use super::element::{Output, OutputContext, OutputOptions, Transform};
use super::output::{OutputSlot, OutputStats};
use super::selector::ElementName;
use super::stats::ElementKind;

/// What [`PipelineControl::remove_plugin`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemovedPlugin {
    /// How many sources (flushed first).
    pub sources: usize,
    /// The transforms, each after its `finish`.
    pub transforms: Vec<ElementName>,
    /// The outputs' final figures, once each drained its queue and finished (or was
    /// abandoned at the control deadline): `written + dropped + failed` is every point it
    /// was given. They stay in [`PipelineControl::output_stats`] and the shutdown report.
    pub outputs: Vec<OutputStats>,
    /// How many event handlers.
    pub subscribers: usize,
}

impl From<AddError> for ControlError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Duplicate(name) => ControlError::DuplicateName(name),
            AddError::Closed => ControlError::ShuttingDown,
        }
    }
}

impl PipelineControl {
    /// Adds a blocking output of plugin `plugin` while running: it receives every buffer
    /// dispatched from now on (a buffer a group is dispatching meanwhile may miss it), on
    /// a thread of its own. The dispatching threads never wait for the change.
    pub fn add_output(
        &self,
        plugin: &str,
        name: &str,
        output: Box<dyn Output>,
        options: OutputOptions,
    ) -> Result<(), ControlError> {
        let name = ElementName::new(plugin, name);
        let ctx = OutputContext::new(Arc::clone(&self.inner.dispatcher.ctx.metrics));
        // The shutdown waits for it through its own flag, not this channel.
        let (done, _) = std::sync::mpsc::channel();
        let filter = self.inner.dispatcher.filters.get(plugin).cloned();
        let slot = OutputSlot::new(name.clone(), &options, (output, done), ctx, filter);
        self.inner.dispatcher.add_output(Arc::clone(&slot))?;
        self.record(name, ElementKind::Output, &slot.counters);
        if self
            .inner
            .threads_started
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            slot.start_worker()?;
        }
        Ok(())
    }

    /// Adds a transform of plugin `plugin` while running: it runs after the others, on the
    /// buffers dispatched from now on.
    pub fn add_transform(
        &self,
        plugin: &str,
        name: &str,
        transform: Box<dyn Transform>,
    ) -> Result<(), ControlError> {
        let slot = TransformSlot::new(ElementName::new(plugin, name), transform);
        self.inner.dispatcher.add_transform(Arc::clone(&slot))?;
        self.record(slot.name.clone(), ElementKind::Transform, &slot.counters);
        Ok(())
    }

    /// Removes everything of plugin instance `plugin` while running, losing none of the
    /// points measured: its sources (each group flushes them first, as
    /// [`remove_plugin_sources`](Self::remove_plugin_sources)); then its transforms, each
    /// after its `finish`, whose points go on through the later transforms to the outputs;
    /// then its outputs, which drain their queues and `finish` (until the control
    /// deadline); then its event handlers. Autonomous sources are not removed. The
    /// plugin's `stop` is **not** called: the plugin value stays with the pipeline, which
    /// calls `stop` at shutdown. When a group does not answer in time
    /// ([`ControlError::Pending`]), nothing else is removed: call it again. Once the
    /// shutdown has begun, the transforms and outputs stay ([`ControlError::ShuttingDown`]):
    /// the shutdown finishes them.
    pub fn remove_plugin(&self, plugin: &str) -> Result<RemovedPlugin, ControlError> {
        let sources = self.remove_plugin_sources(plugin)?;
        let deadline = super::slot::after(Instant::now(), self.inner.timeout);
        let removed = self.inner.dispatcher.remove_plugin(plugin, deadline)?;
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(name, kind, _)| *kind == ElementKind::Source || name.plugin != plugin);
        Ok(RemovedPlugin {
            sources,
            transforms: removed.transforms,
            outputs: removed.outputs,
            subscribers: self.remove_plugin_subscribers(plugin),
        })
    }

    pub(super) fn record(
        &self,
        name: ElementName,
        kind: ElementKind,
        counters: &Arc<super::stats::Counters>,
    ) {
        let mut stats = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.push((name, kind, Arc::clone(counters)));
    }
}
