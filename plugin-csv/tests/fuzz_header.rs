//! Property tests of the header reader: `first_record` and `attribute_columns` on any
//! text, headers written by the output read back to their columns, and `CsvOutput::open`
//! on a file holding anything: a clean error, or rows appended after the file's bytes,
//! which stay as they were.
//!
//! Failures are saved by proptest's default persistence, in
//! `tests/fuzz_header.proptest-regressions`, and replayed first on the next run.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;

use alumet::measurement::MeasurementBuffer;
use alumet::pipeline::Output;
use alumet::prelude::*;
use common::{config, output_context, Metrics, TempDir};
use plugin_csv::format::{
    attribute_columns, first_record, write_field, RowFormat, FIXED_COLUMNS, LATE_COLUMN,
};
use plugin_csv::{Config, CsvOutput};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

fn config_of(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Delimiters that the config accepts, ASCII and not.
const DELIMITERS: &[char] = &[';', ',', '\t', '|', ' ', '§', '→'];

/// Arbitrary text, biased towards CSV: delimiters, quotes, CR, LF, and the header's names.
fn csv_text(max: usize) -> impl Strategy<Value = String> {
    const WORDS: &[&str] = &[
        "metric",
        "timestamp",
        "value",
        "__late_attributes",
        "resource_kind;resource_id;consumer_kind;consumer_id",
        "\"\"",
    ];
    const CHARS: &[char] = &[
        ';', ',', '"', '\n', '\r', '\t', '|', '§', '→', ' ', 'a', '=', '\\', '\0', 'é', '😀',
    ];
    vec(any::<u8>(), 0..max).prop_map(|v| {
        let mut text = String::new();
        for b in v {
            match b {
                0..=23 => text.push_str(WORDS[usize::from(b) % WORDS.len()]),
                24..=199 => text.push(CHARS[usize::from(b) % CHARS.len()]),
                _ => text.push(char::from(b & 0x7f)),
            }
        }
        text
    })
}

/// Attribute column names as plugins may choose them: any text, delimiters and quotes
/// and line breaks included.
fn columns() -> impl Strategy<Value = Vec<String>> {
    vec(csv_text(12), 0..5)
}

proptest! {
    #![proptest_config(config_of(5000))]

    #[test]
    fn first_record_and_attribute_columns_never_panic(
        text in csv_text(120),
        delim in prop::sample::select(DELIMITERS),
    ) {
        // A record ends at the first line feed outside quotes (a doubled quote inside
        // quotes toggles twice: counting quotes is enough).
        let mut quoted = false;
        let complete = text.chars().any(|c| {
            quoted ^= c == '"';
            c == '\n' && !quoted
        });
        let record = first_record(&text, delim);
        prop_assert_eq!(record.is_some(), complete, "{:?}", text);
        if let Some(fields) = record {
            prop_assert!(!fields.is_empty());
            match attribute_columns(&fields, delim) {
                Ok(columns) => {
                    prop_assert_eq!(columns.len() + FIXED_COLUMNS.len() + 1, fields.len());
                    prop_assert_eq!(fields.last().map(String::as_str), Some(LATE_COLUMN));
                }
                Err(e) => prop_assert!(e.to_string().contains("not a header")),
            }
        }
    }

    /// A header the output writes, with any attribute columns, reads back to them,
    /// whatever follows it.
    #[test]
    fn written_headers_read_back_their_columns(
        names in columns(),
        delim in prop::sample::select(DELIMITERS),
        rest in csv_text(40),
    ) {
        let columns: Vec<Box<str>> = names.iter().map(|c| c.as_str().into()).collect();
        let mut out = Vec::new();
        RowFormat::new(delim, '=', columns.clone()).write_header(&mut out);
        let text = String::from_utf8(out).unwrap() + &rest;
        let fields = first_record(&text, delim).unwrap();
        let mut expected: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
        expected.extend(names.iter().cloned());
        expected.push(LATE_COLUMN.into());
        prop_assert_eq!(&fields, &expected);
        prop_assert_eq!(attribute_columns(&fields, delim).unwrap(), columns);
    }

    /// Any fields, escaped by `write_field` and joined, split back into themselves.
    #[test]
    fn written_records_read_back_their_fields(
        fields in vec(csv_text(16), 1..6),
        delim in prop::sample::select(DELIMITERS),
        crlf in any::<bool>(),
    ) {
        let mut out = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(delim.encode_utf8(&mut [0; 4]).as_bytes());
            }
            write_field(&mut out, f.as_bytes(), delim);
        }
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        let text = String::from_utf8(out).unwrap();
        prop_assert_eq!(first_record(&text, delim), Some(fields), "{:?}", text);
    }
}

/// What an existing output file may hold: a header of this output (maybe cut, maybe
/// followed by rows or garbage), or anything (invalid UTF-8 too, or more than the 64 KiB
/// searched for a header).
fn file_content(delim: char) -> impl Strategy<Value = Vec<u8>> {
    let header = (columns(), any::<bool>(), csv_text(60)).prop_map(move |(names, cut, rest)| {
        let columns = names.iter().map(|c| c.as_str().into()).collect();
        let mut out = Vec::new();
        RowFormat::new(delim, ',', columns).write_header(&mut out);
        if cut {
            out.pop(); // a header alone, without its final line break
        } else {
            out.extend_from_slice(rest.as_bytes()); // rows, or whatever
        }
        out
    });
    prop_oneof![
        3 => header,
        2 => csv_text(200).prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..200),
        1 => (1..4usize, any::<u8>()).prop_map(|(k, b)| vec![b; k * 40_000]),
    ]
}

fn points(m: &Metrics) -> MeasurementBuffer {
    let mut buffer = MeasurementBuffer::new();
    let ts = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
    buffer.push(
        MeasurementPoint::new(
            ts,
            m.energy,
            Resource::CpuPackage { id: 0 },
            ResourceConsumer::LocalMachine,
            1.5,
        )
        .with_attributes(Attributes::new([(
            "domain",
            AttributeValue::from("pkg;\"x\""),
        )])),
    );
    buffer.push(MeasurementPoint::new(
        ts,
        m.memory,
        Resource::LocalMachine,
        ResourceConsumer::Process { pid: 7 },
        42,
    ));
    buffer
}

/// `CsvOutput::open` on a file holding anything: an error that says why, or an output
/// whose rows go after the file's bytes, which stay as they were, and line up with the
/// file's header.
#[test]
fn open_existing_file_never_panics_nor_corrupts_it() {
    let ctx = output_context();
    let metrics = Metrics::of(ctx.metrics());
    let dir = TempDir::new("csv-fuzz-open");
    let path = dir.path().join("out.csv");
    let (appended, refused) = (Cell::new(0), Cell::new(0));
    // Outside `proptest!`, the runner needs to be told its file to persist failures.
    let mut runner = TestRunner::new(ProptestConfig {
        source_file: Some(file!()),
        ..config_of(400)
    });
    let strategy = prop::sample::select(&DELIMITERS[..3])
        .prop_flat_map(|delim| (file_content(delim), Just(delim)));
    runner
        .run(&strategy, |(content, delim)| {
            std::fs::write(&path, &content).unwrap();
            let config = Config {
                csv_delimiter: delim,
                csv_late_delimiter: if delim == ',' { '|' } else { ',' },
                ..config(&path)
            };
            let mut output = match CsvOutput::open(&config) {
                Ok(output) => output,
                Err(e) => {
                    let message = format!("{e:#}");
                    prop_assert!(message.contains("appending to"), "{}", message);
                    prop_assert_eq!(std::fs::read(&path).unwrap(), content, "changed on error");
                    refused.set(refused.get() + 1);
                    return Ok(());
                }
            };
            output.write(&points(&metrics), &ctx).unwrap();
            output.finish(&ctx).unwrap();
            drop(output);
            let after = std::fs::read(&path).unwrap();
            prop_assert!(after.starts_with(&content), "the file's bytes were changed");
            let added = String::from_utf8(after[content.len()..].to_vec()).unwrap();
            prop_assert!(added.ends_with('\n'));
            // The header the rows follow: the file's, or the one written now.
            let text = String::from_utf8_lossy(&after).into_owned();
            let header = first_record(&text, delim).unwrap();
            let rows = added.trim_start_matches('\n');
            let rows = if content.is_empty() {
                &rows[rows.find('\n').unwrap() + 1..]
            } else {
                rows
            };
            let mut rest = rows;
            let mut count = 0;
            while let Some(row) = first_record(rest, delim) {
                prop_assert_eq!(row.len(), header.len(), "misaligned row in {:?}", added);
                rest = &rest[rest.find('\n').unwrap() + 1..];
                count += 1;
            }
            prop_assert_eq!(count, 2, "{:?}", added);
            if !content.is_empty() {
                appended.set(appended.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // Both ways were taken, many times.
    assert!(
        appended.get() > 100 && refused.get() > 100,
        "{appended:?} {refused:?}"
    );
}
