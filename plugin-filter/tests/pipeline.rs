//! The filter in a pipeline: as a transform before every output, or before one output
//! while the others receive every point; an output name that does not run is an error.
#![allow(clippy::unwrap_used)]

use alumet::pipeline::PipelineError;
use alumet::prelude::*;
use alumet::test_util::{Collected, PipelineTester, TestPlugin};
use plugin_filter::FilterPlugin;

/// Two metrics, `a_energy` and `b_power`, one point each (values 1 and 2) per poll, and
/// two collecting outputs `one` and `two`.
fn run(filter: &str) -> Result<(Vec<u64>, Vec<u64>), PipelineError> {
    let (one, two) = (Collected::default(), Collected::default());
    let (one_out, two_out) = (one.output(), two.output());
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("src", |alumet| {
        let a = alumet.create_metric::<u64>("a_energy", Unit::Unity, "a")?;
        let b = alumet.create_metric::<u64>("b_power", Unit::Unity, "b")?;
        let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            let local = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
            acc.push(MeasurementPoint::new(
                t,
                a,
                local.0.clone(),
                local.1.clone(),
                1u64,
            ));
            acc.push(MeasurementPoint::new(t, b, local.0, local.1, 2u64));
            Ok(())
        };
        alumet.add_source("s", source, Trigger::manual())?;
        Ok(())
    }));
    tester.plugin_toml::<FilterPlugin>(filter).unwrap();
    tester.any_plugin(TestPlugin::new("one", move |alumet| {
        alumet.add_output("out", one_out)?;
        Ok(())
    }));
    tester.any_plugin(TestPlugin::new("two", move |alumet| {
        alumet.add_output("out", two_out)?;
        Ok(())
    }));
    let run = tester.start()?;
    for _ in 0..3 {
        assert_eq!(run.trigger("src/s"), 1);
    }
    let _ = run.shutdown();
    let values = |c: &Collected| c.points().iter().map(|p| p.value.as_f64() as u64).collect();
    Ok((values(&one), values(&two)))
}

#[test]
fn without_outputs_it_filters_what_every_output_receives() {
    let (one, two) = run("include = [{ metric = '*_energy' }]").unwrap();
    assert_eq!(one, vec![1, 1, 1]);
    assert_eq!(two, vec![1, 1, 1]);
}

#[test]
fn with_outputs_it_filters_before_those_only() {
    let (one, two) = run("exclude = [{ metric = 'a_*' }]\noutputs = ['two']").unwrap();
    assert_eq!(one, vec![1, 2, 1, 2, 1, 2]);
    assert_eq!(two, vec![2, 2, 2]);
}

#[test]
fn an_output_that_does_not_run_is_an_error_naming_those_that_do() {
    let err = run("include = [{ metric = '*' }]\noutputs = ['three']").unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("`three`") && text.contains("one, two"),
        "{text}"
    );
}

#[test]
fn a_filter_without_rules_is_a_config_error() {
    let mut tester = PipelineTester::new();
    let err = tester
        .plugin_toml::<FilterPlugin>("outputs = ['one']")
        .map(|_| ())
        .unwrap_err();
    assert!(
        err.to_string().contains("give `include` or `exclude`"),
        "{err}"
    );
}

#[test]
fn the_public_alumet_form_lists_metric_names() {
    // Alumet's filter takes metric names: `include = ["cpu_time_delta"]`.
    let (one, two) = run("include = ['a_energy']").unwrap();
    assert_eq!((one, two), (vec![1, 1, 1], vec![1, 1, 1]));
    let (one, _) = run("exclude = ['a_energy']").unwrap();
    assert_eq!(one, vec![2, 2, 2]);
    // A table with a wrong key still gets serde's message naming it.
    let mut tester = PipelineTester::new();
    let err = tester
        .plugin_toml::<FilterPlugin>("include = [{ metrc = 'a_*' }]")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("metrc"), "{err}");
}
