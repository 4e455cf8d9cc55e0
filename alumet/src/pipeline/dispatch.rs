//! From a flushed buffer to the output queues: through the transforms' stage when there
//! are transforms (`transform_stage.rs`), then one shared reference per output.
//!
//! The transforms and outputs in use form one immutable [`DispatchSet`], read with one
//! pointer load per dispatch ([`ArcSwap`]) and replaced as a whole when an element is added
//! or removed while running (read-copy-update, `dispatch_change.rs`): a flushing thread
//! takes no lock shared with other threads to find them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use arc_swap::ArcSwap;

use crate::measurement::{MeasurementBuffer, Timestamp};

use super::element::{Clock, Transform, TransformContext};
use super::inputs::MetricFilter;
use super::output::OutputSlot;
use super::ratelimit::{caught, judge, Called, RateLimited};
use super::selector::ElementName;
use super::sources::GroupShared;
use super::stats::{Counters, ElementKind};
use super::transform_stage::TransformStage;

/// One transform; its lock is taken only while it runs (on the transforms' thread, or by a
/// change that finishes it).
pub(crate) struct TransformSlot {
    pub(crate) name: ElementName,
    state: Mutex<TransformState>,
    pub(crate) counters: Arc<Counters>,
}

struct TransformState {
    /// `None` once the transform is stopped or finished.
    transform: Option<Box<dyn Transform>>,
    log: RateLimited,
}

impl TransformSlot {
    pub(crate) fn new(name: ElementName, transform: Box<dyn Transform>) -> Arc<Self> {
        Arc::new(TransformSlot {
            name,
            state: Mutex::new(TransformState {
                transform: Some(transform),
                log: RateLimited::default(),
            }),
            counters: Arc::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TransformState> {
        // A panic in the transform is caught: the lock is never poisoned by it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn apply(&self, buffer: &mut MeasurementBuffer, ctx: &TransformContext) {
        run(self, &mut self.lock(), buffer, ctx, Step::Apply);
    }

    /// Passes `buffer` (the points of the transforms ticked before it) through the
    /// transform, then calls its `on_tick`, which may add points to it.
    pub(crate) fn tick(
        &self,
        buffer: &mut MeasurementBuffer,
        clock: &Clock,
        ctx: &TransformContext,
    ) {
        let mut state = self.lock();
        if !buffer.is_empty() {
            run(self, &mut state, buffer, ctx, Step::Apply);
        }
        run(self, &mut state, buffer, ctx, Step::Tick(clock));
    }

    /// Passes `buffer` (the points of the transforms finished before it) through the
    /// transform, then calls its `finish`, which may add points to it; then drops it.
    pub(crate) fn finish(&self, buffer: &mut MeasurementBuffer, ctx: &TransformContext) {
        let mut state = self.lock();
        if !buffer.is_empty() {
            run(self, &mut state, buffer, ctx, Step::Apply);
        }
        run(self, &mut state, buffer, ctx, Step::Finish);
        let finished = state.transform.take();
        drop(state);
        if caught(|| drop(finished)).is_err() {
            log::error!("transform {} panicked while being dropped", self.name);
        }
    }
}

/// The transforms (in order) and the outputs that a dispatch uses. Never changed: a change
/// makes a new set.
#[derive(Default)]
pub(crate) struct DispatchSet {
    pub(crate) transforms: Vec<Arc<TransformSlot>>,
    pub(crate) outputs: Vec<Arc<OutputSlot>>,
}

/// What changes the set, one change at a time.
#[derive(Default)]
pub(crate) struct Changes {
    /// The shutdown has taken the set: nothing is added any more.
    pub(crate) closed: bool,
    /// The outputs removed while running (done), for the statistics and the final report.
    pub(crate) retired: Vec<Arc<OutputSlot>>,
}

/// Hands flushed buffers to the transforms' stage or the output queues; shared by every
/// flushing thread.
pub(crate) struct Dispatcher {
    pub(crate) set: ArcSwap<DispatchSet>,
    pub(crate) changes: Mutex<Changes>,
    pub(crate) ctx: TransformContext,
    /// Points polled by the source threads and not flushed yet, all groups together.
    pub(crate) in_sources: AtomicU64,
    /// The transforms' queue and thread.
    pub(crate) stage: TransformStage,
    pub(crate) me: Weak<Dispatcher>,
    /// The groups' parts of the watermark ([`Dispatcher::watermark`]).
    clocks: Mutex<Vec<Weak<GroupShared>>>,
    /// The metrics received by the outputs of each plugin instance that names its inputs
    /// (for its outputs added while running too).
    pub(crate) filters: HashMap<String, Arc<MetricFilter>>,
}

impl Dispatcher {
    pub(crate) fn new(
        transforms: Vec<Arc<TransformSlot>>,
        outputs: Vec<Arc<OutputSlot>>,
        ctx: TransformContext,
        filters: HashMap<String, Arc<MetricFilter>>,
    ) -> Arc<Self> {
        let set = DispatchSet {
            transforms,
            outputs,
        };
        Arc::new_cyclic(|me| Dispatcher {
            set: ArcSwap::from_pointee(set),
            changes: Mutex::default(),
            ctx,
            in_sources: AtomicU64::new(0),
            stage: TransformStage::default(),
            me: me.clone(),
            clocks: Mutex::default(),
            filters,
        })
    }

    /// Counts `group` in the watermark from now on (until it stops or is dropped).
    pub(crate) fn add_clock(&self, group: &Arc<GroupShared>) {
        let mut clocks = self.clocks.lock().unwrap_or_else(|e| e.into_inner());
        clocks.retain(|g| g.strong_count() > 0);
        clocks.push(Arc::downgrade(group));
    }

    /// The pipeline's watermark: every reading that an active source polled on a schedule
    /// took at or before this time has been dispatched (those of paused sources, of
    /// sources polled only on trigger, and of autonomous sources are not covered).
    /// `None` when no such source exists. Read it before taking what was dispatched: the
    /// groups publish it after their dispatch.
    pub(crate) fn watermark(&self) -> Option<Timestamp> {
        let clocks = self.clocks.lock().unwrap_or_else(|e| e.into_inner());
        let live = clocks.iter().filter_map(Weak::upgrade);
        let running = live.filter(|g| !g.stop.load(Ordering::Acquire));
        let min = running.map(|g| g.watermark.load(Ordering::Acquire)).min()?;
        (min != u64::MAX).then(|| Timestamp::from_unix_nanos(min))
    }

    /// How long the longest tick in progress of a source thread has lasted (`None`: no
    /// thread is inside a tick).
    pub(crate) fn longest_tick(&self) -> Option<std::time::Duration> {
        let clocks = self.clocks.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now().saturating_duration_since(super::sources::busy_epoch());
        let now = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        clocks
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|g| !g.stop.load(Ordering::Acquire))
            .map(|g| g.busy_since.load(Ordering::Relaxed))
            .filter(|&since| since != 0)
            .map(|since| std::time::Duration::from_nanos(now.saturating_sub(since - 1)))
            .max()
    }

    /// The current set (a snapshot: a change made later does not show in it).
    pub(crate) fn current(&self) -> Arc<DispatchSet> {
        self.set.load_full()
    }

    /// The outputs in use, then those removed while running.
    pub(crate) fn all_outputs(&self) -> Vec<Arc<OutputSlot>> {
        let mut all = self.current().outputs.clone();
        all.extend(self.changes().retired.iter().cloned());
        all
    }

    /// The counters of the transforms and outputs in use, for the statistics.
    pub(crate) fn element_counters(&self) -> Vec<(ElementName, ElementKind, Arc<Counters>)> {
        let set = self.current();
        let transforms = set.transforms.iter().map(|t| (t, ElementKind::Transform));
        let t = transforms.map(|(t, k)| (t.name.clone(), k, Arc::clone(&t.counters)));
        let outputs = set.outputs.iter();
        let o = outputs.map(|o| (o.name.clone(), ElementKind::Output, Arc::clone(&o.counters)));
        t.chain(o).collect()
    }

    pub(crate) fn changes(&self) -> MutexGuard<'_, Changes> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a tick's buffer on: to the transforms' stage when there are transforms (the
    /// buffer is taken, and replaced by a free one), or else straight to every output's
    /// queue (shared by reference). Never runs a transform or an output here.
    /// `capacity`: how many points the free buffer should hold without growing.
    pub(crate) fn dispatch(&self, buffer: &mut Arc<MeasurementBuffer>, capacity: usize) {
        if buffer.is_empty() {
            return;
        }
        let set = self.set.load();
        if set.transforms.is_empty() {
            for output in &set.outputs {
                output.push(buffer);
            }
            return;
        }
        drop(set);
        let fresh = self.stage.fresh_buffer(capacity);
        let taken = std::mem::replace(buffer, fresh);
        self.stage.push(taken, self);
    }

    /// Hands on a buffer that the caller gives up (an autonomous source's).
    pub(crate) fn dispatch_owned(&self, buffer: Arc<MeasurementBuffer>) {
        if buffer.is_empty() {
            return;
        }
        let set = self.set.load();
        if set.transforms.is_empty() {
            for output in &set.outputs {
                output.push(&buffer);
            }
            return;
        }
        drop(set);
        self.stage.push(buffer, self);
    }

    /// At shutdown: no element is added or removed any more; returns the last set.
    pub(crate) fn close(&self) -> Arc<DispatchSet> {
        let mut changes = self.changes();
        changes.closed = true;
        self.current()
    }

    /// Each transform's [`on_tick`](Transform::on_tick), in order, its points passed
    /// through the later transforms, then queued for every output. `scratch` is empty
    /// and is left empty.
    pub(crate) fn tick(&self, scratch: &mut MeasurementBuffer, watermark: Option<Timestamp>) {
        let set = self.set.load();
        if set.transforms.is_empty() {
            return;
        }
        let clock = Clock::new(Timestamp::now(), watermark);
        for slot in &set.transforms {
            slot.tick(scratch, &clock, &self.ctx);
        }
        if !scratch.is_empty() {
            push_all(&set.outputs, std::mem::take(scratch));
        }
    }

    /// At shutdown, once no source flushes any more: each transform's
    /// [`finish`](Transform::finish), in order, its points passed through the later
    /// transforms, then queued for every output. The transforms are then dropped (the
    /// dispatcher may outlive the pipeline, in a control handle kept by another thread).
    pub(crate) fn finish(&self) {
        let set = self.current();
        let mut buffer = MeasurementBuffer::new();
        for slot in &set.transforms {
            slot.finish(&mut buffer, &self.ctx);
        }
        push_all(&set.outputs, buffer);
    }
}

/// Queues `buffer` for every output in `outputs` (nothing when it is empty).
pub(crate) fn push_all(outputs: &[Arc<OutputSlot>], buffer: MeasurementBuffer) {
    if buffer.is_empty() {
        return;
    }
    let buffer = Arc::new(buffer);
    for output in outputs {
        output.push(&buffer);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Step<'a> {
    Apply,
    Tick(&'a Clock),
    Finish,
}

fn run(
    slot: &TransformSlot,
    state: &mut TransformState,
    buffer: &mut MeasurementBuffer,
    ctx: &TransformContext,
    step: Step<'_>,
) {
    let Some(transform) = state.transform.as_mut() else {
        return;
    };
    let call = || match step {
        Step::Apply => transform.apply(buffer, ctx),
        Step::Tick(clock) => transform.on_tick(buffer, clock, ctx),
        Step::Finish => transform.finish(buffer, ctx),
    };
    let failed = "failed on a buffer, passing it on";
    match judge("transform", &slot.name, caught(call), failed, || {
        state.log.check()
    }) {
        Called::Done => {}
        Called::Failed => slot.counters.retryable(),
        Called::Stopped => {
            state.transform = None;
            slot.counters.stopped();
        }
    }
}
