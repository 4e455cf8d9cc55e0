//! Several instances of one plugin (`PluginMetadata::init_instance`), and the run mode
//! handed to plugins.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use alumet::test_util::sel;
use std::sync::{Arc, Mutex};

use alumet::pipeline::{PipelineBuilder, PipelineError};
use alumet::plugin::{AnyPlugin, PluginInitError, PluginMetadata};
use alumet::prelude::*;
use alumet::test_util::{Collected, TestPlugin};
use serde::{Deserialize, Serialize};

/// Pushes `value` at each poll, as metric `counted`.
struct Counter {
    config: CounterConfig,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct CounterConfig {
    /// The value pushed at each poll.
    value: u64,
    /// The description of the metric.
    description: String,
}

impl Default for CounterConfig {
    fn default() -> Self {
        CounterConfig {
            value: 1,
            description: "things counted".into(),
        }
    }
}

impl Plugin for Counter {
    type Config = CounterConfig;

    fn name() -> &'static str {
        "counter"
    }

    fn init(config: CounterConfig) -> anyhow::Result<Self> {
        Ok(Counter { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let metric =
            alumet.create_metric::<u64>("counted", Unit::Unity, &self.config.description)?;
        let value = self.config.value;
        let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
            acc.push(MeasurementPoint::new(t, metric, r, c, value));
            Ok(())
        };
        alumet.add_source("src", source, Trigger::manual())?;
        Ok(())
    }
}

fn instance(name: &str, table: &str) -> Result<Box<dyn AnyPlugin>, PluginInitError> {
    PluginMetadata::of::<Counter>().init_instance(name, toml::from_str(table).unwrap())
}

/// A builder with `plugins` and a collecting output.
fn builder(plugins: Vec<Box<dyn AnyPlugin>>) -> (PipelineBuilder, Collected) {
    let collected = Collected::default();
    let output = collected.output();
    let mut builder = PipelineBuilder::new();
    for plugin in plugins {
        builder.plugin(plugin);
    }
    let test = TestPlugin::new("test", move |alumet| {
        alumet.add_output("collector", output)?;
        Ok(())
    });
    builder.plugin(Box::new(test));
    (builder, collected)
}

#[test]
fn two_instances_run_under_their_names_and_share_the_metric() {
    let own = instance("counter", "value = 1").unwrap();
    let other = instance("counter_b", "value = 2").unwrap();
    assert_eq!((own.name(), other.name()), ("counter", "counter_b"));
    let (builder, collected) = builder(vec![own, other]);
    let mut pipeline = builder.start().unwrap();
    assert_eq!(pipeline.plugin_names(), ["counter", "counter_b", "test"]);
    let sources: Vec<String> = (pipeline.control().sources().iter())
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(sources, ["counter/src", "counter_b/src"]);
    // The same definition registered twice is one metric.
    assert_eq!(pipeline.metrics().len(), 1);
    let metric = pipeline.metrics().typed_id::<u64>("counted").unwrap();
    assert_eq!(pipeline.control().trigger_now(sel("*")).wait(), 2);
    pipeline.shutdown();
    let mut values: Vec<(u64, bool)> = (collected.points().iter())
        .map(|p| (p.value.as_f64() as u64, p.metric == metric.raw()))
        .collect();
    values.sort();
    assert_eq!(values, [(1, true), (2, true)]);
}

#[test]
fn an_instance_that_defines_the_metric_otherwise_fails_to_start_naming_it() {
    let own = instance("counter", "").unwrap();
    let other = instance("counter_b", "description = 'other words'").unwrap();
    let (builder, _) = builder(vec![own, other]);
    let Err(error) = builder.start() else {
        panic!("the conflicting instance started");
    };
    assert!(
        matches!(&error, PipelineError::PluginStart { plugin, .. } if plugin == "counter_b"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("metric `counted` is already registered"),
        "{error}"
    );
}

#[test]
fn config_errors_name_the_instance() {
    let Err(error) = instance("counter_b", "valeu = 2") else {
        panic!("an unknown key was accepted");
    };
    match error {
        PluginInitError::Config(c) => {
            assert_eq!((c.plugin.as_str(), c.key.as_str()), ("counter_b", "valeu"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn plugins_see_the_run_mode_of_the_builder() {
    for mode in [None, Some(RunMode::Exec), Some(RunMode::Watch)] {
        let seen = Arc::new(Mutex::new(None));
        let record = Arc::clone(&seen);
        let plugin = TestPlugin::new("probe", move |alumet| {
            *record.lock().unwrap() = Some(alumet.run_mode());
            Ok(())
        });
        let (mut builder, _) = builder(vec![Box::new(plugin)]);
        if let Some(mode) = mode {
            builder.run_mode(mode);
        }
        drop(builder.start().unwrap());
        assert_eq!(*seen.lock().unwrap(), Some(mode.unwrap_or(RunMode::Run)));
    }
}
