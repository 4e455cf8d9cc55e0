//! The plugin API: typed config, unavailable hardware, registration errors, autonomous
//! sources, transforms in order.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use alumet::pipeline::{PipelineBuilder, PipelineError};
use alumet::plugin::{PluginInitError, PluginMetadata, RegistrationError};
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use common::*;
use serde::{Deserialize, Serialize};

struct Sensor {
    config: SensorConfig,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SensorConfig {
    /// How often to read the sensor.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    poll_interval: Duration,
    /// How many values per poll.
    count: u32,
    /// Nested settings.
    limits: Limits,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Limits {
    /// Highest value.
    max: u64,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            poll_interval: Duration::from_secs(1),
            count: 2,
            limits: Limits::default(),
        }
    }
}

impl Plugin for Sensor {
    type Config = SensorConfig;

    fn name() -> &'static str {
        "sensor"
    }

    fn init(config: SensorConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(config.count > 0, "count must be at least 1");
        Ok(Sensor { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let m = alumet.create_metric::<u64>("sensor_value", Unit::Unity, "a value")?;
        let count = u64::from(self.config.count);
        alumet.add_source(
            "read",
            counting_source(m, count, counter()),
            Trigger::manual(),
        )?;
        Ok(())
    }
}

fn init_err(toml_text: &str) -> PluginInitError {
    let table: toml::Table = toml_text.parse().unwrap();
    match PluginMetadata::of::<Sensor>().init(table) {
        Ok(_) => panic!("config accepted: {toml_text}"),
        Err(e) => e,
    }
}

#[test]
fn typed_config_errors_name_the_key() {
    let err = init_err("pol_interval = '1s'\ncount = 1\nlimits = { max = 1 }");
    let PluginInitError::Config(c) = &err else {
        panic!("{err}")
    };
    assert!(c.message.contains("unknown field `pol_interval`"), "{err}");
    assert!(
        c.message.contains("poll_interval"),
        "lists the valid keys: {err}"
    );

    let err = init_err("poll_interval = '1s'\ncount = 'three'\nlimits = { max = 1 }");
    let PluginInitError::Config(c) = &err else {
        panic!("{err}")
    };
    assert_eq!(c.key, "count", "{err}");
    assert!(
        err.to_string().contains("plugin `sensor`, key `count`"),
        "{err}"
    );

    let err = init_err("poll_interval = 'soon'\ncount = 1\nlimits = { max = 1 }");
    assert!(err.to_string().contains("key `poll_interval`"), "{err}");

    let err = init_err("poll_interval = '1s'\ncount = 1\nlimits = { max = -1 }");
    assert!(err.to_string().contains("key `limits.max`"), "{err}");

    let err = init_err("poll_interval = '1s'\ncount = 1\nlimits = { maxi = 1 }");
    let PluginInitError::Config(c) = &err else {
        panic!("{err}")
    };
    assert_eq!(c.key, "limits.maxi");
    assert!(
        c.message.contains("unknown field `maxi`, expected `max`"),
        "{err}"
    );

    let err = init_err("poll_interval = '1s'\ncount = 0\nlimits = { max = 1 }");
    assert!(matches!(err, PluginInitError::Init { .. }));
    assert!(
        err.to_string().contains("count must be at least 1"),
        "{err}"
    );
}

#[test]
fn missing_keys_take_their_default() {
    let table: toml::Table = "count = 7".parse().unwrap();
    let plugin = PluginMetadata::of::<Sensor>().init(table);
    assert!(plugin.is_ok(), "{:?}", plugin.err().map(|e| e.to_string()));
    let table: toml::Table = "limits = {}".parse().unwrap();
    assert!(PluginMetadata::of::<Sensor>().init(table).is_ok());
}

#[test]
fn default_config_round_trips() {
    let meta = PluginMetadata::of::<Sensor>();
    let table = meta.default_config().unwrap();
    assert_eq!(
        table.get("poll_interval").and_then(|v| v.as_str()),
        Some("1s")
    );
    let plugin = meta.init(table).unwrap();
    assert_eq!(plugin.name(), "sensor");
    let schema = meta.config_schema();
    let doc = schema
        .pointer("/properties/poll_interval/description")
        .and_then(|d| d.as_str());
    assert_eq!(doc, Some("How often to read the sensor."));
}

#[test]
fn typed_config_plugin_runs_in_a_pipeline() {
    let mut tester = PipelineTester::new();
    tester
        .plugin_toml::<Sensor>("poll_interval = '10ms'\ncount = 3\nlimits = { max = 9 }")
        .unwrap();
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("sensor/read"), 1);
    let (_, points) = run.shutdown();
    assert_eq!(points.len(), 3);
}

#[test]
fn unavailable_plugin_is_skipped_and_the_others_run() {
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("gpu", |alumet| {
        let m = alumet.create_metric::<u64>("gpu_value", Unit::Unity, "v")?;
        // Registered before finding out: must be discarded with the plugin.
        alumet.add_source("s", counting_source(m, 1, counter()), Trigger::manual())?;
        Err(Unavailable::new("no NVIDIA driver", "install the NVIDIA driver").into())
    }));
    tester.plugin::<Sensor>(SensorConfig::default()).unwrap();
    let run = tester.start().unwrap();
    let unavailable = run.pipeline().unavailable_plugins().to_vec();
    assert_eq!(unavailable.len(), 1);
    assert_eq!(unavailable[0].0, "gpu");
    assert_eq!(
        unavailable[0].1.to_string(),
        "no NVIDIA driver (install the NVIDIA driver)"
    );
    assert_eq!(
        run.trigger("gpu/*"),
        0,
        "the unavailable plugin's source is gone"
    );
    assert_eq!(run.trigger("sensor/*"), 1);
    assert_eq!(run.pipeline().plugin_names(), vec!["sensor", "test"]);
}

#[test]
fn other_start_errors_are_fatal_and_name_the_plugin() {
    let mut builder = PipelineBuilder::new();
    builder.plugin(Box::new(TestPlugin::new("broken", |_| {
        anyhow::bail!("cannot open /dev/thing")
    })));
    let Err(err) = builder.start() else {
        panic!("started")
    };
    assert!(matches!(err, PipelineError::PluginStart { .. }));
    assert_eq!(
        err.to_string(),
        "plugin `broken` failed to start: cannot open /dev/thing"
    );
}

#[test]
fn registration_errors() {
    let mut builder = PipelineBuilder::new();
    builder.plugin(Box::new(TestPlugin::new("dup", |alumet| {
        let m = alumet.create_metric::<u64>("v", Unit::Unity, "v")?;
        alumet.add_source("s", counting_source(m, 1, counter()), Trigger::manual())?;
        let err = alumet
            .add_source("s", counting_source(m, 1, counter()), Trigger::manual())
            .unwrap_err();
        assert!(
            matches!(err, RegistrationError::DuplicateName { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("dup/s"), "{err}");
        let err = alumet
            .add_source(
                "z",
                counting_source(m, 1, counter()),
                Trigger::every(Duration::ZERO),
            )
            .unwrap_err();
        assert!(matches!(err, RegistrationError::ZeroInterval(_)), "{err}");
        let err = alumet
            .create_metric::<f64>("v", Unit::Joule, "v")
            .unwrap_err();
        assert!(err.to_string().contains("already registered"), "{err}");
        // A transform and an output may share a name with a source.
        alumet.add_output("s", |_b: &MeasurementBuffer, _c: &OutputContext| Ok(()))?;
        Ok(())
    })));
    builder.start().unwrap();
}

/// A transform that doubles every (integer) value.
fn double(b: &mut MeasurementBuffer, _c: &TransformContext) -> Result<(), ElementError> {
    b.iter_mut()
        .for_each(|p| p.value = MeasurementValue::U64(p.value.as_f64() as u64 * 2));
    Ok(())
}

#[test]
fn transforms_run_in_registration_order() {
    let mut tester = PipelineTester::new();
    let feeder = tester.feeder("in");
    tester.any_plugin(TestPlugin::new("t", |alumet| {
        alumet.add_transform("double", double)?;
        alumet.add_transform(
            "plus_one",
            |b: &mut MeasurementBuffer, _c: &TransformContext| {
                b.iter_mut()
                    .for_each(|p| p.value = MeasurementValue::U64(p.value.as_f64() as u64 + 1));
                Ok(())
            },
        )?;
        alumet.add_transform(
            "drop_big",
            |b: &mut MeasurementBuffer, _c: &TransformContext| {
                b.retain(|p| p.value.as_f64() < 100.0);
                Ok(())
            },
        )?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    let m = run.metric::<u64>("test_in").unwrap();
    for v in [5, 10, 60] {
        feeder.push(point(m, v));
    }
    assert_eq!(run.trigger("test/in"), 1);
    let (_, points) = run.shutdown();
    let values: Vec<f64> = points.iter().map(|p| p.value.as_f64()).collect();
    assert_eq!(
        values,
        vec![11.0, 21.0],
        "(5*2)+1, (10*2)+1; (60*2)+1 dropped"
    );
}

#[test]
fn autonomous_source_sends_until_shutdown_and_loses_nothing() {
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("auto", |alumet| {
        let m = alumet.create_metric::<u64>("events", Unit::Unity, "v")?;
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        alumet.add_autonomous_source("ticker", ticker(m, sent, ended))?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    wait_until("autonomous points", || run.collected().len() >= 5);
    let (report, points) = run.shutdown();
    assert_eq!(report.undelivered_points, 0);
    let values: Vec<u64> = points.iter().map(|p| p.value.as_f64() as u64).collect();
    assert_eq!(values.last(), Some(&(u64::MAX as f64 as u64)));
    let sequence: Vec<u64> = values[..values.len() - 1].to_vec();
    assert_eq!(
        sequence,
        (0..sequence.len() as u64).collect::<Vec<_>>(),
        "none missing, in order"
    );
}

/// Holds the points back and emits their sum when the pipeline shuts down.
struct SumAtShutdown {
    sum: u64,
    last: Option<MeasurementPoint>,
}

impl Transform for SumAtShutdown {
    fn apply(
        &mut self,
        b: &mut MeasurementBuffer,
        _c: &TransformContext,
    ) -> Result<(), ElementError> {
        for p in b.iter() {
            self.sum += p.value.as_f64() as u64;
            self.last = Some(p.clone());
        }
        b.clear();
        Ok(())
    }

    fn finish(
        &mut self,
        b: &mut MeasurementBuffer,
        _c: &TransformContext,
    ) -> Result<(), ElementError> {
        if let Some(mut p) = self.last.take() {
            p.value = MeasurementValue::U64(self.sum);
            b.push(p);
        }
        Ok(())
    }
}

#[test]
fn what_a_transform_holds_is_finished_at_shutdown_through_the_later_transforms() {
    let mut tester = PipelineTester::new();
    let feeder = tester.feeder("in");
    tester.any_plugin(TestPlugin::new("t", |alumet| {
        alumet.add_transform("sum", SumAtShutdown { sum: 0, last: None })?;
        alumet.add_transform("double", double)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    let m = run.metric::<u64>("test_in").unwrap();
    for v in [5, 10] {
        feeder.push(point(m, v));
        assert_eq!(run.trigger("test/in"), 1);
    }
    feeder.push(point(m, 20));
    assert_eq!(run.trigger("test/in"), 1);
    assert!(run.collected().is_empty(), "held back until shutdown");
    let (report, points) = run.shutdown();
    let values: Vec<f64> = points.iter().map(|p| p.value.as_f64()).collect();
    assert_eq!(values, [70.0], "(5 + 10 + 20) * 2, once");
    assert_eq!(report.undelivered_points, 0);
}
