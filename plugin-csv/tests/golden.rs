//! The bytes written for a fixed set of points, through a real pipeline, compared with
//! `tests/fixtures/<case>/expected.csv`. Set `CSV_BLESS=1` to rewrite the fixtures (then
//! read the diff).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use alumet::prelude::*;
use common::{config, run_csv, Metrics, TempDir};
use plugin_csv::Config;

/// 2026-11-26T06:25:59.123456789Z
const T0: u64 = 1_795_674_359_123_456_789;
/// 2024-02-29T23:59:59.000000001Z (a leap day)
const T1: u64 = 1_709_251_199_000_000_001;
/// 2026-11-26T06:26:00Z
const T2: u64 = 1_795_674_360_000_000_000;

fn point<T: alumet::measurement::MeasurementType>(
    t: u64,
    metric: MetricId<T>,
    value: T,
    resource: Resource,
    consumer: ResourceConsumer,
    attributes: &[(&str, AttributeValue)],
) -> MeasurementPoint {
    let t = Timestamp::from_unix_nanos(t);
    MeasurementPoint::new(t, metric, resource, consumer, value)
        .with_attributes(Attributes::new(attributes.iter().cloned()))
}

/// Two buffers: the first defines the attribute columns (`domain`, `note`, `socket`),
/// the second brings attributes that go to `__late_attributes`.
#[rustfmt::skip]
fn batches(m: &Metrics) -> Vec<Vec<MeasurementPoint>> {
    use Resource as R;
    use ResourceConsumer as C;
    let s = AttributeValue::from;
    let gpu = R::Gpu {
        bus_id: "00000000:3B:00.0".into(),
    };
    let nginx = C::ControlGroup {
        path: "/system.slice/nginx.service".into(),
    };
    let note = "has ; a \"quote\"\nand a newline";
    let first = vec![
        point(T0, m.energy, 12.5, R::CpuPackage { id: 0 }, C::LocalMachine, &[("domain", s("package"))]),
        point(T0, m.energy, 0.000123, R::Dram { pkg_id: 1 }, C::LocalMachine, &[("domain", s("dram")), ("note", s(note))]),
        point(T0, m.memory, 1_048_576, R::LocalMachine, C::Process { pid: 4242 }, &[("note", s("plain")), ("socket", 0u64.into())]),
        point(T1, m.temperature, -3.25, gpu, nginx, &[("socket", 1u64.into()), ("domain", s("gpu"))]),
        point(T1, m.power, f64::NAN, R::CpuCore { id: 3 }, C::custom("job", "id;42"), &[]),
        point(T1, m.power, f64::NEG_INFINITY, R::custom("pdu", "rack-1,outlet-3"), C::LocalMachine, &[]),
        point(T1, m.count, u64::MAX, R::LocalMachine, C::LocalMachine, &[("note", 0.5.into())]),
        point(T2, m.energy, 1e21, R::LocalMachine, C::LocalMachine, &[("domain", s("psys"))]),
    ];
    let user = C::ControlGroup {
        path: "/user.slice".into(),
    };
    let second = vec![
        point(T2, m.energy, 3.0, R::CpuPackage { id: 1 }, C::LocalMachine, &[("domain", s("package")), ("cpu_state", 3u64.into()), ("throttled", true.into())]),
        point(T2, m.memory, 0, R::LocalMachine, user, &[("late_key", s("x=y,z;w")), ("socket", 2u64.into())]),
        point(T2, m.temperature, 1e-7, R::CpuCore { id: 0 }, C::Process { pid: 1 }, &[("domain", s("core")), ("weird;key", s("v\"q"))]),
    ];
    vec![first, second]
}

fn check(case: &str, tweak: impl FnOnce(&mut Config)) {
    let dir = TempDir::new(case);
    let path = dir.path().join("out.csv");
    let mut config = config(&path);
    tweak(&mut config);
    let report = run_csv(config, batches).unwrap();
    let stats = report
        .outputs
        .iter()
        .find(|o| o.name.to_string() == "csv/csv");
    let stats = stats.expect("an output named csv/csv");
    assert_eq!((stats.written_points, stats.failed_points), (11, 0));
    let written = std::fs::read(&path).unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
        .join("expected.csv");
    if std::env::var_os("CSV_BLESS").is_some() {
        std::fs::write(&fixture, &written).unwrap();
    }
    let expected = std::fs::read(&fixture).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&expected),
        "{case}: the output differs from {}",
        fixture.display()
    );
    assert_eq!(written, expected);
}

#[test]
fn golden_default_config() {
    check("golden", |_| {});
}

#[test]
fn golden_comma_delimiter() {
    check("golden-comma", |c| c.csv_delimiter = ',');
}

#[test]
fn golden_unit_codes_without_force_flush() {
    check("golden-codes", |c| {
        c.use_unit_display_name = false;
        c.force_flush = false;
    });
}
