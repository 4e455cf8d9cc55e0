//! The lines written for a fixed set of points, through a real pipeline, compared with
//! `tests/fixtures/<format>/expected.*`. Set `STDOUT_BLESS=1` to rewrite the fixtures
//! (then read the diff).
#![allow(clippy::unwrap_used)]

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use plugin_stdout::{Format, StdoutOutput, StdoutPlugin};

/// 2026-11-26T06:25:59.123456789Z
const T0: u64 = 1_795_674_359_123_456_789;
/// 2024-02-29T23:59:59.000000001Z (a leap day)
const T1: u64 = 1_709_251_199_000_000_001;

/// A writer shared with the test.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer whose reader has gone.
struct Closed;

impl Write for Closed {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn output_plugin<W: Write + Send + 'static>(format: Format, writer: W) -> TestPlugin {
    TestPlugin::new("stdout", move |alumet| {
        alumet.create_metric::<f64>("rapl_consumed_energy", Unit::Joule, "energy")?;
        alumet.create_metric::<u64>("memory_usage", Unit::Byte, "memory")?;
        let output = StdoutOutput::new(format, writer);
        alumet.add_output("stdout", output)?;
        Ok(())
    })
}

/// Runs the fixed points through a pipeline with a `format` output writing to `writer`;
/// returns the output's (written, failed) points.
fn run<W: Write + Send + 'static>(format: Format, writer: W) -> (u64, u64) {
    let mut tester = PipelineTester::new();
    tester.any_plugin(output_plugin(format, writer));
    let feeder = tester.feeder("input");
    let run = tester.start().unwrap();
    let energy = run.metric::<f64>("rapl_consumed_energy").unwrap();
    let memory = run.metric::<u64>("memory_usage").unwrap();
    let count = run.metric::<u64>("test_input").unwrap();
    let t0 = Timestamp::from_unix_nanos(T0);
    let t1 = Timestamp::from_unix_nanos(T1);
    let s = AttributeValue::from;
    let awkward = Attributes::new([
        ("note", s("has \"quotes\" and\na newline\\")),
        ("weird key=", s("tab\there")),
    ]);
    let nginx = ResourceConsumer::ControlGroup {
        path: "/system.slice/nginx.service".into(),
    };
    let points = [
        MeasurementPoint::new(
            t0,
            energy,
            Resource::CpuPackage { id: 0 },
            ResourceConsumer::LocalMachine,
            12.5,
        )
        .with_attributes(Attributes::new([("domain", "package")])),
        MeasurementPoint::new(t0, energy, Resource::Dram { pkg_id: 1 }, nginx, f64::NAN)
            .with_attributes(awkward),
        MeasurementPoint::new(
            t1,
            memory,
            Resource::LocalMachine,
            ResourceConsumer::Process { pid: 4242 },
            1_048_576,
        )
        .with_attributes(Attributes::new([
            ("socket", AttributeValue::U64(0)),
            ("ok", true.into()),
            ("ratio", 0.5.into()),
        ])),
        MeasurementPoint::new(
            t1,
            count,
            Resource::custom("pdu", "rack 1"),
            ResourceConsumer::custom("job", ""),
            u64::MAX,
        ),
    ];
    for p in &points[..2] {
        feeder.push(p.clone());
    }
    assert_eq!(run.trigger("test/input"), 1);
    for p in &points[2..] {
        feeder.push(p.clone());
    }
    assert_eq!(run.trigger("test/input"), 1);
    let (report, collected) = run.shutdown();
    assert_eq!(collected.len(), 4);
    let stats = report
        .outputs
        .iter()
        .find(|o| o.name.to_string() == "stdout/stdout");
    let stats = stats.expect("an output named stdout/stdout");
    (stats.written_points, stats.failed_points)
}

fn check(format: Format, file: &str) {
    let shared = Shared::default();
    assert_eq!(run(format, shared.clone()), (4, 0));
    let actual = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    if std::env::var_os("STDOUT_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(actual, expected, "differs from {}", path.display());
    assert_eq!(actual.lines().count(), 4, "one line per point");
}

#[test]
fn golden_text() {
    check(Format::Text, "text/expected.txt");
}

#[test]
fn golden_json() {
    check(Format::Json, "json/expected.jsonl");
    // Every line is a JSON object that parses back to the awkward strings.
    let shared = Shared::default();
    run(Format::Json, shared.clone());
    let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[1]["attributes"]["note"],
        "has \"quotes\" and\na newline\\"
    );
    assert_eq!(lines[1]["consumer_id"], "/system.slice/nginx.service");
    assert!(lines[1]["value"].is_null(), "NaN is null");
    assert_eq!(lines[3]["value"].as_u64(), Some(u64::MAX));
    assert_eq!(lines[0]["timestamp_ns"].as_u64(), Some(T0));
    assert_eq!(lines[0]["timestamp"], "2026-11-26T06:25:59.123456789Z");
}

#[test]
fn broken_pipe_stops_the_output_without_panicking() {
    let (written, failed) = run(Format::Text, Closed);
    assert_eq!((written, failed), (0, 4));
}

#[test]
fn plugin_starts_from_toml_and_rejects_unknown_keys() {
    let mut tester = PipelineTester::new();
    tester
        .plugin_toml::<StdoutPlugin>("format = \"json\"")
        .unwrap();
    let run = tester.start().unwrap();
    let (report, _) = run.shutdown();
    assert!(report
        .outputs
        .iter()
        .any(|o| o.name.to_string() == "stdout/stdout"));
    let mut tester = PipelineTester::new();
    let err = tester
        .plugin_toml::<StdoutPlugin>("fromat = \"json\"")
        .err()
        .unwrap();
    assert!(err.to_string().contains("fromat"), "{err}");
    let err = PipelineTester::new()
        .plugin_toml::<StdoutPlugin>("format = \"xml\"")
        .err()
        .unwrap();
    assert!(err.to_string().contains("xml"), "{err}");
}
