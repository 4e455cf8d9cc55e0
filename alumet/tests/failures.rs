//! Retryable errors, fatal errors and panics stay inside the element that had them.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alumet::pipeline::{ElementKind, ElementStats};
use alumet::prelude::*;
use alumet::test_util::{Collected, PipelineTester, TestPlugin};
use common::*;

#[derive(Clone, Copy, Debug)]
enum Failure {
    Retryable,
    Fatal,
    Panic,
}

/// Fails on the 2nd call (counting from 1), succeeds otherwise.
fn fail_on_second_call(calls: &AtomicU64, failure: Failure) -> Result<(), ElementError> {
    if calls.fetch_add(1, Ordering::SeqCst) + 1 != 2 {
        return Ok(());
    }
    match failure {
        Failure::Retryable => Err(ElementError::retryable(anyhow::anyhow!(
            "temporary failure"
        ))),
        Failure::Fatal => Err(anyhow::anyhow!("broken for good").into()),
        Failure::Panic => panic!("element bug"),
    }
}

struct Outcome {
    /// Values received by a healthy output, in order.
    healthy: Vec<u64>,
    /// Values received by the output under test.
    tested: Vec<u64>,
    /// Whether the failing source is still active at the end.
    source_active: bool,
    /// Polls of the healthy source.
    other_source_polls: u64,
    /// The pipeline's statistics of each element at the end.
    stats: Vec<ElementStats>,
}

impl Outcome {
    fn stats(&self, element: &str) -> &ElementStats {
        self.stats
            .iter()
            .find(|s| s.name.element == element)
            .unwrap()
    }
}

/// Source `p/bad` (fails per `source`), source `p/good`, a transform adding 1000 (fails per
/// `transform`), output `p/tested` (fails per `output`) and a healthy output. Triggers
/// `p/bad` then `p/good`, four times; each poll of `bad` gives one point valued by its poll number, `good`
/// gives values 100+.
fn run(source: Option<Failure>, transform: Option<Failure>, output: Option<Failure>) -> Outcome {
    let (healthy, tested) = (Collected::default(), Collected::default());
    let (healthy_out, mut tested_out) = (healthy.output(), tested.output());
    let good_polls = counter();
    let good_polls2 = good_polls.clone();
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let calls = AtomicU64::new(0);
        alumet.add_source(
            "bad",
            move |acc: &mut MeasurementAccumulator, _t: Timestamp| {
                let n = calls.load(Ordering::SeqCst) + 1;
                if let Some(f) = source {
                    fail_on_second_call(&calls, f)?;
                } else {
                    calls.fetch_add(1, Ordering::SeqCst);
                }
                acc.push(point(m, n));
                Ok(())
            },
            Trigger::manual(),
        )?;
        let good = move |acc: &mut MeasurementAccumulator, _t: Timestamp| {
            let n = good_polls2.fetch_add(1, Ordering::SeqCst);
            acc.push(point(m, 100 + n));
            Ok(())
        };
        alumet.add_source("good", good, Trigger::manual())?;
        let tcalls = AtomicU64::new(0);
        alumet.add_transform(
            "plus1000",
            move |buf: &mut MeasurementBuffer, _c: &TransformContext| {
                if let Some(f) = transform {
                    fail_on_second_call(&tcalls, f)?;
                }
                for p in buf.iter_mut() {
                    if let MeasurementValue::U64(v) = &mut p.value {
                        *v += 1000;
                    }
                }
                Ok(())
            },
        )?;
        let ocalls = AtomicU64::new(0);
        alumet.add_output(
            "tested",
            move |buf: &MeasurementBuffer, ctx: &OutputContext| {
                if let Some(f) = output {
                    fail_on_second_call(&ocalls, f)?;
                }
                tested_out(buf, ctx)
            },
        )?;
        alumet.add_output("healthy", healthy_out)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    // One source per trigger: the sources of one tick reach the transforms and outputs
    // in one buffer, and these tests count failures per source buffer.
    for _ in 0..4 {
        run.trigger("p/bad");
        run.trigger("p/good");
    }
    let source_active = run
        .control()
        .sources()
        .iter()
        .any(|(n, active)| n.element == "bad" && *active);
    let control = run.control();
    let _ = run.shutdown();
    // After the shutdown: every output has written all it will.
    let stats = control.element_stats();
    let values = |c: &Collected| {
        c.points()
            .iter()
            .map(|p| p.value.as_f64() as u64)
            .collect::<Vec<_>>()
    };
    Outcome {
        healthy: values(&healthy),
        tested: values(&tested),
        source_active,
        other_source_polls: get(&good_polls),
        stats,
    }
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

#[test]
fn nothing_fails() {
    let o = run(None, None, None);
    assert_eq!(
        sorted(o.healthy.clone()),
        vec![1001, 1002, 1003, 1004, 1100, 1101, 1102, 1103]
    );
    assert_eq!(o.tested, o.healthy);
    assert!(o.source_active);
}

#[test]
fn source_retryable_error_skips_one_poll_and_keeps_the_source() {
    let o = run(Some(Failure::Retryable), None, None);
    assert!(o.source_active);
    assert_eq!(
        sorted(o.healthy),
        vec![1001, 1003, 1004, 1100, 1101, 1102, 1103]
    );
}

#[test]
fn source_fatal_error_and_panic_stop_that_source_only() {
    for f in [Failure::Fatal, Failure::Panic] {
        let o = run(Some(f), None, None);
        assert!(!o.source_active, "{f:?}");
        assert_eq!(o.other_source_polls, 4, "{f:?}");
        assert_eq!(
            sorted(o.healthy),
            vec![1001, 1100, 1101, 1102, 1103],
            "{f:?}"
        );
    }
}

#[test]
fn transform_retryable_error_passes_the_buffer_on_and_keeps_the_transform() {
    let o = run(None, Some(Failure::Retryable), None);
    // The buffer of the 2nd flush passes untransformed; later ones are transformed.
    assert_eq!(o.healthy.len(), 8);
    assert_eq!(
        o.healthy.iter().filter(|&&v| v < 1000).count(),
        1,
        "{:?}",
        o.healthy
    );
    assert_eq!(*o.healthy.last().unwrap(), 1103);
}

#[test]
fn transform_fatal_error_and_panic_stop_that_transform_only() {
    for f in [Failure::Fatal, Failure::Panic] {
        let o = run(None, Some(f), None);
        assert_eq!(o.healthy.len(), 8, "{f:?}");
        // Only the first buffer was transformed.
        assert_eq!(
            o.healthy.iter().filter(|&&v| v >= 1000).count(),
            1,
            "{f:?}: {:?}",
            o.healthy
        );
        assert!(o.source_active);
    }
}

#[test]
fn output_retryable_error_loses_one_buffer_and_keeps_writing() {
    let o = run(None, None, Some(Failure::Retryable));
    assert_eq!(o.healthy.len(), 8);
    assert_eq!(o.tested.len(), 7);
}

#[test]
fn output_fatal_error_and_panic_stop_that_output_only() {
    for f in [Failure::Fatal, Failure::Panic] {
        let o = run(None, None, Some(f));
        assert_eq!(o.healthy.len(), 8, "{f:?}");
        assert_eq!(o.tested.len(), 1, "{f:?}");
    }
}

#[test]
fn stopped_output_counts_what_it_could_not_write() {
    let shared = Arc::new(AtomicU64::new(0));
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source("src", counting_source(m, 2, shared), Trigger::manual())?;
        alumet.add_output(
            "broken",
            |_b: &MeasurementBuffer, _c: &OutputContext| -> Result<(), ElementError> {
                Err(anyhow::anyhow!("disk gone").into())
            },
        )?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    for _ in 0..3 {
        run.trigger("p/src");
    }
    let (report, points) = run.shutdown();
    assert_eq!(points.len(), 6);
    let broken = output_stats(&report, "broken");
    assert_eq!((broken.written_points, broken.failed_points), (0, 6));
}

#[test]
fn element_stats_count_polls_points_errors_and_stops() {
    let o = run(None, None, None);
    let bad = o.stats("bad");
    assert_eq!(
        (
            bad.kind,
            bad.polls,
            bad.points,
            bad.retryable_errors,
            bad.stopped
        ),
        (ElementKind::Source, 4, 4, 0, false)
    );
    assert!(bad.last_success.is_some());
    assert_eq!(o.stats("tested").points, 8, "points written by the output");
    assert_eq!(o.stats("plus1000").kind, ElementKind::Transform);

    let o = run(
        Some(Failure::Retryable),
        Some(Failure::Retryable),
        Some(Failure::Retryable),
    );
    for element in ["bad", "plus1000", "tested"] {
        let s = o.stats(element);
        assert_eq!((s.retryable_errors, s.stopped), (1, false), "{element}");
    }
    assert_eq!(o.stats("bad").polls, 4);
    assert_eq!(o.stats("bad").points, 3);

    let o = run(
        Some(Failure::Fatal),
        Some(Failure::Panic),
        Some(Failure::Fatal),
    );
    for element in ["bad", "plus1000", "tested"] {
        assert!(o.stats(element).stopped, "{element}");
    }
    assert!(!o.stats("good").stopped);
    assert_eq!(o.stats("good").polls, 4);
}
