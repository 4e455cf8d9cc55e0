//! A pipeline with the remote-write plugin, a feeder (`test/input`, metric `test_input`,
//! u64, unit 1), the f64 metrics `energy` (J) and `latency` (ms), and the host identity
//! `host = "web-1"`, `cluster = "a"`; and the series the test expects a store to hold.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alumet::measurement::{AttributeValue, Attributes};
use alumet::pipeline::{OutputStats, ShutdownReport};
use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet::test_util::{Feeder, PipelineTester, TestPlugin, TestRun};
use alumet_delivery::test_util::stores::Series;
use plugin_prometheus_remote_write::{Config, RemoteWritePlugin, StatsHandle};

pub struct Run {
    pub run: TestRun,
    pub feeder: Feeder,
    pub stats: StatsHandle,
    pub input: MetricId<u64>,
    pub energy: MetricId<f64>,
    pub latency: MetricId<f64>,
    /// What the store should hold: name and labels -> samples.
    pub expected: BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>,
    energy_total: f64,
}

pub fn identity() -> HostIdentity {
    HostIdentity::new([
        ("host".to_owned(), "web-1".to_owned()),
        ("cluster".to_owned(), "a".to_owned()),
    ])
}

pub fn config(url: String) -> Config {
    Config {
        url,
        batch_size: 7,
        flush_interval: Duration::from_millis(20),
        ..Config::default()
    }
}

pub fn start(config: Config, shutdown_timeout: Duration) -> Run {
    let mut tester = PipelineTester::new();
    tester.host_identity(identity());
    tester.any_plugin(TestPlugin::new("src", |alumet| {
        alumet.create_metric::<f64>("energy", Unit::Joule, "energy")?;
        alumet.create_metric::<f64>("latency", Unit::Millisecond, "latency")?;
        Ok(())
    }));
    let plugin = RemoteWritePlugin::init(config).unwrap();
    let stats = plugin.stats_handle();
    tester.any_plugin(plugin);
    tester.shutdown_timeout(shutdown_timeout);
    let feeder = tester.feeder("input");
    let run = tester.start().unwrap();
    Run {
        input: run.metric::<u64>("test_input").unwrap(),
        energy: run.metric::<f64>("energy").unwrap(),
        latency: run.metric::<f64>("latency").unwrap(),
        run,
        feeder,
        stats,
        expected: BTreeMap::new(),
        energy_total: 0.0,
    }
}

/// Milliseconds since the epoch, a minute ago: the stores accept recent samples.
pub fn recent_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now.as_millis() as i64 - 60_000
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.insert("host".into(), "web-1".into());
    l.insert("cluster".into(), "a".into());
    l
}

impl Run {
    /// Feeds, for each `i` in `range`, at `t0 + 10 i` ms: `test_input` = i on two CPU
    /// cores (attribute `kind`), 0.5 J of energy, and a latency of i ms; then triggers.
    /// Records the samples a store should then hold.
    pub fn feed(&mut self, t0: i64, range: std::ops::Range<u64>) {
        self.feed_as(t0, range, true);
    }

    /// As [`Run::feed`]; `expect`: whether the store should hold these points.
    pub fn feed_as(&mut self, t0: i64, range: std::ops::Range<u64>, expect: bool) {
        for i in range {
            let ms = t0 + 10 * i as i64;
            let t = Timestamp::from_unix_nanos(ms as u64 * 1_000_000 + 123);
            for core in 0..2u32 {
                let attrs = Attributes::new([("kind", AttributeValue::from("user"))]);
                self.feeder.push(
                    MeasurementPoint::new(
                        t,
                        self.input,
                        Resource::CpuCore { id: core },
                        ResourceConsumer::LocalMachine,
                        i,
                    )
                    .with_attributes(attrs),
                );
                if expect {
                    let core = core.to_string();
                    let l = labels(&[
                        ("__name__", "alumet_test_input"),
                        ("resource_kind", "cpu_core"),
                        ("resource_id", &core),
                        ("consumer_kind", "local_machine"),
                        ("kind", "user"),
                    ]);
                    self.expected.entry(l).or_default().push((ms, i as f64));
                }
            }
            self.feeder.push(MeasurementPoint::new(
                t,
                self.energy,
                Resource::CpuPackage { id: 0 },
                ResourceConsumer::LocalMachine,
                0.5,
            ));
            self.energy_total += 0.5;
            self.feeder.push(MeasurementPoint::new(
                t,
                self.latency,
                Resource::LocalMachine,
                ResourceConsumer::Process { pid: 42 },
                i as f64,
            ));
            if expect {
                let l = labels(&[
                    ("__name__", "alumet_energy_joules_total"),
                    ("resource_kind", "cpu_package"),
                    ("resource_id", "0"),
                    ("consumer_kind", "local_machine"),
                ]);
                let total = self.energy_total;
                self.expected.entry(l).or_default().push((ms, total));
                let l = labels(&[
                    ("__name__", "alumet_latency_seconds"),
                    ("resource_kind", "local_machine"),
                    ("consumer_kind", "process"),
                    ("consumer_id", "42"),
                ]);
                self.expected
                    .entry(l)
                    .or_default()
                    .push((ms, i as f64 * 1e-3));
            }
        }
        assert_eq!(self.run.trigger("test/input"), 1);
    }

    /// Points fed per `i`.
    pub const PER_STEP: u64 = 4;

    /// The expected series, as a store lists them.
    pub fn expected_series(&self) -> Vec<Series> {
        self.expected
            .iter()
            .map(|(labels, samples)| Series {
                labels: labels.clone(),
                samples: samples.clone(),
            })
            .collect()
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The remote-write output's figures in `report`: (written, dropped, failed); asserts
/// that they account for every point it was given (`given`).
pub fn figures(report: &ShutdownReport, given: u64) -> (u64, u64, u64) {
    let o: &OutputStats = report
        .outputs
        .iter()
        .find(|o| o.name.plugin == "prometheus-remote-write")
        .unwrap_or_else(|| panic!("no remote-write output in {report:?}"));
    let f = (o.written_points, o.dropped_points, o.failed_points);
    assert_eq!(o.queued_points, 0, "{o:?}");
    assert_eq!(f.0 + f.1 + f.2, given, "the figures add up: {o:?}");
    f
}

/// Compares series with float tolerance on values (the store parses decimal text).
pub fn assert_same_series(got: &[Series], expected: &[Series]) {
    let names = |s: &[Series]| -> Vec<BTreeMap<String, String>> {
        s.iter().map(|x| x.labels.clone()).collect()
    };
    assert_eq!(
        names(got),
        names(expected),
        "the same series, with their labels"
    );
    for (g, e) in got.iter().zip(expected) {
        let times = |s: &Series| s.samples.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(times(g), times(e), "timestamps of {:?}", e.labels);
        for (a, b) in g.samples.iter().zip(&e.samples) {
            assert!(
                (a.1 - b.1).abs() <= 1e-9 * b.1.abs().max(1.0),
                "value of {:?} at {}: {} instead of {}",
                e.labels,
                b.0,
                a.1,
                b.1
            );
        }
    }
}
