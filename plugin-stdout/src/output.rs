//! The output: formats a whole buffer, then writes it at once to the (locked) writer.

use std::io::{ErrorKind, Write};

use alumet::metrics::MetricRegistry;
use alumet::pipeline::ElementResultExt;
use alumet::prelude::*;
use anyhow::{anyhow, Context};

use crate::config::Format;
use crate::format::{write_json, write_text, MetricLabel};

/// Writes one line per point to `W` (the process's stdout in the agent; anything that is
/// `io::Write` in tests).
///
/// Each buffer is formatted into memory, then written with one `write_all` and flushed:
/// `Stdout` is locked once per buffer and the lines of a buffer are never interleaved with
/// other writers' output.
pub struct StdoutOutput<W> {
    format: Format,
    writer: W,
    /// The formatted buffer, reused.
    text: Vec<u8>,
}

impl<W: Write + Send> StdoutOutput<W> {
    /// An output writing `format` lines to `writer`.
    pub fn new(format: Format, writer: W) -> Self {
        StdoutOutput {
            format,
            writer,
            text: Vec::with_capacity(16 * 1024),
        }
    }

    /// The writer (tests read what was written).
    pub fn writer(&self) -> &W {
        &self.writer
    }

    fn format_buffer(&mut self, buffer: &MeasurementBuffer, metrics: &MetricRegistry) {
        self.text.clear();
        for point in buffer {
            let (name, unit) = match metrics.get(point.metric) {
                Some(m) => (m.name.as_str(), m.unit.code()),
                None => ("unknown_metric", ""),
            };
            let metric = MetricLabel { name, unit };
            match self.format {
                Format::Text => write_text(&mut self.text, &metric, point),
                Format::Json => write_json(&mut self.text, &metric, point),
            }
        }
    }
}

impl<W: Write + Send> Output for StdoutOutput<W> {
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        if buffer.is_empty() {
            return Ok(());
        }
        self.format_buffer(buffer, ctx.metrics());
        let result = self
            .writer
            .write_all(&self.text)
            .and_then(|()| self.writer.flush());
        match result {
            Ok(()) => Ok(()),
            // The reader went away (`alumet-agent | head`): nothing more can be written.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(ElementError::fatal(anyhow!(
                "stdout was closed (broken pipe): no more points are written to it"
            ))),
            Err(e) => Err(e).context("writing to stdout").retryable(),
        }
    }
}
