//! Helpers shared by the integration tests: a real `influxd` on a free loopback port, a
//! recording HTTP server, and a pipeline with the influxdb plugin and a feeder.
#![allow(dead_code)] // each test file uses part of it

pub mod influxd;
pub mod lineproto;
/// The scripted HTTP server every network output's tests share.
#[allow(unused_imports)] // not every test file uses it
pub use alumet_delivery::test_util as recorder;

use std::time::{Duration, Instant};

use alumet::pipeline::{OutputStats, ShutdownReport};
use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet::test_util::{Feeder, PipelineTester, TestPlugin, TestRun};
use plugin_influxdb::{Config, InfluxDbPlugin, StatsHandle};

pub use alumet::test_util::TempDir;

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running pipeline with the influxdb plugin, the feeder `test/input` (metric
/// `test_input`, u64, unit 1) and the f64 metric `energy` (J).
pub struct Run {
    pub run: TestRun,
    pub feeder: Feeder,
    /// The feeder's source, to trigger (`test/input`).
    pub source: String,
    pub stats: StatsHandle,
    pub count: MetricId<u64>,
    pub energy: MetricId<f64>,
}

pub fn start(config: Config, shutdown_timeout: Duration) -> Run {
    start_named(config, shutdown_timeout, "input")
}

/// As [`start`], with the feeder `test/NAME` and its metric `test_NAME`.
pub fn start_named(config: Config, shutdown_timeout: Duration, name: &str) -> Run {
    start_full(config, shutdown_timeout, name, HostIdentity::default())
}

/// As [`start_named`], the agent having set the host identity `identity`.
pub fn start_full(
    config: Config,
    shutdown_timeout: Duration,
    name: &str,
    identity: HostIdentity,
) -> Run {
    let mut tester = PipelineTester::new();
    tester.host_identity(identity);
    tester.any_plugin(TestPlugin::new("src", |alumet| {
        alumet.create_metric::<f64>("energy", Unit::Joule, "energy")?;
        Ok(())
    }));
    let plugin = InfluxDbPlugin::init(config).unwrap();
    let stats = plugin.stats_handle();
    tester.any_plugin(plugin);
    tester.shutdown_timeout(shutdown_timeout);
    let feeder = tester.feeder(name);
    let run = tester.start().unwrap();
    let count = run.metric::<u64>(&format!("test_{name}")).unwrap();
    let energy = run.metric::<f64>("energy").unwrap();
    Run {
        run,
        feeder,
        source: format!("test/{name}"),
        stats,
        count,
        energy,
    }
}

impl Run {
    /// Feeds one point of `test_input` per value, timestamps `t0 + value` ns, and triggers.
    pub fn feed_counts(&self, t0: u64, values: impl IntoIterator<Item = u64>) {
        for v in values {
            let t = Timestamp::from_unix_nanos(t0 + v);
            self.feeder.push(MeasurementPoint::new(
                t,
                self.count,
                Resource::LocalMachine,
                ResourceConsumer::LocalMachine,
                v,
            ));
        }
        assert_eq!(self.run.trigger(&self.source), 1);
    }

    /// Waits (at most `limit`) until the output has received `n` points.
    pub fn wait_received(&self, n: u64, limit: Duration) {
        assert!(
            wait_until(limit, || self.stats.stats().received >= n),
            "the output received {:?}",
            self.stats.stats()
        );
    }
}

/// The influxdb output's figures in `report`: (written, dropped, failed); asserts that
/// they account for every point it was given (`given`) and that nothing is pending.
pub fn figures(report: &ShutdownReport, given: u64) -> (u64, u64, u64) {
    let o: &OutputStats = report
        .outputs
        .iter()
        .find(|o| o.name.plugin == "influxdb")
        .unwrap_or_else(|| panic!("no influxdb output in {report:?}"));
    let f = (o.written_points, o.dropped_points, o.failed_points);
    assert_eq!(o.queued_points, 0, "{o:?}");
    assert_eq!(f.0 + f.1 + f.2, given, "the figures add up: {o:?}");
    f
}

/// A fixed-seed xorshift generator for the property tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
