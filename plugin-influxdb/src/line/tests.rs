use alumet::measurement::{Attributes, MeasurementPoint, Resource, ResourceConsumer, Timestamp};
use alumet::metrics::{MetricId, MetricRegistry, Unit};

use super::*;

fn line(dialect: Dialect, point: &MeasurementPoint, tags: &[&str]) -> (String, Written) {
    let format = LineFormat {
        dialect,
        is_tag: |k: &str| tags.contains(&k),
    };
    let mut out = Vec::new();
    let written = format.write(&mut out, point, b"m_J");
    (String::from_utf8(out).expect("utf-8"), written)
}

fn ids() -> (MetricId<u64>, MetricId<f64>) {
    let mut registry = MetricRegistry::new();
    let u = registry.register::<u64>("u", Unit::Unity, "").expect("u");
    let f = registry.register::<f64>("f", Unit::Joule, "").expect("f");
    (u, f)
}

fn point<T: alumet::measurement::MeasurementType>(id: MetricId<T>, v: T) -> MeasurementPoint {
    let t = Timestamp::from_unix_nanos(1_700_000_000_123_456_789);
    MeasurementPoint::new(
        t,
        id,
        Resource::CpuPackage { id: 0 },
        ResourceConsumer::LocalMachine,
        v,
    )
}

#[test]
fn a_plain_line() {
    let (_, f) = ids();
    let (text, written) = line(Dialect::Modern, &point(f, 12.5), &[]);
    assert_eq!(
        text,
        "m_J,resource_kind=cpu_package,resource_id=0,consumer_kind=local_machine value=12.5 1700000000123456789\n"
    );
    let key = "m_J,resource_kind=cpu_package,resource_id=0,consumer_kind=local_machine";
    assert_eq!(
        written,
        Written::Line {
            large_u64: 0,
            key_len: key.len()
        }
    );
}

#[test]
fn unsigned_values_per_dialect() {
    let (u, _) = ids();
    let small = point(u, i64::MAX as u64);
    assert!(line(Dialect::V1, &small, &[])
        .0
        .contains(" value=9223372036854775807i "));
    assert!(line(Dialect::Modern, &small, &[])
        .0
        .contains(" value=9223372036854775807u "));
    let big = point(u, u64::MAX);
    let (text, written) = line(Dialect::V1, &big, &[]);
    assert!(
        text.contains(" value_u64=\"18446744073709551615\" "),
        "{text}"
    );
    assert!(matches!(written, Written::Line { large_u64: 1, .. }));
    assert!(line(Dialect::Modern, &big, &[])
        .0
        .contains(" value=18446744073709551615u "));
}

#[test]
fn non_finite_values_are_skipped() {
    let (_, f) = ids();
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let (text, written) = line(Dialect::V1, &point(f, v), &[]);
        assert_eq!((text.as_str(), written), ("", Written::NonFinite));
    }
}

#[test]
fn attributes_as_tags_and_fields() {
    let (_, f) = ids();
    let attrs = Attributes::new([("domain", "pkg")])
        .with("n", 3u64)
        .with("ok", true)
        .with("x", 0.5)
        .with("value", "clash")
        .with("empty", "")
        .with("bad", f64::NAN);
    let p = point(f, 1.0).with_attributes(attrs);
    let (text, _) = line(Dialect::V1, &p, &["domain", "empty"]);
    assert_eq!(
        text,
        "m_J,resource_kind=cpu_package,resource_id=0,consumer_kind=local_machine,domain=pkg \
         value=1.0,n=3i,ok=true,x=0.5,value_attr=\"clash\" 1700000000123456789\n"
    );
    let all = ["domain", "n", "ok", "x", "value", "empty", "bad"];
    let (text, _) = line(Dialect::V1, &p, &all);
    assert_eq!(
        text,
        "m_J,resource_kind=cpu_package,resource_id=0,consumer_kind=local_machine,domain=pkg,\
         n=3,ok=true,x=0.5,value_attr=clash,bad=NaN value=1.0 1700000000123456789\n",
        "every attribute a tag, numbers as the CSV writes them"
    );
}

#[test]
fn escaping_per_place() {
    let mut out = Vec::new();
    write_measurement(&mut out, "a b,c=d", Dialect::Modern);
    assert_eq!(out, b"a\\ b\\,c=d");
    out.clear();
    write_key(&mut out, "a b,c=d\ne", Dialect::Modern);
    assert_eq!(out, b"a\\ b\\,c\\=d\\\\ne");
    out.clear();
    write_string(&mut out, "say \"hi\"\\\n");
    assert_eq!(out, b"\"say \\\"hi\\\"\\\\\n\"");
}

#[test]
fn backslashes_per_dialect() {
    let cases = [
        // (input, V1, Modern)
        ("a\\b", "a\\b", "a\\\\b"),
        ("a\\", "a\\\\", "a\\\\"),
        ("a\\\\", "a\\\\", "a\\\\\\\\"),
        ("a\\,b", "a\\\\\\,b", "a\\\\\\,b"),
        ("a\\\\,b", "a\\\\\\,b", "a\\\\\\\\\\,b"),
    ];
    for (input, v1, modern) in cases {
        let mut out = Vec::new();
        write_key(&mut out, input, Dialect::V1);
        assert_eq!(String::from_utf8_lossy(&out), v1, "v1 {input:?}");
        out.clear();
        write_key(&mut out, input, Dialect::Modern);
        assert_eq!(String::from_utf8_lossy(&out), modern, "modern {input:?}");
    }
}

#[test]
fn measurement_has_the_unit_suffix() {
    assert_eq!(
        &*measurement("rapl_consumed_energy", &Unit::Joule, Dialect::V1),
        b"rapl_consumed_energy_J"
    );
    assert_eq!(&*measurement("n", &Unit::Unity, Dialect::V1), b"n_1");
}
