//! Starting the pipeline from plugins, and shutting it down without losing points.

use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::consumers::ConsumerRegistry;
use crate::metrics::MetricRegistry;
use crate::plugin::{
    AnyPlugin, Elements, HostIdentity, HostPaths, Registrar, RunMode, Unavailable,
};

use super::control::{ControlInner, PipelineControl};
use super::dispatch::{Dispatcher, TransformSlot};
use super::element::{OutputContext, TransformContext};
use super::output::{OutputSlot, OutputStats};
use super::plugin_control::PluginControl;
use super::registry::{Registry, Runner, SourceEntry, SourceId};
use super::runtime::AsyncRuntime;
use super::slot::SourceSlot;
use super::sources::{threads_for, Phase, Schedule, SourceGroup};
use super::tasks::{spawn_tasks, wait_for_tasks, RunningTask};

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A plugin's `start` failed (and it was not [`Unavailable`]).
    #[error("plugin `{plugin}` failed to start: {error:#}")]
    PluginStart {
        /// The plugin.
        plugin: String,
        /// Its error.
        error: anyhow::Error,
    },
    /// A plugin's `post_start` failed.
    #[error("plugin `{plugin}` failed after the pipeline started: {error:#}")]
    PostStart {
        /// The plugin.
        plugin: String,
        /// Its error.
        error: anyhow::Error,
    },
    /// A thread or the async runtime could not be created.
    #[error("could not start the pipeline's threads: {0}")]
    Io(#[from] std::io::Error),
}

/// Collects plugins, then starts them into a running pipeline.
pub struct PipelineBuilder {
    plugins: Vec<Box<dyn AnyPlugin>>,
    shutdown_timeout: Duration,
    control_timeout: Duration,
    defer_source_threads: bool,
    run_mode: RunMode,
    host_paths: HostPaths,
    host_identity: HostIdentity,
    inputs: Vec<(String, Vec<String>)>,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder {
            plugins: Vec::new(),
            shutdown_timeout: Duration::from_secs(5),
            control_timeout: Duration::from_secs(5),
            defer_source_threads: false,
            run_mode: RunMode::Run,
            host_paths: HostPaths::default(),
            host_identity: HostIdentity::default(),
            inputs: Vec::new(),
        }
    }
}

/// What a shutdown delivered and lost, per output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// The final statistics of every output.
    pub outputs: Vec<OutputStats>,
    /// Points still queued when the deadline passed (0 when every queue was drained).
    pub undelivered_points: u64,
    /// Whether the deadline passed before every output finished.
    pub timed_out: bool,
}

impl PipelineBuilder {
    /// An empty builder with a shutdown deadline of 5 seconds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plugin; plugins start in the order they are added.
    pub fn plugin(&mut self, plugin: Box<dyn AnyPlugin>) -> &mut Self {
        self.plugins.push(plugin);
        self
    }

    /// How long shutdown may wait for the outputs to drain their queues.
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// What the agent runs for, handed to the plugins' `start` (by default
    /// [`RunMode::Run`]).
    pub fn run_mode(&mut self, mode: RunMode) -> &mut Self {
        self.run_mode = mode;
        self
    }

    /// Where the host's kernel trees are, handed to the plugins' `start` (by default
    /// `/proc`, `/sys`, `/sys/fs/cgroup`).
    pub fn host_paths(&mut self, paths: HostPaths) -> &mut Self {
        self.host_paths = paths;
        self
    }

    /// The labels naming this machine, handed to the plugins' `start` (by default none):
    /// network outputs add them to every point.
    pub fn host_identity(&mut self, identity: HostIdentity) -> &mut Self {
        self.host_identity = identity;
        self
    }

    /// The outputs of plugin instance `output` receive only the points of the metrics that
    /// the plugin instances in `inputs` created (their sources' and transforms' points),
    /// instead of every point. The other points are not counted as given to them.
    pub fn output_inputs(&mut self, output: &str, inputs: &[String]) -> &mut Self {
        self.inputs.push((output.to_owned(), inputs.to_vec()));
        self
    }

    /// How long a control call on sources ([`PipelineControl::pause`], `poll_now`, ...)
    /// waits for the groups' threads to apply it (default 5 seconds): a source blocked in
    /// its poll makes the call return [`ControlError::Pending`](super::ControlError::Pending)
    /// then, instead of blocking.
    pub fn control_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.control_timeout = timeout;
        self
    }

    /// The threads that poll sources on their intervals start only with
    /// [`RunningPipeline::start_source_threads`]: until then, sources are polled only by
    /// [`PipelineControl::poll_now`] (a measurement of one command polls before starting
    /// it, then starts the threads while the command runs).
    pub fn defer_source_threads(&mut self) -> &mut Self {
        self.defer_source_threads = true;
        self
    }

    /// Starts every plugin, then the pipeline. A plugin that returns [`Unavailable`] is
    /// logged and left out; any other error stops the plugins already started.
    pub fn start(self) -> Result<RunningPipeline, PipelineError> {
        let metrics = MetricRegistry::new();
        let mut elements = Elements::default();
        let mut started: Vec<Box<dyn AnyPlugin>> = Vec::new();
        let mut unavailable = Vec::new();
        let consumers = ConsumerRegistry::default();
        for mut plugin in self.plugins {
            let name = plugin.name().to_owned();
            let mut registrar = Registrar::new(&name, &metrics, &elements)
                .with_run_mode(self.run_mode)
                .with_host_paths(self.host_paths.clone())
                .with_host_identity(self.host_identity.clone())
                .with_consumers(consumers.clone());
            let result = plugin.start(&mut registrar);
            let staged = registrar.into_staged();
            match result {
                Ok(()) => {
                    elements.append(staged);
                    started.push(plugin);
                }
                Err(error) => match Unavailable::find(&error) {
                    Some(u) => {
                        elements.discard(staged);
                        log::warn!("plugin {name} is unavailable and will not run: {u}");
                        unavailable.push((name, u.clone()));
                    }
                    None => {
                        stop_plugins(&mut started);
                        return Err(PipelineError::PluginStart {
                            plugin: name,
                            error,
                        });
                    }
                },
            }
        }
        elements.inputs = self.inputs;
        let waiters = std::mem::take(&mut elements.control_waiters);
        let mut running = launch(
            elements,
            Arc::new(metrics),
            (started, unavailable),
            self.shutdown_timeout,
            self.control_timeout,
        )?;
        running.run_mode = self.run_mode;
        running.host_paths = self.host_paths;
        running.host_identity = self.host_identity;
        running.consumers = consumers;
        if !self.defer_source_threads {
            running.start_source_threads()?;
        }
        let control = running.control.clone();
        for plugin in running.plugins.iter_mut() {
            if let Err(error) = plugin.post_start(&control.plugin_control(plugin.name())) {
                let plugin = plugin.name().to_owned();
                running.shutdown();
                return Err(PipelineError::PostStart { plugin, error });
            }
        }
        hand_controls(&control, waiters);
        Ok(running)
    }
}

/// The context of one output: the pipeline's metrics, and a delivery report of its own.
pub(super) fn out_ctx(metrics: &Arc<MetricRegistry>) -> OutputContext {
    OutputContext::new(Arc::clone(metrics))
}

pub(super) fn stop_plugins(plugins: &mut [Box<dyn AnyPlugin>]) {
    for plugin in plugins.iter_mut() {
        let name = plugin.name().to_owned();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plugin.stop())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("plugin {name} failed to stop: {e:#}"),
            Err(_) => log::error!("plugin {name} panicked while stopping"),
        }
    }
}

pub(super) fn drop_plugins(plugins: Vec<Box<dyn AnyPlugin>>) {
    for plugin in plugins {
        let name = plugin.name().to_owned();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(plugin))).is_err() {
            log::error!("plugin {name} panicked while being dropped");
        }
    }
}

/// The plugins that started, and those left out as unavailable.
type Started = (Vec<Box<dyn AnyPlugin>>, Vec<(String, Unavailable)>);

fn launch(
    elements: Elements,
    metrics: Arc<MetricRegistry>,
    (plugins, unavailable): Started,
    shutdown_timeout: Duration,
    control_timeout: Duration,
) -> Result<RunningPipeline, PipelineError> {
    // The async runtime exists only for autonomous sources and tasks: without them, no
    // thread is started for it (a short exec run saves its start and stop).
    let needs_runtime = !elements.autonomous.is_empty() || !elements.tasks.is_empty();
    let runtime = if needs_runtime {
        Some(AsyncRuntime::start()?)
    } else {
        None
    };
    let filters = super::inputs::filters(
        &elements.inputs,
        &elements.metric_owners,
        &elements.output_filters,
    );
    let (done_tx, workers_done) = std::sync::mpsc::channel::<()>();
    let mut slots = Vec::new();
    for (name, output, options) in elements.outputs {
        // Its thread starts with the source threads, or at shutdown.
        let worker = (output, done_tx.clone());
        let filter = filters.get(&name.plugin).cloned();
        slots.push(OutputSlot::new(
            name,
            &options,
            worker,
            out_ctx(&metrics),
            filter,
        ));
    }
    drop(done_tx);

    let transforms = elements
        .transforms
        .into_iter()
        .map(|(name, t)| TransformSlot::new(name, t))
        .collect();
    let ctx = TransformContext {
        metrics: Arc::clone(&metrics),
    };
    let dispatcher = Dispatcher::new(transforms, slots, ctx, filters);
    let stats = dispatcher.element_counters();

    // One thread per poll interval: sources that share it share the wake-up (up to
    // SOURCES_PER_THREAD each; more are spread over a few threads, a phase apart).
    let mut by_interval: Vec<(Option<Duration>, Vec<_>)> = Vec::new();
    for (id, name, source, trigger) in elements.sources {
        let interval = trigger.poll_interval;
        let element = (id, name, source, trigger);
        match by_interval.iter_mut().find(|(i, _)| *i == interval) {
            Some((_, group)) => group.push(element),
            None => by_interval.push((interval, vec![element])),
        }
    }
    // One instant for every source: those sharing an interval share the phase.
    let start = Instant::now();
    let mut by_thread = Vec::new();
    for (interval, elements) in by_interval {
        let first = Phase::first(start);
        let threads = interval.map_or(1, |_| threads_for(elements.len()));
        let per_thread = elements.len().div_ceil(threads).max(1);
        let mut elements = elements.into_iter().peekable();
        for index in 0..threads {
            let phase = interval.map_or(first, |i| first.sibling(i, index));
            let slots: Vec<SourceSlot> = elements
                .by_ref()
                .take(per_thread)
                .map(|(id, name, source, trigger)| {
                    SourceSlot::new((id, name), source, &trigger, phase.anchor)
                })
                .collect();
            by_thread.push(((interval, phase), slots));
            if elements.peek().is_none() {
                break;
            }
        }
    }
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut autonomous: Vec<RunningTask> = Vec::new();
    let mut entries = Vec::new();
    for (id, name, start) in elements.autonomous {
        let (entry, run) = super::tasks::autonomous_source(&dispatcher, &name, start, &shutdown_rx);
        entries.push((id, entry));
        // `needs_runtime` holds whenever there is an autonomous source.
        if let Some(runtime) = &runtime {
            autonomous.push(("source", name, runtime.spawn(run)));
        }
    }
    let (groups, registry) = registry_of(by_thread, entries, &dispatcher, elements.ids_given);
    let mut task_stops = Vec::new();
    if let Some(runtime) = &runtime {
        let (tasks, stops) = spawn_tasks(runtime, elements.tasks, &shutdown_rx);
        autonomous.extend(tasks);
        task_stops = stops;
    }

    let control = PipelineControl {
        inner: Arc::new(ControlInner::new(
            (groups, registry),
            dispatcher,
            elements.subscribers,
            stats,
            control_timeout,
        )),
    };
    Ok(RunningPipeline {
        control,
        plugins,
        unavailable,
        metrics,
        runtime,
        autonomous,
        shutdown_tx,
        task_stops,
        workers_done,
        shutdown_timeout,
        run_mode: RunMode::Run,
        host_paths: HostPaths::default(),
        host_identity: HostIdentity::default(),
        consumers: ConsumerRegistry::default(),
        finished: None,
    })
}

/// Gives the tasks of [`Registrar::add_task_with_control`] their plugin's control handle.
pub(super) fn hand_controls(
    control: &PipelineControl,
    waiters: Vec<(String, tokio::sync::oneshot::Sender<PluginControl>)>,
) {
    for (plugin, tx) in waiters {
        // The task is gone only if the pipeline is stopping.
        let _ = tx.send(control.plugin_control(&plugin));
    }
}

/// The groups of the sources registered at start, and the registry that knows them.
fn registry_of(
    by_thread: Vec<(Schedule, Vec<SourceSlot>)>,
    mut entries: Vec<(SourceId, SourceEntry)>,
    dispatcher: &Arc<Dispatcher>,
    ids_given: u32,
) -> (Vec<SourceGroup>, Registry) {
    let mut groups = Vec::with_capacity(by_thread.len());
    for (schedule, slots) in by_thread {
        let counters: Vec<_> = slots
            .iter()
            .map(|s| (s.id, s.name.clone(), Arc::clone(&s.counters)))
            .collect();
        let group = SourceGroup::new(schedule, slots, Arc::clone(dispatcher));
        let shared = group.shared();
        for (id, name, counters) in counters {
            shared.members.fetch_add(1, Ordering::Relaxed);
            let group = Arc::clone(&shared);
            entries.push((
                id,
                SourceEntry {
                    name,
                    runner: Runner::Group(group),
                    counters,
                },
            ));
        }
        groups.push(group);
    }
    // In the order the sources were registered.
    entries.sort_by_key(|(id, _)| id.index);
    (groups, Registry::with(entries, ids_given))
}

/// A started pipeline. Shut it down with [`RunningPipeline::shutdown`] (dropping it does
/// the same); its methods block and must be called from a thread, not from async code.
pub struct RunningPipeline {
    pub(super) control: PipelineControl,
    /// Dropped at shutdown, after their `stop` (or when removed while running).
    pub(super) plugins: Vec<Box<dyn AnyPlugin>>,
    pub(super) unavailable: Vec<(String, Unavailable)>,
    pub(super) metrics: Arc<MetricRegistry>,
    pub(super) runtime: Option<AsyncRuntime>,
    /// Autonomous sources and the plugins' tasks.
    pub(super) autonomous: Vec<RunningTask>,
    pub(super) shutdown_tx: tokio::sync::watch::Sender<bool>,
    /// Each plugin's own stop signal for its tasks (its removal while running).
    pub(super) task_stops: Vec<(String, tokio::sync::watch::Sender<bool>)>,
    pub(super) workers_done: std::sync::mpsc::Receiver<()>,
    pub(super) shutdown_timeout: Duration,
    /// What plugins started while running are told.
    pub(super) run_mode: RunMode,
    pub(super) host_paths: HostPaths,
    pub(super) host_identity: HostIdentity,
    /// The registry its plugins share, for those started while running.
    pub(super) consumers: ConsumerRegistry,
    pub(super) finished: Option<ShutdownReport>,
}

impl RunningPipeline {
    /// The control handle.
    pub fn control(&self) -> PipelineControl {
        self.control.clone()
    }

    /// Every registered metric.
    pub fn metrics(&self) -> &MetricRegistry {
        &self.metrics
    }

    /// The consumer registry its plugins share.
    pub fn consumers(&self) -> &ConsumerRegistry {
        &self.consumers
    }

    /// Starts the threads that poll sources on their intervals, and those of the blocking
    /// outputs (see [`PipelineBuilder::defer_source_threads`]: until then, the readings of
    /// `poll_now` wait in the output queues); does nothing for threads already started.
    pub fn start_source_threads(&self) -> std::io::Result<()> {
        let mut groups = self.control.inner.groups();
        self.control
            .inner
            .threads_started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // The outputs' threads first: the sources' first buffers may wake them.
        let dispatcher = &self.control.inner.dispatcher;
        for output in &dispatcher.current().outputs {
            output.start_worker()?;
        }
        dispatcher.stage.allow_start(dispatcher);
        for group in groups.iter_mut() {
            group.start()?;
        }
        Ok(())
    }

    /// When the first periodic poll of a source whose thread has not started is due (one
    /// interval after the source was added; [`PipelineControl::poll_now`] does not move
    /// it); `None` when there is no such source. With
    /// [`PipelineBuilder::defer_source_threads`], a caller measuring something that ends
    /// before then need not start the threads at all: `poll_now` takes the readings
    /// before and after it. A source added, resumed or given a new interval afterwards
    /// can be due sooner: ask again.
    pub fn next_deferred_poll(&self) -> Option<Instant> {
        self.control
            .inner
            .groups()
            .iter()
            .filter(|g| !g.started())
            .filter_map(SourceGroup::next_poll)
            .min()
    }

    /// The plugins left out because their hardware is absent, with the reason.
    pub fn unavailable_plugins(&self) -> &[(String, Unavailable)] {
        &self.unavailable
    }

    /// The names of the plugins running (those that started, and those added since).
    pub fn plugin_names(&self) -> Vec<String> {
        self.plugins.iter().map(|p| p.name().to_owned()).collect()
    }

    /// The pipeline's async runtime, to spawn tasks that work with it.
    pub fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref().map(AsyncRuntime::handle)
    }

    /// Blocks until [`PipelineControl::request_shutdown`] is called or `timeout` passes;
    /// returns whether shutdown was requested.
    pub fn wait_for_shutdown_request(&self, timeout: Option<Duration>) -> bool {
        self.control.inner.wait_for_shutdown_request(timeout)
    }

    /// Blocks until shutdown is requested, then shuts down.
    pub fn wait_and_shutdown(mut self) -> ShutdownReport {
        self.wait_for_shutdown_request(None);
        self.shutdown()
    }

    /// Stops the sources (with a final flush of what they buffered), drains every output
    /// queue until the deadline, then stops the plugins. Nothing measured before this call
    /// is lost unless an output cannot write it before the deadline: the report says how
    /// many points that was.
    pub fn shutdown(&mut self) -> ShutdownReport {
        if let Some(report) = &self.finished {
            return report.clone();
        }
        let deadline = super::slot::after(Instant::now(), self.shutdown_timeout);
        let inner = Arc::clone(&self.control.inner);
        inner.closing.store(true, Ordering::SeqCst);
        let groups = inner.take_groups();
        let outputs = inner.dispatcher.close().outputs.clone();
        // Every group stops at once: one whose source is blocked does not keep the others
        // polling until the deadline, with their last points still to be written.
        for group in &groups {
            group.shared().request_stop();
        }
        let mut unflushed = 0;
        for mut group in groups {
            if let Err(points) = group.stop_until(deadline) {
                unflushed += points;
            }
        }
        self.stop_autonomous(deadline);
        let mut report = ShutdownReport {
            outputs: Vec::new(),
            undelivered_points: unflushed,
            timed_out: unflushed > 0,
        };
        // The transforms' stage drains its queue and calls `finish` before the outputs
        // close (what a source thread blocked past the deadline flushes later is lost).
        let dispatcher = &inner.dispatcher;
        dispatcher.stage.close(dispatcher);
        if !dispatcher.stage.wait_done(deadline) {
            let lost = dispatcher.stage.abandon(dispatcher);
            log::error!(
                "the transforms did not finish within {:?}: {lost} points were not delivered",
                self.shutdown_timeout
            );
            report.undelivered_points += lost;
            report.timed_out = true;
        }
        for slot in &outputs {
            slot.close();
        }
        let all_done = outputs.iter().all(|o| o.wait_done(deadline));
        if !self.wait_for_outputs(deadline) || !all_done {
            report.timed_out = true;
            for slot in &outputs {
                let lost = slot.abandon();
                if lost > 0 {
                    log::error!(
                        "output {} did not finish within {:?}: {lost} points were not delivered",
                        slot.name,
                        self.shutdown_timeout
                    );
                }
                report.undelivered_points += lost;
            }
        }
        stop_plugins(&mut self.plugins);
        // Last, once their elements are dropped (the sources with their groups, the
        // transforms after their finish, each output when it is done); an element still
        // held by a thread past the deadline outlives its plugin's value.
        drop_plugins(std::mem::take(&mut self.plugins));
        report.outputs = self.control.output_stats();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_millis(100));
        }
        self.finished = Some(report.clone());
        report
    }

    fn stop_autonomous(&mut self, deadline: Instant) {
        let _ = self.shutdown_tx.send(true);
        let Some(runtime) = &self.runtime else { return };
        wait_for_tasks(runtime, std::mem::take(&mut self.autonomous), deadline);
    }

    /// Whether every output worker finished before the deadline.
    fn wait_for_outputs(&self, deadline: Instant) -> bool {
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.workers_done.recv_timeout(remaining) {
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
                Ok(()) => {}
            }
        }
    }
}

impl Drop for RunningPipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}
