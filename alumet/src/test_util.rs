//! Run plugins inside a real pipeline in tests (feature `test-util`).
//!
//! ```
//! use alumet::prelude::*;
//! use alumet::test_util::PipelineTester;
//!
//! let mut tester = PipelineTester::new();
//! let feeder = tester.feeder("input");
//! let run = tester.start().unwrap();
//! let metric = run.metric::<u64>("test_input").unwrap();
//! feeder.push(MeasurementPoint::new(Timestamp::now(), metric, Resource::LocalMachine,
//!     ResourceConsumer::LocalMachine, 42));
//! assert_eq!(run.trigger("test/input"), 1);
//! let (report, points) = run.shutdown();
//! assert_eq!(points.len(), 1);
//! assert_eq!(report.undelivered_points, 0);
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

pub mod logs;
pub mod skip;

use crate::measurement::{
    MeasurementAccumulator, MeasurementBuffer, MeasurementPoint, MeasurementType, Timestamp,
};
use crate::metrics::{MetricId, MetricRegistry, Unit};
use crate::pipeline::{
    ElementError, OutputContext, PipelineBuilder, PipelineControl, PipelineError, PluginControl,
    RunningPipeline, ShutdownReport, Trigger,
};
use crate::plugin::{parse_config, AnyPlugin, Plugin, PluginInitError, Registrar};

type StartFn = Box<dyn FnOnce(&mut Registrar<'_>) -> anyhow::Result<()> + Send>;

/// A point's attributes as `key=value,key=value`, in their order, for tests that compare
/// points as lines of text.
pub fn attributes_text(point: &MeasurementPoint) -> String {
    let attrs: Vec<String> = (point.attributes.iter())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    attrs.join(",")
}

/// The selector `pattern`, for tests: panics with the parse error's message if it is
/// malformed.
pub fn sel(pattern: &str) -> crate::pipeline::Selector {
    crate::pipeline::Selector::parse(pattern).unwrap_or_else(|e| panic!("{e}"))
}

/// A plugin made of a closure, for tests: `start` registers whatever the test needs.
pub struct TestPlugin {
    name: String,
    start: Option<StartFn>,
}

impl TestPlugin {
    /// A plugin named `name` whose `start` is `start`.
    pub fn new(
        name: &str,
        start: impl FnOnce(&mut Registrar<'_>) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        TestPlugin {
            name: name.to_owned(),
            start: Some(Box::new(start)),
        }
    }
}

impl AnyPlugin for TestPlugin {
    fn name(&self) -> &str {
        &self.name
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        match self.start.take() {
            Some(start) => start(alumet),
            None => Ok(()),
        }
    }
    fn post_start(&mut self, _control: &PluginControl) -> anyhow::Result<()> {
        Ok(())
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Points pushed by the test, handed out by a manual source at each trigger.
#[derive(Clone, Default)]
pub struct Feeder(Arc<Mutex<Vec<MeasurementPoint>>>);

impl Feeder {
    /// Queues a point for the next trigger.
    pub fn push(&self, point: MeasurementPoint) {
        lock(&self.0).push(point);
    }
}

/// The points an output received, shared with the test.
#[derive(Clone, Default)]
pub struct Collected(Arc<Mutex<Vec<MeasurementPoint>>>);

impl Collected {
    /// A copy of the points received so far, in order.
    pub fn points(&self) -> Vec<MeasurementPoint> {
        lock(&self.0).clone()
    }

    /// How many points were received.
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    /// Whether no point was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An output that appends every point it receives here.
    pub fn output(
        &self,
    ) -> impl FnMut(&MeasurementBuffer, &OutputContext) -> Result<(), ElementError> + Send + 'static
    {
        let points = Arc::clone(&self.0);
        move |buffer, _ctx| {
            lock(&points).extend(buffer.iter().cloned());
            Ok(())
        }
    }
}

/// Builds a pipeline with the plugins under test, a collecting output (plugin `test`,
/// output `collector`) and feeder sources (`test/<name>`, metric `test_<name>`, `u64`).
#[derive(Default)]
pub struct PipelineTester {
    plugins: Vec<Box<dyn AnyPlugin>>,
    feeders: Vec<(String, Feeder)>,
    shutdown_timeout: Option<std::time::Duration>,
    run_mode: crate::plugin::RunMode,
    host_paths: crate::plugin::HostPaths,
    host_identity: crate::plugin::HostIdentity,
}

impl PipelineTester {
    /// An empty tester.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds plugin `P` with a typed config.
    pub fn plugin<P: Plugin>(&mut self, config: P::Config) -> anyhow::Result<&mut Self> {
        self.plugins.push(Box::new(P::init(config)?));
        Ok(self)
    }

    /// Adds plugin `P` with its config as TOML text (the `[plugins.NAME]` table's content).
    pub fn plugin_toml<P: Plugin>(
        &mut self,
        toml_text: &str,
    ) -> Result<&mut Self, PluginInitError> {
        let table: toml::Table =
            toml_text
                .parse()
                .map_err(|e: toml::de::Error| crate::plugin::ConfigError {
                    plugin: P::name().to_owned(),
                    key: String::new(),
                    message: e.to_string(),
                })?;
        let config = parse_config::<P::Config>(P::name(), table)?;
        let plugin = P::init(config).map_err(|error| PluginInitError::Init {
            plugin: P::name().to_owned(),
            error,
        })?;
        self.plugins.push(Box::new(plugin));
        Ok(self)
    }

    /// Adds any plugin, [`TestPlugin`] included.
    pub fn any_plugin(&mut self, plugin: impl AnyPlugin + 'static) -> &mut Self {
        self.plugins.push(Box::new(plugin));
        self
    }

    /// A manual source `test/<name>` that emits the points pushed into the returned feeder,
    /// and the metric `test_<name>` (`u64`, unit `1`) to build them with.
    pub fn feeder(&mut self, name: &str) -> Feeder {
        let feeder = Feeder::default();
        self.feeders.push((name.to_owned(), feeder.clone()));
        feeder
    }

    /// Sets the shutdown deadline (default 5 s).
    pub fn shutdown_timeout(&mut self, timeout: std::time::Duration) -> &mut Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Sets the run mode handed to the plugins (default [`RunMode::Run`](crate::plugin::RunMode::Run)).
    pub fn run_mode(&mut self, mode: crate::plugin::RunMode) -> &mut Self {
        self.run_mode = mode;
        self
    }

    /// Sets the labels naming the host, handed to the plugins (default none), as the
    /// agent's `[labels]` table and hostname give them.
    pub fn host_identity(&mut self, identity: crate::plugin::HostIdentity) -> &mut Self {
        self.host_identity = identity;
        self
    }

    /// Sets where the host's kernel trees are, handed to the plugins (default `/proc`,
    /// `/sys`, `/sys/fs/cgroup`): a fixture tree given as the agent's general keys give it.
    pub fn host_paths(&mut self, paths: crate::plugin::HostPaths) -> &mut Self {
        self.host_paths = paths;
        self
    }

    /// Starts the pipeline.
    pub fn start(self) -> Result<TestRun, PipelineError> {
        let collected = Collected::default();
        let output = collected.output();
        let feeders = self.feeders;
        let test = TestPlugin::new("test", move |alumet| {
            for (name, feeder) in feeders {
                alumet.create_metric::<u64>(
                    &format!("test_{name}"),
                    Unit::Unity,
                    "points fed by the test",
                )?;
                let source = move |acc: &mut MeasurementAccumulator, _t: Timestamp| {
                    for p in lock(&feeder.0).drain(..) {
                        acc.push(p);
                    }
                    Ok(())
                };
                alumet.add_source(&name, source, Trigger::manual())?;
            }
            alumet.add_output("collector", output)?;
            Ok(())
        });
        let mut builder = PipelineBuilder::new();
        for plugin in self.plugins {
            builder.plugin(plugin);
        }
        builder.plugin(Box::new(test));
        builder.run_mode(self.run_mode);
        builder.host_paths(self.host_paths);
        builder.host_identity(self.host_identity);
        if let Some(timeout) = self.shutdown_timeout {
            builder.shutdown_timeout(timeout);
        }
        Ok(TestRun {
            pipeline: builder.start()?,
            collected,
        })
    }
}

/// A running test pipeline.
pub struct TestRun {
    pipeline: RunningPipeline,
    collected: Collected,
}

impl TestRun {
    /// The control handle.
    pub fn control(&self) -> PipelineControl {
        self.pipeline.control()
    }

    /// The running pipeline.
    pub fn pipeline(&self) -> &RunningPipeline {
        &self.pipeline
    }

    /// The running pipeline, to add, remove or replace plugins.
    pub fn pipeline_mut(&mut self) -> &mut RunningPipeline {
        &mut self.pipeline
    }

    /// Every registered metric.
    pub fn metrics(&self) -> &MetricRegistry {
        self.pipeline.metrics()
    }

    /// The typed id of a metric, by name.
    pub fn metric<T: MeasurementType>(&self, name: &str) -> Option<MetricId<T>> {
        self.metrics().typed_id(name)
    }

    /// Triggers the matching sources and waits until their points are queued; returns how
    /// many sources were polled.
    pub fn trigger(&self, selector: &str) -> usize {
        self.pipeline.control().trigger_now(sel(selector)).wait()
    }

    /// What the collecting output received so far (outputs run on their own thread: call
    /// [`TestRun::shutdown`] to be sure everything arrived).
    pub fn collected(&self) -> &Collected {
        &self.collected
    }

    /// Shuts down (draining every queue) and returns the report and every collected point.
    pub fn shutdown(mut self) -> (ShutdownReport, Vec<MeasurementPoint>) {
        let report = self.pipeline.shutdown();
        (report, self.collected.points())
    }
}

/// CPU cost measurements shared by the benchmarks and the cost examples: process CPU time
/// and the wake-up floor (what a loop that only sleeps to absolute deadlines costs).
pub mod cost {
    use std::time::Duration;

    /// A synthetic source for cost measurements: `points` points of `metric` per poll
    /// (values 0, 1, ...; resource `cpu_package` 0; one shared attribute set), counting its
    /// polls in `polls`. It allocates nothing per poll.
    pub fn synthetic_source(
        metric: crate::metrics::MetricId<u64>,
        points: u64,
        polls: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> impl crate::pipeline::Source {
        use crate::measurement::*;
        let attrs = Attributes::new([("domain", "package")]);
        move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for i in 0..points {
                let p = MeasurementPoint::new(
                    t,
                    metric,
                    Resource::CpuPackage { id: 0 },
                    ResourceConsumer::LocalMachine,
                    i,
                );
                acc.push(p.with_attributes(attrs.clone()));
            }
            Ok(())
        }
    }

    /// User + system CPU time of this process (`getrusage`).
    pub fn cpu_time() -> Duration {
        let usage = rusage();
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }

    /// A figure of `/proc/self/status`: `VmRSS` (in kB), `Threads`...
    pub fn self_status(key: &str) -> anyhow::Result<u64> {
        let text = std::fs::read_to_string("/proc/self/status")?;
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .ok_or_else(|| anyhow::anyhow!("no {key} in /proc/self/status"))?;
        let digits = value.trim().trim_end_matches(" kB");
        Ok(digits.parse()?)
    }

    /// Peak resident memory of this process, in kB.
    pub fn max_rss_kb() -> u64 {
        rusage().ru_maxrss as u64
    }

    fn rusage() -> libc::rusage {
        // SAFETY: getrusage fills the zeroed struct we own.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_SELF with a valid pointer.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        usage
    }

    /// Sets the calling thread's timer slack to 1 ns, as the pipeline's source threads do.
    pub fn precise_timers() {
        // SAFETY: PR_SET_TIMERSLACK only affects this thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    }

    fn now_timespec() -> libc::timespec {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
        t
    }

    fn add_ns(t: &mut libc::timespec, ns: i64) {
        t.tv_nsec += ns;
        while t.tv_nsec >= 1_000_000_000 {
            t.tv_nsec -= 1_000_000_000;
            t.tv_sec += 1;
        }
    }

    /// CPU µs per wake-up of a loop that only sleeps to absolute deadlines every `period`
    /// (`clock_nanosleep(TIMER_ABSTIME)`, 1 ns timer slack), for about `run`.
    pub fn floor(period: Duration, run: Duration) -> f64 {
        precise_timers();
        let n = (run.as_nanos() / period.as_nanos().max(1)).max(1) as u64;
        let cpu0 = cpu_time();
        let mut next = now_timespec();
        for _ in 0..n {
            add_ns(&mut next, period.as_nanos() as i64);
            // SAFETY: a valid timespec; an early return (EINTR) only shortens one sleep.
            unsafe {
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &next,
                    std::ptr::null_mut(),
                )
            };
        }
        (cpu_time() - cpu0).as_secs_f64() * 1e6 / n as f64
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn timespec_arithmetic_carries_seconds() {
            let mut t = libc::timespec {
                tv_sec: 1,
                tv_nsec: 999_999_999,
            };
            add_ns(&mut t, 2);
            assert_eq!((t.tv_sec, t.tv_nsec), (2, 1));
        }

        #[test]
        fn floor_and_cpu_time_are_measured() {
            let before = cpu_time();
            assert!(floor(Duration::from_millis(1), Duration::from_millis(20)) > 0.0);
            assert!(cpu_time() > before);
            assert!(max_rss_kb() > 0);
        }
    }
}

/// A fresh directory under the system's temporary directory, removed (with its content)
/// when dropped; its name holds `tag`, the process id and a counter, so tests running in
/// parallel never share one.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates the directory. Panics if it cannot: this is for tests.
    pub fn new(tag: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("alumet-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create the test directory {}: {e}", dir.display());
        }
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// A new directory holding a copy of the tree `src` (a fixture to change in a test).
    pub fn copy_of(src: &std::path::Path, tag: &str) -> Self {
        let dir = TempDir::new(tag);
        copy_tree(src, dir.path());
        dir
    }
}

/// Copies the tree `src` into `dst` (created if needed); symbolic links are copied as
/// links, as sysfs fixtures need. Panics on an I/O error: this is for tests.
pub fn copy_tree(src: &std::path::Path, dst: &std::path::Path) {
    let fail = |what: &str, path: &std::path::Path, e: std::io::Error| -> ! {
        panic!("copying a test tree: {what} {}: {e}", path.display())
    };
    std::fs::create_dir_all(dst).unwrap_or_else(|e| fail("creating", dst, e));
    let entries = std::fs::read_dir(src).unwrap_or_else(|e| fail("listing", src, e));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| fail("listing", src, e));
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| fail("reading", &from, e));
        if kind.is_symlink() {
            let target = std::fs::read_link(&from).unwrap_or_else(|e| fail("reading", &from, e));
            std::os::unix::fs::symlink(target, &to).unwrap_or_else(|e| fail("linking", &to, e));
        } else if kind.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).unwrap_or_else(|e| fail("copying", &from, e));
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}
