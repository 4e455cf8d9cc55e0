//! An existing file is appended to, never truncated, and new rows follow its header.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::prelude::*;
use common::{config, run_csv, Metrics, TempDir};

const HEADER: &str = "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;__late_attributes\n";

/// One buffer of `n` energy points with the given attributes, at second `t`.
fn energy_points(
    m: &Metrics,
    t: u64,
    n: u32,
    attrs: &[(&str, AttributeValue)],
) -> Vec<MeasurementPoint> {
    let attrs = Attributes::new(attrs.iter().cloned());
    (0..n)
        .map(|i| {
            let ts = Timestamp::from_unix_nanos(t * 1_000_000_000);
            let resource = Resource::CpuPackage { id: i };
            MeasurementPoint::new(ts, m.energy, resource, ResourceConsumer::LocalMachine, 1.5)
                .with_attributes(attrs.clone())
        })
        .collect()
}

#[test]
fn two_runs_share_one_header_and_keep_every_row() {
    let dir = TempDir::new("append");
    let path = dir.path().join("out.csv");
    run_csv(config(&path), |m| {
        vec![energy_points(m, 1, 3, &[("domain", "package".into())])]
    })
    .unwrap();
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(first.starts_with(HEADER), "{first}");
    assert_eq!(first.lines().count(), 1 + 3);

    // The second run has an attribute that the header lacks, before the known one.
    run_csv(config(&path), |m| {
        let attrs = [("socket", 1u64.into()), ("domain", "dram".into())];
        vec![energy_points(m, 2, 2, &attrs)]
    })
    .unwrap();
    let both = std::fs::read_to_string(&path).unwrap();
    assert!(
        both.starts_with(&first),
        "the first run's rows were changed"
    );
    let lines: Vec<&str> = both.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + 2, "{both}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("metric;")).count(), 1);
    assert_eq!(
        lines[4],
        "rapl_consumed_energy_J;1970-01-01T00:00:02.000000000Z;1.5;cpu_package;0;local_machine;;dram;socket=1"
    );
    for line in &lines {
        assert_eq!(line.split(';').count(), 9, "misaligned row: {line}");
    }
}

#[test]
fn an_empty_file_gets_a_header() {
    let dir = TempDir::new("empty");
    let path = dir.path().join("out.csv");
    std::fs::write(&path, "").unwrap();
    run_csv(config(&path), |m| {
        vec![energy_points(m, 1, 1, &[("domain", "package".into())])]
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(HEADER), "{text}");
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn a_cut_last_row_does_not_swallow_the_next_one() {
    let dir = TempDir::new("cut");
    let path = dir.path().join("out.csv");
    let cut = format!("{HEADER}rapl_consumed_energy_J;1970-01-01T00:0");
    std::fs::write(&path, &cut).unwrap();
    run_csv(config(&path), |m| {
        vec![energy_points(m, 3, 1, &[("domain", "package".into())])]
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let row = "rapl_consumed_energy_J;1970-01-01T00:00:03.000000000Z;1.5;cpu_package;0;local_machine;;package;\n";
    assert_eq!(text, format!("{cut}\n{row}"));
}

#[test]
fn a_header_without_its_final_line_break_is_accepted() {
    let dir = TempDir::new("header-only");
    let path = dir.path().join("out.csv");
    let header = HEADER.trim_end_matches('\n');
    std::fs::write(&path, header).unwrap();
    run_csv(config(&path), |m| {
        vec![energy_points(m, 3, 1, &[("domain", "package".into())])]
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let row = "rapl_consumed_energy_J;1970-01-01T00:00:03.000000000Z;1.5;cpu_package;0;local_machine;;package;\n";
    assert_eq!(text, format!("{header}\n{row}"));
}

#[test]
fn a_file_with_another_header_is_a_start_error() {
    let dir = TempDir::new("foreign");
    let path = dir.path().join("data.csv");
    let foreign = "time,temperature\n1,20\n";
    std::fs::write(&path, foreign).unwrap();
    let err = run_csv(config(&path), |_| vec![]).expect_err("start error");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a header of this output"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), foreign);
}

#[test]
fn a_header_longer_than_one_read_is_found_whole() {
    let dir = TempDir::new("longheader");
    let path = dir.path().join("out.csv");
    // 300 attribute columns: a header of about 6 KiB, more than one 4 KiB read.
    let names: Vec<String> = (0..300)
        .map(|i| format!("attribute_number_{i:03}"))
        .collect();
    let header = HEADER.replace("domain;", &format!("{};", names.join(";")));
    assert!(header.len() > 4096);
    let row = format!("old;row{}\n", ";".repeat(names.len() + 6));
    std::fs::write(&path, format!("{header}{row}")).unwrap();
    let attrs = [("attribute_number_299", AttributeValue::from(7u64))];
    run_csv(config(&path), |m| vec![energy_points(m, 1, 1, &attrs)]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let last = text.lines().last().unwrap();
    let fields: Vec<&str> = last.split(';').collect();
    assert_eq!(fields.len(), 7 + names.len() + 1, "{last}");
    assert_eq!(fields[7 + 299], "7", "{last}");
}

#[test]
fn a_file_without_a_header_line_is_a_start_error() {
    let dir = TempDir::new("noline");
    let path = dir.path().join("out.csv");
    let text = "x".repeat(70 * 1024);
    std::fs::write(&path, &text).unwrap();
    let err = run_csv(config(&path), |_| vec![]).expect_err("start error");
    assert!(
        err.to_string()
            .contains("no header line in its first 64 KiB"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn without_unit_suffix_the_metric_is_its_name() {
    let dir = TempDir::new("nosuffix");
    let path = dir.path().join("out.csv");
    let mut config = config(&path);
    config.append_unit_to_metric_name = false;
    config.use_unit_display_name = true; // ignored without append_unit_to_metric_name
    run_csv(config, |m| vec![energy_points(m, 1, 1, &[])]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let row = text.lines().nth(1).unwrap();
    assert!(row.starts_with("rapl_consumed_energy;"), "{row}");
}

/// A reload replaces the output by a new instance on the same file: opened before the old
/// one wrote its first row, it writes after the old one finished, under the same header.
#[test]
fn an_output_opened_before_the_header_was_written_adopts_it() {
    let dir = TempDir::new("replaced");
    let path = dir.path().join("out.csv");
    let ctx = common::output_context();
    let m = Metrics::of(ctx.metrics());
    let buffer =
        |t| MeasurementBuffer::from(energy_points(&m, t, 2, &[("domain", "package".into())]));
    let mut old = plugin_csv::CsvOutput::open(&config(&path)).unwrap();
    let mut new = plugin_csv::CsvOutput::open(&config(&path)).unwrap();
    old.write(&buffer(1), &ctx).unwrap();
    old.finish(&ctx).unwrap();
    new.write(&buffer(2), &ctx).unwrap();
    new.finish(&ctx).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(HEADER), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 2 + 2, "{text}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("metric;")).count(),
        1,
        "{text}"
    );
}
