//! The output half that every push output shares: `write` converts the points into a
//! batch and queues it (never waiting on the network), `finish` lets the sender thread
//! deliver what is queued, dropping the output makes the sender exit.

use std::sync::Arc;
use std::thread::JoinHandle;

use alumet::measurement::MeasurementBuffer;
use alumet::metrics::MetricRegistry;
use alumet::pipeline::{ElementError, Output, OutputContext};

use crate::{Batch, Engine, Settings, Transport};

/// Turns points into an output's batch (its encoding: samples, data points, lines).
pub trait Convert<B>: Send {
    /// The batch of `buffer`'s points.
    fn convert(&mut self, buffer: &MeasurementBuffer, metrics: &MetricRegistry) -> B;
}

/// An output that converts with `C` and sends through an [`Engine`]'s sender thread.
pub struct PushOutput<B: Batch, C> {
    engine: Arc<Engine<B>>,
    sender: Option<JoinHandle<()>>,
    convert: C,
}

impl<B: Batch, C: Convert<B>> PushOutput<B, C> {
    /// Starts the sender thread `thread`, which sends with `transport`; connects to
    /// nothing yet (a receiver down at start only delays delivery).
    pub fn start<T: Transport<B> + 'static>(
        engine: Arc<Engine<B>>,
        thread: &str,
        transport: T,
        settings: Settings,
        convert: C,
    ) -> std::io::Result<Self> {
        let sender = engine.spawn(thread, transport, settings)?;
        Ok(PushOutput {
            engine,
            sender: Some(sender),
            convert,
        })
    }
}

impl<B: Batch, C: Convert<B>> Output for PushOutput<B, C> {
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        self.engine.set_delivery(ctx.delivery());
        let batch = self.convert.convert(buffer, ctx.metrics());
        self.engine.enqueue(batch);
        Ok(())
    }

    /// Sends what is buffered, retrying, until it is delivered or the plugin's `stop`
    /// gives up (after the core's shutdown deadline).
    fn finish(&mut self, _ctx: &OutputContext) -> Result<(), ElementError> {
        self.engine.finish_and_log(&mut self.sender);
        Ok(())
    }
}

impl<B: Batch, C> Drop for PushOutput<B, C> {
    fn drop(&mut self) {
        // The pipeline stopped this output: make the sender exit too.
        self.engine.abort();
    }
}
