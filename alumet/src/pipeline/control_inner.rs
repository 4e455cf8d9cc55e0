//! The state behind [`PipelineControl`](super::PipelineControl): the registry of sources,
//! the groups, and how a call reaches the groups that hold its sources.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::command::{self, Command, Reply};
use super::control::ControlError;
use super::dispatch::Dispatcher;
use super::element::{Source, Trigger};
use super::registry::{Registry, Runner, SourceEntry, SourceId, Target};
use super::selector::ElementName;
use super::slot::SourceSlot;
use super::sources::{GroupShared, Phase, SourceGroup, SOURCES_PER_THREAD, THREADS_PER_INTERVAL};
use super::stats::{Counters, ElementKind};
use super::subscribers::{Subscriber, Subscribers};

/// A command sent to the groups: where their answers come, how many will, and how many
/// cannot come before the call returns (the calling thread's own group).
pub(crate) struct Sent {
    replies: Receiver<usize>,
    expected: usize,
    own: usize,
}

pub(crate) struct ControlInner {
    pub(crate) groups: Mutex<Vec<SourceGroup>>,
    /// Groups left without sources, whose threads were asked to stop; dropped once ended,
    /// stopped with the others at shutdown.
    retired: Mutex<Vec<SourceGroup>>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// The plugins' event handlers.
    pub(crate) subscribers: Subscribers,
    pub(crate) closing: AtomicBool,
    /// Whether the source threads were started ([`RunningPipeline::start_source_threads`](super::RunningPipeline::start_source_threads)):
    /// until then, a group added while running waits for them too. (A trigger goes by each
    /// group's own state: see [`PipelineControl::trigger_now`](super::PipelineControl::trigger_now).)
    /// Changed and read under the `groups` lock.
    pub(crate) threads_started: AtomicBool,
    /// The managed sources. Locked before `groups`.
    registry: Mutex<Registry>,
    /// How long a call waits for the groups' answers.
    pub(crate) timeout: Duration,
    /// Transforms and outputs (sources are in the registry).
    pub(crate) stats: Mutex<Vec<(ElementName, ElementKind, Arc<Counters>)>>,
    pub(crate) shutdown_requested: Mutex<bool>,
    pub(crate) shutdown_cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ControlInner {
    pub(crate) fn new(
        (groups, registry): (Vec<SourceGroup>, Registry),
        dispatcher: Arc<Dispatcher>,
        subscribers: Vec<Subscriber>,
        stats: Vec<(ElementName, ElementKind, Arc<Counters>)>,
        timeout: Duration,
    ) -> Self {
        ControlInner {
            groups: Mutex::new(groups),
            retired: Mutex::default(),
            dispatcher,
            subscribers: Subscribers::new(subscribers),
            closing: AtomicBool::new(false),
            threads_started: AtomicBool::new(false),
            registry: Mutex::new(registry),
            timeout,
            stats: Mutex::new(stats),
            shutdown_requested: Mutex::new(false),
            shutdown_cv: Condvar::new(),
        }
    }

    pub(crate) fn groups(&self) -> MutexGuard<'_, Vec<SourceGroup>> {
        lock(&self.groups)
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// Every group, the retired ones included, for the shutdown.
    pub(crate) fn take_groups(&self) -> Vec<SourceGroup> {
        let mut groups = std::mem::take(&mut *self.groups());
        groups.append(&mut lock(&self.retired));
        groups
    }

    /// The groups holding a source that `target` names. Never waits on a group.
    fn targets(
        registry: &Registry,
        target: &Target,
    ) -> Result<Vec<Arc<GroupShared>>, ControlError> {
        if let Target::Id(id) = target {
            let entry = registry.get(*id).ok_or(ControlError::NoSuchSource(*id))?;
            return Ok(entry.group().cloned().into_iter().collect());
        }
        let mut groups: Vec<Arc<GroupShared>> = Vec::new();
        for id in registry.resolve(target) {
            if let Some(group) = registry.get(id).and_then(SourceEntry::group) {
                if !groups.iter().any(|g| Arc::ptr_eq(g, group)) {
                    groups.push(Arc::clone(group));
                }
            }
        }
        Ok(groups)
    }

    /// Refuses a call that only managed sources answer for the id of an autonomous source
    /// (a selector skips autonomous sources).
    fn managed_only(registry: &Registry, target: &Target) -> Result<(), ControlError> {
        if let Target::Id(id) = target {
            if let Some(entry) = registry.get(*id).filter(|e| e.group().is_none()) {
                return Err(ControlError::Autonomous(entry.name.clone()));
            }
        }
        Ok(())
    }

    /// Hands a command to every group holding a source that `target` names.
    fn send(
        &self,
        registry: &Registry,
        target: &Target,
        make: impl Fn(Reply) -> Command,
    ) -> Result<Sent, ControlError> {
        let (tx, replies) = std::sync::mpsc::channel();
        let (mut expected, mut own) = (0, 0);
        for group in Self::targets(registry, target)? {
            if group.is_current_thread() {
                own += 1;
            } else {
                expected += 1;
            }
            group.submit(make(tx.clone()), &self.dispatcher);
        }
        Ok(Sent {
            replies,
            expected,
            own,
        })
    }

    /// Waits for the answers to `sent` until the control deadline; returns their sum.
    fn wait(&self, sent: Sent, start: Instant) -> Result<usize, ControlError> {
        let deadline = super::slot::after(start, self.timeout);
        command::collect(sent.replies, sent.expected, sent.own, deadline, start)
    }

    /// Sends a command to every group holding a source that `target` names and waits for
    /// their answers until the deadline; returns the sum of the answers.
    pub(crate) fn command(
        &self,
        target: &Target,
        make: impl Fn(Reply) -> Command,
    ) -> Result<usize, ControlError> {
        let start = Instant::now();
        let registry = self.registry();
        Self::managed_only(&registry, target)?;
        let sent = self.send(&registry, target, make)?;
        drop(registry);
        self.wait(sent, start)
    }

    /// Polls the targeted sources in their groups' next ticks (see `trigger_now`).
    pub(crate) fn trigger(&self, target: &Target, make: impl Fn() -> Command) {
        let registry = self.registry();
        // An unknown id triggers nothing: the completion resolves to 0.
        for group in Self::targets(&registry, target).unwrap_or_default() {
            group.submit(make(), &self.dispatcher);
        }
    }

    /// Removes the targeted sources from the registry (their names free, their ids dead)
    /// and from their groups, which flush them first; then retires the groups left empty.
    /// An autonomous source is told to stop (its own shutdown signal): what it sends until
    /// its task returns is still delivered.
    pub(crate) fn remove(&self, target: &Target) -> Result<usize, ControlError> {
        let start = Instant::now();
        let mut emptied: Vec<Arc<GroupShared>> = Vec::new();
        let mut stopped = 0;
        let sent = {
            // Under the registry lock, so that no source can be added between the two.
            let mut registry = self.registry();
            let sent = self.send(&registry, target, |r| Command::Remove(target.clone(), r))?;
            for id in registry.resolve(target) {
                let Some(entry) = registry.remove(id) else {
                    continue;
                };
                let group = match entry.runner {
                    Runner::Group(group) => group,
                    Runner::Task(stop) => {
                        let _ = stop.send(true);
                        stopped += 1;
                        continue;
                    }
                };
                let empty = group.members.load(Ordering::Relaxed) == 0;
                if empty && !emptied.iter().any(|g| Arc::ptr_eq(g, &group)) {
                    emptied.push(group);
                }
            }
            sent
        };
        let result = self.wait(sent, start).map(|n| n + stopped);
        if !emptied.is_empty() {
            self.retire(&emptied);
        }
        result
    }

    /// Takes away the groups in `emptied` that still have no source, and stops their threads.
    fn retire(&self, emptied: &[Arc<GroupShared>]) {
        let _registry = self.registry();
        let mut groups = self.groups();
        let mut retired = lock(&self.retired);
        retired.retain(|g| !g.ended());
        for shared in emptied {
            if shared.members.load(Ordering::Relaxed) != 0 {
                continue; // A source joined it meanwhile.
            }
            if let Some(i) = groups.iter().position(|g| g.is(shared)) {
                retired.extend(groups.swap_remove(i).retire());
            }
        }
    }

    /// Adds a source to the group of its interval, or to a new group.
    pub(crate) fn add(
        &self,
        name: ElementName,
        source: Box<dyn Source>,
        trigger: &Trigger,
    ) -> Result<SourceId, ControlError> {
        self.add_at(None, name, source, trigger)
    }

    /// [`add`](Self::add), in the place `reserved` for it (see [`Registry::reserve`]), if
    /// given.
    pub(crate) fn add_at(
        &self,
        reserved: Option<SourceId>,
        name: ElementName,
        source: Box<dyn Source>,
        trigger: &Trigger,
    ) -> Result<SourceId, ControlError> {
        if trigger.poll_interval.is_some_and(|i| i.is_zero()) {
            return Err(ControlError::ZeroInterval(name.to_string()));
        }
        let mut registry = self.registry();
        if registry.id_of(&name).is_some() {
            return Err(ControlError::DuplicateName(name));
        }
        let mut groups = self.groups();
        if self.closing.load(Ordering::SeqCst) {
            return Err(ControlError::ShuttingDown);
        }
        let interval = trigger.poll_interval;
        let now = Instant::now();
        let (group, phase) = match place(&groups, interval, now) {
            Place::Existing(i) => (groups[i].shared(), groups[i].phase),
            Place::New(phase) => {
                let dispatcher = Arc::clone(&self.dispatcher);
                let schedule = (interval, phase);
                let group = if self.threads_started.load(Ordering::SeqCst) {
                    SourceGroup::spawn(schedule, Vec::new(), dispatcher)?
                } else {
                    SourceGroup::new(schedule, Vec::new(), dispatcher)
                };
                let shared = group.shared();
                groups.push(group);
                (shared, phase)
            }
        };
        let counters = Arc::new(Counters::default());
        let entry = SourceEntry {
            name: name.clone(),
            runner: Runner::Group(Arc::clone(&group)),
            counters: Arc::clone(&counters),
        };
        let id = match reserved {
            Some(id) => {
                if !registry.insert_at(id, entry) {
                    return Err(ControlError::DuplicateName(name));
                }
                id
            }
            None => registry.insert(entry),
        };
        let created = interval.map_or(now, |i| phase.creation_instant(i, now));
        let mut slot = SourceSlot::new((id, name), source, trigger, created);
        counters.set_interval(trigger.poll_interval);
        slot.counters = counters;
        group.submit(Command::Add(slot), &self.dispatcher);
        Ok(id)
    }

    pub(crate) fn wait_for_shutdown_request(&self, timeout: Option<Duration>) -> bool {
        let requested = lock(&self.shutdown_requested);
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

/// Where a source added while running goes.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// Into the group at this index.
    Existing(usize),
    /// Into a new group, with this phase.
    New(Phase),
}

/// The group of a source of `interval` added at `now`: the interval's group with the fewest
/// sources while it has fewer than [`SOURCES_PER_THREAD`] or the interval has all its
/// threads; else a new group at the first free phase of the interval (the first group of
/// an interval takes `now` as its phase).
fn place(groups: &[SourceGroup], interval: Option<Duration>, now: Instant) -> Place {
    let same: Vec<(usize, &SourceGroup)> = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.interval == interval)
        .collect();
    let members = |g: &SourceGroup| g.shared().members.load(Ordering::Relaxed);
    let least = same.iter().min_by_key(|(_, g)| members(g));
    let (Some(&(i, least)), Some(every)) = (least, interval) else {
        // Manual sources share one group; the first of an interval starts one.
        return match least {
            Some(&(i, _)) => Place::Existing(i),
            None => Place::New(Phase::first(now)),
        };
    };
    if members(least) < SOURCES_PER_THREAD || same.len() >= THREADS_PER_INTERVAL {
        return Place::Existing(i);
    }
    let free = (0..THREADS_PER_INTERVAL)
        .find(|k| same.iter().all(|(_, g)| g.phase.index != *k))
        .unwrap_or(same.len());
    Place::New(least.phase.sibling(every, free))
}
