//! The output: one CSV file, appended to in chunks: rows are formatted straight into a
//! pending buffer, written out when it holds 64 KiB, after each buffer of points with
//! `force_flush`, and at the end.
//!
//! It reports its own deliveries: a row counts as written once its bytes are in the file.
//! After a failed write (a full disk, an immutable file), the rows already formatted stay
//! pending and are written by a later write that works; the points of a buffer that could
//! not be formatted because a chunk was still waiting are lost, and said so.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use alumet::metrics::{MetricRegistry, RawMetricId, Unit};
use alumet::pipeline::{Delivery, ElementResultExt};
use alumet::prelude::*;
use anyhow::Context;

use crate::config::Config;
use crate::format::{self, RowFormat, UnitSuffix};

/// Rows are written out once this many bytes are pending (whole rows: a chunk can be a
/// row longer).
const WRITER_CAPACITY: usize = 64 * 1024;

/// Writes every point it receives as one CSV row (see the crate's README for the format).
///
/// The file is opened by [`CsvOutput::open`]; the header is written with the first
/// non-empty buffer, or read back from the file when it already has one.
pub struct CsvOutput {
    path: PathBuf,
    file: File,
    /// Formatted rows not yet written to `file`.
    pending: Vec<u8>,
    force_flush: bool,
    suffix: UnitSuffix,
    delimiter: char,
    late_delimiter: char,
    /// The layout of the rows; `None` until the header is known.
    format: Option<RowFormat>,
    /// The escaped `metric` field of each metric, by [`RawMetricId::index`].
    metric_fields: Vec<Option<Box<[u8]>>>,
    /// Bytes of `pending` written to the file so far, since the start.
    flushed: u64,
    /// Rows waiting in `pending`: (where the last of them ends, counted as `flushed`
    /// counts, how many rows), oldest first.
    marks: VecDeque<(u64, u64)>,
    /// Where deliveries are reported (from the first write's context).
    delivery: Option<Delivery>,
}

impl CsvOutput {
    /// Opens the file of `config.output_path` for appending, creating it if needed; if it
    /// already has a header, reads its attribute columns so that new rows line up.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        config.validate()?;
        let path = config.output_path.clone();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("opening {}", path.display()))?;
        let existing = read_existing(&mut file, &meta, config.csv_delimiter)
            .with_context(|| format!("appending to {}", path.display()))?;
        let mut pending = Vec::with_capacity(WRITER_CAPACITY + 4096);
        let mut format = None;
        if let Some((columns, ends_with_newline)) = existing {
            if !ends_with_newline {
                log::warn!(
                    "{} does not end with a line break (an interrupted write?): new rows start on a new line",
                    path.display()
                );
                pending.push(b'\n');
            }
            let f = RowFormat::new(config.csv_delimiter, config.csv_late_delimiter, columns);
            format = Some(f);
        }
        let suffix = match (
            config.append_unit_to_metric_name,
            config.use_unit_display_name,
        ) {
            (false, _) => UnitSuffix::None,
            (true, false) => UnitSuffix::Code,
            (true, true) => UnitSuffix::Display,
        };
        Ok(CsvOutput {
            path,
            file,
            pending,
            force_flush: config.force_flush,
            suffix,
            delimiter: config.csv_delimiter,
            late_delimiter: config.csv_late_delimiter,
            format,
            metric_fields: Vec::new(),
            flushed: 0,
            marks: VecDeque::new(),
            delivery: None,
        })
    }

    /// The layout of the header found in the file now, if it has one.
    fn header_written_since(&mut self) -> Option<RowFormat> {
        let meta = self.file.metadata().ok()?;
        match read_existing(&mut self.file, &meta, self.delimiter) {
            Ok(Some((columns, ends_with_newline))) => {
                if !ends_with_newline {
                    self.pending.push(b'\n');
                }
                Some(RowFormat::new(self.delimiter, self.late_delimiter, columns))
            }
            Ok(None) => None,
            Err(e) => {
                log::warn!("{}: {e:#}", self.path.display());
                None
            }
        }
    }

    /// Writes the pending rows to the file; on an error, what was not written stays
    /// pending (the next formatted rows then wait, up to one chunk, for a write that works).
    fn write_pending(&mut self) -> std::io::Result<()> {
        let mut written = 0;
        let result = loop {
            if written == self.pending.len() {
                break Ok(());
            }
            match self.file.write(&self.pending[written..]) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.pending.drain(..written);
        self.flushed += written as u64;
        let mut rows = 0;
        while let Some(&(end, n)) = self.marks.front() {
            if end > self.flushed {
                break;
            }
            rows += n;
            self.marks.pop_front();
        }
        if let Some(d) = &self.delivery {
            d.written(rows);
        }
        result
    }

    /// The last `rows` rows formatted into `pending` wait for a write.
    fn mark(&mut self, rows: u64) {
        if rows > 0 {
            self.marks
                .push_back((self.flushed + self.pending.len() as u64, rows));
        }
    }

    fn lost(&self, points: usize) {
        if let Some(d) = &self.delivery {
            d.lost(points as u64);
        }
    }

    fn write_buffer(
        &mut self,
        buffer: &MeasurementBuffer,
        metrics: &MetricRegistry,
    ) -> std::io::Result<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        // A chunk that a failed write left behind goes first: until it is out, no more
        // rows are formatted (the pending buffer stays bounded).
        if self.pending.len() >= WRITER_CAPACITY {
            if let Err(e) = self.write_pending() {
                self.lost(buffer.len());
                return Err(e);
            }
        }
        if self.format.is_none() {
            // The file may have got its header since it was opened: written by the output
            // this one replaced (a reload), which finishes before this one writes.
            if let Some(format) = self.header_written_since() {
                self.format = Some(format);
            }
        }
        if self.format.is_none() {
            let format =
                RowFormat::new(self.delimiter, self.late_delimiter, first_seen_keys(buffer));
            format.write_header(&mut self.pending);
            self.format = Some(format);
        }
        let (suffix, delimiter) = (self.suffix, self.delimiter);
        if self.metric_fields.len() < metrics.len() {
            self.metric_fields.resize(metrics.len(), None);
        }
        let mut points = buffer.iter();
        let mut formatted = 0;
        loop {
            let before = points.len();
            let CsvOutput {
                format: Some(format),
                metric_fields,
                pending,
                ..
            } = &mut *self
            else {
                return Ok(());
            };
            for point in points.by_ref() {
                let index = point.metric.index();
                if metric_fields.len() <= index {
                    metric_fields.resize(index + 1, None);
                }
                let field = metric_fields[index]
                    .get_or_insert_with(|| metric_field(metrics, point.metric, suffix, delimiter));
                format.write_row(pending, field, point);
                if pending.len() >= WRITER_CAPACITY {
                    break;
                }
            }
            let rows = before - points.len();
            formatted += rows;
            self.mark(rows as u64);
            if self.pending.len() >= WRITER_CAPACITY {
                if let Err(e) = self.write_pending() {
                    self.lost(buffer.len() - formatted);
                    return Err(e);
                }
            } else {
                break;
            }
        }
        if self.force_flush {
            self.write_pending()?;
        }
        Ok(())
    }
}

impl Output for CsvOutput {
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        if self.delivery.is_none() {
            self.delivery = Some(ctx.delivery().clone());
        }
        self.write_buffer(buffer, ctx.metrics())
            .with_context(|| format!("writing {}", self.path.display()))
            .retryable()
    }

    fn finish(&mut self, _ctx: &OutputContext) -> Result<(), ElementError> {
        self.write_pending()
            .with_context(|| format!("flushing {}", self.path.display()))
            .retryable()
    }
}

/// The `metric` field of a metric (a placeholder for an id the registry does not know,
/// which a pipeline never hands out).
fn metric_field(
    metrics: &MetricRegistry,
    id: RawMetricId,
    suffix: UnitSuffix,
    delim: char,
) -> Box<[u8]> {
    match metrics.get(id) {
        Some(m) => format::metric_field(&m.name, &m.unit, suffix, delim),
        None => {
            let name = format!("unknown_metric_{}", id.index());
            format::metric_field(&name, &Unit::Unity, UnitSuffix::None, delim)
        }
    }
}

/// The attribute keys of a buffer, in the order they are first seen.
fn first_seen_keys(buffer: &MeasurementBuffer) -> Vec<Box<str>> {
    let mut keys: Vec<Box<str>> = Vec::new();
    for point in buffer {
        for (key, _) in point.attributes.iter() {
            if !keys.iter().any(|k| **k == *key) {
                keys.push(key.into());
            }
        }
    }
    keys
}

/// For a file that is not empty: the attribute columns of its header, and whether it ends
/// with a line break. `None` for an empty (or new) file, or one that cannot seek (a pipe).
fn read_existing(
    file: &mut File,
    meta: &std::fs::Metadata,
    delim: char,
) -> anyhow::Result<Option<(Vec<Box<str>>, bool)>> {
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    // Reads until the header record is complete (usually one read), not the whole file.
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    file.seek(SeekFrom::Start(0))?;
    let header = loop {
        let text = match std::str::from_utf8(&head) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
        };
        if let Some(header) = format::first_record(text, delim) {
            break header;
        }
        let n = match file.read(&mut chunk) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        };
        if n == 0 && !text.is_empty() {
            // A file holding only a header, without its final line break.
            if let Some(header) = format::first_record(&format!("{text}\n"), delim) {
                break header;
            }
        }
        anyhow::ensure!(
            n > 0 && head.len() < format::MAX_HEADER_LEN,
            "no header line in its first {} KiB",
            format::MAX_HEADER_LEN / 1024
        );
        head.extend_from_slice(&chunk[..n]);
    };
    let columns = format::attribute_columns(&header, delim)?;
    let mut last = [0u8; 1];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    Ok(Some((columns, last[0] == b'\n')))
}
