//! A group tick's one buffer, reused once the outputs are done with it, and the sink of an
//! autonomous source: both hand their points to the [`Dispatcher`].

use std::collections::VecDeque;
use std::sync::Arc;

use crate::measurement::MeasurementBuffer;

use super::dispatch::Dispatcher;
use super::selector::ElementName;
use super::stats::Counters;

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
    /// The most points a tick has held: every buffer handed out holds that many without
    /// growing (ticks differ: a source may read more figures every tenth poll).
    largest: usize,
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
        self.largest = self.largest.max(self.current.len());
        dispatcher.dispatch(&mut self.current, self.largest);
        if let Some(points) = Arc::get_mut(&mut self.current) {
            // No output took it (the transforms emptied it): reuse it at once.
            points.clear();
            return;
        }
        let capacity = self.largest;
        let free = self
            .spare
            .front()
            .is_some_and(|b| Arc::strong_count(b) == 1);
        let reused = if free { self.spare.pop_front() } else { None };
        let next = match reused {
            Some(mut b) => {
                let points = Arc::make_mut(&mut b);
                points.clear();
                points.reserve(capacity);
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
        self.dispatcher.dispatch_owned(Arc::new(buffer));
    }

    /// The source's name.
    pub fn name(&self) -> &ElementName {
        &self.name
    }
}
