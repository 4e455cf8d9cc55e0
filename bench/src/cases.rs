//! The cases: each runs the real pipeline (real core, real plugins where named).

use std::sync::atomic::Ordering;
use std::time::Duration;

use alumet::pipeline::PipelineBuilder;
use alumet::plugin::{AnyPlugin, PluginMetadata};
use alumet::prelude::*;
use alumet::test_util::TestPlugin;

use crate::measure::{self, CaseResult, Latencies, PollCount};

/// A case of the matrix.
pub struct Case {
    /// Its name in the table and the JSON file.
    pub name: &'static str,
    /// Polls per second.
    pub hz: u64,
    /// Points per poll (of the synthetic source; 0 for real plugins, counted at run time).
    pub points: u64,
    /// What produces and writes.
    pub kind: Kind,
}

/// What a case runs.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Synthetic source into a null output.
    Null,
    /// Synthetic source into the CSV output.
    Csv,
    /// procfs kernel + memory sections into the CSV output.
    ProcfsCsv,
    /// Synthetic source into the prometheus-remote-write output, posting to an
    /// in-process HTTP sink (its CPU counts too).
    RemoteWrite,
    /// Synthetic source into the opentelemetry output (protobuf + gzip), same sink.
    Otlp,
}

/// Every case, in the table's order.
pub const CASES: [Case; 6] = [
    Case {
        name: "null-1khz-10pts",
        hz: 1_000,
        points: 10,
        kind: Kind::Null,
    },
    Case {
        name: "null-10khz-10pts",
        hz: 10_000,
        points: 10,
        kind: Kind::Null,
    },
    Case {
        name: "csv-1khz-30pts",
        hz: 1_000,
        points: 30,
        kind: Kind::Csv,
    },
    Case {
        name: "procfs-csv-10khz",
        hz: 10_000,
        points: 0,
        kind: Kind::ProcfsCsv,
    },
    Case {
        name: "remote-write-10khz-10pts",
        hz: 10_000,
        points: 10,
        kind: Kind::RemoteWrite,
    },
    Case {
        name: "otlp-10khz-10pts",
        hz: 10_000,
        points: 10,
        kind: Kind::Otlp,
    },
];

/// A source of `points` points per poll, one shared attribute set, counting its polls.
fn synthetic(points: u64, period: Duration, polls: PollCount) -> TestPlugin {
    TestPlugin::new("bench", move |alumet| {
        let m = alumet.create_metric::<u64>("bench_value", Unit::Unity, "synthetic value")?;
        let source = alumet::test_util::cost::synthetic_source(m, points, polls.0);
        alumet.add_source("synthetic", source, Trigger::every(period))?;
        Ok(())
    })
}

/// The latency probe as a plugin (for the null case it is the output itself).
fn probe(latencies: &Latencies) -> TestPlugin {
    let output = latencies.probe();
    TestPlugin::new("probe", move |alumet| {
        alumet.add_output("latency", output)?;
        Ok(())
    })
}

fn csv(dir: &std::path::Path) -> anyhow::Result<Box<dyn AnyPlugin>> {
    let table: toml::Table = toml::from_str(&format!(
        "output_path = {:?}\nforce_flush = false\n",
        dir.join("bench.csv").display().to_string()
    ))?;
    Ok(PluginMetadata::of::<plugin_csv::CsvPlugin>().init(table)?)
}

/// A push output (`plugin`, with `key = URL`) to `sink`.
fn push(name: &str, table: &str) -> anyhow::Result<Box<dyn AnyPlugin>> {
    let table: toml::Table = toml::from_str(table)?;
    let meta = match name {
        "remote-write" => PluginMetadata::of::<plugin_prometheus_remote_write::RemoteWritePlugin>(),
        _ => PluginMetadata::of::<plugin_opentelemetry::OpenTelemetryPlugin>(),
    };
    Ok(meta.init(table)?)
}

fn procfs(period: Duration) -> anyhow::Result<Box<dyn AnyPlugin>> {
    let interval = format!("{}us", period.as_micros());
    let table: toml::Table = toml::from_str(&format!(
        "[kernel]\nenabled = true\npoll_interval = '{interval}'\nflush_interval = '{interval}'\n\
         [memory]\nenabled = true\npoll_interval = '{interval}'\nflush_interval = '{interval}'\n\
         [network]\nenabled = false\n[processes]\nenabled = false\n"
    ))?;
    Ok(PluginMetadata::of::<plugin_procfs::ProcfsPlugin>().init(table)?)
}

/// Counts the wake-ups of procfs through a transform: the sections share an interval, so
/// they are polled in the same wake-up and reach the transforms in one buffer per tick.
fn buffer_counter(
    polls: PollCount,
    points: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> TestPlugin {
    TestPlugin::new("counter", move |alumet| {
        alumet.add_transform(
            "count",
            move |b: &mut MeasurementBuffer, _c: &TransformContext| {
                polls.0.fetch_add(1, Ordering::Relaxed);
                points.fetch_add(b.len() as u64, Ordering::Relaxed);
                Ok(())
            },
        )?;
        Ok(())
    })
}

/// Runs one case for `run` after a warm-up; measures the floor first, in the same process.
pub fn run_case(case: &Case, run: Duration) -> anyhow::Result<CaseResult> {
    let period = Duration::from_nanos(1_000_000_000 / case.hz);
    let floor = measure::floor(period, run.min(Duration::from_secs(3)));
    let dir = std::env::temp_dir().join(format!("alumet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let latencies = Latencies::with_capacity((case.hz as usize) * (run.as_secs() as usize + 2));
    let polls = PollCount::default();
    let points = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut builder = PipelineBuilder::new();
    let sink = alumet_delivery::test_util::Recorder::sink();
    match case.kind {
        Kind::RemoteWrite => {
            builder.plugin(Box::new(synthetic(case.points, period, polls.clone())));
            let url = format!("{}/api/v1/write", sink.url());
            builder.plugin(push(
                "remote-write",
                &format!("url = {url:?}\nbatch_size = 10000\nmax_buffered_points = 1000000\n"),
            )?);
        }
        Kind::Otlp => {
            builder.plugin(Box::new(synthetic(case.points, period, polls.clone())));
            builder.plugin(push(
                "otlp",
                &format!(
                    "endpoint = {:?}\nbatch_size = 10000\nmax_buffered_points = 1000000\n",
                    sink.url()
                ),
            )?);
        }
        Kind::Null => {
            builder.plugin(Box::new(synthetic(case.points, period, polls.clone())));
        }
        Kind::Csv => {
            builder.plugin(Box::new(synthetic(case.points, period, polls.clone())));
            builder.plugin(csv(&dir)?);
        }
        Kind::ProcfsCsv => {
            builder.plugin(procfs(period)?);
            builder.plugin(csv(&dir)?);
            builder.plugin(Box::new(buffer_counter(polls.clone(), points.clone())));
        }
    }
    builder.plugin(Box::new(probe(&latencies)));
    let mut pipeline = builder.start()?;
    std::thread::sleep(Duration::from_millis(300));
    latencies.clear();
    let points0 = points.load(Ordering::Relaxed);
    let (cpu, n, elapsed) = measure::window(run, &polls);
    let points_seen = points.load(Ordering::Relaxed) - points0;
    let report = pipeline.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    let n = n.max(1) as f64;
    let cpu_us = cpu.as_secs_f64() * 1e6 / n;
    let per_poll = if case.points > 0 {
        case.points as f64
    } else {
        points_seen as f64 / n
    };
    let (p50, p99, max) = latencies.percentiles();
    Ok(CaseResult {
        case: case.name.to_owned(),
        hz: case.hz as f64,
        points_per_poll: per_poll.round() as u64,
        achieved_hz: n / elapsed.as_secs_f64(),
        cpu_us_per_poll: cpu_us,
        floor_us_per_poll: floor,
        ratio_to_floor: cpu_us / floor,
        cpu_ns_per_point: cpu_us * 1000.0 / per_poll.max(1.0),
        latency_p50_us: p50,
        latency_p99_us: p99,
        latency_max_us: max,
        dropped: report.outputs.iter().map(|o| o.dropped_points).sum(),
        max_rss_kb: measure::max_rss_kb(),
    })
}
