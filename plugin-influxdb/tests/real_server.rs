//! Against a real InfluxDB 1.x (Debian's `influxdb` package), started by the test on free
//! loopback ports: values read back one by one, an outage, an outage past the buffer, a
//! missing database, and points that differ only by an attribute.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use alumet::prelude::*;
use common::influxd::{available, Influxd};
use common::{figures, start, start_named, wait_until, Run};
use plugin_influxdb::{ApiVersion, AttributesAs, Config};
use serde_json::{json, Value};

const T0: u64 = 1_700_000_000_000_000_000;
const DB: &str = "alumet";

fn config(server: &Influxd) -> Config {
    Config {
        api_version: ApiVersion::V1,
        host: server.url(),
        database: DB.into(),
        batch_size: 10,
        flush_interval: Duration::from_millis(20),
        ..Config::default()
    }
}

/// The rows of a measurement as maps from column to value.
fn rows(server: &Influxd, measurement: &str) -> Vec<serde_json::Map<String, Value>> {
    let (columns, rows) = server.select_all(DB, measurement);
    rows.into_iter()
        .map(|r| columns.iter().cloned().zip(r).collect())
        .collect()
}

/// The `value` of every row of `test_input_1`, in time order.
fn counts(server: &Influxd) -> Vec<u64> {
    rows(server, "test_input_1")
        .iter()
        .map(|r| r["value"].as_u64().unwrap())
        .collect()
}

#[test]
fn values_and_awkward_names_read_back_one_by_one() {
    if !available("values_and_awkward_names_read_back_one_by_one") {
        return;
    }
    let server = Influxd::start("values", DB);
    let awkward_key = "awk key, x=y \"q\" \\o/";
    let config = Config {
        attributes_as: AttributesAs::Field,
        attributes_as_tags: vec!["domain".into()],
        ..config(&server)
    };
    let run = start(config, Duration::from_secs(10));
    let attrs = Attributes::new([("domain", "pkg 0,x=y")]).with(awkward_key, "v\"a\\l\nue, =");
    let ints = [0, 1, 42, i64::MAX as u64, u64::MAX];
    for (i, v) in ints.into_iter().enumerate() {
        let t = Timestamp::from_unix_nanos(T0 + i as u64);
        let p = MeasurementPoint::new(
            t,
            run.count,
            Resource::LocalMachine,
            ResourceConsumer::LocalMachine,
            v,
        );
        run.feeder.push(p.with_attributes(attrs.clone()));
    }
    let resource = Resource::custom("my res", "C:\\dir\\x,y=z \"q\"");
    let consumer = ResourceConsumer::custom("proc ess", "line1\nline2 a\\,b");
    let floats = [12.5, -0.25, 1e-7, f64::MAX, f64::NAN];
    for (i, v) in floats.into_iter().enumerate() {
        let t = Timestamp::from_unix_nanos(T0 + i as u64);
        run.feeder.push(MeasurementPoint::new(
            t,
            run.energy,
            resource.clone(),
            consumer.clone(),
            v,
        ));
    }
    run.run.trigger("test/input");
    let (report, _) = run.run.shutdown();
    assert_eq!(report.undelivered_points, 0);
    let stats = run.stats.stats();
    assert_eq!(
        (
            stats.delivered,
            stats.skipped_non_finite,
            stats.large_u64_as_string
        ),
        (9, 1, 1)
    );
    assert_eq!(figures(&report, 10), (9, 0, 1), "NaN is lost");

    let got = rows(&server, "test_input_1");
    assert_eq!(got.len(), 5);
    for (i, row) in got.iter().enumerate() {
        assert_eq!(row["time"], json!(T0 + i as u64));
        assert_eq!(row["domain"], json!("pkg 0,x=y"), "attribute as a tag");
        assert_eq!(
            row[awkward_key],
            json!("v\"a\\l\nue, ="),
            "attribute as a field"
        );
        assert_eq!(row["resource_kind"], json!("local_machine"));
        assert_eq!(row["consumer_kind"], json!("local_machine"));
        if ints[i] <= i64::MAX as u64 {
            assert_eq!(row["value"].as_u64(), Some(ints[i]));
            assert_eq!(row["value_u64"], Value::Null);
        } else {
            assert_eq!(row["value"], Value::Null);
            assert_eq!(
                row["value_u64"],
                json!(ints[i].to_string()),
                "exact, as a string"
            );
        }
    }
    let got = rows(&server, "energy_J");
    assert_eq!(got.len(), 4, "NaN is skipped");
    for (i, row) in got.iter().enumerate() {
        assert_eq!(row["time"], json!(T0 + i as u64));
        assert_eq!(row["value"].as_f64(), Some(floats[i]));
        assert_eq!(row["resource_kind"], json!("my res"));
        assert_eq!(row["resource_id"], json!("C:\\dir\\x,y=z \"q\""));
        assert_eq!(row["consumer_kind"], json!("proc ess"));
        // Documented: no line protocol carries a line break in a tag (written as `\n`),
        // and 1.x stores a backslash right before an escaped comma one backslash longer.
        assert_eq!(row["consumer_id"], json!("line1\\nline2 a\\\\,b"));
    }
}

/// Feeds `range` in rounds of 5 points, one trigger each.
fn feed(run: &Run, range: std::ops::Range<u64>) {
    let values: Vec<u64> = range.collect();
    for round in values.chunks(5) {
        run.feed_counts(T0, round.iter().copied());
    }
}

#[test]
fn an_outage_loses_nothing_and_duplicates_nothing() {
    if !available("an_outage_loses_nothing_and_duplicates_nothing") {
        return;
    }
    let mut server = Influxd::start("outage", DB);
    server.kill();
    // Down at start: the agent starts anyway.
    let run = start(config(&server), Duration::from_secs(20));
    feed(&run, 0..50);
    run.wait_received(50, Duration::from_secs(10));
    server.restart();
    feed(&run, 50..100);
    assert!(wait_until(Duration::from_secs(30), || run
        .stats
        .stats()
        .delivered
        == 100));
    // Down in the middle of the run.
    server.kill();
    feed(&run, 100..200);
    run.wait_received(200, Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(10), || run
        .stats
        .stats()
        .failed_attempts
        >= 2));
    server.restart();
    feed(&run, 200..250);
    let (report, _) = run.run.shutdown();
    assert_eq!(report.undelivered_points, 0);
    let stats = run.stats.stats();
    assert_eq!(
        (stats.delivered, stats.dropped, stats.undelivered),
        (250, 0, 0),
        "{stats:?}"
    );
    assert_eq!(figures(&report, 250), (250, 0, 0));
    assert_eq!(
        counts(&server),
        (0..250).collect::<Vec<_>>(),
        "every point once, in time order"
    );
}

#[test]
fn an_outage_longer_than_the_buffer_drops_the_oldest_and_counts_them() {
    if !available("an_outage_longer_than_the_buffer_drops_the_oldest_and_counts_them") {
        return;
    }
    let mut server = Influxd::start("long-outage", DB);
    let config = Config {
        max_buffered_points: 50,
        ..config(&server)
    };
    let run = start(config, Duration::from_secs(20));
    feed(&run, 0..10);
    assert!(wait_until(Duration::from_secs(30), || run
        .stats
        .stats()
        .delivered
        == 10));
    server.kill();
    feed(&run, 10..210);
    run.wait_received(210, Duration::from_secs(10));
    let stats = run.stats.stats();
    assert_eq!((stats.buffered, stats.dropped), (50, 150), "{stats:?}");
    server.restart();
    let (report, _) = run.run.shutdown();
    assert_eq!(report.undelivered_points, 0);
    let stats = run.stats.stats();
    assert_eq!(
        (stats.delivered, stats.dropped, stats.undelivered),
        (60, 150, 0),
        "{stats:?}"
    );
    assert_eq!(figures(&report, 210), (60, 150, 0));
    // The 50 kept are the batch in flight when the server died (a run of the oldest, taken
    // before the buffer filled; its size depends on when the sender woke up) and the newest
    // ones: the oldest queued points were dropped, and at most one gap remains.
    let got = counts(&server);
    assert_eq!(got[..10], (0..10).collect::<Vec<_>>()[..], "{got:?}");
    let outage = &got[10..];
    assert_eq!(outage.len(), 50, "{got:?}");
    assert_eq!(outage.last(), Some(&209), "the newest is kept: {got:?}");
    // The in-flight run is the oldest queued when the sender took its batch: the first
    // point of the outage if it woke at once, a later one if the drops came first (a
    // loaded machine); either way one run, then the newest.
    let gaps = outage.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert!(gaps <= 1, "in-flight run + newest run: {got:?}");
}

#[test]
fn a_missing_database_loses_every_point_and_says_so() {
    if !available("a_missing_database_loses_every_point_and_says_so") {
        return;
    }
    let server = Influxd::start("missing-db", DB);
    let config = Config {
        database: "nowhere".into(),
        ..config(&server)
    };
    let run = start(config, Duration::from_secs(10));
    feed(&run, 0..50);
    assert!(wait_until(Duration::from_secs(30), || run
        .stats
        .stats()
        .rejected
        == 50));
    let (report, _) = run.run.shutdown();
    assert_eq!(figures(&report, 50), (0, 0, 50), "every point is lost");
    let stats = run.stats.stats();
    assert_eq!((stats.delivered, stats.rejected), (0, 50), "{stats:?}");
    let answer = server.query("SHOW DATABASES".into(), None);
    assert!(
        !answer.to_string().contains("nowhere"),
        "the server holds nothing: {answer}"
    );
}

#[test]
fn points_that_differ_only_by_an_attribute_are_all_stored() {
    if !available("points_that_differ_only_by_an_attribute_are_all_stored") {
        return;
    }
    let server = Influxd::start("attrs", DB);
    let states = ["user", "nice", "system", "idle", "iowait", "irq"];
    let fed = |config: Config, name: &str| {
        let run = start_named(config, Duration::from_secs(10), name);
        for poll in 0..4 {
            let t = Timestamp::from_unix_nanos(T0 + poll);
            for (i, state) in states.iter().enumerate() {
                let p = MeasurementPoint::new(
                    t,
                    run.count,
                    Resource::LocalMachine,
                    ResourceConsumer::LocalMachine,
                    i as u64,
                );
                run.feeder
                    .push(p.with_attributes(Attributes::new([("cpu_state", *state)])));
            }
            run.run.trigger(&run.source);
        }
        run.run.shutdown().0
    };
    // The default: every point stored.
    let report = fed(config(&server), "tags");
    assert_eq!(figures(&report, 24), (24, 0, 0));
    assert_eq!(rows(&server, "test_tags_1").len(), 24);
    // As a field: the server would keep one per poll; the others are counted lost, and
    // the figures match what the server holds.
    let as_field = Config {
        attributes_as: AttributesAs::Field,
        ..config(&server)
    };
    let report = fed(as_field, "fields");
    assert_eq!(figures(&report, 24), (4, 0, 20));
    let got = rows(&server, "test_fields_1");
    assert_eq!(got.len(), 4);
    assert!(
        got.iter().all(|r| r["cpu_state"] == json!("user")),
        "the first is kept: {got:?}"
    );
}

#[test]
fn a_partial_write_loses_only_the_refused_points() {
    if !available("a_partial_write_loses_only_the_refused_points") {
        return;
    }
    let server = Influxd::start("partial", DB);
    // `value` of test_input_1 is a float already: the integers sent later conflict.
    let url = format!("{}/write?db={DB}", server.url());
    ureq::post(&url)
        .send_string(&format!("test_input_1 value=0.5 {}", T0 - 1))
        .unwrap();
    let config = Config {
        batch_size: 100,
        ..config(&server)
    };
    let run = start(config, Duration::from_secs(10));
    for v in 0..6u64 {
        let t = Timestamp::from_unix_nanos(T0 + v);
        let local = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
        let p = MeasurementPoint::new(t, run.energy, local.0.clone(), local.1.clone(), 1.5);
        run.feeder.push(p);
        if v < 4 {
            run.feeder
                .push(MeasurementPoint::new(t, run.count, local.0, local.1, v));
        }
    }
    run.run.trigger("test/input");
    let (report, _) = run.run.shutdown();
    let stats = run.stats.stats();
    assert_eq!((stats.delivered, stats.rejected), (6, 4), "{stats:?}");
    assert_eq!(
        figures(&report, 10),
        (6, 0, 4),
        "only the refused points are lost"
    );
    assert_eq!(rows(&server, "energy_J").len(), 6);
    assert_eq!(
        rows(&server, "test_input_1").len(),
        1,
        "the conflicting ones were refused"
    );
}
