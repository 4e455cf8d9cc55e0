//! The agent with the opentelemetry output against a receiver that decodes every request
//! with the official generated classes (Python's `opentelemetry-proto`): every row of the
//! CSV output is one data point, with its name, unit, type, value (energy as a cumulative
//! sum), timestamp to the nanosecond, attributes and resource (host identity included).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use alumet::metrics::Unit;
use alumet_delivery::test_util::otlp::{available, Receiver};
use common::accounting::{reported, run_agent, SOURCES};
use common::*;
use serde_json::{json, Value};

/// A data point as the receiver writes it, without its value: name, unit, type, time and
/// attributes (as strings).
type Key = (String, String, String, u64, BTreeMap<String, String>);

/// The CSV's rows as data points: key -> value (running sums for energy).
fn expected_from_csv(path: &Path) -> Vec<(Key, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let mut sums: BTreeMap<(String, BTreeMap<String, String>), f64> = BTreeMap::new();
    let mut out = Vec::new();
    for line in lines {
        assert!(
            !line.contains('"'),
            "a quoted field, not parsed here: {line}"
        );
        let f: Vec<&str> = line.split(';').collect();
        let (name, code) = f[0].rsplit_once('_').unwrap();
        let counter = Unit::from_str(code).unwrap().joules().is_some();
        let mut attrs = BTreeMap::new();
        for (i, col) in header.iter().enumerate().skip(3) {
            if i + 1 == header.len() {
                for pair in f[i].split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap();
                    attrs.insert(k.to_owned(), v.to_owned());
                }
            } else if !f[i].is_empty() {
                attrs.insert((*col).to_owned(), f[i].to_owned());
            }
        }
        let mut value: f64 = f[2].parse().unwrap();
        if counter {
            let sum = sums.entry((name.to_owned(), attrs.clone())).or_default();
            *sum += value;
            value = *sum;
        }
        let kind = if counter { "sum" } else { "gauge" };
        let key = (
            name.to_owned(),
            code.to_owned(),
            kind.to_owned(),
            unix_ns(f[1]),
            attrs,
        );
        out.push((key, value));
    }
    out
}

/// The receiver's data points, same shape; checks each one's resource and counter kind.
fn received(points: &[Value], host: &str) -> Vec<(Key, f64)> {
    let resource = json!({
        "host.name": ["string_value", host],
        "service.name": ["string_value", "alumet-agent"],
        "service.version": ["string_value", env!("CARGO_PKG_VERSION")],
        "cluster": ["string_value", "t"],
    });
    points
        .iter()
        .map(|p| {
            assert_eq!(p["resource"], resource, "{p}");
            if p["type"] == "sum" {
                assert_eq!(p["monotonic"], true, "{p}");
                assert_eq!(
                    p["temporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE",
                    "{p}"
                );
            }
            let attrs = p["attributes"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let text = match &v[1] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect();
            let value = match &p["value"][1] {
                Value::String(s) => s.parse().unwrap(),
                v => v.as_f64().unwrap(),
            };
            let key = (
                p["name"].as_str().unwrap().to_owned(),
                p["unit"].as_str().unwrap().to_owned(),
                p["type"].as_str().unwrap().to_owned(),
                p["time"].as_u64().unwrap(),
                attrs,
            );
            (key, value)
        })
        .collect()
}

#[test]
fn every_row_of_the_csv_is_a_data_point_of_the_receiver() {
    let test = "every_row_of_the_csv_is_a_data_point_of_the_receiver";
    if !available(test) {
        return;
    }
    let dir = temp_dir("otlp-every-row");
    let receiver = Receiver::start("agent");
    let config = format!(
        "{SOURCES}[labels]\ncluster = \"t\"\n[plugins.opentelemetry]\ncollector_host = \"{}\"\n",
        receiver.endpoint()
    );
    let (code, stderr) = run_agent(&dir, &config);
    assert_eq!(code, Some(0), "{stderr}");
    let host = alumet::plugin::host_identity::local_hostname().unwrap();
    let mut expected = expected_from_csv(&dir.join("out.csv"));
    let mut got = received(&receiver.points(), &host);
    assert_eq!(
        reported(&stderr, "opentelemetry/otlp"),
        (expected.len() as u64, 0, 0),
        "{stderr}"
    );
    eprintln!(
        "{} CSV rows, {} data points received",
        expected.len(),
        got.len()
    );
    let order = |a: &(Key, f64), b: &(Key, f64)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
    expected.sort_by(order);
    got.sort_by(order);
    assert_eq!(got.len(), expected.len(), "one data point per row");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.0, e.0, "same name, unit, type, time and attributes");
        assert!(
            (g.1 - e.1).abs() <= 1e-9 * e.1.abs().max(1.0),
            "{:?}: {} instead of {}",
            e.0,
            g.1,
            e.1
        );
    }
}
