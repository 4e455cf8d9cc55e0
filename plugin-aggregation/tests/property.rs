//! The aggregation against a straightforward reference on random streams (seeded): points
//! of three series, mostly in order with jumps and late points, in buffers of random
//! sizes; then the shutdown flush. Also window boundaries and the watermark.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use alumet::metrics::MetricRegistry;
use alumet::prelude::*;
use plugin_aggregation::{Aggregation, Config, Function};

const SEC: u64 = 1_000_000_000;
const ALL: [Function; 6] = [
    Function::Sum,
    Function::Mean,
    Function::Min,
    Function::Max,
    Function::Last,
    Function::Count,
];

fn point(metric: MetricId<f64>, pid: u32, t: u64, v: f64) -> MeasurementPoint {
    MeasurementPoint::new(
        Timestamp::from_unix_nanos(t),
        metric,
        Resource::LocalMachine,
        ResourceConsumer::Process { pid },
        v,
    )
}

/// (metric name, pid, timestamp ns) -> value, of the points the aggregation wrote.
type Written = BTreeMap<(String, u32, u64), f64>;

fn written(points: &[MeasurementPoint], metrics: &MetricRegistry) -> Written {
    let mut out = Written::new();
    for p in points {
        let name = metrics.get(p.metric).unwrap().name.clone();
        if !name.contains('_') {
            continue; // a raw point passed through
        }
        let ResourceConsumer::Process { pid } = p.consumer else {
            panic!()
        };
        let prev = out.insert((name, pid, p.timestamp.unix_nanos()), p.value.as_f64());
        assert!(prev.is_none(), "one point per function, series and window");
    }
    out
}

/// The reference: per series, a point whose window is older than the newest window seen
/// is late; the others are grouped by window, each group's figures written at its end.
fn reference(stream: &[(u32, u64, f64)], interval: u64, name: &str) -> (Written, u64) {
    let mut newest: BTreeMap<u32, u64> = BTreeMap::new();
    let mut groups: BTreeMap<(u32, u64), Vec<(u64, f64)>> = BTreeMap::new();
    let mut late = 0;
    for &(pid, t, v) in stream {
        let w = t / interval;
        let n = newest.entry(pid).or_insert(w);
        if w < *n {
            late += 1;
            continue;
        }
        *n = w;
        groups.entry((pid, w)).or_default().push((t, v));
    }
    let mut out = Written::new();
    for ((pid, w), values) in groups {
        let end = (w + 1) * interval;
        let sum: f64 = values.iter().map(|(_, v)| v).sum();
        let last = values
            .iter()
            .fold(values[0], |l, x| if x.0 >= l.0 { *x } else { l })
            .1;
        let figures = [
            ("sum", sum),
            ("mean", sum / values.len() as f64),
            (
                "min",
                values.iter().map(|x| x.1).fold(f64::INFINITY, f64::min),
            ),
            (
                "max",
                values.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max),
            ),
            ("last", last),
            ("count", values.len() as f64),
        ];
        for (f, v) in figures {
            out.insert((format!("{name}_{f}"), pid, end), v);
        }
    }
    (out, late)
}

#[test]
fn the_aggregation_agrees_with_the_reference_on_random_streams() {
    let mut rng = fastrand::Rng::with_seed(0xA66);
    for round in 0..40 {
        let mut metrics = MetricRegistry::new();
        let energy = metrics.register::<f64>("energy", Unit::Joule, "e").unwrap();
        let interval = SEC * rng.u64(1..5);
        let config = Config {
            interval: Duration::from_nanos(interval),
            functions: ALL.to_vec(),
            ..Config::default()
        };
        let mut agg = Aggregation::new(&config);
        let mut clocks = [100 * SEC; 3];
        let mut stream = Vec::new();
        for _ in 0..rng.usize(50..300) {
            let s = rng.usize(..3);
            let t = if rng.u8(..20) == 0 {
                clocks[s].saturating_sub(rng.u64(..10 * SEC)) // late, perhaps
            } else {
                clocks[s] += rng.u64(..3 * SEC);
                clocks[s]
            };
            stream.push((s as u32 + 1, t, f64::from(rng.u32(..1000)) / 8.0));
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < stream.len() {
            let n = rng.usize(1..20).min(stream.len() - i);
            let mut buffer = MeasurementBuffer::new();
            for &(pid, t, v) in &stream[i..i + n] {
                buffer.push(point(energy, pid, t, v));
            }
            agg.apply(&mut buffer, &metrics);
            out.extend(buffer.iter().cloned());
            i += n;
        }
        out.extend(agg.close_until(u64::MAX, &metrics));
        let (expected, late) = reference(&stream, interval, "energy");
        let got = written(&out, &metrics);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "round {round}"
        );
        for (k, v) in &expected {
            let g = got[k];
            assert!(
                (g - v).abs() <= 1e-9 * v.abs().max(1.0),
                "round {round} {k:?}: {g} != {v}"
            );
        }
        assert_eq!(agg.late_points(), late, "round {round}");
        let raw = out.iter().filter(|p| p.metric == energy.raw()).count() as u64;
        assert_eq!(
            raw, late,
            "only the late points pass through raw (keep_raw is off)"
        );
    }
}

#[test]
fn windows_are_aligned_to_the_clock_and_close_when_the_watermark_passes_their_end() {
    let mut metrics = MetricRegistry::new();
    let power = metrics.register::<f64>("power", Unit::Watt, "p").unwrap();
    let config = Config {
        interval: Duration::from_secs(60),
        ..Config::default()
    };
    let mut agg = Aggregation::new(&config);
    let mut buffer = MeasurementBuffer::new();
    // 59.999999999 s belongs to [0, 60 s); 60 s exactly to the next window.
    buffer.push(point(power, 1, 60 * SEC - 1, 10.0));
    buffer.push(point(power, 1, 30 * SEC, 20.0));
    agg.apply(&mut buffer, &metrics);
    assert!(buffer.is_empty(), "aggregated, nothing out yet");
    assert!(
        agg.close_until(60 * SEC - 1, &metrics).is_empty(),
        "not closed before its end"
    );
    let closed = agg.close_until(60 * SEC, &metrics);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].timestamp, Timestamp::from_unix_nanos(60 * SEC));
    assert_eq!(
        closed[0].value.as_f64(),
        15.0,
        "a gauge is averaged by default"
    );
    assert_eq!(metrics.get(closed[0].metric).unwrap().name, "power_mean");
    // A point for the closed window is late: it passes through, counted.
    let mut buffer = MeasurementBuffer::new();
    buffer.push(point(power, 1, 59 * SEC, 1.0));
    buffer.push(point(power, 1, 60 * SEC, 4.0));
    agg.apply(&mut buffer, &metrics);
    assert_eq!(buffer.len(), 1);
    assert_eq!(agg.late_points(), 1);
    let last = agg.close_until(u64::MAX, &metrics);
    assert_eq!(last.len(), 1, "the partial window at shutdown");
    assert_eq!(last[0].value.as_f64(), 4.0);
}

#[test]
fn energy_is_summed_by_default_and_keep_raw_lets_the_points_through() {
    let mut metrics = MetricRegistry::new();
    let energy = metrics
        .register::<f64>("rapl_energy", Unit::Joule, "e")
        .unwrap();
    let other = metrics
        .register::<f64>("temperature", Unit::DegreeCelsius, "t")
        .unwrap();
    let config = Config {
        interval: Duration::from_secs(10),
        metrics: vec!["rapl_*".into()],
        keep_raw: true,
        ..Config::default()
    };
    let mut agg = Aggregation::new(&config);
    let mut buffer = MeasurementBuffer::new();
    for i in 0..5 {
        buffer.push(point(energy, 1, i * SEC, 2.5));
    }
    buffer.push(point(other, 1, SEC, 40.0));
    agg.apply(&mut buffer, &metrics);
    assert_eq!(
        buffer.len(),
        6,
        "raw points kept, the other metric untouched"
    );
    let closed = agg.close_until(u64::MAX, &metrics);
    assert_eq!(closed.len(), 1, "temperature is not chosen");
    assert_eq!(
        metrics.get(closed[0].metric).unwrap().name,
        "rapl_energy_sum"
    );
    assert_eq!(closed[0].value.as_f64(), 12.5);
}
