//! The measurement pipeline: sources, transforms, outputs, and how they run.
//!
//! ```text
//!  source threads (one per poll interval)     transforms' thread     output threads / tasks
//!  ┌──────────────────────────────┐
//!  │ poll ─> accumulate ─> flush ─┼─> queue ─> transforms ─> ┬─> queue ─> output A (own thread)
//!  │ (sources sharing an interval │   (only when there are   ├─> queue ─> output B (own thread)
//!  │  share one wake-up)          │    transforms; in order) └─> queue ─> output C ...
//!  └──────────────────────────────┘
//!  autonomous sources (async tasks) ─> SourceSink ─> same queues
//! ```
//!
//! - **Sources** with a [`Trigger`] are polled by a dedicated thread per poll interval
//!   (up to four, a phase apart, for more than 256 sources), woken by an absolute deadline
//!   on the monotonic clock with a 1 ns timer slack: sources of one thread that share an
//!   interval are polled in the same wake-up, and no poll allocates once the
//!   buffers are warm (they are recycled when every output is done with them).
//! - On flush, a source thread only queues: the buffer goes to the **transforms'** thread
//!   (a bounded queue; the transforms run there, in order) when there are transforms, and
//!   is then shared (by reference count, not copied) with one bounded queue per
//!   **output**. A full queue drops its oldest buffers and counts the dropped points, so a
//!   slow transform or output never delays the sources, and a slow output never delays
//!   the other outputs.
//! - Outputs run on their own thread each (a network output too: there is no async
//!   output); the pipeline's tokio runtime runs autonomous sources and plugin tasks.
//! - [`PipelineControl`] (the agent's) pauses, resumes, re-times, triggers and removes
//!   sources by [`SourceId`] (what adding a source returns; O(1)) or by [`Selector`] (for
//!   people), adds sources while running, removes a plugin's sources as a unit and
//!   dispatches [`Event`]s to plugins; it adds transforms and outputs while running (the
//!   dispatch set is copied on write, read with one pointer load per tick) and removes a
//!   plugin instance's elements as a unit ([`PipelineControl::remove_plugin`]). A plugin
//!   gets a [`PluginControl`]: the same calls, confined to its own sources, and the
//!   statistics to read.
//!
//! Failures stay local: a retryable [`ElementError`] is logged and the element keeps
//! going, a fatal one stops that element only, and a panic is caught, logged with the
//! element's name, and stops that element only.

mod builder;
mod command;
mod completion;
mod control;
mod control_elements;
mod control_inner;
mod delivery;
mod dispatch;
mod dispatch_change;
mod element;
mod group_slots;
mod group_thread;
mod inputs;
mod output;
mod output_worker;
mod plugin_change;
mod plugin_control;
mod ratelimit;
mod registry;
mod runtime;
mod selector;
mod slot;
mod sources;
mod stats;
mod subscribers;
mod tasks;
mod tick;
mod transform_stage;

pub use builder::{PipelineBuilder, PipelineError, RunningPipeline, ShutdownReport};
pub use completion::Completion;
pub use control::{ControlError, PipelineControl};
pub use control_elements::RemovedPlugin;
pub use delivery::Delivery;
pub use element::{
    BoxFuture, Clock, ElementError, ElementResultExt, ErrorKind, Event, Output, OutputContext,
    OutputOptions, Shutdown, Source, Transform, TransformContext, Trigger, TriggerConfigError,
};
pub use inputs::PointPredicate;
pub use output::OutputStats;
pub use plugin_change::PluginChangeError;
pub use plugin_control::PluginControl;
pub use registry::{SourceId, Target};
pub use selector::{glob_match, ElementName, Selector, SelectorError};
pub use stats::{ElementKind, ElementStats};
pub(crate) use subscribers::Subscriber;
pub use subscribers::SubscriberId;
pub use tick::SourceSink;
