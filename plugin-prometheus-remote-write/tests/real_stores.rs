//! Remote write against real stores on loopback ports (Debian's `prometheus` with its
//! remote-write receiver, and `victoria-metrics`): every point fed is returned by the
//! store, series by series, with its labels (host identity included) and values; an
//! outage within the buffer loses nothing; beyond it, the oldest are dropped and counted
//! exactly, and the newest are stored.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use alumet_delivery::test_util::stores::{available, Kind, Store};
use common::*;

const NAMES: &str = "alumet_.+";

fn every_point_is_returned(kind: Kind, test: &str) {
    if !available(test, kind) {
        return;
    }
    let store = Store::start(kind, test);
    let mut run = start(config(store.write_url()), Duration::from_secs(10));
    let t0 = recent_ms();
    run.feed(t0, 0..10);
    run.feed(t0, 10..25);
    let expected = run.expected_series();
    let given = 25 * Run::PER_STEP;
    let (report, _) = run.run.shutdown();
    assert_eq!(figures(&report, given), (given, 0, 0));
    let stored = |n: usize| {
        store
            .series(NAMES, 2)
            .iter()
            .map(|s| s.samples.len())
            .sum::<usize>()
            >= n
    };
    assert!(
        wait_until(Duration::from_secs(60), || stored(given as usize)),
        "the store holds {:?}",
        store.series(NAMES, 2)
    );
    assert_same_series(&store.series(NAMES, 2), &expected);
}

#[test]
fn every_point_fed_is_returned_by_prometheus() {
    every_point_is_returned(Kind::Prometheus, "rw_prometheus_every_point");
}

#[test]
fn every_point_fed_is_returned_by_victoria_metrics() {
    every_point_is_returned(Kind::VictoriaMetrics, "rw_victoria_every_point");
}

#[test]
fn an_outage_within_the_buffer_loses_nothing() {
    let test = "rw_outage_within_buffer";
    if !available(test, Kind::Prometheus) {
        return;
    }
    let mut store = Store::start(Kind::Prometheus, test);
    let mut run = start(config(store.write_url()), Duration::from_secs(20));
    let t0 = recent_ms();
    run.feed(t0, 0..5);
    assert!(wait_until(Duration::from_secs(30), || run
        .stats
        .stats()
        .delivered
        == 20));
    store.kill();
    run.feed(t0, 5..15);
    assert!(wait_until(Duration::from_secs(30), || run
        .stats
        .stats()
        .failed_attempts
        >= 2));
    store.restart();
    run.feed(t0, 15..20);
    let expected = run.expected_series();
    let stats = run.stats.clone();
    let (report, _) = run.run.shutdown();
    assert_eq!(figures(&report, 80), (80, 0, 0));
    let s = stats.stats();
    assert_eq!((s.delivered, s.dropped, s.undelivered), (80, 0, 0), "{s:?}");
    assert_same_series(&store.series(NAMES, 2), &expected);
}

#[test]
fn an_outage_beyond_the_buffer_drops_the_oldest_and_counts_them_exactly() {
    let test = "rw_outage_beyond_buffer";
    if !available(test, Kind::Prometheus) {
        return;
    }
    let mut store = Store::start(Kind::Prometheus, test);
    let config = plugin_prometheus_remote_write::Config {
        max_buffered_points: 40,
        ..config(store.write_url())
    };
    let mut run = start(config, Duration::from_secs(20));
    let t0 = recent_ms();
    run.feed(t0, 0..5);
    assert!(wait_until(Duration::from_secs(30), || run
        .stats
        .stats()
        .delivered
        == 20));
    store.kill();
    // 25 steps = 100 points in one buffer, while the store is down: the 60 oldest go.
    run.feed_as(t0, 5..20, false);
    run.feed(t0, 20..30);
    assert!(wait_until(Duration::from_secs(30), || run
        .stats
        .stats()
        .dropped
        == 60));
    store.restart();
    let expected = run.expected_series();
    let stats = run.stats.clone();
    let (report, _) = run.run.shutdown();
    assert_eq!(figures(&report, 120), (60, 60, 0));
    let s = stats.stats();
    assert_eq!(
        (s.delivered, s.dropped, s.undelivered),
        (60, 60, 0),
        "{s:?}"
    );
    assert_same_series(&store.series(NAMES, 2), &expected);
}
