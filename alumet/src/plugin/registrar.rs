//! The registrar: what a starting plugin registers (metrics, sources, transforms,
//! outputs, event handlers), checked and staged until the plugin has started.

use std::collections::HashSet;
use std::future::Future;

use crate::consumers::ConsumerRegistry;
use crate::measurement::{MeasurementPoint, MeasurementType};
use crate::metrics::{MetricError, MetricId, MetricRegistry, RawMetricId, Unit};
use crate::pipeline::{
    BoxFuture, ElementName, Event, Output, OutputOptions, PluginControl, Shutdown, Source,
    SourceId, SourceSink, Subscriber, SubscriberId, Transform, Trigger,
};

use super::{AnyPlugin, HostIdentity, HostPaths, RunMode};

/// Why an element could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Another element of the same kind has this name.
    #[error("a {kind} named `{name}` exists already; choose another name")]
    DuplicateName {
        /// source, transform, output or task.
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

pub(crate) type AutonomousStart =
    Box<dyn FnOnce(SourceSink, Shutdown) -> BoxFuture<'static, anyhow::Result<()>> + Send>;
pub(crate) type TaskStart =
    Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// The elements registered by the plugins, before the pipeline starts.
#[derive(Default)]
pub(crate) struct Elements {
    pub(crate) sources: Vec<(SourceId, ElementName, Box<dyn Source>, Trigger)>,
    pub(crate) autonomous: Vec<(SourceId, ElementName, AutonomousStart)>,
    /// Loops the plugins own ([`Registrar::add_task`]).
    pub(crate) tasks: Vec<(ElementName, TaskStart)>,
    /// Where the tasks of [`Registrar::add_task_with_control`] wait for their plugin's
    /// control handle, by plugin: sent once the plugins' `post_start` ran.
    pub(crate) control_waiters: Vec<(String, tokio::sync::oneshot::Sender<PluginControl>)>,
    pub(crate) transforms: Vec<(ElementName, Box<dyn Transform>)>,
    pub(crate) outputs: Vec<(ElementName, Box<dyn Output>, OutputOptions)>,
    pub(crate) subscribers: Vec<Subscriber>,
    /// The metrics each plugin created (a metric two instances share is in both lists),
    /// for the outputs that receive the points of some plugins only.
    pub(crate) metric_owners: Vec<(String, RawMetricId)>,
    /// The filters that plugins put before some output plugin instances.
    pub(crate) output_filters: Vec<(String, crate::pipeline::PointPredicate)>,
    /// The output plugin instances that receive the points of some plugins only, with
    /// those plugins ([`PipelineBuilder::output_inputs`](crate::pipeline::PipelineBuilder::output_inputs)).
    pub(crate) inputs: Vec<(String, Vec<String>)>,
    /// The names of the sources (managed and autonomous), for duplicates in O(1).
    source_names: HashSet<ElementName>,
    /// How many source ids were given (by the registrars of this set, and of the sets
    /// discarded before, whose ids are never given again).
    pub(crate) ids_given: u32,
}

impl Elements {
    /// Takes `other`'s elements (a plugin that started).
    pub(crate) fn append(&mut self, other: Elements) {
        self.source_names.extend(other.source_names);
        self.ids_given += other.ids_given;
        self.sources.extend(other.sources);
        self.autonomous.extend(other.autonomous);
        self.tasks.extend(other.tasks);
        self.control_waiters.extend(other.control_waiters);
        self.transforms.extend(other.transforms);
        self.outputs.extend(other.outputs);
        self.subscribers.extend(other.subscribers);
        self.metric_owners.extend(other.metric_owners);
        self.output_filters.extend(other.output_filters);
    }

    /// Drops `other`'s elements (a plugin that is unavailable), but not the ids it gave:
    /// they are never given again, so none of them can address a later source.
    pub(crate) fn discard(&mut self, other: Elements) {
        self.ids_given += other.ids_given;
    }
}

/// Through it, a starting plugin creates metrics and adds its elements.
pub struct Registrar<'a> {
    plugin: &'a str,
    run_mode: RunMode,
    host_paths: HostPaths,
    host_identity: HostIdentity,
    consumers: ConsumerRegistry,
    metrics: &'a MetricRegistry,
    committed: &'a Elements,
    staged: Elements,
    /// Gives the ids of the sources of a plugin started while the pipeline runs (from the
    /// pipeline's registry); before it runs, they are counted here.
    reserve_id: Option<&'a dyn Fn() -> SourceId>,
}

impl<'a> Registrar<'a> {
    pub(crate) fn new(
        plugin: &'a str,
        metrics: &'a MetricRegistry,
        committed: &'a Elements,
    ) -> Self {
        Registrar {
            plugin,
            run_mode: RunMode::Run,
            host_paths: HostPaths::default(),
            host_identity: HostIdentity::default(),
            consumers: ConsumerRegistry::default(),
            metrics,
            committed,
            staged: Elements::default(),
            reserve_id: None,
        }
    }

    /// Source ids come from `reserve` (a plugin started while the pipeline runs).
    pub(crate) fn with_ids(mut self, reserve: &'a dyn Fn() -> SourceId) -> Self {
        self.reserve_id = Some(reserve);
        self
    }

    pub(crate) fn with_run_mode(mut self, run_mode: RunMode) -> Self {
        self.run_mode = run_mode;
        self
    }

    pub(crate) fn with_host_paths(mut self, host_paths: HostPaths) -> Self {
        self.host_paths = host_paths;
        self
    }

    pub(crate) fn with_host_identity(mut self, identity: HostIdentity) -> Self {
        self.host_identity = identity;
        self
    }

    pub(crate) fn with_consumers(mut self, consumers: ConsumerRegistry) -> Self {
        self.consumers = consumers;
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

    /// Where the measured host's `/proc`, `/sys` and cgroup tree are (see [`HostPaths`]):
    /// the agent's general config sets them once for every plugin.
    pub fn host_paths(&self) -> &HostPaths {
        &self.host_paths
    }

    /// The labels naming this machine (hostname, the agent's `[labels]`), which network
    /// outputs add to every point (see [`HostIdentity`]).
    pub fn host_identity(&self) -> &HostIdentity {
        &self.host_identity
    }

    /// The processes and cgroups of the host, listed once for every plugin of the
    /// pipeline (see [`crate::consumers`]): scan `/proc` through it rather than alone.
    pub fn consumers(&self) -> &ConsumerRegistry {
        &self.consumers
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
        let id = self.metrics.register_shared(name, unit, description)?;
        self.staged
            .metric_owners
            .push((self.plugin.to_owned(), id.raw()));
        Ok(id)
    }

    /// Creates (or finds) a metric that several plugins measure
    /// ([`shared`](crate::metrics::shared)): the same definition wherever it is created.
    pub fn create_shared_metric<T: MeasurementType>(
        &mut self,
        definition: &crate::metrics::shared::Definition,
    ) -> Result<MetricId<T>, MetricError> {
        let d = definition;
        self.create_metric(d.name, d.unit.clone(), d.description)
    }

    fn name(&self, kind: &'static str, name: &str) -> Result<ElementName, RegistrationError> {
        let full = ElementName::new(self.plugin, name);
        let taken = match kind {
            "source" => {
                self.committed.source_names.contains(&full)
                    || self.staged.source_names.contains(&full)
            }
            "transform" => [self.committed, &self.staged]
                .iter()
                .any(|e| e.transforms.iter().any(|t| t.0 == full)),
            "task" => [self.committed, &self.staged]
                .iter()
                .any(|e| e.tasks.iter().any(|t| t.0 == full)),
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

    /// Adds a source polled by the pipeline according to `trigger`. Returns its id: keep
    /// it to pause, trigger or remove the source later through the control handle, in
    /// O(1) (selectors such as `plugin/name` are for people).
    pub fn add_source(
        &mut self,
        name: &str,
        source: impl Source + 'static,
        trigger: Trigger,
    ) -> Result<SourceId, RegistrationError> {
        let full = self.name("source", name)?;
        let zero = |d: Option<std::time::Duration>| d.is_some_and(|d| d.is_zero());
        if zero(trigger.poll_interval) || zero(trigger.flush_interval) {
            return Err(RegistrationError::ZeroInterval(full));
        }
        let id = self.next_id();
        self.staged.source_names.insert(full.clone());
        self.staged
            .sources
            .push((id, full, Box::new(source), trigger));
        Ok(id)
    }

    /// Adds a source that produces on its own, as an async task: `start` receives where to
    /// send its buffers and a [`Shutdown`] signal; it must return once that fires (at
    /// shutdown, or when the source is removed: by its id, by a selector, or with its
    /// plugin). Returns its id; the pipeline does not poll it, so only removal applies.
    pub fn add_autonomous_source<F, Fut>(
        &mut self,
        name: &str,
        start: F,
    ) -> Result<SourceId, RegistrationError>
    where
        F: FnOnce(SourceSink, Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let full = self.name("source", name)?;
        let id = self.next_id();
        self.staged.source_names.insert(full.clone());
        self.staged.autonomous.push((
            id,
            full,
            Box::new(move |sink, shutdown| Box::pin(start(sink, shutdown))),
        ));
        Ok(id)
    }

    fn next_id(&mut self) -> SourceId {
        if let Some(reserve) = self.reserve_id {
            return reserve();
        }
        let id = SourceId {
            index: self.committed.ids_given + self.staged.ids_given,
            generation: 0,
        };
        self.staged.ids_given += 1;
        id
    }

    /// Adds a loop the plugin owns (a server, a sender, a scanner), as an async task on
    /// the pipeline's runtime, started with the pipeline. `start` receives a [`Shutdown`]
    /// signal; the task must return once it fires. At shutdown the pipeline signals every
    /// task with the autonomous sources, waits for them until the shutdown deadline (a
    /// task still running then is logged and aborted), and only then calls the plugins'
    /// `stop`. Blocking work inside the task goes through `tokio::task::spawn_blocking`.
    pub fn add_task<F, Fut>(&mut self, name: &str, start: F) -> Result<(), RegistrationError>
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let full = self.name("task", name)?;
        self.staged
            .tasks
            .push((full, Box::new(move |shutdown| Box::pin(start(shutdown)))));
        Ok(())
    }

    /// As [`add_task`](Self::add_task), for a loop that needs its plugin's control handle
    /// (to add and remove its own sources as it finds what to measure): `start` receives
    /// the [`PluginControl`] once every plugin has started (after their `post_start`), and
    /// the [`Shutdown`]; it is not called if the pipeline stops before.
    pub fn add_task_with_control<F, Fut>(
        &mut self,
        name: &str,
        start: F,
    ) -> Result<(), RegistrationError>
    where
        F: FnOnce(PluginControl, Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.add_task(name, move |mut shutdown| async move {
            let control = tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                c = rx => match c {
                    Ok(c) => c,
                    // Never started (the plugin was only probed, or the start failed).
                    Err(_) => return Ok(()),
                },
            };
            start(control, shutdown).await
        })?;
        self.staged
            .control_waiters
            .push((self.plugin.to_owned(), tx));
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
        self.staged.outputs.push((full, Box::new(output), options));
        Ok(())
    }

    /// Lets only the points for which `keeps` holds (given the point and the pipeline's
    /// metrics, to find its metric's name) reach the outputs of plugin instance
    /// `output` (say `csv`, or `influx_eu` for `[plugins.influx_eu]`), on their own
    /// threads; the other outputs receive every point. Several filters before one output
    /// must all hold. Fixed at start: a plugin added while running cannot add one.
    pub fn add_output_filter(
        &mut self,
        output: &str,
        keeps: impl Fn(&MeasurementPoint, &MetricRegistry) -> bool + Send + Sync + 'static,
    ) {
        self.staged
            .output_filters
            .push((output.to_owned(), std::sync::Arc::new(keeps)));
    }

    /// Subscribes to [`Event`]s; the handler runs in the thread that emits the event and
    /// may use the plugin's control handle, confined to its own sources (to add a source
    /// for a new consumer, say). The id removes it while running
    /// ([`PluginControl::remove_subscriber`]).
    pub fn on_event(
        &mut self,
        handler: impl Fn(&Event, &PluginControl) + Send + Sync + 'static,
    ) -> SubscriberId {
        let id = SubscriberId::next();
        self.staged.subscribers.push(Subscriber {
            id,
            plugin: self.plugin.into(),
            handler: Box::new(handler),
        });
        id
    }
}

/// Runs a plugin's `start` against a scratch registrar and drops what it registered: tells
/// whether the plugin can run here (an [`Unavailable`] error says why not) without
/// starting a pipeline. Used to generate a config that disables absent hardware.
pub fn probe_start(plugin: &mut dyn AnyPlugin) -> anyhow::Result<()> {
    let name = plugin.name().to_owned();
    let metrics = MetricRegistry::new();
    let committed = Elements::default();
    let mut registrar = Registrar::new(&name, &metrics, &committed);
    plugin.start(&mut registrar)
}
