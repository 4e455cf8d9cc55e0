//! Helpers shared by the integration tests: the plugin on fake GPUs in a real pipeline,
//! polled on demand, and its points looked up by metric.
#![allow(dead_code)] // each test file uses part of it

use std::collections::{BTreeSet, HashMap};

use alumet::metrics::RawMetricId;
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestRun};
use plugin_nvidia::fake::{FakeBackend, FakeGpu, FakeState};
use plugin_nvidia::{Config, NvidiaPlugin};

/// A healthy fake GPU at `bus_id`.
pub fn gpu(bus_id: &str) -> FakeGpu {
    FakeGpu::new(FakeState::new(bus_id))
}

/// The config of the tests: polled only on demand (the schedule is an hour).
pub fn config(extra: &str) -> Config {
    let text = format!("poll_interval = '1h'\n{extra}");
    toml::from_str(&text).unwrap()
}

/// The plugin on `gpus` with `config`, started in a pipeline.
pub fn start(config: Config, gpus: &[FakeGpu]) -> TestRun {
    try_start(config, gpus).unwrap()
}

/// The same, returning the start error.
pub fn try_start(config: Config, gpus: &[FakeGpu]) -> anyhow::Result<TestRun> {
    try_start_in(RunMode::Run, config, gpus)
}

/// [`try_start`] in the agent's run mode `mode` (exec, watch).
pub fn try_start_in(mode: RunMode, config: Config, gpus: &[FakeGpu]) -> anyhow::Result<TestRun> {
    alumet::test_util::logs::capture();
    let plugin = NvidiaPlugin::with_backend(config, Box::new(FakeBackend(gpus.to_vec())))?;
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    tester.run_mode(mode);
    Ok(tester.start()?)
}

/// Polls every GPU once and waits until the points are queued; returns how many sources
/// were polled.
pub fn poll(run: &TestRun) -> usize {
    run.trigger("nvidia/*")
}

/// What a run measured, with the names of its metrics.
pub struct Measured {
    pub points: Vec<MeasurementPoint>,
    names: HashMap<RawMetricId, String>,
}

/// Shuts the run down and keeps its points.
pub fn finish(run: TestRun) -> Measured {
    let names = run
        .metrics()
        .iter()
        .map(|(id, m)| (id, m.name.to_string()))
        .collect();
    let (report, points) = run.shutdown();
    assert_eq!(report.undelivered_points, 0);
    Measured { points, names }
}

impl Measured {
    /// The values of `metric` for the GPU `bus_id` and `consumer` (`""`: the machine, or a
    /// pid), in order.
    pub fn values(&self, metric: &str, bus_id: &str, consumer: &str) -> Vec<f64> {
        self.of(metric)
            .filter(|p| p.resource.id().to_string() == bus_id)
            .filter(|p| p.consumer.id().to_string() == consumer)
            .map(|p| p.value.as_f64())
            .collect()
    }

    /// The points of `metric`.
    pub fn of<'a>(&'a self, metric: &'a str) -> impl Iterator<Item = &'a MeasurementPoint> + 'a {
        self.points
            .iter()
            .filter(move |p| self.names.get(&p.metric).is_some_and(|n| n == metric))
    }

    /// The names of the metrics that have points.
    pub fn metric_names(&self) -> BTreeSet<String> {
        self.points
            .iter()
            .filter_map(|p| self.names.get(&p.metric).cloned())
            .collect()
    }
}

/// A procfs tree where 11 is the child of 10, and 20 is unrelated.
pub fn process_tree(test: &str) -> alumet::test_util::TempDir {
    let dir = alumet::test_util::TempDir::new(test);
    for (pid, ppid) in [(10, 1), (11, 10), (20, 1)] {
        let d = dir.path().join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        // A whole line, as the kernel writes it.
        let stat = format!(
            "{pid} (worker x) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 100 \
             1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        std::fs::write(d.join("stat"), stat).unwrap();
    }
    dir
}
