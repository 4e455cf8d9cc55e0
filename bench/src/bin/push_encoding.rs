//! Encoding cost per point of the push outputs: a batch of 2000 points (10 metrics x 20
//! series, 4 to 6 labels each) encoded again and again as one request, as each output's
//! sender thread does: remote write (protobuf + snappy) and OTLP (protobuf + gzip, and
//! JSON). Prints one JSON line per case: `ns_per_point` (CPU time of this thread) and
//! `bytes_per_point` (request body).
//!
//! `cargo run --release -p bench --bin push-encoding -- [--seconds N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use alumet::measurement::{AttributeValue, Attributes, MeasurementPoint};
use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet_delivery::prometheus::label_pairs;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use plugin_opentelemetry::encode as otlp;
use plugin_opentelemetry::{Compression, Encoding};
use plugin_prometheus_remote_write::encode as rw;

const METRICS: usize = 10;
const SERIES: usize = 20;

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The points of one batch, as alumet points.
fn points() -> Vec<MeasurementPoint> {
    let mut registry = alumet::metrics::MetricRegistry::new();
    let ids: Vec<_> = (0..METRICS)
        .map(|m| {
            registry
                .register::<f64>(&format!("metric_{m}"), Unit::Watt, "a metric")
                .expect("registered")
        })
        .collect();
    let t0 = 1_700_000_000_000_000_000u64;
    let mut out = Vec::new();
    for step in 0..(2000 / (METRICS * SERIES)) as u64 {
        for (m, id) in ids.iter().enumerate() {
            for s in 0..SERIES {
                let attrs = Attributes::new([
                    ("domain", AttributeValue::from("package")),
                    ("kind", AttributeValue::U64(s as u64 % 3)),
                ]);
                let p = MeasurementPoint::new(
                    Timestamp::from_unix_nanos(t0 + step * 1_000_000 + m as u64),
                    *id,
                    Resource::CpuCore { id: s as u32 },
                    ResourceConsumer::LocalMachine,
                    12.5 + s as f64,
                )
                .with_attributes(attrs);
                out.push(p);
            }
        }
    }
    out
}

fn identity() -> HostIdentity {
    HostIdentity::new([
        ("host".to_owned(), "bench-host".to_owned()),
        ("cluster".to_owned(), "a".to_owned()),
    ])
}

fn remote_write_points(points: &[MeasurementPoint]) -> Vec<rw::Point> {
    let identity = identity();
    let mut series = std::collections::HashMap::new();
    points
        .iter()
        .map(|p| {
            let pairs = label_pairs(&identity, p);
            let name = format!("alumet_metric_{}_watts", p.metric.index());
            let labels = series
                .entry((name.clone(), pairs.clone()))
                .or_insert_with(|| rw::series_labels(&name, pairs))
                .clone();
            rw::Point {
                series: labels,
                sample: rw::Sample {
                    value: p.value.as_f64(),
                    timestamp: (p.timestamp.unix_nanos() / 1_000_000) as i64,
                },
            }
        })
        .collect()
}

fn otlp_points(points: &[MeasurementPoint]) -> Vec<otlp::Point> {
    let defs: Vec<Arc<otlp::MetricDef>> = (0..METRICS)
        .map(|m| {
            Arc::new(otlp::MetricDef::new(
                format!("metric_{m}"),
                "W".into(),
                "a metric".into(),
                false,
            ))
        })
        .collect();
    let mut series: std::collections::HashMap<_, Arc<otlp::SeriesAttributes>> =
        std::collections::HashMap::new();
    points
        .iter()
        .map(|p| {
            let key = (
                p.metric.index(),
                otlp::attributes(p).len(),
                p.resource.id().to_string(),
            );
            let attributes = series
                .entry(key)
                .or_insert_with(|| otlp::SeriesAttributes::new(otlp::attributes(p)))
                .clone();
            otlp::Point {
                metric: Arc::clone(&defs[p.metric.index()]),
                attributes,
                time_ns: p.timestamp.unix_nanos(),
                start_ns: 0,
                value: Value::AsDouble(p.value.as_f64()),
            }
        })
        .collect()
}

/// Runs `encode` for about `time`; returns (ns per point, bytes per point).
fn measure(time: Duration, n: usize, mut encode: impl FnMut() -> usize) -> (f64, f64) {
    let bytes = encode(); // warm-up, and the body's size
    let (start, cpu0) = (Instant::now(), thread_cpu());
    let mut rounds = 0u64;
    loop {
        std::hint::black_box(encode());
        rounds += 1;
        if start.elapsed() >= time {
            break;
        }
    }
    let cpu = (thread_cpu() - cpu0).as_nanos() as f64;
    (cpu / (rounds as f64 * n as f64), bytes as f64 / n as f64)
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let time = Duration::from_secs(seconds);
    let points = points();
    let n = points.len();
    let rw_points = remote_write_points(&points);
    let mut rw_encoder = rw::Encoder::default();
    let report = |case: &str, (ns, bytes): (f64, f64)| {
        println!(
            "{{\"case\":\"{case}\",\"points\":{n},\"ns_per_point\":{ns:.1},\"bytes_per_point\":{bytes:.1}}}"
        );
    };
    report(
        "remote-write-protobuf-snappy",
        measure(time, n, || {
            rw_encoder.encode(&rw_points).map_or(0, |b| b.len())
        }),
    );
    let otlp_points = otlp_points(&points);
    for (case, encoding, compression) in [
        ("otlp-protobuf-gzip", Encoding::Protobuf, Compression::Gzip),
        ("otlp-protobuf", Encoding::Protobuf, Compression::None),
        ("otlp-json", Encoding::Json, Compression::None),
    ] {
        let resource = otlp::resource(&identity(), "bench");
        let mut encoder = otlp::Encoder::new(resource, encoding, compression);
        report(
            case,
            measure(time, n, || {
                encoder.encode(&otlp_points).map_or(0, |b| b.len())
            }),
        );
    }
}
