//! Accounting: `written + dropped + lost` is every point an output was given, whether the
//! core counts from `write`'s result or the output reports its own deliveries.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::{Arc, Mutex};

use alumet::pipeline::{Delivery, OutputOptions};
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use common::*;

const PER_POLL: u64 = 10;

/// An output that keeps what it is given and reports it later, as a sender thread would:
/// the test decides when, through the `Delivery` it hands out.
struct Deferred {
    held: Arc<Mutex<u64>>,
    delivery: Arc<Mutex<Option<Delivery>>>,
    fail_finish: bool,
}

impl Output for Deferred {
    fn write(&mut self, b: &MeasurementBuffer, ctx: &OutputContext) -> Result<(), ElementError> {
        *self.held.lock().unwrap() += b.len() as u64;
        self.delivery
            .lock()
            .unwrap()
            .get_or_insert_with(|| ctx.delivery().clone());
        Ok(())
    }

    fn finish(&mut self, _: &OutputContext) -> Result<(), ElementError> {
        if self.fail_finish {
            return Err(ElementError::retryable(anyhow::anyhow!("server gone")));
        }
        Ok(())
    }
}

/// Starts a pipeline with a manual source and a `Deferred` output; returns the run and the
/// output's delivery handle once the first buffer reached it.
fn deferred(fail_finish: bool) -> (alumet::test_util::TestRun, Delivery) {
    let delivery: Arc<Mutex<Option<Delivery>>> = Arc::default();
    let output = Deferred {
        held: Arc::default(),
        delivery: Arc::clone(&delivery),
        fail_finish,
    };
    let mut tester = PipelineTester::new();
    let mut output = Some(output);
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source(
            "src",
            counting_source(m, PER_POLL, counter()),
            Trigger::manual(),
        )?;
        if let Some(output) = output.take() {
            let options = OutputOptions::default().reports_delivery();
            alumet.add_output_with("deferred", output, options)?;
        }
        Ok(())
    }));
    let run = tester.start().unwrap();
    for _ in 0..3 {
        assert_eq!(run.trigger("p/src"), 1);
    }
    wait_until("the output got its first buffer", || {
        delivery.lock().unwrap().is_some()
    });
    let handle = delivery.lock().unwrap().clone().unwrap();
    (run, handle)
}

#[test]
fn an_output_that_reports_its_deliveries_is_counted_by_its_reports_not_by_write() {
    let (run, delivery) = deferred(false);
    wait_until("30 points given", || {
        let s = run.control().output_stats();
        let d = s.iter().find(|s| s.name.element == "deferred").unwrap();
        d.queued_points == 3 * PER_POLL
    });
    let live = run.control().output_stats();
    let live = live.iter().find(|s| s.name.element == "deferred").unwrap();
    assert_eq!(
        (live.written_points, live.failed_points),
        (0, 0),
        "write returning Ok is not a delivery"
    );
    delivery.written(12);
    delivery.lost(5);
    delivery.dropped(3);
    let live = run.control().output_stats();
    let live = live.iter().find(|s| s.name.element == "deferred").unwrap();
    assert_eq!(
        (
            live.written_points,
            live.dropped_points,
            live.failed_points,
            live.queued_points
        ),
        (12, 3, 5, 10)
    );
    let (report, _) = run.shutdown();
    let s = output_stats(&report, "deferred");
    // The 10 points it never accounted for are lost when it finishes.
    assert_eq!(
        (
            s.written_points,
            s.dropped_points,
            s.failed_points,
            s.queued_points
        ),
        (12, 3, 15, 0)
    );
    // A report after it finished changes nothing.
    delivery.written(10);
    assert_eq!(output_stats(&report, "deferred").written_points, 12);
}

#[test]
fn the_element_stats_of_a_reporting_output_show_its_reported_points() {
    let (run, delivery) = deferred(false);
    delivery.written(7);
    let stats = run.control().element_stats();
    let s = stats.iter().find(|s| s.name.element == "deferred").unwrap();
    assert_eq!(s.points, 7);
    run.shutdown();
}

#[test]
fn a_reporting_output_whose_finish_fails_loses_what_it_had_not_delivered() {
    let (run, delivery) = deferred(true);
    delivery.written(PER_POLL);
    let (report, _) = run.shutdown();
    let s = output_stats(&report, "deferred");
    assert!(s.finish_failed);
    assert_eq!(
        (s.written_points, s.failed_points, s.queued_points),
        (PER_POLL, 2 * PER_POLL, 0)
    );
}

#[test]
fn at_a_forced_exit_the_points_still_queued_or_in_sources_are_lost() {
    let (run, delivery) = deferred(false);
    delivery.written(PER_POLL);
    let forced = run.control().output_stats_at_forced_exit();
    let s = forced
        .iter()
        .find(|s| s.name.element == "deferred")
        .unwrap();
    assert_eq!(
        (s.written_points, s.failed_points, s.queued_points),
        (PER_POLL, 2 * PER_POLL, 0)
    );
    run.shutdown();
}
