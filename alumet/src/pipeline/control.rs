//! The control handle: pause, resume, re-time, trigger and add sources while running;
//! dispatch events to plugins; ask for shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::measurement::Timestamp;

use super::dispatch::Dispatcher;
use super::element::{Event, Source, Trigger};
use super::output::OutputStats;
use super::ratelimit::panic_message;
use super::selector::{ElementName, Selector};
use super::slot::{self, SourceSlot, TriggerAck};
use super::sources::SourceGroup;
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
    stats: Mutex<Vec<(ElementName, ElementKind, Arc<Counters>)>>,
    shutdown_requested: Mutex<bool>,
    shutdown_cv: Condvar,
}

impl ControlInner {
    pub(crate) fn new(
        groups: Vec<SourceGroup>,
        dispatcher: Arc<Dispatcher>,
        subscribers: Vec<(String, Subscriber)>,
        stats: Vec<(ElementName, ElementKind, Arc<Counters>)>,
    ) -> Self {
        ControlInner {
            groups: Mutex::new(groups),
            dispatcher,
            subscribers,
            closing: AtomicBool::new(false),
            threads_started: AtomicBool::new(false),
            stats: Mutex::new(stats),
            shutdown_requested: Mutex::new(false),
            shutdown_cv: Condvar::new(),
        }
    }

    pub(crate) fn groups(&self) -> MutexGuard<'_, Vec<SourceGroup>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
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
    fn for_each_source(&self, selector: &Selector, mut f: impl FnMut(&mut SourceSlot)) -> usize {
        self.inner
            .groups()
            .iter()
            .map(|g| g.for_each_matching(selector, &mut f))
            .sum()
    }

    /// Pauses the matching sources: no poll starts after this returns. Returns how many
    /// sources matched.
    pub fn pause(&self, selector: impl Into<Selector>) -> usize {
        self.for_each_source(&selector.into(), slot::pause)
    }

    /// Removes the matching sources, after a flush of what they buffered: for a source
    /// whose work is done (one process's, once it has ended), which, unlike a paused one,
    /// then costs nothing (no memory, no place in every poll and every selector match).
    /// Its statistics go with it. Returns how many were removed.
    pub fn remove_source(&self, selector: impl Into<Selector>) -> usize {
        let selector = selector.into();
        let removed: Vec<ElementName> = self
            .inner
            .groups()
            .iter()
            .flat_map(|g| g.remove_matching(&selector, &self.inner.dispatcher))
            .collect();
        if !removed.is_empty() {
            let mut stats = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.retain(|(name, kind, _)| {
                !(matches!(kind, ElementKind::Source) && removed.contains(name))
            });
        }
        removed.len()
    }

    /// Resumes the matching sources; the next poll comes one interval from now.
    pub fn resume(&self, selector: impl Into<Selector>) -> usize {
        self.for_each_source(&selector.into(), slot::resume)
    }

    /// Changes the poll interval of the matching sources (a manual source becomes periodic).
    pub fn set_interval(
        &self,
        selector: impl Into<Selector>,
        interval: Duration,
    ) -> Result<usize, ControlError> {
        let selector = selector.into();
        if interval.is_zero() {
            return Err(ControlError::ZeroInterval(selector.to_string()));
        }
        Ok(self.for_each_source(&selector, |s| slot::set_interval(s, interval)))
    }

    /// Polls the matching active sources once, as soon as possible, and flushes them.
    /// The returned [`Completion`] resolves, to the number of sources polled, once their
    /// points are queued for the outputs.
    ///
    /// Before the source threads start ([`PipelineBuilder::defer_source_threads`](super::PipelineBuilder::defer_source_threads)),
    /// no thread would answer: the sources are polled on the calling thread, and the
    /// completion is resolved when this returns.
    pub fn trigger_now(&self, selector: impl Into<Selector>) -> Completion {
        let selector = selector.into();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ack = TriggerAck::new(tx);
        let waiting: Vec<_> = {
            let groups = self.inner.groups();
            for group in groups.iter() {
                group.for_each_matching(&selector, |s| slot::trigger(s, &ack));
            }
            groups
                .iter()
                .filter(|g| !g.started())
                .map(|g| g.shared())
                .collect()
        };
        let t = Timestamp::now();
        for group in waiting {
            // Answers the trigger just queued in this group's slots.
            group.poll_here(&selector, t, &self.inner.dispatcher);
        }
        drop(ack);
        Completion(rx)
    }

    /// Polls the matching active sources once, on the calling thread, with one timestamp,
    /// and flushes them: their points are queued for the outputs (or written, by an output
    /// written inline) when this returns. Returns how many sources were polled.
    ///
    /// Unlike [`PipelineControl::trigger_now`], no source thread is woken and nothing is
    /// waited for but the polls themselves (and a source thread that is polling the same
    /// group): for a caller that waits anyway, such as a measurement of one command. A
    /// source that blocks blocks the caller.
    pub fn poll_now(&self, selector: impl Into<Selector>) -> usize {
        let selector = selector.into();
        let groups: Vec<_> = self.inner.groups().iter().map(|g| g.shared()).collect();
        let t = Timestamp::now();
        groups
            .iter()
            .map(|g| g.poll_here(&selector, t, &self.inner.dispatcher))
            .sum()
    }

    /// Adds a source while running. It joins the thread of the sources with the same
    /// poll interval, or gets its own.
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
        let mut groups = self.inner.groups();
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(ControlError::ShuttingDown);
        }
        if groups
            .iter()
            .any(|g| g.names().iter().any(|(n, _)| *n == name))
        {
            return Err(ControlError::DuplicateName(name));
        }
        let slot = SourceSlot::new(name, source, &trigger, std::time::Instant::now());
        let counters = Arc::clone(&slot.counters);
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((slot.name.clone(), ElementKind::Source, counters));
        match groups.iter().find(|g| g.interval == trigger.poll_interval) {
            Some(group) => group.add(slot),
            None if self.inner.threads_started.load(Ordering::SeqCst) => {
                let group = SourceGroup::spawn(
                    trigger.poll_interval,
                    vec![slot],
                    Arc::clone(&self.inner.dispatcher),
                )?;
                groups.push(group);
            }
            None => groups.push(SourceGroup::new(
                trigger.poll_interval,
                vec![slot],
                Arc::clone(&self.inner.dispatcher),
            )),
        }
        Ok(())
    }

    /// The sources, with whether each is active (not paused, not stopped).
    pub fn sources(&self) -> Vec<(ElementName, bool)> {
        self.inner.groups().iter().flat_map(|g| g.names()).collect()
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

/// The end of a [`PipelineControl::trigger_now`]: `.await` it in async code, or
/// [`Completion::wait`] for it in a thread.
#[must_use = "a trigger happens anyway; await or wait to know when its points are queued"]
pub struct Completion(tokio::sync::oneshot::Receiver<usize>);

impl Completion {
    /// Blocks this thread until the triggered polls are done; returns how many sources
    /// were polled.
    pub fn wait(mut self) -> usize {
        struct ThreadWaker(std::thread::Thread);
        impl Wake for ThreadWaker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(n) = Pin::new(&mut self).poll(&mut cx) {
                return n;
            }
            std::thread::park();
        }
    }
}

impl Future for Completion {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        // A dropped sender means the pipeline stopped: nothing was polled.
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(0))
    }
}
