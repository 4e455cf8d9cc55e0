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
