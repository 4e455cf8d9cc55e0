//! The control handle: pause, resume, re-time, trigger and add sources while running;
//! dispatch events to plugins; ask for shutdown.
//!
//! A call on sources becomes a [`Command`] for each group that holds a matching source,
//! applied by the group's thread between two ticks; the call waits for the answers until
//! its deadline ([`PipelineBuilder::control_timeout`](super::PipelineBuilder::control_timeout)).
//! Which sources exist is known here, without asking the groups.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::measurement::Timestamp;

use super::command::{self, Command, Reply};
use super::completion::Completion;
use super::dispatch::Dispatcher;
use super::element::{Event, Source, Trigger};
use super::output::OutputStats;
use super::ratelimit::panic_message;
use super::selector::{ElementName, Selector};
use super::slot::{SourceSlot, TriggerAck};
use super::sources::{GroupShared, SourceGroup};
use super::stats::{Counters, ElementKind, ElementStats};

/// A plugin's event handler.
pub(crate) type Subscriber = Box<dyn Fn(&Event, &PipelineControl) + Send + Sync>;

/// Why a control command failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A source with this name exists already.
    #[error("a source named `{0}` exists already; choose another name")]
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

/// A managed source, known without asking its group.
pub(crate) struct SourceEntry {
    pub(crate) name: ElementName,
    /// Its group: the poll interval it was added with.
    pub(crate) group: Option<Duration>,
    pub(crate) counters: Arc<Counters>,
}

pub(crate) struct ControlInner {
    pub(crate) groups: Mutex<Vec<SourceGroup>>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) subscribers: Vec<(String, Subscriber)>,
    pub(crate) closing: AtomicBool,
    /// Whether the source threads were started ([`RunningPipeline::start_source_threads`](super::RunningPipeline::start_source_threads)):
    /// until then, a group added while running waits for them too. (A trigger goes by each
    /// group's own state: see [`PipelineControl::trigger_now`].) Changed and read under
    /// the `groups` lock.
    pub(crate) threads_started: AtomicBool,
    /// The managed sources, in the order they were added. Locked before `groups`.
    sources: Mutex<Vec<SourceEntry>>,
    /// How long a call waits for the groups' answers.
    timeout: Duration,
    stats: Mutex<Vec<(ElementName, ElementKind, Arc<Counters>)>>,
    shutdown_requested: Mutex<bool>,
    shutdown_cv: Condvar,
}

impl ControlInner {
    pub(crate) fn new(
        (groups, sources): (Vec<SourceGroup>, Vec<SourceEntry>),
        dispatcher: Arc<Dispatcher>,
        subscribers: Vec<(String, Subscriber)>,
        stats: Vec<(ElementName, ElementKind, Arc<Counters>)>,
        timeout: Duration,
    ) -> Self {
        ControlInner {
            groups: Mutex::new(groups),
            dispatcher,
            subscribers,
            closing: AtomicBool::new(false),
            threads_started: AtomicBool::new(false),
            sources: Mutex::new(sources),
            timeout,
            stats: Mutex::new(stats),
            shutdown_requested: Mutex::new(false),
            shutdown_cv: Condvar::new(),
        }
    }

    pub(crate) fn groups(&self) -> MutexGuard<'_, Vec<SourceGroup>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sources(&self) -> MutexGuard<'_, Vec<SourceEntry>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The groups holding a source that `selector` matches. Never waits on a group.
    fn targets(&self, selector: &Selector) -> Vec<Arc<GroupShared>> {
        let mut keys: Vec<Option<Duration>> = Vec::new();
        for entry in self.sources().iter() {
            if !keys.contains(&entry.group) && selector.matches(&entry.name) {
                keys.push(entry.group);
            }
        }
        let groups = self.groups();
        groups
            .iter()
            .filter(|g| keys.contains(&g.interval))
            .map(SourceGroup::shared)
            .collect()
    }

    /// Sends a command to every group holding a matching source and waits for their
    /// answers until the deadline; returns the sum of the answers.
    fn command(
        &self,
        selector: &Selector,
        make: impl Fn(Reply) -> Command,
    ) -> Result<usize, ControlError> {
        let start = Instant::now();
        let deadline = super::slot::after(start, self.timeout);
        let (tx, rx) = std::sync::mpsc::channel();
        let (mut expected, mut own) = (0, 0);
        for group in self.targets(selector) {
            if group.is_current_thread() {
                own += 1;
            } else {
                expected += 1;
            }
            group.submit(make(tx.clone()), &self.dispatcher);
        }
        drop(tx);
        command::collect(rx, expected, own, deadline, start)
    }

    pub(crate) fn wait_for_shutdown_request(&self, timeout: Option<Duration>) -> bool {
        let requested = self
            .shutdown_requested
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let requested = match timeout {
            Some(t) => {
                let waited = self.shutdown_cv.wait_timeout_while(requested, t, |r| !*r);
                waited.map_or_else(|e| e.into_inner().0, |(g, _)| g)
            }
            None => self
                .shutdown_cv
                .wait_while(requested, |r| !*r)
                .unwrap_or_else(|e| e.into_inner()),
        };
        *requested
    }
}

/// A cheap, cloneable handle on a running pipeline.
#[derive(Clone)]
pub struct PipelineControl {
    pub(crate) inner: Arc<ControlInner>,
}

impl PipelineControl {
    /// Pauses the matching sources: no poll starts after this returns `Ok`. Returns how
    /// many sources matched.
    ///
    /// Like every call on sources, it goes to the threads of the groups that hold a
    /// matching source, and waits for their answers until the control deadline
    /// ([`PipelineBuilder::control_timeout`](super::PipelineBuilder::control_timeout)):
    /// a group whose source is slow or blocked in its poll gives
    /// [`ControlError::Pending`], and the command applies there when that poll returns.
    /// Other groups are neither asked nor waited for.
    pub fn pause(&self, selector: impl Into<Selector>) -> Result<usize, ControlError> {
        let sel = selector.into();
        self.inner.command(&sel, |r| Command::Pause(sel.clone(), r))
    }

    /// Removes the matching sources, after a flush of what they buffered: for a source
    /// whose work is done (one process's, once it has ended), which, unlike a paused one,
    /// then costs nothing (no memory, no place in every poll and every selector match).
    /// Its statistics go with it, and its name is free again at once (even when the
    /// removal is [`ControlError::Pending`]). Returns how many were removed.
    pub fn remove_source(&self, selector: impl Into<Selector>) -> Result<usize, ControlError> {
        let sel = selector.into();
        let result = self
            .inner
            .command(&sel, |r| Command::Remove(sel.clone(), r));
        let mut removed = Vec::new();
        self.inner.sources().retain(|entry| {
            let gone = sel.matches(&entry.name);
            if gone {
                removed.push(entry.name.clone());
            }
            !gone
        });
        if !removed.is_empty() {
            let mut stats = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.retain(|(name, kind, _)| {
                !(matches!(kind, ElementKind::Source) && removed.contains(name))
            });
        }
        result
    }

    /// Resumes the matching sources; the next poll comes one interval from now.
    pub fn resume(&self, selector: impl Into<Selector>) -> Result<usize, ControlError> {
        let sel = selector.into();
        self.inner
            .command(&sel, |r| Command::Resume(sel.clone(), r))
    }

    /// Changes the poll interval of the matching sources (a manual source becomes periodic).
    pub fn set_interval(
        &self,
        selector: impl Into<Selector>,
        interval: Duration,
    ) -> Result<usize, ControlError> {
        let sel = selector.into();
        if interval.is_zero() {
            return Err(ControlError::ZeroInterval(sel.to_string()));
        }
        self.inner
            .command(&sel, |r| Command::SetInterval(sel.clone(), interval, r))
    }

    /// Polls the matching active sources once, as soon as possible, and flushes them.
    /// The returned [`Completion`] resolves, to the number of sources polled, once their
    /// points are queued for the outputs. This call itself never waits on a group: each
    /// group's thread polls in its next tick (a source blocked in its poll delays only its
    /// own group's part; [`Completion::wait_timeout`] bounds the wait).
    ///
    /// Before the source threads start ([`PipelineBuilder::defer_source_threads`](super::PipelineBuilder::defer_source_threads)),
    /// no thread would answer: the sources are polled on the calling thread, and the
    /// completion is resolved when this returns.
    pub fn trigger_now(&self, selector: impl Into<Selector>) -> Completion {
        let sel = selector.into();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ack = TriggerAck::new(tx);
        let t = Timestamp::now();
        for group in self.inner.targets(&sel) {
            let command = Command::Trigger(sel.clone(), Arc::clone(&ack), t);
            group.submit(command, &self.inner.dispatcher);
        }
        drop(ack);
        Completion(rx)
    }

    /// Polls the matching active sources once, with one timestamp, and flushes them: their
    /// points are queued for the outputs when this returns `Ok`. Returns how many sources
    /// were polled.
    ///
    /// Unlike [`PipelineControl::trigger_now`], the call waits for the polls (until the
    /// control deadline, as [`PipelineControl::pause`]): for a caller that waits anyway,
    /// such as a measurement of one command. A group whose thread has not started is polled
    /// on the calling thread; a started one polls on its own thread, at once.
    pub fn poll_now(&self, selector: impl Into<Selector>) -> Result<usize, ControlError> {
        let sel = selector.into();
        let t = Timestamp::now();
        self.inner
            .command(&sel, |r| Command::Poll(sel.clone(), t, r))
    }

    /// Adds a source while running. It joins the thread of the sources with the same
    /// poll interval, or gets its own. It does not wait for that thread: the source is
    /// there for every later call.
    pub fn add_source(
        &self,
        plugin: &str,
        name: &str,
        source: Box<dyn Source>,
        trigger: Trigger,
    ) -> Result<(), ControlError> {
        let name = ElementName::new(plugin, name);
        if trigger.poll_interval.is_some_and(|i| i.is_zero()) {
            return Err(ControlError::ZeroInterval(name.to_string()));
        }
        let mut sources = self.inner.sources();
        if sources.iter().any(|e| e.name == name) {
            return Err(ControlError::DuplicateName(name));
        }
        let mut groups = self.inner.groups();
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(ControlError::ShuttingDown);
        }
        let slot = SourceSlot::new(name, source, &trigger, Instant::now());
        let entry = SourceEntry {
            name: slot.name.clone(),
            group: trigger.poll_interval,
            counters: Arc::clone(&slot.counters),
        };
        match groups.iter().find(|g| g.interval == trigger.poll_interval) {
            Some(group) => group
                .shared()
                .submit(Command::Add(slot), &self.inner.dispatcher),
            None => {
                let dispatcher = Arc::clone(&self.inner.dispatcher);
                let interval = trigger.poll_interval;
                groups.push(if self.inner.threads_started.load(Ordering::SeqCst) {
                    SourceGroup::spawn(interval, vec![slot], dispatcher)?
                } else {
                    SourceGroup::new(interval, vec![slot], dispatcher)
                });
            }
        }
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                entry.name.clone(),
                ElementKind::Source,
                Arc::clone(&entry.counters),
            ));
        sources.push(entry);
        Ok(())
    }

    /// The sources, with whether each is active (not paused, not stopped). Never waits on
    /// a group.
    pub fn sources(&self) -> Vec<(ElementName, bool)> {
        let sources = self.inner.sources();
        sources
            .iter()
            .map(|e| (e.name.clone(), e.counters.active()))
            .collect()
    }

    /// Announces an event to every plugin that subscribed, in plugin order. A panicking
    /// handler is logged and skipped.
    pub fn emit(&self, event: &Event) {
        for (plugin, handler) in &self.inner.subscribers {
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(event, self)));
            if let Err(panic) = result {
                log::error!(
                    "event handler of plugin {plugin} panicked on {event:?}: {}",
                    panic_message(&*panic)
                );
            }
        }
    }

    /// What happened so far to each source, transform and output: polls, points, errors,
    /// whether it stopped, the last successful poll. Reads atomics: it never waits on the
    /// pipeline.
    pub fn element_stats(&self) -> Vec<ElementStats> {
        let stats = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats
            .iter()
            .map(|(name, kind, c)| c.snapshot(name, *kind))
            .collect()
    }

    /// What happened so far to the points of each output.
    pub fn output_stats(&self) -> Vec<OutputStats> {
        self.inner
            .dispatcher
            .outputs
            .iter()
            .map(|o| o.stats())
            .collect()
    }

    /// The figures of each output if the process exited now, without draining anything
    /// (a forced exit): the points still queued for it, and those its sources have polled
    /// but not flushed yet, count as lost.
    pub fn output_stats_at_forced_exit(&self) -> Vec<OutputStats> {
        let in_sources = self.inner.dispatcher.in_sources.load(Ordering::Relaxed);
        let mut stats = self.output_stats();
        for s in &mut stats {
            s.failed_points += s.queued_points + in_sources;
            s.queued_points = 0;
        }
        stats
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
}
