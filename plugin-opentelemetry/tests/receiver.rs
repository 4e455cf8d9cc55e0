//! The output against a receiver that decodes each request with the official generated
//! classes (Python's `opentelemetry-proto`): every data point matches the point the
//! pipeline received (name, unit, type, value, timestamp, attributes, resource), in
//! protobuf + gzip and in JSON; the configured headers are sent.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use alumet::measurement::{AttributeValue, Attributes};
use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use alumet_delivery::test_util::otlp::{available, Receiver};
use plugin_opentelemetry::{Compression, Config, Encoding, OpenTelemetryPlugin};
use serde_json::{json, Value};

fn identity() -> HostIdentity {
    HostIdentity::new([
        ("host".to_owned(), "web-1".to_owned()),
        ("cluster".to_owned(), "a".to_owned()),
    ])
}

/// Feeds 3 rounds of: `test_input` (u64, unit 1) with attributes of every type, energy
/// (J, f64) and latency (ms, f64); returns what the receiver got, in order of arrival,
/// and the points the pipeline received, as the receiver should show them.
fn exchange(config: Config, receiver: &Receiver) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let mut tester = PipelineTester::new();
    tester.host_identity(identity());
    tester.any_plugin(TestPlugin::new("src", |alumet| {
        alumet.create_metric::<f64>("energy", Unit::Joule, "energy")?;
        alumet.create_metric::<f64>("latency", Unit::Millisecond, "latency")?;
        Ok(())
    }));
    tester.any_plugin(OpenTelemetryPlugin::init(config.clone()).unwrap());
    tester.shutdown_timeout(Duration::from_secs(10));
    let feeder = tester.feeder("input");
    let run = tester.start().unwrap();
    let input = run.metric::<u64>("test_input").unwrap();
    let energy = run.metric::<f64>("energy").unwrap();
    let latency = run.metric::<f64>("latency").unwrap();
    let t0 = 1_700_000_000_123_456_789u64;
    for i in 0..3u64 {
        let t = Timestamp::from_unix_nanos(t0 + i * 1_000_000_007);
        let attrs = Attributes::new([
            ("kind", AttributeValue::from("user")),
            ("n", AttributeValue::U64(7)),
            ("ratio", AttributeValue::F64(0.25)),
            ("on", AttributeValue::Bool(true)),
            ("resource_kind", AttributeValue::from("clash")),
        ]);
        feeder.push(
            MeasurementPoint::new(
                t,
                input,
                Resource::CpuCore { id: 3 },
                ResourceConsumer::LocalMachine,
                i,
            )
            .with_attributes(attrs),
        );
        feeder.push(MeasurementPoint::new(
            t,
            energy,
            Resource::CpuPackage { id: 0 },
            ResourceConsumer::LocalMachine,
            0.5 + i as f64,
        ));
        feeder.push(MeasurementPoint::new(
            t,
            latency,
            Resource::LocalMachine,
            ResourceConsumer::Process { pid: 42 },
            1.5,
        ));
        assert_eq!(run.trigger("test/input"), 1);
    }
    let (report, collected) = run.shutdown();
    let otlp = report
        .outputs
        .iter()
        .find(|o| o.name.plugin == "opentelemetry")
        .unwrap();
    assert_eq!(
        (otlp.written_points, otlp.dropped_points, otlp.failed_points),
        (9, 0, 0)
    );
    (
        receiver.points(),
        expected(&collected, t0),
        receiver.requests(),
    )
}

/// What the receiver should show for the points fed by [`exchange`].
fn expected(collected: &[MeasurementPoint], t0: u64) -> Vec<Value> {
    let resource = json!({
        "host.name": ["string_value", "web-1"],
        "service.name": ["string_value", "alumet-agent"],
        "service.version": ["string_value", env!("CARGO_PKG_VERSION")],
        "cluster": ["string_value", "a"],
    });
    let mut energy_sum = 0.0;
    let mut out = Vec::new();
    for (n, p) in collected.iter().enumerate() {
        let time = p.timestamp.unix_nanos();
        let point = match n % 3 {
            0 => json!({
                "name": "test_input", "unit": "1", "type": "gauge", "monotonic": null, "temporality": null,
                "time": time, "start": 0, "value": ["as_int", p.value.as_f64() as i64],
                "attributes": {
                    "resource_kind": ["string_value", "cpu_core"], "resource_id": ["string_value", "3"],
                    "consumer_kind": ["string_value", "local_machine"],
                    "kind": ["string_value", "user"], "n": ["int_value", 7], "ratio": ["double_value", 0.25],
                    "on": ["bool_value", true], "attr_resource_kind": ["string_value", "clash"],
                },
            }),
            1 => {
                energy_sum += p.value.as_f64();
                json!({
                    "name": "energy", "unit": "J", "type": "sum", "monotonic": true,
                    "temporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                    "time": time, "start": t0, "value": ["as_double", energy_sum],
                    "attributes": {
                        "resource_kind": ["string_value", "cpu_package"], "resource_id": ["string_value", "0"],
                        "consumer_kind": ["string_value", "local_machine"],
                    },
                })
            }
            _ => json!({
                "name": "latency", "unit": "ms", "type": "gauge", "monotonic": null, "temporality": null,
                "time": time, "start": 0, "value": ["as_double", 1.5],
                "attributes": {
                    "resource_kind": ["string_value", "local_machine"],
                    "consumer_kind": ["string_value", "process"], "consumer_id": ["string_value", "42"],
                },
            }),
        };
        let mut point = point;
        point["resource"] = resource.clone();
        point["scope"] = json!("alumet");
        out.push(point);
    }
    out
}

/// Sorts data points by name then time (requests may group them by metric).
fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|p| {
        (
            p["name"].as_str().unwrap().to_owned(),
            p["time"].as_u64().unwrap(),
        )
    });
    v
}

fn run_with(test: &str, encoding: Encoding, compression: Compression) -> Vec<Value> {
    let receiver = Receiver::start(test);
    let mut headers = BTreeMap::new();
    headers.insert("api-key".to_owned(), "s3cret".to_owned());
    let config = Config {
        endpoint: receiver.endpoint(),
        encoding,
        compression,
        headers,
        flush_interval: Duration::from_millis(20),
        ..Config::default()
    };
    let (got, expected, requests) = exchange(config, &receiver);
    assert_eq!(got.len(), 9, "{got:?}\n{}", receiver.log());
    assert_eq!(sorted(got), sorted(expected));
    requests
}

#[test]
fn protobuf_gzip_points_match_what_the_pipeline_received() {
    let test = "otlp_protobuf_gzip";
    if !available(test) {
        return;
    }
    let requests = run_with(test, Encoding::Protobuf, Compression::Gzip);
    let h = &requests[0]["headers"];
    assert_eq!(requests[0]["path"], "/v1/metrics");
    assert_eq!(h["content-type"], "application/x-protobuf");
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["api-key"], "s3cret");
}

#[test]
fn json_points_match_what_the_pipeline_received() {
    let test = "otlp_json";
    if !available(test) {
        return;
    }
    let requests = run_with(test, Encoding::Json, Compression::None);
    let h = &requests[0]["headers"];
    assert_eq!(h["content-type"], "application/json");
    assert!(h.get("content-encoding").is_none(), "{h}");
}

#[test]
fn the_public_alumet_naming_keys_shape_names_and_attributes() {
    let test = "otlp_alumet_keys";
    if !available(test) {
        return;
    }
    let receiver = Receiver::start(test);
    let config: Config = toml::from_str(&format!(
        "collector_host = \"{}\"\nprefix = \"p_\"\nsuffix = \"_alumet\"\nappend_unit_to_metric_name = true\n\
         use_unit_display_name = true\nadd_attributes_to_labels = false\npush_interval_seconds = 1\n",
        receiver.endpoint()
    ))
    .unwrap();
    assert_eq!(config.flush_interval(), Duration::from_secs(1));
    let (got, expected, _) = exchange(config, &receiver);
    assert_eq!(got.len(), 9, "{got:?}\n{}", receiver.log());
    // Each point as expected by default, but for its name and its attributes: the
    // resource and consumer ones only.
    let reshape = |mut p: Value| {
        let name = match p["name"].as_str().unwrap() {
            "test_input" => "p_test_input_alumet",
            "energy" => "p_energy_J_alumet",
            "latency" => "p_latency_ms_alumet",
            other => panic!("unexpected metric {other}"),
        };
        p["name"] = json!(name);
        let attrs = p["attributes"].as_object_mut().unwrap();
        attrs.retain(|k, _| {
            [
                "resource_kind",
                "resource_id",
                "consumer_kind",
                "consumer_id",
            ]
            .contains(&k.as_str())
        });
        p
    };
    let expected: Vec<Value> = expected.into_iter().map(reshape).collect();
    assert_eq!(sorted(got), sorted(expected));
}

#[test]
fn push_interval_seconds_and_flush_interval_are_one_setting() {
    let c: Config = toml::from_str("push_interval_seconds = 15\nflush_interval = \"2s\"").unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("push_interval_seconds"), "{err}");
    let c: Config = toml::from_str("push_interval_seconds = 0").unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("push_interval_seconds is 0"));
}
