//! Output queues: slow outputs, drop-oldest counts, shutdown drains everything.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use alumet::test_util::sel;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alumet::pipeline::OutputOptions;
use alumet::prelude::*;
use alumet::test_util::{Collected, PipelineTester, TestPlugin, TestRun};
use common::*;

const PER_POLL: u64 = 10;
const POLLS: u64 = 10;

/// An output that blocks in its first write until the test releases it.
fn gated_output(
    collected: &Collected,
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
) -> impl Output + 'static {
    let mut inner = collected.output();
    let mut gate = Some((entered, release));
    move |buffer: &MeasurementBuffer, ctx: &OutputContext| {
        if let Some((entered, release)) = gate.take() {
            entered.send(()).expect("test is waiting");
            release
                .recv_timeout(Duration::from_secs(20))
                .expect("test releases the gate");
        }
        inner(buffer, ctx)
    }
}

/// Three outputs (two fast, one blocked during the polls); returns what each received
/// and the slow output's dropped count.
fn three_outputs(slow_capacity: usize) -> (Vec<usize>, Vec<MeasurementPoint>, u64, u64) {
    let (fast1, fast2, slow) = (
        Collected::default(),
        Collected::default(),
        Collected::default(),
    );
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let (f1, f2) = (fast1.output(), fast2.output());
    let slow_out = gated_output(&slow, entered_tx, release_rx);
    let polls = counter();
    let polls2 = polls.clone();
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source(
            "src",
            counting_source(m, PER_POLL, polls2),
            Trigger::manual(),
        )?;
        alumet.add_output("fast1", f1)?;
        alumet.add_output_with(
            "slow",
            slow_out,
            OutputOptions::default().queue_capacity(slow_capacity),
        )?;
        alumet.add_output("fast2", f2)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("p/src"), 1);
    // The slow output now holds the first buffer and is blocked.
    entered_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    for _ in 1..POLLS {
        assert_eq!(run.trigger("p/src"), 1);
    }
    let stats = run.control().output_stats();
    let slow_stats = stats
        .iter()
        .find(|s| s.name.element == "slow")
        .unwrap()
        .clone();
    release_tx.send(()).unwrap();
    let (report, collector) = run.shutdown();
    assert_eq!(get(&polls), POLLS);
    assert!(!report.timed_out);
    let final_slow = output_stats(&report, "slow");
    assert_eq!(
        final_slow.dropped_points, slow_stats.dropped_points,
        "drops happen only while blocked"
    );
    assert_eq!(final_slow.written_points as usize, slow.len());
    assert_eq!(
        collector.len(),
        (PER_POLL * POLLS) as usize,
        "the test's own collector is a fourth output"
    );
    (
        vec![fast1.len(), fast2.len(), slow.len()],
        slow.points(),
        final_slow.dropped_points,
        slow_stats.queued_points,
    )
}

#[test]
fn slow_output_with_a_large_queue_gets_every_point() {
    let (counts, slow_points, dropped, _) = three_outputs(1000);
    let total = (PER_POLL * POLLS) as usize;
    assert_eq!(counts, vec![total, total, total]);
    assert_eq!(dropped, 0);
    let values: Vec<u64> = slow_points
        .iter()
        .map(|p| p.value.as_f64() as u64)
        .collect();
    assert_eq!(
        values,
        (0..PER_POLL * POLLS).collect::<Vec<_>>(),
        "in order, none missing"
    );
}

#[test]
fn slow_output_with_a_small_queue_drops_exactly_the_counted_oldest_points() {
    // Room for 3 buffers of 10 points: the blocked output holds buffer 0, buffers 1..=9
    // arrive, 1..=6 are dropped (60 points), 7..=9 are kept.
    let (counts, slow_points, dropped, queued) = three_outputs(30);
    let total = (PER_POLL * POLLS) as usize;
    assert_eq!(counts[0], total);
    assert_eq!(counts[1], total);
    assert_eq!(dropped, 60);
    assert_eq!(queued, 40, "30 queued and 10 in the blocked write");
    assert_eq!(counts[2] as u64 + dropped, total as u64);
    let values: Vec<u64> = slow_points
        .iter()
        .map(|p| p.value.as_f64() as u64)
        .collect();
    let expected: Vec<u64> = (0..10).chain(70..100).collect();
    assert_eq!(values, expected, "the oldest buffers are the ones dropped");
}

#[test]
fn shutdown_right_after_many_polls_delivers_every_point_to_every_output() {
    let polls = counter();
    let polls2 = polls.clone();
    let (a, b) = (Collected::default(), Collected::default());
    let (oa, ob) = (a.output(), b.output());
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        // Flushed only every hour: everything is still buffered at shutdown.
        let trigger =
            Trigger::every(Duration::from_micros(200)).flush_every(Duration::from_secs(3600));
        alumet.add_source("fast", counting_source(m, 3, polls2), trigger)?;
        alumet.add_output("a", oa)?;
        alumet.add_output("b", ob)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    wait_until("200 polls", || get(&polls) >= 200);
    let (report, _) = run.shutdown();
    let expected = (get(&polls) * 3) as usize;
    assert_eq!(a.len(), expected);
    assert_eq!(b.len(), expected);
    assert_eq!(report.undelivered_points, 0);
    for stats in &report.outputs {
        assert_eq!(stats.dropped_points + stats.failed_points, 0, "{stats:?}");
    }
}

#[test]
fn shutdown_deadline_reports_what_a_stuck_output_did_not_deliver() {
    let release = Arc::new(Mutex::new(()));
    let hold = release.lock().unwrap();
    let stuck_release = release.clone();
    let (entered_tx, entered_rx) = mpsc::channel();
    let mut tester = PipelineTester::new();
    tester.shutdown_timeout(Duration::from_millis(300));
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source("src", counting_source(m, 5, counter()), Trigger::manual())?;
        // Blocks until the test ends, like a write to an unreachable database.
        alumet.add_output(
            "stuck",
            move |_b: &MeasurementBuffer, _c: &OutputContext| {
                let _ = entered_tx.send(());
                drop(stuck_release.lock());
                Ok(())
            },
        )?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("p/src"), 1);
    entered_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    for _ in 0..3 {
        assert_eq!(run.trigger("p/src"), 1);
    }
    let (report, collected) = run.shutdown();
    // One buffer (5 points) is inside the stuck write, three (15 points) are queued.
    assert!(report.timed_out);
    assert_eq!(report.undelivered_points, 20);
    let stuck = output_stats(&report, "stuck");
    assert_eq!(stuck.written_points, 0);
    assert_eq!(stuck.failed_points, 20);
    // The other output got everything.
    assert_eq!(collected.len(), 20);
    drop(hold);
}

/// Starts a pipeline of one manual source `p/src` (`per_poll` points a poll) and one output
/// `name`.
fn with_output(
    name: &'static str,
    output: impl Output + 'static,
    per_poll: u64,
    shutdown_timeout: Option<Duration>,
) -> TestRun {
    let mut tester = PipelineTester::new();
    if let Some(timeout) = shutdown_timeout {
        tester.shutdown_timeout(timeout);
    }
    let mut output = Some(output);
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source(
            "src",
            counting_source(m, per_poll, counter()),
            Trigger::manual(),
        )?;
        let output = output.take().expect("the plugin starts once");
        alumet.add_output(name, output)?;
        Ok(())
    }));
    tester.start().unwrap()
}

/// An output whose writes succeed and whose final write fails (`Err`) or panics, like a
/// buffered file on a full disk.
struct FailingFinish {
    panics: bool,
}

impl Output for FailingFinish {
    fn write(&mut self, _: &MeasurementBuffer, _: &OutputContext) -> Result<(), ElementError> {
        Ok(())
    }
    fn finish(&mut self, _: &OutputContext) -> Result<(), ElementError> {
        assert!(!self.panics, "the final write panics");
        Err(ElementError::fatal(anyhow::anyhow!("disk full")))
    }
}

#[test]
fn a_final_write_that_fails_or_panics_is_in_the_output_statistics() {
    for panics in [false, true] {
        let run = with_output("ff", FailingFinish { panics }, 2, None);
        assert_eq!(run.trigger("p/src"), 1);
        let (report, _) = run.shutdown();
        let stats = output_stats(&report, "ff");
        assert_eq!(stats.written_points, 2, "panics: {panics}");
        assert!(stats.finish_failed, "panics: {panics}");
    }
}

#[test]
fn shutdown_gives_up_on_a_write_that_blocks() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let collected = Collected::default();
    let gated = gated_output(&collected, entered_tx, release_rx);
    let run = with_output("gated", gated, 3, Some(Duration::from_millis(300)));
    // The poll's buffer is written by the output's thread, which blocks in it.
    drop(run.control().trigger_now(sel("p/src")));
    entered_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let (report, _) = run.shutdown();
    assert!(report.timed_out);
    assert!(report.undelivered_points >= 3, "{report:?}");
    release_tx.send(()).unwrap();
}
