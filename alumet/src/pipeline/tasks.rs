//! The async tasks the pipeline starts for the plugins (autonomous sources and the loops
//! registered with [`Registrar::add_task`](crate::plugin::Registrar::add_task)), and how
//! shutdown waits for them.

use std::time::Instant;

use tokio::task::JoinHandle;

use super::runtime::AsyncRuntime;
use super::{ElementName, Shutdown};
use crate::plugin::TaskStart;

/// A running task: what it is (for logs), its name and its handle.
pub(crate) type RunningTask = (&'static str, ElementName, JoinHandle<anyhow::Result<()>>);

/// Each plugin's own stop signal for its tasks.
pub(crate) type TaskStops = Vec<(String, tokio::sync::watch::Sender<bool>)>;

/// Starts the plugins' tasks on the runtime, each with its own [`Shutdown`]: the
/// pipeline's signal, and its plugin's (sent when the plugin is removed while running).
pub(crate) fn spawn_tasks(
    runtime: &AsyncRuntime,
    tasks: Vec<(ElementName, TaskStart)>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> (Vec<RunningTask>, TaskStops) {
    let mut stops: TaskStops = Vec::new();
    let running = tasks
        .into_iter()
        .map(|(name, start)| {
            let own = match stops.iter().find(|(p, _)| *p == name.plugin) {
                Some((_, stop)) => stop.subscribe(),
                None => {
                    let (stop, own) = tokio::sync::watch::channel(false);
                    stops.push((name.plugin.clone(), stop));
                    own
                }
            };
            let handle = runtime.spawn(start(Shutdown::new(shutdown.clone(), Some(own))));
            ("task", name, handle)
        })
        .collect();
    (running, stops)
}

/// Waits for every task (whose [`Shutdown`] has fired) until `deadline`: one that fails
/// or panics is logged; one still running at the deadline is logged and aborted.
pub(crate) fn wait_for_tasks(runtime: &AsyncRuntime, tasks: Vec<RunningTask>, deadline: Instant) {
    for (kind, name, task) in tasks {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let abort = task.abort_handle();
        match runtime.block_on(async { tokio::time::timeout(remaining, task).await }) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => log::error!("{kind} {name} failed: {e:#}"),
            Ok(Err(e)) if e.is_panic() => log::error!("{kind} {name} panicked and is stopped"),
            Ok(Err(_)) => {}
            Err(_) => {
                log::error!("{kind} {name} did not stop within the shutdown deadline");
                abort.abort();
            }
        }
    }
}

/// An autonomous source made ready to run: its registry entry (removing it stops the
/// task, through its own signal), and the future that runs it.
pub(crate) fn autonomous_source(
    dispatcher: &std::sync::Arc<super::dispatch::Dispatcher>,
    name: &ElementName,
    start: crate::plugin::AutonomousStart,
    all: &tokio::sync::watch::Receiver<bool>,
) -> (
    super::registry::SourceEntry,
    super::BoxFuture<'static, anyhow::Result<()>>,
) {
    let sink = super::tick::SourceSink {
        dispatcher: std::sync::Arc::clone(dispatcher),
        name: name.clone(),
        counters: std::sync::Arc::default(),
    };
    let (stop, own) = tokio::sync::watch::channel(false);
    let entry = super::registry::SourceEntry {
        name: name.clone(),
        runner: super::registry::Runner::Task(stop),
        counters: std::sync::Arc::clone(&sink.counters),
    };
    (entry, start(sink, Shutdown::new(all.clone(), Some(own))))
}
