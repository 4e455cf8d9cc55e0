//! The element traits (one required method each), their errors and options.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::measurement::{MeasurementAccumulator, MeasurementBuffer, ResourceConsumer, Timestamp};
use crate::metrics::MetricRegistry;

use super::delivery::Delivery;

/// A boxed future, for autonomous sources and tasks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Measures something when polled.
///
/// Closures `FnMut(&mut MeasurementAccumulator, Timestamp) -> Result<(), ElementError>`
/// are sources too.
pub trait Source: Send {
    /// Measures and pushes points into `acc`. `timestamp` is the time of this poll, shared
    /// by the sources polled in the same wake-up. Must not block for long: sources that
    /// share an interval share a thread.
    fn poll(
        &mut self,
        acc: &mut MeasurementAccumulator,
        timestamp: Timestamp,
    ) -> Result<(), ElementError>;
}

impl<F> Source for F
where
    F: FnMut(&mut MeasurementAccumulator, Timestamp) -> Result<(), ElementError> + Send,
{
    fn poll(
        &mut self,
        acc: &mut MeasurementAccumulator,
        timestamp: Timestamp,
    ) -> Result<(), ElementError> {
        self(acc, timestamp)
    }
}

/// What a transform can see besides the buffer.
#[derive(Clone, Debug)]
pub struct TransformContext {
    pub(crate) metrics: Arc<MetricRegistry>,
}

impl TransformContext {
    /// Every metric of the pipeline.
    pub fn metrics(&self) -> &MetricRegistry {
        &self.metrics
    }
}

/// The pipeline's clock, as the transforms see it ([`Transform::on_tick`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    now: Timestamp,
    watermark: Option<Timestamp>,
}

impl Clock {
    /// A clock at `now`, with `watermark` (for tests and benchmarks that drive a transform
    /// directly).
    pub fn new(now: Timestamp, watermark: Option<Timestamp>) -> Self {
        Clock { now, watermark }
    }

    /// The wall-clock time of the tick.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Every reading that an active source polled on a schedule took at or before this
    /// time has reached the transform: a consumer of such a source last read before it,
    /// and not read since, was not in its source's later polls. `None` when the pipeline
    /// has no such source. The readings of paused sources, of sources polled only on
    /// trigger and of autonomous sources are not covered.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }
}

/// Changes, adds or drops points of every flushed buffer, in registration order.
///
/// Closures `FnMut(&mut MeasurementBuffer, &TransformContext) -> Result<(), ElementError>`
/// are transforms too.
pub trait Transform: Send {
    /// Transforms the buffer in place. It runs on the transforms' own thread
    /// (`alumet-transforms`), never on a source thread: a slow transform delays the
    /// buffers behind it (and drops the oldest once their queue is full), not the polls.
    fn apply(
        &mut self,
        buffer: &mut MeasurementBuffer,
        ctx: &TransformContext,
    ) -> Result<(), ElementError>;

    /// Called on the transforms' thread after each batch of buffers it transformed, and
    /// about once a second while no buffer comes: `clock` says what time it is and up to
    /// when every reading of the sources polled on a schedule has reached this transform
    /// (its [watermark](Clock::watermark)). Push into `buffer` what is ready (a window
    /// that no late reading can change any more); the points go through the transforms
    /// registered after this one, then to every output. Does nothing by default.
    fn on_tick(
        &mut self,
        _buffer: &mut MeasurementBuffer,
        _clock: &Clock,
        _ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        Ok(())
    }

    /// Called once at shutdown, after the sources' final flush and before the outputs
    /// close: push into `buffer` what the transform still holds (an aggregation's last
    /// window, intervals waiting for data). The points go through the transforms
    /// registered after this one, then to every output. Does nothing by default.
    fn finish(
        &mut self,
        _buffer: &mut MeasurementBuffer,
        _ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        Ok(())
    }
}

impl<F> Transform for F
where
    F: FnMut(&mut MeasurementBuffer, &TransformContext) -> Result<(), ElementError> + Send,
{
    fn apply(
        &mut self,
        buffer: &mut MeasurementBuffer,
        ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        self(buffer, ctx)
    }
}

/// What an output can see besides the buffer.
#[derive(Clone, Debug)]
pub struct OutputContext {
    pub(crate) metrics: Arc<MetricRegistry>,
    pub(crate) delivery: Delivery,
}

impl OutputContext {
    /// A context over these metrics (to call an output directly, in a test or a benchmark).
    pub fn new(metrics: Arc<MetricRegistry>) -> Self {
        OutputContext {
            metrics,
            delivery: Delivery::default(),
        }
    }

    /// Every metric of the pipeline (names and units for headers, series names...).
    pub fn metrics(&self) -> &MetricRegistry {
        &self.metrics
    }

    /// Where an output registered with [`OutputOptions::reports_delivery`] says what
    /// became of its points (each output has its own). Others need not use it.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }
}

/// Writes buffers somewhere, blocking: it runs on its own thread (`alumet-out-NAME`), so
/// a slow disk or server delays only this output. A network output sends from there (or
/// from a sender thread of its own, reporting through [`OutputContext::delivery`]).
///
/// Closures `FnMut(&MeasurementBuffer, &OutputContext) -> Result<(), ElementError>`
/// are outputs too.
pub trait Output: Send {
    /// Writes one buffer.
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError>;

    /// Called once after the last buffer at shutdown (flush files, close connections).
    fn finish(&mut self, _ctx: &OutputContext) -> Result<(), ElementError> {
        Ok(())
    }
}

impl<F> Output for F
where
    F: FnMut(&MeasurementBuffer, &OutputContext) -> Result<(), ElementError> + Send,
{
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        self(buffer, ctx)
    }
}

/// Options of one output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputOptions {
    /// How many points may wait in the output's queue before the oldest are dropped.
    pub queue_capacity: usize,
    /// The output says itself, through [`OutputContext::delivery`], which points were
    /// written, dropped or lost, because it delivers them after `write` returns (a queue
    /// and a sender of its own, rows kept for a retry after a failed write). The core then
    /// counts nothing from `write`'s result (an error is still logged, and a fatal one
    /// stops the output); the points the output has not accounted for when it finishes,
    /// stops or is abandoned at the shutdown deadline are counted as lost. Off by default:
    /// a successful `write` counts its points as written, a failed one as lost.
    pub reports_delivery: bool,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            queue_capacity: 1 << 16,
            reports_delivery: false,
        }
    }
}

impl OutputOptions {
    /// Sets the queue capacity, in points.
    pub fn queue_capacity(mut self, points: usize) -> Self {
        self.queue_capacity = points;
        self
    }

    /// The output reports its own deliveries (see [`OutputOptions::reports_delivery`]).
    pub fn reports_delivery(mut self) -> Self {
        self.reports_delivery = true;
        self
    }
}

/// A zero `poll_interval` or `flush_interval` in a plugin's config (the key is named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is 0: give a duration longer than zero, such as \"1s\"")]
pub struct TriggerConfigError(pub String);

/// When a source is polled and when its points are handed to transforms and outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) flush_interval: Option<Duration>,
}

impl Trigger {
    /// Polled every `interval`, and flushed after every poll (see [`Trigger::flush_every`]).
    pub fn every(interval: Duration) -> Self {
        Trigger {
            poll_interval: Some(interval),
            flush_interval: None,
        }
    }

    /// The trigger of a plugin's `poll_interval` and `flush_interval` keys, checked here for
    /// every plugin: both must be longer than zero (the error names the key, under
    /// `table`, such as `"kernel"` for `kernel.poll_interval`, or `""` at the top); a flush
    /// interval no longer than the poll interval flushes after every poll. Call it in the
    /// config's validation (a bad value is a config error at start) and to build the
    /// trigger.
    pub fn from_config(
        table: &str,
        poll_interval: Duration,
        flush_interval: Duration,
    ) -> Result<Trigger, TriggerConfigError> {
        let key = |name: &str| match table {
            "" => name.to_owned(),
            t => format!("{t}.{name}"),
        };
        if poll_interval.is_zero() {
            return Err(TriggerConfigError(key("poll_interval")));
        }
        if flush_interval.is_zero() {
            return Err(TriggerConfigError(key("flush_interval")));
        }
        let every = Trigger::every(poll_interval);
        Ok(if flush_interval > poll_interval {
            every.flush_every(flush_interval)
        } else {
            every
        })
    }

    /// Polled only when triggered through [`PipelineControl::trigger_now`](super::PipelineControl::trigger_now),
    /// and flushed after each such poll.
    pub fn manual() -> Self {
        Trigger {
            poll_interval: None,
            flush_interval: None,
        }
    }

    /// Buffers points and hands them on at most every `interval` (and always after a
    /// triggered poll and at shutdown). Fewer, larger buffers cost less per point.
    pub fn flush_every(mut self, interval: Duration) -> Self {
        self.flush_interval = Some(interval);
        self
    }

    /// The poll interval; `None` for a manual source.
    pub fn poll_interval(&self) -> Option<Duration> {
        self.poll_interval
    }
}

/// An event announced to plugins through [`PipelineControl::emit`](super::PipelineControl::emit).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// exec is about to start its command, on the thread that emits this event: a source
    /// that follows the command from its first instruction opens now what the child will
    /// inherit (perf_event counters of the calling thread, inherited and enabled at the
    /// child's exec). [`Event::ConsumerStarted`] follows with its PID once it runs.
    CommandStarting,
    /// A consumer began just now (the process that exec mode starts): per-consumer sources
    /// may start, and count what it uses from its start.
    ConsumerStarted(ResourceConsumer),
    /// A consumer that was already running is followed from now on (the process that watch
    /// mode measures): per-consumer sources may start, and count only what it uses from
    /// now on, not what it used before.
    ConsumerWatched(ResourceConsumer),
    /// A consumer ended.
    ConsumerEnded(ResourceConsumer),
}

/// How bad an element's error is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Logged; the element keeps its schedule.
    Retryable,
    /// Logged; the element is stopped, the rest of the pipeline goes on.
    Fatal,
}

/// The error of a source, transform or output.
///
/// `?` on any error makes a fatal one; use [`ElementError::retryable`] or
/// [`ElementResultExt::retryable`] for errors that may go away on the next try.
pub struct ElementError {
    kind: ErrorKind,
    error: anyhow::Error,
}

impl ElementError {
    /// An error after which the element keeps running.
    pub fn retryable(error: impl Into<anyhow::Error>) -> Self {
        ElementError {
            kind: ErrorKind::Retryable,
            error: error.into(),
        }
    }

    /// An error that stops the element.
    pub fn fatal(error: impl Into<anyhow::Error>) -> Self {
        ElementError {
            kind: ErrorKind::Fatal,
            error: error.into(),
        }
    }

    /// How bad it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The underlying error.
    pub fn error(&self) -> &anyhow::Error {
        &self.error
    }
}

impl<E: Into<anyhow::Error>> From<E> for ElementError {
    fn from(error: E) -> Self {
        ElementError::fatal(error)
    }
}

impl fmt::Debug for ElementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.kind, self.error)
    }
}

impl fmt::Display for ElementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// Marks the error of a `Result` as retryable or fatal.
pub trait ElementResultExt<T> {
    /// Makes the error retryable: the element keeps running.
    fn retryable(self) -> Result<T, ElementError>;
    /// Makes the error fatal: the element stops.
    fn fatal(self) -> Result<T, ElementError>;
}

impl<T, E: Into<anyhow::Error>> ElementResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, ElementError> {
        self.map_err(ElementError::retryable)
    }
    fn fatal(self) -> Result<T, ElementError> {
        self.map_err(ElementError::fatal)
    }
}

/// Tells an autonomous source or a task to stop: the pipeline is shutting down, or (for an
/// autonomous source) the source was removed.
#[derive(Clone, Debug)]
pub struct Shutdown {
    all: tokio::sync::watch::Receiver<bool>,
    own: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Shutdown {
    /// The pipeline's signal, and the element's own (an autonomous source's removal).
    pub(crate) fn new(
        all: tokio::sync::watch::Receiver<bool>,
        own: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Self {
        Shutdown { all, own }
    }

    /// Whether shutdown (or the removal) has begun.
    pub fn is_triggered(&self) -> bool {
        *self.all.borrow() || self.own.as_ref().is_some_and(|own| *own.borrow())
    }

    /// Waits until shutdown (or the removal) begins.
    pub async fn wait(&mut self) {
        // An error means the pipeline is gone: that is a shutdown too.
        let Shutdown { all, own } = self;
        let all = std::pin::pin!(all.wait_for(|stop| *stop));
        let Some(own) = own else {
            let _ = all.await;
            return;
        };
        let own = std::pin::pin!(own.wait_for(|stop| *stop));
        let (mut all, mut own) = (all, own);
        std::future::poll_fn(|cx| {
            if all.as_mut().poll(cx).is_ready() || own.as_mut().poll(cx).is_ready() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }
}

#[cfg(test)]
mod trigger_tests {
    use super::*;

    #[test]
    fn a_config_s_intervals_make_one_trigger_the_same_way_for_every_plugin() {
        let s = Duration::from_secs;
        let every = Trigger::from_config("", s(1), s(5)).unwrap();
        assert_eq!(every, Trigger::every(s(1)).flush_every(s(5)));
        // A flush no longer than the poll: after every poll.
        assert_eq!(
            Trigger::from_config("", s(5), s(1)).unwrap(),
            Trigger::every(s(5))
        );
        assert_eq!(
            Trigger::from_config("", s(5), s(5)).unwrap(),
            Trigger::every(s(5))
        );
        // A zero interval names its key, under the table.
        let e = Trigger::from_config("kernel", s(0), s(5)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel.poll_interval is 0: give a duration longer than zero, such as \"1s\""
        );
        let e = Trigger::from_config("", s(1), s(0)).unwrap_err();
        assert_eq!(e, TriggerConfigError("flush_interval".to_owned()));
    }
}
