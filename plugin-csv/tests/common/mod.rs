//! Helpers shared by the integration tests: temporary directories, a pipeline with the
//! csv plugin and a feeder, and an `OutputContext` to call the output directly.
#![allow(dead_code)] // each test file uses part of it

use std::path::Path;
use std::sync::{Arc, Mutex};

use alumet::pipeline::{PipelineError, ShutdownReport};
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use plugin_csv::{Config, CsvPlugin};

pub use alumet::test_util::TempDir;

/// The default config, writing to `path`.
pub fn config(path: &Path) -> Config {
    Config {
        output_path: path.to_owned(),
        ..Config::default()
    }
}

/// The metrics of the tests, besides the feeder's `test_input` (`u64`, unit `1`).
pub struct Metrics {
    pub energy: MetricId<f64>,
    pub memory: MetricId<u64>,
    pub temperature: MetricId<f64>,
    pub power: MetricId<f64>,
    pub count: MetricId<u64>,
}

fn register_metrics(alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
    alumet.create_metric::<f64>("rapl_consumed_energy", Unit::Joule, "energy")?;
    alumet.create_metric::<u64>("memory_usage", Unit::Byte, "memory")?;
    alumet.create_metric::<f64>("cpu_temperature", Unit::DegreeCelsius, "temperature")?;
    alumet.create_metric::<f64>("gpu_power", Unit::Watt, "power")?;
    Ok(())
}

impl Metrics {
    pub fn of(registry: &alumet::metrics::MetricRegistry) -> Self {
        Metrics {
            energy: registry.typed_id("rapl_consumed_energy").unwrap(),
            memory: registry.typed_id("memory_usage").unwrap(),
            temperature: registry.typed_id("cpu_temperature").unwrap(),
            power: registry.typed_id("gpu_power").unwrap(),
            count: registry.typed_id("test_input").unwrap(),
        }
    }
}

/// Runs a pipeline with the csv plugin configured by `config`; each batch that `batches`
/// returns is fed and triggered (one buffer per batch); returns the shutdown report.
pub fn run_csv(
    config: Config,
    batches: impl FnOnce(&Metrics) -> Vec<Vec<MeasurementPoint>>,
) -> Result<ShutdownReport, PipelineError> {
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("src", register_metrics));
    tester.plugin::<CsvPlugin>(config).unwrap();
    let feeder = tester.feeder("input");
    let run = tester.start()?;
    let metrics = Metrics::of(run.metrics());
    for batch in batches(&metrics) {
        for point in batch {
            feeder.push(point);
        }
        assert_eq!(run.trigger("test/input"), 1);
    }
    let (report, _points) = run.shutdown();
    Ok(report)
}

/// The context a pipeline gives its outputs, with the metrics of [`Metrics`]: taken from a
/// real pipeline because the core has no public constructor for it.
pub fn output_context() -> OutputContext {
    let slot: Arc<Mutex<Option<OutputContext>>> = Arc::default();
    let captured = Arc::clone(&slot);
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("ctx", move |alumet| {
        register_metrics(alumet)?;
        let capture = move |_: &MeasurementBuffer, ctx: &OutputContext| {
            *captured.lock().unwrap() = Some(ctx.clone());
            Ok(())
        };
        alumet.add_output("capture", capture)?;
        Ok(())
    }));
    let feeder = tester.feeder("input");
    let run = tester.start().unwrap();
    let metric = run.metric::<u64>("test_input").unwrap();
    let (resource, consumer) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
    feeder.push(MeasurementPoint::new(
        Timestamp::now(),
        metric,
        resource,
        consumer,
        1,
    ));
    assert_eq!(run.trigger("test/input"), 1);
    run.shutdown();
    let ctx = slot.lock().unwrap().take();
    ctx.unwrap()
}
