//! The control handle changes what sources do: counted in polls, not timed.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use alumet::test_util::sel;
use std::sync::Arc;
use std::time::Duration;

use alumet::pipeline::{ControlError, Event};
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use common::*;

/// A pipeline with one periodic source `p/tick` (1 ms) and two manual ones `p/m1`, `p/m2`.
fn start(
    tick: Arc<std::sync::atomic::AtomicU64>,
    m1: Arc<std::sync::atomic::AtomicU64>,
    m2: Arc<std::sync::atomic::AtomicU64>,
) -> alumet::test_util::TestRun {
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source(
            "tick",
            counting_source(m, 1, tick),
            Trigger::every(Duration::from_millis(1)),
        )?;
        alumet.add_source("m1", counting_source(m, 2, m1), Trigger::manual())?;
        alumet.add_source("m2", counting_source(m, 3, m2), Trigger::manual())?;
        Ok(())
    }));
    tester.start().unwrap()
}

#[test]
fn manual_sources_are_polled_exactly_once_per_trigger() {
    let (tick, m1, m2) = (counter(), counter(), counter());
    let run = start(tick, m1.clone(), m2.clone());
    for i in 1..=5 {
        assert_eq!(run.trigger("p/m1"), 1);
        assert_eq!(get(&m1), i);
    }
    assert_eq!(run.trigger("p/m*"), 2);
    assert_eq!((get(&m1), get(&m2)), (6, 1));
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        (get(&m1), get(&m2)),
        (6, 1),
        "manual sources are never polled on their own"
    );
    assert_eq!(run.trigger("nothing/here"), 0);
    let (_, points) = run.shutdown();
    let manual_points = points.iter().filter(|p| p.value.as_f64() < 1000.0).count();
    assert!(manual_points >= 6 * 2 + 3);
}

#[test]
fn poll_now_polls_every_group_with_one_timestamp_and_delivers_the_points() {
    let threads: Arc<std::sync::Mutex<Vec<(String, Timestamp)>>> = Arc::default();
    let mut tester = PipelineTester::new();
    let seen = Arc::clone(&threads);
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        for (name, interval) in [("a", None), ("b", Some(Duration::from_secs(3600)))] {
            let seen = Arc::clone(&seen);
            let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
                let thread = std::thread::current().name().unwrap_or("").to_owned();
                seen.lock().unwrap().push((thread, t));
                acc.push(point(m, 7));
                Ok(())
            };
            let trigger = interval.map_or_else(Trigger::manual, Trigger::every);
            alumet.add_source(name, source, trigger)?;
        }
        alumet.add_source(
            "paused",
            counting_source(m, 1, counter()),
            Trigger::manual(),
        )?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    let control = run.control();
    assert_eq!(control.pause(sel("p/paused")).unwrap(), 1);
    // Two groups (manual and hourly), one call: both sources, not the paused one.
    assert_eq!(control.poll_now(sel("p/*")).unwrap(), 2);
    assert_eq!(control.poll_now(sel("nothing/here")).unwrap(), 0);
    let polls = threads.lock().unwrap().clone();
    assert_eq!(polls.len(), 2, "{polls:?}");
    // Once started, each group's thread owns its sources and polls them (before, the
    // calling thread does: see the deferred tests below).
    assert!(
        polls.iter().all(|(t, _)| t.starts_with("alumet-src-")),
        "{polls:?}"
    );
    assert_eq!(polls[0].1, polls[1].1, "one timestamp for the call");
    let (_, points) = run.shutdown();
    assert_eq!(points.iter().filter(|p| p.value.as_f64() == 7.0).count(), 2);
}

/// A pipeline whose source threads wait for `start_source_threads`: plugin `p` with one
/// counting source `p/NAME` (`per_poll` points a poll, on `trigger`) and an output that
/// collects. Returns the pipeline, the source's poll counter and what the output got.
fn start_deferred(
    name: &'static str,
    per_poll: u64,
    trigger: Trigger,
) -> (
    alumet::pipeline::RunningPipeline,
    Arc<std::sync::atomic::AtomicU64>,
    alumet::test_util::Collected,
) {
    let (polls, collected) = (counter(), alumet::test_util::Collected::default());
    let (polls2, output) = (polls.clone(), collected.output());
    let setup = move |alumet: &mut Registrar<'_>| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source(name, counting_source(m, per_poll, polls2), trigger)?;
        alumet.add_output("out", output)?;
        Ok(())
    };
    let mut builder = alumet::pipeline::PipelineBuilder::new();
    builder.defer_source_threads();
    builder.plugin(Box::new(TestPlugin::new("p", setup)));
    (builder.start().unwrap(), polls, collected)
}

#[test]
fn deferred_source_threads_poll_on_their_interval_only_once_started() {
    let every = Trigger::every(Duration::from_millis(1));
    let (mut run, tick, collected) = start_deferred("tick", 1, every);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(get(&tick), 0, "no thread polls before start_source_threads");
    assert_eq!(run.control().poll_now(sel("p/tick")).unwrap(), 1);
    assert_eq!(get(&tick), 1);
    run.start_source_threads().unwrap();
    wait_until("polls on the interval", || get(&tick) >= 5);
    wait_until("the queued point reaches the output", || {
        collected.len() > 5
    });
    let report = run.shutdown();
    assert!(!report.timed_out);
    assert_eq!(
        collected.len() as u64,
        get(&tick),
        "every polled point delivered"
    );
}

#[test]
fn the_next_deferred_poll_is_the_first_periodic_poll_until_the_threads_start() {
    let before = std::time::Instant::now();
    let (mut run, _, _) = start_deferred("tick", 1, Trigger::every(Duration::from_secs(2)));
    let after = std::time::Instant::now();
    let due = run
        .next_deferred_poll()
        .expect("a periodic source waits for its thread");
    assert!(due >= before + Duration::from_secs(2) && due <= after + Duration::from_secs(2));
    // A reading taken here does not move the periodic schedule.
    run.control().poll_now(sel("p/tick")).unwrap();
    assert_eq!(run.next_deferred_poll(), Some(due));
    run.start_source_threads().unwrap();
    assert_eq!(run.next_deferred_poll(), None, "every thread started");
    assert!(!run.shutdown().timed_out);
    // Only manual sources: nothing is due.
    let (mut run, _, _) = start_deferred("m", 1, Trigger::manual());
    assert_eq!(run.next_deferred_poll(), None);
    assert!(!run.shutdown().timed_out);
}

#[test]
fn before_the_source_threads_start_a_trigger_is_answered_on_the_calling_thread() {
    let (mut run, m1, collected) = start_deferred("m1", 1, Trigger::manual());
    let control = run.control();
    // No thread exists to answer it: the calling thread must (a wait that never returns
    // fails here after 10 s).
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(control.trigger_now(sel("p/m1")).wait()));
    let polled = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        polled,
        Ok(1),
        "the trigger is answered without a source thread"
    );
    waiter.join().unwrap().unwrap();
    assert_eq!(get(&m1), 1);
    // Queued for the output when the trigger resolves; the output's thread starts with
    // the source threads (or at shutdown), so the point waits in its queue until then.
    let queued: u64 = run
        .control()
        .output_stats()
        .iter()
        .map(|s| s.queued_points)
        .sum();
    assert_eq!(queued, 1);
    assert_eq!(collected.len(), 0);
    // A source added now, with an interval no group has, waits for the threads too.
    let tick = counter();
    let m = run.metrics().typed_id::<u64>("value").unwrap();
    let every = Trigger::every(Duration::from_millis(1));
    run.control()
        .add_source(
            "p",
            "tick",
            Box::new(counting_source(m, 1, tick.clone())),
            every,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(get(&tick), 0, "no thread polls before start_source_threads");
    run.start_source_threads().unwrap();
    wait_until("polls on the interval", || get(&tick) >= 5);
    wait_until("the queued point reaches the output", || {
        collected.len() > 5
    });
    // Once started, triggers go to the threads, as before.
    assert_eq!(run.control().trigger_now(sel("p/m1")).wait(), 1);
    assert_eq!(get(&m1), 2);
    assert!(!run.shutdown().timed_out);
}

#[test]
fn a_pipeline_whose_source_threads_never_started_shuts_down_with_every_point() {
    let (mut run, _, collected) = start_deferred("m", 4, Trigger::manual());
    assert_eq!(run.control().poll_now(sel("*")).unwrap(), 1);
    assert_eq!(run.control().poll_now(sel("*")).unwrap(), 1);
    let report = run.shutdown();
    assert!(!report.timed_out);
    assert_eq!(collected.len(), 8);
}

#[test]
fn pause_resume_set_interval_and_trigger_change_the_poll_counts() {
    let (tick, m1, m2) = (counter(), counter(), counter());
    let run = start(tick.clone(), m1, m2);
    let control = run.control();
    wait_until("periodic polls", || get(&tick) >= 5);

    // Paused: not one more poll, even when triggered.
    assert_eq!(control.pause(sel("p/tick")).unwrap(), 1);
    let paused_at = get(&tick);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(control.trigger_now(sel("p/tick")).wait(), 0);
    assert_eq!(get(&tick), paused_at);
    assert!(control
        .sources()
        .iter()
        .any(|(n, active)| n.element == "tick" && !active));

    // Resumed: polls again.
    assert_eq!(control.resume(sel("p/*")).unwrap(), 3);
    wait_until("polls after resume", || get(&tick) >= paused_at + 5);

    // A long interval stops the periodic polls; triggers still poll exactly once.
    assert_eq!(
        control
            .set_interval(sel("p/tick"), Duration::from_secs(3600))
            .unwrap(),
        1
    );
    let slow_at = get(&tick);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(get(&tick), slow_at);
    assert_eq!(control.trigger_now(sel("p/tick")).wait(), 1);
    assert_eq!(get(&tick), slow_at + 1);

    // A short interval again; and a manual source made periodic.
    control
        .set_interval(sel("p/tick"), Duration::from_millis(1))
        .unwrap();
    wait_until("polls at the short interval", || get(&tick) >= slow_at + 10);
    assert!(matches!(
        control.set_interval(sel("*"), Duration::ZERO),
        Err(ControlError::ZeroInterval(_))
    ));
    drop(run);
}

#[test]
fn sources_added_while_running_and_by_event_handlers() {
    let polled = counter();
    let polled2 = polled.clone();
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("proc", move |alumet| {
        let m = alumet.create_metric::<u64>("pid_value", Unit::Unity, "per-process value")?;
        alumet.on_event(move |event, control| {
            if let Event::ConsumerStarted(ResourceConsumer::Process { pid }) = event {
                let source = counting_source(m, 1, polled2.clone());
                control
                    .add_source(&format!("pid-{pid}"), source, Trigger::manual())
                    .expect("unique name");
            }
        });
        Ok(())
    }));
    let run = tester.start().unwrap();
    let control = run.control();
    control.emit(&Event::ConsumerStarted(ResourceConsumer::Process {
        pid: 42,
    }));
    assert_eq!(run.trigger("proc/pid-42"), 1);
    assert_eq!(get(&polled), 1);

    // Same name again: refused with the name.
    let again = control.add_source(
        "proc",
        "pid-42",
        Box::new(counting_source_dummy()),
        Trigger::manual(),
    );
    let err = again.unwrap_err();
    assert!(err.to_string().contains("proc/pid-42"), "{err}");

    // A periodic one gets its own thread and runs.
    let periodic = counter();
    let m = run.metric::<u64>("pid_value").unwrap();
    control
        .add_source(
            "proc",
            "periodic",
            Box::new(counting_source(m, 1, periodic.clone())),
            Trigger::every(Duration::from_millis(1)),
        )
        .unwrap();
    wait_until("the added periodic source polls", || get(&periodic) >= 3);
    let (_, points) = run.shutdown();
    assert!(points.len() as u64 >= 1 + get(&periodic) - 1);
}

#[test]
fn a_removed_source_is_flushed_then_gone_with_its_statistics_and_its_name_is_free() {
    let (tick, m1, m2) = (counter(), counter(), counter());
    let run = start(tick.clone(), m1, m2);
    let control = run.control();
    // Polled every millisecond but flushed every hour: removal flushes what it holds.
    let m = run.metric::<u64>("value").unwrap();
    let buffered = counter();
    let trigger = Trigger::every(Duration::from_millis(1)).flush_every(Duration::from_secs(3600));
    let source = counting_source(m, 4, buffered.clone());
    control
        .add_source("p", "buffered", Box::new(source), trigger)
        .unwrap();
    wait_until("3 polls of p/buffered", || get(&buffered) >= 3);
    assert_eq!(control.remove_source(sel("p/m*")).unwrap(), 2);
    assert_eq!(control.remove_source(sel("p/buffered")).unwrap(), 1);
    assert_eq!(control.remove_source(sel("p/buffered")).unwrap(), 0);
    assert_eq!(run.trigger("p/m*"), 0);
    assert_eq!(run.trigger("p/buffered"), 0);
    let names: Vec<String> = (control.sources().iter())
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(names, ["p/tick"]);
    let stats = control.element_stats();
    assert!(
        !stats.iter().any(|s| s.name.element.starts_with('m')),
        "{stats:?}"
    );
    // The name can be used again.
    let again = counting_source(m, 1, counter());
    control
        .add_source("p", "m1", Box::new(again), Trigger::manual())
        .unwrap();
    let (_, points) = run.shutdown();
    // One point per tick, 4 per poll of p/buffered: none of them lost.
    let expected = get(&tick) + 4 * get(&buffered);
    assert_eq!(
        points.len() as u64,
        expected,
        "the buffered points are delivered"
    );
}

fn counting_source_dummy() -> impl Source {
    |_acc: &mut MeasurementAccumulator, _t: Timestamp| Ok(())
}

#[test]
fn sources_sharing_an_interval_share_a_wake_up_and_each_carries_its_own_reading_time() {
    const SLOW: Duration = Duration::from_millis(3);
    type Ticks = Arc<std::sync::Mutex<Vec<Vec<(String, Timestamp)>>>>;
    let buffers: Ticks = Arc::default();
    let buffers2 = Arc::clone(&buffers);
    let names: Arc<std::sync::Mutex<std::collections::HashMap<u64, String>>> = Arc::default();
    let names2 = Arc::clone(&names);
    let record = move |b: &MeasurementBuffer, _c: &OutputContext| {
        let names = names2.lock().unwrap();
        let tick = b
            .iter()
            .map(|p| (names[&p.value.as_f64().to_bits()].clone(), p.timestamp));
        buffers2.lock().unwrap().push(tick.collect());
        Ok(())
    };
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let value = i as u64;
            names
                .lock()
                .unwrap()
                .insert((value as f64).to_bits(), name.to_owned());
            let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
                if name == "a" {
                    // A slow reading: the sources polled after it read later.
                    std::thread::sleep(SLOW);
                }
                let p = MeasurementPoint::new(
                    t,
                    m,
                    Resource::LocalMachine,
                    ResourceConsumer::LocalMachine,
                    value,
                );
                acc.push(p);
                Ok(())
            };
            alumet.add_source(name, source, Trigger::every(Duration::from_millis(20)))?;
        }
        alumet.add_output("record", record)?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    wait_until("some polls", || run.collected().len() >= 15);
    run.shutdown();
    let buffers = buffers.lock().unwrap();
    // Polled in the same wake-up: one buffer per tick with a point of each source (the
    // last tick may be cut by the shutdown)...
    let full: Vec<_> = buffers.iter().filter(|b| b.len() == 3).collect();
    assert!(full.len() + 1 >= buffers.len(), "{buffers:?}");
    assert!(full.len() >= 4, "{buffers:?}");
    for tick in full {
        let names: Vec<&str> = tick.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"], "in registration order");
        // ...each stamped when it was read: b and c after a's slow reading.
        let since_a = |i: usize| {
            let (a, x) = (tick[0].1.to_system_time(), tick[i].1.to_system_time());
            x.duration_since(a).unwrap_or_default()
        };
        assert!(since_a(1) >= SLOW, "{tick:?}");
        assert!(since_a(2) >= since_a(1), "{tick:?}");
    }
}

#[test]
fn a_source_blocked_in_its_poll_shows_in_the_longest_poll() {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let blocking = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b = Arc::clone(&blocking);
    let polls = counter();
    let p = Arc::clone(&polls);
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let mut count = counting_source(m, 1, p);
        let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            if b.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = wait.lock().unwrap().recv();
            }
            count.poll(acc, t)
        };
        alumet.add_source("s", source, Trigger::every(Duration::from_millis(2)))?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    wait_until("polls", || get(&polls) >= 5);
    let control = run.control();
    assert!(control.longest_poll().unwrap_or_default() < Duration::from_secs(1));
    blocking.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_until("the source blocked for 100 ms", || {
        control.longest_poll() >= Some(Duration::from_millis(100))
    });
    let before = get(&polls);
    blocking.store(false, std::sync::atomic::Ordering::SeqCst);
    release.send(()).unwrap();
    wait_until("polls again", || get(&polls) >= before + 5);
    wait_until("no long tick any more", || {
        control.longest_poll().unwrap_or_default() < Duration::from_millis(100)
    });
    let _ = run.shutdown();
}
