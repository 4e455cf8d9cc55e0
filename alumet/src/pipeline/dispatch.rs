//! From a flushed buffer to the output queues: transforms in order, then one shared
//! reference per output.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crate::measurement::MeasurementBuffer;

use super::element::{Transform, TransformContext};
use super::output::OutputSlot;
use super::ratelimit::{caught, judge, Called, RateLimited};
use super::selector::ElementName;
use super::stats::Counters;

pub(crate) struct TransformSlot {
    pub(crate) name: ElementName,
    /// `None` once the transform is stopped.
    pub(crate) transform: Option<Box<dyn Transform>>,
    pub(crate) log: RateLimited,
    pub(crate) counters: Arc<Counters>,
}

/// Runs the transforms and fills the output queues; shared by every flushing thread.
pub(crate) struct Dispatcher {
    transforms: Mutex<Vec<TransformSlot>>,
    has_transforms: bool,
    pub(crate) outputs: Vec<Arc<OutputSlot>>,
    ctx: TransformContext,
    /// Points polled by the source threads and not flushed yet, all groups together.
    pub(crate) in_sources: AtomicU64,
}

impl Dispatcher {
    /// The counters of the transforms, for the statistics.
    pub(crate) fn transform_counters(&self) -> Vec<(ElementName, Arc<Counters>)> {
        let transforms = self.transforms.lock().unwrap_or_else(|e| e.into_inner());
        transforms
            .iter()
            .map(|t| (t.name.clone(), Arc::clone(&t.counters)))
            .collect()
    }

    pub(crate) fn new(
        transforms: Vec<TransformSlot>,
        outputs: Vec<Arc<OutputSlot>>,
        ctx: TransformContext,
    ) -> Self {
        Dispatcher {
            has_transforms: !transforms.is_empty(),
            transforms: Mutex::new(transforms),
            outputs,
            ctx,
            in_sources: AtomicU64::new(0),
        }
    }

    /// Transforms the buffer (cloned first only if it is shared, which the pipeline avoids)
    /// and queues it for every output.
    pub(crate) fn dispatch(&self, buffer: &mut Arc<MeasurementBuffer>) {
        if self.has_transforms {
            let points = Arc::make_mut(buffer);
            let mut transforms = self.transforms.lock().unwrap_or_else(|e| e.into_inner());
            for slot in transforms.iter_mut() {
                apply(slot, points, &self.ctx);
            }
        }
        if buffer.is_empty() {
            return;
        }
        for output in &self.outputs {
            output.push(buffer);
        }
    }

    /// At shutdown, once no source flushes any more: each transform's
    /// [`finish`](Transform::finish), in order, its points passed through the later
    /// transforms, then queued for every output. The transforms are then dropped (the
    /// dispatcher may outlive the pipeline, in a control handle kept by another thread).
    pub(crate) fn finish(&self) {
        let mut buffer = MeasurementBuffer::new();
        let mut transforms = self.transforms.lock().unwrap_or_else(|e| e.into_inner());
        for slot in transforms.iter_mut() {
            if !buffer.is_empty() {
                apply(slot, &mut buffer, &self.ctx);
            }
            run(slot, &mut buffer, &self.ctx, Step::Finish);
        }
        let finished: Vec<Box<dyn Transform>> = transforms
            .iter_mut()
            .filter_map(|slot| slot.transform.take())
            .collect();
        drop(transforms);
        if caught(|| drop(finished)).is_err() {
            log::error!("a transform panicked while being dropped");
        }
        if buffer.is_empty() {
            return;
        }
        let buffer = Arc::new(buffer);
        for output in &self.outputs {
            output.push(&buffer);
        }
    }
}

/// How many sent buffers a group keeps to reuse once the outputs are done with them: as
/// many as its ticks flush while an output worker lingers ([`LINGER`](super::output::LINGER)),
/// 100 at 10 kHz.
const SPARE_TICK_BUFFERS: usize = 128;

/// The one buffer a group's tick fills with the points of every source it flushes, handed
/// on once; and the sent buffers it reuses, oldest first, once every output is done with
/// them (no allocation per tick once they are warm).
#[derive(Default)]
pub(crate) struct TickBuffer {
    current: Arc<MeasurementBuffer>,
    spare: VecDeque<Arc<MeasurementBuffer>>,
}

impl TickBuffer {
    /// The buffer of this tick (never shared until it is dispatched).
    pub(crate) fn points(&mut self) -> &mut MeasurementBuffer {
        Arc::make_mut(&mut self.current)
    }

    /// Hands the tick's points to the transforms and outputs, then takes a free buffer.
    pub(crate) fn dispatch(&mut self, dispatcher: &Dispatcher) {
        if self.current.is_empty() {
            return;
        }
        dispatcher.dispatch(&mut self.current);
        if let Some(points) = Arc::get_mut(&mut self.current) {
            // No output took it (the transforms emptied it): reuse it at once.
            points.clear();
            return;
        }
        let capacity = self.current.len();
        let free = self
            .spare
            .front()
            .is_some_and(|b| Arc::strong_count(b) == 1);
        let reused = if free { self.spare.pop_front() } else { None };
        let next = match reused {
            Some(mut b) => {
                Arc::make_mut(&mut b).clear();
                b
            }
            None => Arc::new(MeasurementBuffer::with_capacity(capacity)),
        };
        let sent = std::mem::replace(&mut self.current, next);
        if self.spare.len() < SPARE_TICK_BUFFERS {
            self.spare.push_back(sent);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Apply,
    Finish,
}

fn apply(slot: &mut TransformSlot, buffer: &mut MeasurementBuffer, ctx: &TransformContext) {
    run(slot, buffer, ctx, Step::Apply)
}

fn run(
    slot: &mut TransformSlot,
    buffer: &mut MeasurementBuffer,
    ctx: &TransformContext,
    step: Step,
) {
    let Some(transform) = slot.transform.as_mut() else {
        return;
    };
    let call = || match step {
        Step::Apply => transform.apply(buffer, ctx),
        Step::Finish => transform.finish(buffer, ctx),
    };
    let failed = "failed on a buffer, passing it on";
    match judge("transform", &slot.name, caught(call), failed, || {
        slot.log.check()
    }) {
        Called::Done => {}
        Called::Failed => slot.counters.retryable(),
        Called::Stopped => {
            slot.transform = None;
            slot.counters.stopped();
        }
    }
}

/// Where an autonomous source sends the points it measures.
#[derive(Clone)]
pub struct SourceSink {
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) name: ElementName,
    pub(crate) counters: Arc<Counters>,
}

impl SourceSink {
    /// Hands a buffer to the transforms and outputs. It never blocks on an output.
    pub fn send(&self, buffer: MeasurementBuffer) {
        if buffer.is_empty() {
            return;
        }
        let at = buffer
            .iter()
            .next()
            .map_or_else(crate::measurement::Timestamp::now, |p| p.timestamp);
        self.counters.success(buffer.len(), at);
        self.dispatcher.dispatch(&mut Arc::new(buffer));
    }

    /// The source's name.
    pub fn name(&self) -> &ElementName {
        &self.name
    }
}
