use super::*;

#[test]
fn names_follow_prometheus_conventions() {
    let f = family(
        "alumet_",
        "rapl_consumed_energy",
        &Unit::Joule,
        "energy\nused \\ here",
    );
    assert_eq!(f.name, "alumet_rapl_consumed_energy_joules_total");
    assert!(f.counter);
    assert_eq!(f.help, "energy\\nused \\\\ here");
    let f = family("alumet_", "energy_uj", &Unit::MicroJoule, "");
    assert_eq!(
        (f.name.as_str(), f.factor),
        ("alumet_energy_uj_joules_total", 1e-6)
    );
    let f = family("", "latency", &Unit::Millisecond, "");
    assert_eq!(
        (f.name.as_str(), f.counter, f.factor),
        ("latency_seconds", false, 1e-3)
    );
    let f = family("a_", "memory_bytes", &Unit::Byte, "");
    assert_eq!(f.name, "a_memory_bytes");
    let f = family("a_", "gpu.temp-C", &Unit::DegreeCelsius, "");
    assert_eq!(f.name, "a_gpu_temp_C_celsius");
    let f = family("", "9lives", &Unit::Unity, "");
    assert_eq!(f.name, "_9lives");
    let f = family("x_", "ops", &Unit::Custom("{ops}/s".into()), "");
    assert_eq!(f.name, "x_ops_ops__s");
    let f = family("x_", "total_energy_joules_total", &Unit::Joule, "");
    assert_eq!(f.name, "x_total_energy_joules_total");
}

#[test]
fn labels_are_sanitised_escaped_and_empty_ones_omitted() {
    let mut reg = alumet::metrics::MetricRegistry::new();
    let id = reg
        .register::<u64>("m", Unit::Unity, "d")
        .expect("registered");
    let attrs = Attributes::new([
        ("note", AttributeValue::from("a \"b\"\nc\\d")),
        ("weird-key.x", AttributeValue::U64(3)),
        ("__name__", AttributeValue::from("x")),
        ("resource_kind", AttributeValue::from("clash")),
        ("empty", AttributeValue::from("")),
    ]);
    let cg = ResourceConsumer::ControlGroup { path: "/a".into() };
    let p = MeasurementPoint::new(
        Timestamp::from_unix_nanos(0),
        id,
        Resource::LocalMachine,
        cg,
        1,
    )
    .with_attributes(attrs);
    assert_eq!(
        labels(&HostIdentity::default(), &p, true),
        r#"{resource_kind="local_machine",consumer_kind="cgroup",consumer_id="/a",note="a \"b\"\nc\\d",weird_key_x="3",attr___name__="x",attr_resource_kind="clash"}"#
    );
    let p = MeasurementPoint::new(
        Timestamp::from_unix_nanos(0),
        id,
        Resource::custom("", ""),
        ResourceConsumer::custom("", ""),
        1,
    );
    assert_eq!(labels(&HostIdentity::default(), &p, true), "");
    // The host identity comes first and wins over an attribute of the same name.
    let identity = HostIdentity::new([
        ("host".to_owned(), "web-1".to_owned()),
        ("cluster".to_owned(), "a".to_owned()),
    ]);
    let p = p.with_attributes(Attributes::new([("host", AttributeValue::from("other"))]));
    assert_eq!(labels(&identity, &p, true), r#"{cluster="a",host="web-1"}"#);
}

#[test]
fn values_and_samples() {
    let mut out = String::new();
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-7, 3.0, 12.5] {
        write_value(&mut out, v);
        out.push(' ');
    }
    assert_eq!(out, "NaN +Inf -Inf 1e-7 3.0 12.5 ");
    let mut out = String::new();
    write_header(&mut out, "x_total", "h", true);
    write_sample(
        &mut out,
        "x_total",
        &Sample {
            labels: "{a=\"b\"}",
            value: 2.0,
            timestamp_ms: Some(17),
        },
    );
    write_sample(
        &mut out,
        "x_total",
        &Sample {
            labels: "",
            value: 1.0,
            timestamp_ms: None,
        },
    );
    assert_eq!(
        out,
        "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"b\"} 2.0 17\nx_total 1.0\n"
    );
}
