//! From the source threads to the outputs: output code never runs on a source thread, a
//! blocked output delays no source group and no other output, one buffer per group tick.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use common::*;

/// An output that records the name of the thread of each call.
fn thread_recorder(threads: &Arc<Mutex<Vec<String>>>) -> impl Output + 'static {
    let threads = Arc::clone(threads);
    move |_b: &MeasurementBuffer, _c: &OutputContext| {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        threads.lock().unwrap().push(name);
        Ok(())
    }
}

#[test]
fn a_source_thread_never_runs_an_output_write() {
    let threads: Arc<Mutex<Vec<String>>> = Arc::default();
    let (a, b) = (thread_recorder(&threads), thread_recorder(&threads));
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let every = Trigger::every(Duration::from_millis(1));
        alumet.add_source("fast", counting_source(m, 2, counter()), every)?;
        alumet.add_source(
            "manual",
            counting_source(m, 2, counter()),
            Trigger::manual(),
        )?;
        alumet.add_output("a", a)?;
        alumet.add_output("b", b)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    for _ in 0..20 {
        assert_eq!(run.trigger("p/manual"), 1);
    }
    wait_until("100 writes", || threads.lock().unwrap().len() >= 100);
    let (report, _) = run.shutdown();
    let threads = threads.lock().unwrap().clone();
    let names: BTreeSet<&str> = threads.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["alumet-out-a", "alumet-out-b"]),
        "every write on its output's thread"
    );
    assert_eq!(output_stats(&report, "a").written_points, {
        output_stats(&report, "b").written_points
    });
}

#[test]
fn a_blocked_output_delays_no_source_group_and_no_other_output() {
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let mut gate = Some((entered_tx, release_rx));
    // Blocks in its first write until released, like a paused `stdout` pipe.
    let blocked = move |_b: &MeasurementBuffer, _c: &OutputContext| {
        if let Some((entered, release)) = gate.take() {
            entered.send(()).unwrap();
            release.recv().unwrap();
        }
        Ok(())
    };
    let mut tester = PipelineTester::new();
    tester.shutdown_timeout(Duration::from_secs(10));
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m1 = alumet.create_metric::<u64>("one", Unit::Unity, "a value")?;
        let m3 = alumet.create_metric::<u64>("three", Unit::Unity, "a value")?;
        let (ms1, ms3) = (Duration::from_millis(1), Duration::from_millis(3));
        alumet.add_source(
            "one",
            counting_source(m1, 1, counter()),
            Trigger::every(ms1),
        )?;
        alumet.add_source(
            "three",
            counting_source(m3, 1, counter()),
            Trigger::every(ms3),
        )?;
        alumet.add_output("blocked", blocked)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    entered_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    // The other output (the tester's) keeps receiving both groups' points meanwhile.
    let seen = run.collected().len();
    let groups = [run.metric::<u64>("one"), run.metric::<u64>("three")].map(|m| m.unwrap().raw());
    wait_until("50 points of each group after the block", || {
        let points = run.collected().points();
        let later = points.get(seen..).unwrap_or_default();
        let count = |m| later.iter().filter(|p| p.metric == m).count();
        groups.iter().all(|&m| count(m) >= 50)
    });
    let stats = run.control().output_stats();
    let blocked_stats = stats.iter().find(|s| s.name.element == "blocked").unwrap();
    assert!(blocked_stats.queued_points > 0, "{blocked_stats:?}");
    release_tx.send(()).unwrap();
    let (report, points) = run.shutdown();
    assert!(!report.timed_out, "{report:?}");
    let blocked = output_stats(&report, "blocked");
    assert_eq!(blocked.written_points, points.len() as u64);
    assert_eq!(blocked.dropped_points + blocked.failed_points, 0);
}

#[test]
fn sources_sharing_a_tick_reach_the_outputs_in_one_buffer() {
    const SOURCES: u64 = 5;
    const TICKS: usize = 4;
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    let sizes2 = Arc::clone(&sizes);
    let out = move |b: &MeasurementBuffer, _c: &OutputContext| {
        sizes2.lock().unwrap().push(b.len());
        Ok(())
    };
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        for i in 0..SOURCES {
            let source = counting_source(m, 2, counter());
            alumet.add_source(&format!("s{i}"), source, Trigger::manual())?;
        }
        alumet.add_output("sizes", out)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    for _ in 0..TICKS {
        assert_eq!(run.trigger("p/*"), SOURCES as usize);
    }
    let (report, _) = run.shutdown();
    assert_eq!(
        output_stats(&report, "sizes").written_points,
        2 * SOURCES * TICKS as u64
    );
    assert_eq!(*sizes.lock().unwrap(), vec![2 * SOURCES as usize; TICKS]);
}

/// A pipeline with a source polled every millisecond (one point per poll) and a transform
/// that blocks in its first call until `release` sends or is dropped, recording the
/// threads it runs on.
struct Gated {
    run: alumet::test_util::TestRun,
    polls: Arc<std::sync::atomic::AtomicU64>,
    release: mpsc::Sender<()>,
    threads: Arc<Mutex<BTreeSet<String>>>,
}

fn gated(shutdown_timeout: Duration) -> Gated {
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let threads: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut gate = Some((entered_tx, release_rx));
    let threads2 = Arc::clone(&threads);
    let transform = move |_b: &mut MeasurementBuffer, _c: &TransformContext| {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        threads2.lock().unwrap().insert(name);
        if let Some((entered, release)) = gate.take() {
            entered.send(()).unwrap();
            let _ = release.recv();
        }
        Ok(())
    };
    let polls = counter();
    let polls2 = Arc::clone(&polls);
    let mut tester = PipelineTester::new();
    tester.shutdown_timeout(shutdown_timeout);
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let every = Trigger::every(Duration::from_millis(1));
        alumet.add_source("fast", counting_source(m, 1, polls2), every)?;
        alumet.add_transform("gate", transform)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    entered_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    Gated {
        run,
        polls,
        release: release_tx,
        threads,
    }
}

#[test]
fn a_blocked_transform_delays_no_poll_and_its_points_arrive_once_released() {
    let Gated {
        run,
        polls,
        release,
        threads,
    } = gated(Duration::from_secs(10));
    // While the transform is blocked, the source keeps its schedule: its points wait in
    // the transforms' queue.
    let at_block = get(&polls);
    wait_until("50 polls during the block", || get(&polls) >= at_block + 50);
    let stalled = run.collected().len();
    release.send(()).unwrap();
    wait_until("the points of the block reach the output", || {
        run.collected().len() as u64 >= at_block + 50
    });
    let (report, points) = run.shutdown();
    assert!(!report.timed_out, "{report:?}");
    assert!(
        stalled < points.len(),
        "{stalled} points before the release"
    );
    // Every poll's point reached the output, none dropped or lost.
    assert_eq!(points.len() as u64, get(&polls));
    for s in &report.outputs {
        assert_eq!(s.written_points, get(&polls), "{s:?}");
        assert_eq!(s.dropped_points + s.failed_points + s.queued_points, 0);
    }
    let threads = threads.lock().unwrap().clone();
    assert_eq!(
        threads,
        BTreeSet::from(["alumet-transforms".to_owned()]),
        "every transform call on the transforms' thread"
    );
}

#[test]
fn a_transform_blocked_past_the_shutdown_deadline_is_abandoned_and_its_points_counted_lost() {
    // Not released while the pipeline runs.
    let Gated {
        run,
        polls,
        release,
        threads: _,
    } = gated(Duration::from_millis(500));
    let at_block = get(&polls);
    wait_until("20 polls during the block", || get(&polls) >= at_block + 20);
    let (report, points) = run.shutdown();
    drop(release);
    assert!(report.timed_out, "{report:?}");
    let polled = get(&polls);
    assert!(
        points.is_empty(),
        "{} points passed the blocked transform",
        points.len()
    );
    assert!(
        report.undelivered_points >= polled,
        "{report:?}, {polled} polls"
    );
    // Every polled point is counted lost for each output, the one in the blocked call too.
    for s in &report.outputs {
        assert_eq!(s.failed_points, polled, "{s:?}");
        assert_eq!(
            s.written_points + s.dropped_points + s.queued_points,
            0,
            "{s:?}"
        );
    }
}
