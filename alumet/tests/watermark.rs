//! The transforms' clock: `on_tick` runs after each batch, and its watermark never runs
//! ahead of the readings the transform has been given.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use common::*;

/// What the transform saw: the timestamps of every point given to `apply`, and at each
/// tick, the watermark and how many of those points it had been given by then.
#[derive(Default)]
struct Seen {
    applied: Vec<u64>,
    ticks: Vec<(u64, usize)>,
    watermarks: Vec<Option<Timestamp>>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl Transform for Recorder {
    fn apply(
        &mut self,
        b: &mut MeasurementBuffer,
        _c: &TransformContext,
    ) -> Result<(), ElementError> {
        let mut seen = self.0.lock().unwrap();
        seen.applied
            .extend(b.iter().map(|p| p.timestamp.unix_nanos()));
        Ok(())
    }

    fn on_tick(
        &mut self,
        _b: &mut MeasurementBuffer,
        clock: &Clock,
        _c: &TransformContext,
    ) -> Result<(), ElementError> {
        let mut seen = self.0.lock().unwrap();
        seen.watermarks.push(clock.watermark());
        if let Some(w) = clock.watermark() {
            let w = w.unix_nanos();
            let given = seen.applied.iter().filter(|&&t| t <= w).count();
            seen.ticks.push((w, given));
        }
        Ok(())
    }
}

#[test]
fn the_watermark_never_runs_ahead_of_the_readings_given_to_the_transforms() {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let recorder = Recorder(Arc::clone(&seen));
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let ms = Duration::from_millis;
        // Three groups, one of them flushing every fifth poll: their readings reach the
        // transforms late, and the watermark must wait for them.
        alumet.add_source(
            "fast",
            counting_source(m, 2, counter()),
            Trigger::every(ms(1)),
        )?;
        alumet.add_source(
            "slow",
            counting_source(m, 1, counter()),
            Trigger::every(ms(3)),
        )?;
        let buffered = Trigger::every(ms(2)).flush_every(ms(10));
        alumet.add_source("buffered", counting_source(m, 3, counter()), buffered)?;
        alumet.add_transform("recorder", recorder)?;
        Ok(())
    }));
    let start = Timestamp::now().unix_nanos();
    let run = tester.start().unwrap();
    wait_until("50 ticks", || seen.lock().unwrap().ticks.len() >= 50);
    let (report, points) = run.shutdown();
    assert!(!report.timed_out, "{report:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.applied.len(),
        points.len(),
        "every point went through it"
    );
    for &(w, given) in &seen.ticks {
        // Every reading taken at or before the watermark had been given to it.
        let taken = points
            .iter()
            .filter(|p| p.timestamp.unix_nanos() <= w)
            .count();
        assert_eq!(
            given, taken,
            "watermark {w}: {given} of {taken} readings given"
        );
    }
    // And it moves on with the sources.
    let last = seen.ticks.last().unwrap().0;
    assert!(
        last > start,
        "the watermark stayed at {last}, before the start {start}"
    );
    let watermarks: Vec<u64> = seen.ticks.iter().map(|t| t.0).collect();
    assert!(
        watermarks.windows(2).all(|w| w[0] <= w[1]),
        "{watermarks:?}"
    );
}

#[test]
fn without_a_source_polled_on_a_schedule_there_is_no_watermark_but_ticks_still_come() {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let recorder = Recorder(Arc::clone(&seen));
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source(
            "manual",
            counting_source(m, 1, counter()),
            Trigger::manual(),
        )?;
        alumet.add_transform("recorder", recorder)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("p/manual"), 1);
    wait_until("a tick after the triggered poll", || {
        !seen.lock().unwrap().watermarks.is_empty()
    });
    let (_, points) = run.shutdown();
    assert_eq!(points.len(), 1);
    let watermarks = &seen.lock().unwrap().watermarks;
    assert!(watermarks.iter().all(Option::is_none), "{watermarks:?}");
}
