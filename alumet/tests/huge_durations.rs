//! Durations too long for the clock (a billion years) neither panic nor abort: a schedule
//! or a deadline that would overflow is a century away instead.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::sel;
use std::time::Duration;

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use common::*;

#[test]
fn a_poll_interval_and_a_shutdown_timeout_of_duration_max_run_and_stop() {
    let polls = counter();
    let polls2 = polls.clone();
    let mut tester = PipelineTester::new();
    tester.shutdown_timeout(Duration::MAX);
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let trigger = Trigger::every(Duration::MAX);
        alumet.add_source("src", counting_source(m, 1, polls2), trigger)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("p/src"), 1);
    run.control()
        .set_interval(sel("p/src"), Duration::MAX)
        .unwrap();
    let (report, points) = run.shutdown();
    assert!(!report.timed_out);
    assert_eq!(points.len(), 1);
    assert_eq!(get(&polls), 1);
}
