//! The agent with the prometheus-remote-write output against a real Prometheus (Debian's
//! `prometheus` with its remote-write receiver, on a free loopback port) and a real
//! VictoriaMetrics (Debian's `victoria-metrics`): every row of the
//! CSV output is a sample in Prometheus, series by series (name, labels, host identity
//! included) and millisecond by millisecond, with the gauges' values; the agent's figures
//! say every point was written.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use alumet::metrics::Unit;
use alumet_delivery::prometheus::{family, label_name};
use alumet_delivery::test_util::stores::{available, Kind, Store};
use common::accounting::{reported, run_agent, SOURCES};
use common::*;

/// A series: its name and labels (sorted).
type Key = BTreeMap<String, String>;

/// What the CSV says a store should hold: per series, per millisecond, the value
/// (`None` for a counter, whose stored value is a running sum) and whether several rows
/// share that millisecond.
fn expected_from_csv(path: &Path, host: &str) -> BTreeMap<Key, BTreeMap<i64, Option<f64>>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let mut out: BTreeMap<Key, BTreeMap<i64, Option<f64>>> = BTreeMap::new();
    for line in lines {
        assert!(
            !line.contains('"'),
            "a quoted field, not parsed here: {line}"
        );
        let f: Vec<&str> = line.split(';').collect();
        assert_eq!(f.len(), header.len(), "{line}");
        let (name, code) = f[0].rsplit_once('_').unwrap();
        let def = family("alumet_", name, &Unit::from_str(code).unwrap(), "");
        let mut key: Key = BTreeMap::new();
        key.insert("__name__".into(), def.name.clone());
        key.insert("host".into(), host.into());
        key.insert("cluster".into(), "t".into());
        for (i, col) in header.iter().enumerate().skip(3).take(4) {
            if !f[i].is_empty() {
                key.insert((*col).to_owned(), f[i].to_owned());
            }
        }
        for (i, col) in header.iter().enumerate().skip(7) {
            if i + 1 == header.len() {
                for pair in f[i].split(',').filter(|p| !p.is_empty()) {
                    assert!(!pair.contains('\\'), "an escaped attribute: {pair}");
                    let (k, v) = pair.split_once('=').unwrap();
                    key.entry(label_name(k)).or_insert_with(|| v.to_owned());
                }
            } else if !f[i].is_empty() {
                key.entry(label_name(col))
                    .or_insert_with(|| f[i].to_owned());
            }
        }
        let ms = unix_ms(f[1]);
        let value = (!def.counter).then(|| f[2].parse::<f64>().unwrap() * def.factor);
        out.entry(key).or_default().insert(ms, value);
    }
    out
}

/// An RFC 3339 time in milliseconds since the epoch (what remote write keeps).
fn unix_ms(rfc3339: &str) -> i64 {
    (unix_ns(rfc3339) / 1_000_000) as i64
}

#[test]
fn unix_ms_of_rfc3339() {
    assert_eq!(unix_ms("1970-01-01T00:00:01.5Z"), 1500);
    assert_eq!(unix_ms("2026-11-26T06:25:59.123456789Z"), 1_795_674_359_123);
}

#[test]
fn every_row_of_the_csv_is_a_sample_in_prometheus() {
    every_row_is_a_sample(
        Kind::Prometheus,
        "every_row_of_the_csv_is_a_sample_in_prometheus",
    );
}

#[test]
fn every_row_of_the_csv_is_a_sample_in_victoria_metrics() {
    every_row_is_a_sample(
        Kind::VictoriaMetrics,
        "every_row_of_the_csv_is_a_sample_in_victoria_metrics",
    );
}

fn every_row_is_a_sample(kind: Kind, test: &str) {
    if !available(test, kind) {
        return;
    }
    let dir = temp_dir(test);
    let store = Store::start(kind, "agent-rw");
    let config = format!(
        "{SOURCES}[labels]\ncluster = \"t\"\n[plugins.prometheus-remote-write]\nurl = \"{}\"\n",
        store.write_url()
    );
    let (code, stderr) = run_agent(&dir, &config);
    assert_eq!(code, Some(0), "{stderr}");
    let host = alumet::plugin::host_identity::local_hostname().unwrap();
    let expected = expected_from_csv(&dir.join("out.csv"), &host);
    let rows: usize = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(
        reported(&stderr, "prometheus-remote-write/remote-write"),
        (rows as u64, 0, 0),
        "{stderr}"
    );
    let total: usize = expected.values().map(BTreeMap::len).sum();
    let series = || store.series("alumet_.+", 2);
    // VictoriaMetrics makes what it ingested searchable within a second or so.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while series().iter().map(|s| s.samples.len()).sum::<usize>() < total
        && std::time::Instant::now() < end
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let stored: BTreeMap<Key, BTreeMap<i64, f64>> = series()
        .into_iter()
        .map(|s| (s.labels, s.samples.into_iter().collect()))
        .collect();
    let names: BTreeSet<&str> = expected.keys().map(|k| k["__name__"].as_str()).collect();
    for n in [
        "alumet_kernel_cpu_time_seconds",
        "alumet_memory_usage_bytes",
        "alumet_mem_total_bytes",
    ] {
        assert!(names.contains(n), "{n} measured: {names:?}");
    }
    eprintln!(
        "{rows} CSV rows, {} series, {} samples in the store",
        expected.len(),
        stored.values().map(BTreeMap::len).sum::<usize>()
    );
    for (key, samples) in &expected {
        let got = stored
            .get(key)
            .unwrap_or_else(|| panic!("series {key:?} not in Prometheus"));
        let times: Vec<&i64> = samples.keys().collect();
        let got_times: Vec<&i64> = got.keys().collect();
        assert_eq!(got_times, times, "the samples of {key:?}");
        for (ms, value) in samples {
            if let Some(v) = value {
                let g = got[ms];
                assert!(
                    (g - v).abs() <= 1e-9 * v.abs().max(1.0),
                    "{key:?} at {ms}: {g} instead of {v}"
                );
            }
        }
    }
    assert_eq!(stored.len(), expected.len(), "no other series");
}
