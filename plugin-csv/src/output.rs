//! The output: one CSV file, appended to through a buffered writer.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use alumet::metrics::{MetricRegistry, RawMetricId, Unit};
use alumet::pipeline::ElementResultExt;
use alumet::prelude::*;
use anyhow::Context;

use crate::config::Config;
use crate::format::{self, RowFormat, UnitSuffix};

/// Size of the write buffer: rows reach the file in chunks of this size at most.
const WRITER_CAPACITY: usize = 64 * 1024;

/// Writes every point it receives as one CSV row (see the crate's README for the format).
///
/// The file is opened by [`CsvOutput::open`]; the header is written with the first
/// non-empty buffer, or read back from the file when it already has one.
pub struct CsvOutput {
    path: PathBuf,
    writer: BufWriter<File>,
    force_flush: bool,
    suffix: UnitSuffix,
    delimiter: char,
    late_delimiter: char,
    /// The layout of the rows; `None` until the header is known.
    format: Option<RowFormat>,
    /// The escaped `metric` field of each metric, by [`RawMetricId::index`].
    metric_fields: Vec<Option<Box<[u8]>>>,
    /// The row being formatted, reused.
    row: Vec<u8>,
    /// The late attributes being formatted, reused.
    scratch: Vec<u8>,
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
        let existing = read_existing(&mut file, config.csv_delimiter)
            .with_context(|| format!("appending to {}", path.display()))?;
        let mut writer = BufWriter::with_capacity(WRITER_CAPACITY, file);
        let mut format = None;
        if let Some((columns, ends_with_newline)) = existing {
            if !ends_with_newline {
                log::warn!(
                    "{} does not end with a line break (an interrupted write?): new rows start on a new line",
                    path.display()
                );
                writer
                    .write_all(b"\n")
                    .with_context(|| format!("writing {}", path.display()))?;
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
            writer,
            force_flush: config.force_flush,
            suffix,
            delimiter: config.csv_delimiter,
            late_delimiter: config.csv_late_delimiter,
            format,
            metric_fields: Vec::new(),
            row: Vec::with_capacity(256),
            scratch: Vec::with_capacity(64),
        })
    }

    fn write_buffer(
        &mut self,
        buffer: &MeasurementBuffer,
        metrics: &MetricRegistry,
    ) -> std::io::Result<()> {
        if buffer.is_empty() {
            return Ok(());
        }
        if self.format.is_none() {
            let format =
                RowFormat::new(self.delimiter, self.late_delimiter, first_seen_keys(buffer));
            self.row.clear();
            format.write_header(&mut self.row);
            self.writer.write_all(&self.row)?;
            self.format = Some(format);
        }
        let (suffix, delimiter) = (self.suffix, self.delimiter);
        let CsvOutput {
            writer,
            format: Some(format),
            metric_fields,
            row,
            scratch,
            ..
        } = self
        else {
            return Ok(());
        };
        if metric_fields.len() < metrics.len() {
            metric_fields.resize(metrics.len(), None);
        }
        for point in buffer {
            let index = point.metric.index();
            if metric_fields.len() <= index {
                metric_fields.resize(index + 1, None);
            }
            let field = metric_fields[index]
                .get_or_insert_with(|| metric_field(metrics, point.metric, suffix, delimiter));
            row.clear();
            format.write_row(row, scratch, field, point);
            writer.write_all(row)?;
        }
        if self.force_flush {
            self.writer.flush()?;
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
        self.write_buffer(buffer, ctx.metrics())
            .with_context(|| format!("writing {}", self.path.display()))
            .retryable()
    }

    fn finish(&mut self, _ctx: &OutputContext) -> Result<(), ElementError> {
        self.writer
            .flush()
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
fn read_existing(file: &mut File, delim: char) -> anyhow::Result<Option<(Vec<Box<str>>, bool)>> {
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    let mut head = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    (&*file)
        .take(format::MAX_HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    let text = match std::str::from_utf8(&head) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let header = format::first_record(text, delim).with_context(|| {
        format!(
            "no header line in its first {} KiB",
            format::MAX_HEADER_LEN / 1024
        )
    })?;
    let columns = format::attribute_columns(&header, delim)?;
    let mut last = [0u8; 1];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    Ok(Some((columns, last[0] == b'\n')))
}
