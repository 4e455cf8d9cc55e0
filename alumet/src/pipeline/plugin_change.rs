//! Plugin instances started, removed and replaced while the pipeline runs (what a reload of
//! the agent's config does), losing none of the points measured.

use std::sync::Arc;
use std::time::Instant;

use crate::plugin::{AnyPlugin, Elements, Registrar, Unavailable};

use super::builder::{drop_plugins, out_ctx, stop_plugins, RunningPipeline};
use super::control::ControlError;
use super::control_elements::RemovedPlugin;
use super::dispatch::TransformSlot;
use super::output::OutputSlot;
use super::runtime::AsyncRuntime;
use super::stats::ElementKind;
use super::tasks::{spawn_tasks, wait_for_tasks};

/// Why a plugin instance could not be added, removed or replaced while running.
#[derive(Debug, thiserror::Error)]
pub enum PluginChangeError {
    /// A plugin instance of this name runs already.
    #[error("a plugin instance named `{0}` is running already")]
    Running(String),
    /// No plugin instance of this name runs.
    #[error("no plugin instance named `{0}` is running")]
    NotRunning(String),
    /// Its `start` failed: nothing of it was added (the instance it was to replace runs on).
    #[error("plugin `{plugin}` failed to start: {error:#}")]
    Start {
        /// The instance.
        plugin: String,
        /// Its error.
        error: anyhow::Error,
    },
    /// Its hardware is absent: nothing of it was added.
    #[error("plugin `{plugin}` is unavailable: {reason}")]
    Unavailable {
        /// The instance.
        plugin: String,
        /// Why.
        reason: Unavailable,
    },
    /// A control call failed (the shutdown has begun, a group did not answer in time).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A thread could not be started.
    #[error("could not start a thread: {0}")]
    Io(#[from] std::io::Error),
}

impl RunningPipeline {
    /// Starts plugin instance `plugin` while running: its metrics join the registry, its
    /// sources their groups (each polled at once, then on its interval: a counter takes
    /// its first reading now), its transforms run after the others, its outputs receive
    /// the buffers dispatched from now on, its tasks start. Its `stop` is called when it
    /// is removed or at shutdown.
    pub fn add_plugin(&mut self, mut plugin: Box<dyn AnyPlugin>) -> Result<(), PluginChangeError> {
        let name = plugin.name().to_owned();
        if self.position(&name).is_some() {
            return Err(PluginChangeError::Running(name));
        }
        let mut staged = self.start_staged(plugin.as_mut())?;
        let waiters = std::mem::take(&mut staged.control_waiters);
        self.install(&name, staged, false)?;
        self.plugins.push(plugin);
        self.post_start(&name)?;
        super::builder::hand_controls(&self.control, waiters);
        Ok(())
    }

    /// Removes plugin instance `name` while running ([`PipelineControl::remove_plugin`](super::PipelineControl::remove_plugin):
    /// its sources flushed, its transforms finished, its outputs drained), stops its tasks,
    /// then calls its `stop` and drops it.
    pub fn remove_plugin(&mut self, name: &str) -> Result<RemovedPlugin, PluginChangeError> {
        let i = self
            .position(name)
            .ok_or_else(|| PluginChangeError::NotRunning(name.to_owned()))?;
        let removed = self.control.remove_plugin(name)?;
        self.stop_tasks(name);
        let plugin = self.plugins.remove(i);
        let mut plugins = vec![plugin];
        stop_plugins(&mut plugins);
        drop_plugins(plugins);
        Ok(removed)
    }

    /// Replaces the running instance of the same name by `plugin` (its new config), losing
    /// no point: the new instance starts first (if it fails, the old one runs on); then
    /// the old sources are flushed and removed; the new transforms take the old ones' place
    /// in one step with the outputs, so that every buffer reaches an old output or a new
    /// one; the old outputs drain their queues and finish before the new ones write (a file
    /// they share is closed by then); the new sources are polled at once. Then the old
    /// instance's tasks stop, and its `stop` is called.
    pub fn replace_plugin(
        &mut self,
        mut plugin: Box<dyn AnyPlugin>,
    ) -> Result<RemovedPlugin, PluginChangeError> {
        let name = plugin.name().to_owned();
        let i = self
            .position(&name)
            .ok_or_else(|| PluginChangeError::NotRunning(name.clone()))?;
        let mut staged = self.start_staged(plugin.as_mut())?;
        let waiters = std::mem::take(&mut staged.control_waiters);
        let removed = self.install(&name, staged, true)?;
        let old = std::mem::replace(&mut self.plugins[i], plugin);
        let mut old = vec![old];
        stop_plugins(&mut old);
        drop_plugins(old);
        self.post_start(&name)?;
        super::builder::hand_controls(&self.control, waiters);
        Ok(removed)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.plugins.iter().position(|p| p.name() == name)
    }

    fn post_start(&mut self, name: &str) -> Result<(), PluginChangeError> {
        let control = self.control.plugin_control(name);
        let Some(i) = self.position(name) else {
            return Ok(());
        };
        self.plugins[i]
            .post_start(&control)
            .map_err(|error| PluginChangeError::Start {
                plugin: name.to_owned(),
                error,
            })
    }

    /// Runs the plugin's `start` against the running pipeline's metrics and source ids.
    fn start_staged(&self, plugin: &mut dyn AnyPlugin) -> Result<Elements, PluginChangeError> {
        let name = plugin.name().to_owned();
        let committed = Elements::default();
        let inner = &self.control.inner;
        let reserve = || inner.registry().reserve();
        let mut registrar = Registrar::new(&name, &self.metrics, &committed)
            .with_run_mode(self.run_mode)
            .with_host_paths(self.host_paths.clone())
            .with_host_identity(self.host_identity.clone())
            .with_consumers(self.consumers.clone())
            .with_ids(&reserve);
        let result = plugin.start(&mut registrar);
        let staged = registrar.into_staged();
        match result {
            Ok(()) => Ok(staged),
            Err(error) => Err(match Unavailable::find(&error) {
                Some(u) => PluginChangeError::Unavailable {
                    plugin: name,
                    reason: u.clone(),
                },
                None => PluginChangeError::Start {
                    plugin: name,
                    error,
                },
            }),
        }
    }

    /// Puts a started plugin's elements into the running pipeline, in place of those of
    /// the instance of the same name when `replacing`.
    fn install(
        &mut self,
        plugin: &str,
        staged: Elements,
        replacing: bool,
    ) -> Result<RemovedPlugin, PluginChangeError> {
        if !staged.output_filters.is_empty() {
            return Err(PluginChangeError::Start {
                plugin: plugin.to_owned(),
                error: anyhow::anyhow!(
                    "its filters before some outputs are fixed at start: restart the agent to change them"
                ),
            });
        }
        let control = self.control.clone();
        let inner = &control.inner;
        let mut removed = RemovedPlugin::default();
        if replacing {
            removed.sources = control.remove_plugin_sources(plugin)?;
        }
        let dispatcher = &inner.dispatcher;
        let transforms: Vec<_> = staged
            .transforms
            .into_iter()
            .map(|(name, t)| TransformSlot::new(name, t))
            .collect();
        let filter = dispatcher.filters.get(plugin).cloned();
        let outputs: Vec<_> = staged
            .outputs
            .into_iter()
            .map(|(name, output, options)| {
                // The shutdown waits for it through its own flag, not this channel.
                let (done, _) = std::sync::mpsc::channel();
                let ctx = out_ctx(&self.metrics);
                OutputSlot::new(name, &options, (output, done), ctx, filter.clone())
            })
            .collect();
        let deadline = super::slot::after(Instant::now(), inner.timeout);
        if replacing {
            let old = dispatcher
                .replace_plugin(plugin, transforms.clone(), outputs.clone(), deadline)
                .map_err(ControlError::from)?;
            removed.transforms = old.transforms;
            removed.outputs = old.outputs;
            removed.subscribers = control.remove_plugin_subscribers(plugin);
            inner
                .stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|(n, kind, _)| *kind == ElementKind::Source || n.plugin != plugin);
            self.stop_tasks(plugin);
        } else {
            for t in &transforms {
                dispatcher
                    .add_transform(Arc::clone(t))
                    .map_err(ControlError::from)?;
            }
            for o in &outputs {
                dispatcher
                    .add_output(Arc::clone(o))
                    .map_err(ControlError::from)?;
            }
        }
        for t in &transforms {
            control.record(t.name.clone(), ElementKind::Transform, &t.counters);
        }
        for o in &outputs {
            control.record(o.name.clone(), ElementKind::Output, &o.counters);
            if inner
                .threads_started
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                o.start_worker()?;
            }
        }
        for s in staged.subscribers {
            inner.subscribers.add(s);
        }
        for (id, name, source, trigger) in staged.sources {
            let id = inner.add_at(Some(id), name, source, &trigger)?;
            // Its first reading now (a counter's reference), not one interval later.
            drop(control.trigger_now(id));
        }
        self.start_async(staged.autonomous, staged.tasks)?;
        Ok(removed)
    }

    /// Starts autonomous sources and tasks added while running (and the runtime, if the
    /// pipeline had none).
    fn start_async(
        &mut self,
        autonomous: Vec<(
            super::SourceId,
            super::ElementName,
            crate::plugin::AutonomousStart,
        )>,
        tasks: Vec<(super::ElementName, crate::plugin::TaskStart)>,
    ) -> Result<(), PluginChangeError> {
        if autonomous.is_empty() && tasks.is_empty() {
            return Ok(());
        }
        if self.runtime.is_none() {
            self.runtime = Some(AsyncRuntime::start()?);
        }
        let Some(runtime) = &self.runtime else {
            return Ok(());
        };
        let inner = &self.control.inner;
        let all = self.shutdown_tx.subscribe();
        for (id, name, start) in autonomous {
            let (entry, run) =
                super::tasks::autonomous_source(&inner.dispatcher, &name, start, &all);
            if !inner.registry().insert_at(id, entry) {
                return Err(ControlError::DuplicateName(name).into());
            }
            self.autonomous.push(("source", name, runtime.spawn(run)));
        }
        let (running, stops) = spawn_tasks(runtime, tasks, &all);
        self.autonomous.extend(running);
        self.task_stops.extend(stops);
        Ok(())
    }

    /// Stops the tasks of `plugin` and waits for them until the control deadline.
    fn stop_tasks(&mut self, plugin: &str) {
        self.task_stops.retain(|(p, stop)| {
            if p == plugin {
                let _ = stop.send(true);
            }
            p != plugin
        });
        let (theirs, others) = std::mem::take(&mut self.autonomous)
            .into_iter()
            .partition(|(kind, name, _)| *kind == "task" && name.plugin == plugin);
        self.autonomous = others;
        if let Some(runtime) = &self.runtime {
            let deadline = super::slot::after(Instant::now(), self.control.inner.timeout);
            wait_for_tasks(runtime, theirs, deadline);
        }
    }
}
