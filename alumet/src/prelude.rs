//! Everything a plugin author needs, in one `use alumet::prelude::*;`.

pub use crate::counter::{CounterDiff, CounterUpdate, PowerIntegral};
pub use crate::measurement::{
    AttributeValue, Attributes, MeasurementAccumulator, MeasurementBuffer, MeasurementPoint,
    MeasurementType, MeasurementValue, Resource, ResourceConsumer, Timestamp,
};
pub use crate::metrics::{MetricId, Unit};
pub use crate::pipeline::{
    Clock, ElementError, ElementResultExt, Event, Output, OutputContext, PluginControl, Selector,
    Shutdown, Source, SourceId, SourceSink, Target, Transform, TransformContext, Trigger,
};
pub use crate::plugin::{Plugin, Registrar, RunMode, Unavailable};
