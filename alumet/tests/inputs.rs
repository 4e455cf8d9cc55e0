//! An output that names its inputs receives the points of those plugins' metrics only.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use alumet::pipeline::PipelineBuilder;
use alumet::prelude::*;
use alumet::test_util::{Collected, TestPlugin};
use common::*;

/// A plugin with one manual source of `per_poll` points of its own metric `NAME_value`.
fn source_plugin(name: &'static str, per_poll: u64) -> TestPlugin {
    TestPlugin::new(name, move |alumet| {
        let m = alumet.create_metric::<u64>(&format!("{name}_value"), Unit::Unity, "a value")?;
        alumet.add_source(
            "src",
            counting_source(m, per_poll, counter()),
            Trigger::manual(),
        )?;
        Ok(())
    })
}

#[test]
fn an_output_with_inputs_receives_only_their_points_and_is_given_only_those() {
    let (only, all) = (Collected::default(), Collected::default());
    let (only_out, all_out) = (only.output(), all.output());
    let mut builder = PipelineBuilder::new();
    builder.plugin(Box::new(source_plugin("a", 2)));
    builder.plugin(Box::new(source_plugin("b", 3)));
    // A transform that adds one point of its own metric to each buffer.
    builder.plugin(Box::new(TestPlugin::new("t", |alumet| {
        let m = alumet.create_metric::<u64>("t_value", Unit::Unity, "a value")?;
        let add = move |b: &mut MeasurementBuffer, _c: &TransformContext| {
            b.push(point(m, 7));
            Ok(())
        };
        alumet.add_transform("add", add)?;
        Ok(())
    })));
    builder.plugin(Box::new(TestPlugin::new("only", move |alumet| {
        alumet.add_output("out", only_out)?;
        Ok(())
    })));
    builder.plugin(Box::new(TestPlugin::new("all", move |alumet| {
        alumet.add_output("out", all_out)?;
        Ok(())
    })));
    builder.output_inputs("only", &["a".to_owned(), "t".to_owned()]);
    let mut run = builder.start().unwrap();
    let control = run.control();
    for _ in 0..5 {
        for source in ["a/src", "b/src"] {
            let selector = Selector::parse(source).unwrap();
            assert_eq!(control.trigger_now(selector).wait(), 1);
        }
    }
    let report = run.shutdown();
    let names = |c: &Collected| {
        let metrics = run.metrics();
        let n: std::collections::BTreeSet<String> = (c.points().iter())
            .map(|p| metrics.get(p.metric).unwrap().name.clone())
            .collect();
        n.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(names(&only), ["a_value", "t_value"]);
    assert_eq!(names(&all), ["a_value", "b_value", "t_value"]);
    // 5 triggers of a (2 points) and of b (3 points), one t point per buffer (10).
    assert_eq!(all.len(), 10 + 15 + 10);
    assert_eq!(only.len(), 10 + 10);
    for (name, expected) in [("only", 20), ("all", 35)] {
        let s = report
            .outputs
            .iter()
            .find(|s| s.name.plugin == name)
            .unwrap();
        assert_eq!(s.written_points, expected, "{s:?}");
        assert_eq!(
            s.dropped_points + s.failed_points + s.queued_points,
            0,
            "{s:?}"
        );
    }
}

#[test]
fn a_plugin_s_filter_before_one_output_lets_through_only_what_it_keeps() {
    let (filtered, all) = (Collected::default(), Collected::default());
    let (filtered_out, all_out) = (filtered.output(), all.output());
    let mut builder = PipelineBuilder::new();
    builder.plugin(Box::new(source_plugin("a", 4)));
    builder.plugin(Box::new(TestPlugin::new("even", |alumet| {
        // Two filters before `filtered`: both must hold.
        alumet.add_output_filter("filtered", |p, _| p.value.as_f64() as u64 % 2 == 0);
        alumet.add_output_filter("filtered", |p, m| {
            m.get(p.metric).is_some_and(|m| m.name == "a_value") && p.value.as_f64() < 10.0
        });
        Ok(())
    })));
    builder.plugin(Box::new(TestPlugin::new("filtered", move |alumet| {
        alumet.add_output("out", filtered_out)?;
        Ok(())
    })));
    builder.plugin(Box::new(TestPlugin::new("all", move |alumet| {
        alumet.add_output("out", all_out)?;
        Ok(())
    })));
    let mut run = builder.start().unwrap();
    let control = run.control();
    for _ in 0..5 {
        assert_eq!(
            control
                .trigger_now(Selector::parse("a/src").unwrap())
                .wait(),
            1
        );
    }
    let report = run.shutdown();
    let values = |c: &Collected| -> Vec<u64> {
        c.points().iter().map(|p| p.value.as_f64() as u64).collect()
    };
    assert_eq!(values(&all), (0..20).collect::<Vec<_>>());
    assert_eq!(values(&filtered), vec![0, 2, 4, 6, 8]);
    let stats = |name: &str| {
        report
            .outputs
            .iter()
            .find(|o| o.name.plugin == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        stats("filtered").written_points,
        5,
        "given only what passed"
    );
    assert_eq!(stats("all").written_points, 20);
}
