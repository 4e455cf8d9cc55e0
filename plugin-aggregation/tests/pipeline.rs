//! The aggregation in a pipeline: the last, partial window written at shutdown (through
//! the transform's finish), under a metric the outputs know by name.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use plugin_aggregation::AggregationPlugin;

#[test]
fn the_partial_window_is_written_at_shutdown_under_its_own_metric() {
    let seen: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let s = Arc::clone(&seen);
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("src", |alumet| {
        let e = alumet.create_metric::<f64>("energy", Unit::Joule, "e")?;
        let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            acc.push(MeasurementPoint::new(
                t,
                e,
                Resource::LocalMachine,
                ResourceConsumer::LocalMachine,
                1.5,
            ));
            Ok(())
        };
        alumet.add_source("s", source, Trigger::manual())?;
        Ok(())
    }));
    tester
        .plugin_toml::<AggregationPlugin>("interval = '1h'\nfunctions = ['sum', 'count']")
        .unwrap();
    tester.any_plugin(TestPlugin::new("out", move |alumet| {
        alumet.add_output(
            "names",
            move |b: &MeasurementBuffer, ctx: &OutputContext| {
                for p in b.iter() {
                    let name = ctx
                        .metrics()
                        .get(p.metric)
                        .map_or("?".into(), |m| m.name.clone());
                    s.lock().unwrap().push((name, p.value.as_f64()));
                }
                Ok(())
            },
        )?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    for _ in 0..4 {
        assert_eq!(run.trigger("src/s"), 1);
    }
    let (report, _) = run.shutdown();
    assert!(!report.timed_out);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    // One window of an hour (unless the test ran across an hour's boundary: two).
    let sums: f64 = seen
        .iter()
        .filter(|(n, _)| n == "energy_sum")
        .map(|(_, v)| v)
        .sum();
    let counts: f64 = seen
        .iter()
        .filter(|(n, _)| n == "energy_count")
        .map(|(_, v)| v)
        .sum();
    assert_eq!((sums, counts), (6.0, 4.0), "{seen:?}");
    assert!(
        seen.iter().all(|(n, _)| n.starts_with("energy_")),
        "no raw point: {seen:?}"
    );
}
