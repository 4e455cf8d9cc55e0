//! Every point its own series and timestamp: points that differ only by an attribute (one
//! per `cpu_state`, per `direction`...) reach the server as distinct series in v1, v2 and
//! v3 with the default config; when the config writes such an attribute as a field, the
//! points that would collide are not sent, counted as lost, and warned about once.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use alumet::prelude::*;
use alumet::test_util::logs;
use common::lineproto::parse;
use common::recorder::{Recorder, Reply};
use common::{figures, start_named, Run};
use plugin_influxdb::{ApiVersion, AttributesAs, Config};

const T0: u64 = 1_700_000_000_000_000_000;
const STATES: [&str; 9] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest",
];

fn config(url: String, version: ApiVersion) -> Config {
    Config {
        api_version: version,
        host: url,
        database: "db".into(),
        token: "t".into(),
        org: "o".into(),
        bucket: "b".into(),
        batch_size: 1000,
        flush_interval: Duration::from_millis(20),
        ..Config::default()
    }
}

/// Feeds, at each of `polls` timestamps, one point per cpu state (as the procfs kernel
/// source does) and two per direction with a second attribute; returns the points fed.
fn feed_like_procfs(run: &Run, polls: u64) -> u64 {
    let mut fed = 0;
    for poll in 0..polls {
        let t = Timestamp::from_unix_nanos(T0 + poll * 1000);
        let point = |v: u64, attrs: Attributes| {
            MeasurementPoint::new(
                t,
                run.count,
                Resource::LocalMachine,
                ResourceConsumer::LocalMachine,
                v,
            )
            .with_attributes(attrs)
        };
        for (i, state) in STATES.iter().enumerate() {
            run.feeder
                .push(point(i as u64, Attributes::new([("cpu_state", *state)])));
            fed += 1;
        }
        for direction in ["rx", "tx"] {
            let attrs = Attributes::new([("direction", direction), ("interface", "eth0")]);
            run.feeder.push(point(7, attrs));
            fed += 1;
        }
        assert_eq!(run.run.trigger(&run.source), 1);
    }
    fed
}

/// The (measurement, tags, timestamp) of every line the server received.
fn series_of(server: &Recorder, modern: bool) -> (usize, HashSet<String>) {
    let body: String = server.requests().iter().map(|r| r.text()).collect();
    let lines: Vec<&str> = body.lines().collect();
    let keys = lines
        .iter()
        .map(|l| {
            let p = parse(l, modern).unwrap_or_else(|e| panic!("{e}: {l}"));
            format!("{} {:?} {}", p.measurement, p.tags, p.timestamp)
        })
        .collect();
    (lines.len(), keys)
}

#[test]
fn points_that_differ_only_by_an_attribute_are_distinct_series_in_every_version() {
    for (i, version) in [ApiVersion::V1, ApiVersion::V2, ApiVersion::V3]
        .into_iter()
        .enumerate()
    {
        let server = Recorder::start(|_| Reply::Status(204, ""));
        let name = format!("distinct{i}");
        let run = start_named(config(server.url(), version), Duration::from_secs(5), &name);
        let fed = feed_like_procfs(&run, 3);
        let (report, _) = run.run.shutdown();
        assert_eq!(figures(&report, fed), (fed, 0, 0), "{version:?}");
        let (lines, series) = series_of(&server, version != ApiVersion::V1);
        assert_eq!(lines as u64, fed, "{version:?}: one line per point");
        assert_eq!(
            series.len(),
            lines,
            "{version:?}: every line has its own series and timestamp: {series:?}"
        );
    }
}

/// Runs the procfs-like feed through `config`; returns the figures and the lines sent.
fn run_fields(config: Config, name: &str) -> ((u64, u64, u64), usize, usize) {
    let server = Recorder::start(|_| Reply::Status(204, ""));
    let config = Config {
        host: server.url(),
        ..config
    };
    let run = start_named(config, Duration::from_secs(5), name);
    let fed = feed_like_procfs(&run, 3);
    let (report, _) = run.run.shutdown();
    let stats = run.stats.stats();
    let f = figures(&report, fed);
    assert_eq!((stats.collided, stats.delivered), (f.2, f.0), "{stats:?}");
    let (lines, series) = series_of(&server, false);
    (f, lines, series.len())
}

#[test]
fn attributes_written_as_fields_that_would_collide_are_lost_counted_and_warned_once() {
    logs::capture();
    let base = config(String::new(), ApiVersion::V1);
    // Every attribute a field: all the points of a poll share series and timestamp; one
    // is sent, 10 are lost.
    let all_fields = Config {
        attributes_as: AttributesAs::Field,
        ..base.clone()
    };
    let (f, lines, series) = run_fields(all_fields, "allfields");
    assert_eq!(f, (3, 0, 30));
    assert_eq!((lines, series), (3, 3), "what is sent never collides");
    let warned = logs::lines_with("metric test_allfields ");
    assert_eq!(warned.len(), 1, "once per metric: {warned:?}");
    assert!(warned[0].contains("\"cpu_state\""), "{}", warned[0]);

    // Only the one attribute as a field: its points collide, the direction ones do not.
    let one_field = Config {
        attributes_as_fields: vec!["cpu_state".into()],
        ..base.clone()
    };
    let (f, lines, series) = run_fields(one_field, "onefield");
    assert_eq!(f, (9, 0, 24));
    assert_eq!((lines, series), (9, 9));

    // A field attribute beside a tag that tells the points apart: nothing collides.
    let interface_field = Config {
        attributes_as_fields: vec!["interface".into()],
        ..base
    };
    let (f, lines, series) = run_fields(interface_field, "ifield");
    assert_eq!(f, (33, 0, 0));
    assert_eq!((lines, series), (33, 33));
    assert!(logs::lines_with("metric test_ifield ").is_empty());
}
