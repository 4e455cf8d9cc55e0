//! The agent's control handle: pause, resume, re-time, trigger, add and remove any
//! plugin's sources while running; dispatch events to plugins; ask for shutdown. (A
//! plugin gets a [`PluginControl`], confined to its own sources.)
//!
//! A call on sources becomes a [`Command`] for each group that holds a matching source,
//! applied by the group's thread between two ticks; the call waits for the answers until
//! its deadline ([`PipelineBuilder::control_timeout`](super::PipelineBuilder::control_timeout)).
//! Which sources exist is known here, without asking the groups.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::measurement::Timestamp;

use super::command::Command;
use super::completion::Completion;
pub(crate) use super::control_inner::ControlInner;
use super::element::{Event, Source, Trigger};
use super::output::OutputStats;
use super::plugin_control::PluginControl;
use super::ratelimit::panic_message;
use super::registry::{SourceId, Target};
use super::selector::{ElementName, Selector};
use super::slot::TriggerAck;
use super::stats::{ElementKind, ElementStats};

/// Why a control command failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A source (or a transform, or an output) with this name exists already.
    #[error("an element named `{0}` exists already; choose another name")]
    DuplicateName(ElementName),
    /// The interval is zero.
    #[error("invalid poll interval for `{0}`: it must be longer than zero")]
    ZeroInterval(String),
    /// The pipeline is shutting down.
    #[error("the pipeline is shutting down; no source can be added")]
    ShuttingDown,
    /// A thread could not be started.
    #[error("could not start a source thread: {0}")]
    Thread(#[from] std::io::Error),
    /// No source has this id: it was removed (ids are never reused).
    #[error("no source has the id {0}: it was removed")]
    NoSuchSource(SourceId),
    /// A call that only polled sources answer (pause, resume, set_interval, poll_now) was
    /// given the id of an autonomous source, which the pipeline does not poll.
    #[error("source {0} is autonomous: the pipeline does not poll it, so it cannot be paused, resumed, re-timed or polled; remove it, or act through its plugin")]
    Autonomous(ElementName),
    /// A plugin's control handle was given another plugin's element: a source's id, a
    /// selector that names other plugins only, an event handler.
    #[error("{what} is not an element of plugin `{plugin}`: a plugin controls only its own")]
    NotOwned {
        /// What was given.
        what: String,
        /// The plugin whose handle was used.
        plugin: String,
    },
    /// Some source threads did not answer before the deadline: a source slow or blocked
    /// in its poll (or the call came from a poll of that thread). The command stays
    /// queued there and applies once the poll returns.
    #[error(
        "{pending} source thread(s) did not answer within {waited:?} (a source is slow or \
         blocked in its poll): the command is queued and applies when its poll returns \
         ({applied} source(s) done already)"
    )]
    Pending {
        /// What the threads that answered matched (or polled).
        applied: usize,
        /// How many threads did not answer.
        pending: usize,
        /// How long the call waited.
        waited: Duration,
    },
}

/// A cheap, cloneable handle on a running pipeline.
#[derive(Clone)]
pub struct PipelineControl {
    pub(crate) inner: Arc<ControlInner>,
}

impl PipelineControl {
    /// Pauses the targeted sources (a [`SourceId`], or a [`Selector`]'s matches): no poll
    /// starts after this returns `Ok`. Returns how many sources there were.
    ///
    /// Like every call on sources, it goes to the threads of the groups that hold a
    /// targeted source, and waits for their answers until the control deadline
    /// ([`PipelineBuilder::control_timeout`](super::PipelineBuilder::control_timeout)):
    /// a group whose source is slow or blocked in its poll gives
    /// [`ControlError::Pending`], and the command applies there when that poll returns.
    /// Other groups are neither asked nor waited for. An id whose source was removed gives
    /// [`ControlError::NoSuchSource`]; a selector that matches nothing gives `Ok(0)`.
    pub fn pause(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        let t = target.into();
        self.inner.command(&t, |r| Command::Pause(t.clone(), r))
    }

    /// Removes the targeted sources, after a flush of what they buffered: for a source
    /// whose work is done (one process's, once it has ended), which, unlike a paused one,
    /// then costs nothing (no memory, no place in every poll and every selector match).
    /// Its statistics go with it, its name is free again and its id refused from then on,
    /// at once (even when the removal is [`ControlError::Pending`]). A group left without
    /// sources stops its thread. Returns how many were removed.
    pub fn remove_source(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        self.inner.remove(&target.into())
    }

    /// Resumes the targeted sources; the next poll comes one interval from now.
    pub fn resume(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        let t = target.into();
        self.inner.command(&t, |r| Command::Resume(t.clone(), r))
    }

    /// Changes the poll interval of the targeted sources (a manual source becomes periodic).
    pub fn set_interval(
        &self,
        target: impl Into<Target>,
        interval: Duration,
    ) -> Result<usize, ControlError> {
        let t = target.into();
        if interval.is_zero() {
            return Err(ControlError::ZeroInterval(t.to_string()));
        }
        self.inner
            .command(&t, |r| Command::SetInterval(t.clone(), interval, r))
    }

    /// Polls the targeted active sources once, as soon as possible, and flushes them.
    /// The returned [`Completion`] resolves, to the number of sources polled, once their
    /// points are queued for the outputs (to 0 for the id of a removed source). This call
    /// itself never waits on a group: each group's thread polls in its next tick (a source
    /// blocked in its poll delays only its own group's part; [`Completion::wait_timeout`]
    /// bounds the wait).
    ///
    /// Before the source threads start ([`PipelineBuilder::defer_source_threads`](super::PipelineBuilder::defer_source_threads)),
    /// no thread would answer: the sources are polled on the calling thread, and the
    /// completion is resolved when this returns.
    pub fn trigger_now(&self, target: impl Into<Target>) -> Completion {
        let t = target.into();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ack = TriggerAck::new(tx);
        let now = Timestamp::now();
        self.inner
            .trigger(&t, || Command::Trigger(t.clone(), Arc::clone(&ack), now));
        drop(ack);
        Completion(rx)
    }

    /// Polls the targeted active sources once, with one timestamp, and flushes them: their
    /// points are queued for the outputs when this returns `Ok`. Returns how many sources
    /// were polled.
    ///
    /// Unlike [`PipelineControl::trigger_now`], the call waits for the polls (until the
    /// control deadline, as [`PipelineControl::pause`]): for a caller that waits anyway,
    /// such as a measurement of one command. A group whose thread has not started is polled
    /// on the calling thread; a started one polls on its own thread, at once.
    pub fn poll_now(&self, target: impl Into<Target>) -> Result<usize, ControlError> {
        let t = target.into();
        let now = Timestamp::now();
        self.inner.command(&t, |r| Command::Poll(t.clone(), now, r))
    }

    /// Adds a source while running; returns its id, through which the other calls reach
    /// it in O(1). It joins the thread of the sources with the same poll interval, or gets
    /// its own. It does not wait for that thread: the source is there for every later call.
    pub fn add_source(
        &self,
        plugin: &str,
        name: &str,
        source: Box<dyn Source>,
        trigger: Trigger,
    ) -> Result<SourceId, ControlError> {
        self.inner
            .add(ElementName::new(plugin, name), source, &trigger)
    }

    /// The sources, with whether each is active (not paused, not stopped), in the order of
    /// their ids' places (the order they were added in, until the place of a removed source
    /// is taken again). Never waits on a group.
    pub fn sources(&self) -> Vec<(ElementName, bool)> {
        let registry = self.inner.registry();
        registry
            .iter()
            .map(|(_, e)| (e.name.clone(), e.counters.active()))
            .collect()
    }

    /// The id of the source with this name, if there is one.
    pub fn source_id(&self, name: &ElementName) -> Option<SourceId> {
        self.inner.registry().id_of(name)
    }

    /// Removes every source of plugin `plugin` (an instance's name), as one
    /// [`remove_source`](Self::remove_source): each group flushes what they buffered first,
    /// so none of their points is lost. The plugin's other elements stay. Returns how many
    /// sources were removed.
    pub fn remove_plugin_sources(&self, plugin: &str) -> Result<usize, ControlError> {
        self.inner
            .remove(&Target::Matching(Selector::plugin(plugin)))
    }

    /// Removes every event handler of plugin `plugin`; returns how many. Emits that start
    /// afterwards do not call them.
    pub fn remove_plugin_subscribers(&self, plugin: &str) -> usize {
        self.inner.subscribers.remove(|s| &*s.plugin == plugin)
    }

    /// The control handle of plugin `plugin`, confined to its own sources, as the plugin
    /// gets it: for the agent to act on a plugin's behalf.
    pub fn plugin_control(&self, plugin: &str) -> PluginControl {
        PluginControl::new(Arc::from(plugin), self.clone())
    }

    /// Announces an event to every plugin that subscribed, in the order the handlers were
    /// registered; each gets its plugin's [`PluginControl`]. A panicking handler is logged
    /// and skipped. A handler may subscribe or unsubscribe: that applies from the next emit.
    pub fn emit(&self, event: &Event) {
        for subscriber in self.inner.subscribers.current().iter() {
            let control = PluginControl::new(Arc::clone(&subscriber.plugin), self.clone());
            let handler = &subscriber.handler;
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(event, &control)));
            if let Err(panic) = result {
                log::error!(
                    "event handler of plugin {} panicked on {event:?}: {}",
                    subscriber.plugin,
                    panic_message(&*panic)
                );
            }
        }
    }

    /// What happened so far to each source, transform and output: polls, points, errors,
    /// whether it stopped, the last successful poll. Reads atomics: it never waits on the
    /// pipeline.
    pub fn element_stats(&self) -> Vec<ElementStats> {
        let mut all: Vec<ElementStats> = {
            let stats = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats
                .iter()
                .map(|(name, kind, c)| c.snapshot(name, *kind))
                .collect()
        };
        let registry = self.inner.registry();
        let sources = registry.iter();
        all.extend(sources.map(|(_, e)| e.counters.snapshot(&e.name, ElementKind::Source)));
        all
    }

    /// What happened so far to the points of each output.
    pub fn output_stats(&self) -> Vec<OutputStats> {
        let outputs = self.inner.dispatcher.all_outputs();
        outputs.iter().map(|o| o.stats()).collect()
    }

    /// The figures of each output if the process exited now, without draining anything
    /// (a forced exit): the points still queued for it, those its sources have polled
    /// but not flushed yet, and those waiting for the transforms, count as lost.
    pub fn output_stats_at_forced_exit(&self) -> Vec<OutputStats> {
        let dispatcher = &self.inner.dispatcher;
        let in_sources =
            dispatcher.in_sources.load(Ordering::Relaxed) + dispatcher.stage.queued_points();
        let mut stats = self.output_stats();
        for s in &mut stats {
            s.failed_points += s.queued_points + in_sources;
            s.queued_points = 0;
        }
        stats
    }

    /// How long the source thread that has been polling longest has been at it, `None`
    /// when none is polling: a source blocked in its poll shows here (a service manager's
    /// watchdog is fed only while this stays short).
    pub fn longest_poll(&self) -> Option<Duration> {
        self.inner.dispatcher.longest_tick()
    }

    /// Asks the pipeline to shut down (see [`RunningPipeline::wait_and_shutdown`](super::RunningPipeline::wait_and_shutdown)).
    pub fn request_shutdown(&self) {
        *self
            .inner
            .shutdown_requested
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.inner.shutdown_cv.notify_all();
    }

    /// Whether [`request_shutdown`](Self::request_shutdown) was called.
    pub fn is_shutdown_requested(&self) -> bool {
        *self
            .inner
            .shutdown_requested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until [`request_shutdown`](Self::request_shutdown) is called.
    pub fn wait_for_shutdown_request(&self) {
        self.inner.wait_for_shutdown_request(None);
    }
}
