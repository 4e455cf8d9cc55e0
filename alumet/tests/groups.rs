//! Group threads own their sources: a source that overruns its interval or blocks in its
//! poll delays only its own group, never the stop, another group, or a control call.
//! Counted in polls; the only times asserted are liveness bounds.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use alumet::test_util::sel;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alumet::pipeline::{ControlError, PipelineBuilder};
use alumet::plugin::{AnyPlugin, Registrar};
use alumet::prelude::*;
use alumet::test_util::Collected;
use common::*;

type StartFn = Box<dyn FnOnce(&mut Registrar<'_>) -> anyhow::Result<()> + Send>;

/// A plugin made of a closure whose `stop` is recorded.
struct StopRecorder {
    start: Option<StartFn>,
    stopped: Arc<AtomicBool>,
}

impl AnyPlugin for StopRecorder {
    fn name(&self) -> &str {
        "p"
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        match self.start.take() {
            Some(start) => start(alumet),
            None => Ok(()),
        }
    }
    fn post_start(&mut self, _control: &PluginControl) -> anyhow::Result<()> {
        Ok(())
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        self.stopped.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Starts plugin `p` (its `stop` recorded in the returned flag) with an output that
/// collects every point.
fn start(
    (control_timeout, shutdown_timeout): (Duration, Duration),
    register: impl FnOnce(&mut Registrar<'_>) -> anyhow::Result<()> + Send + 'static,
) -> (
    alumet::pipeline::RunningPipeline,
    Arc<AtomicBool>,
    Collected,
) {
    let stopped = Arc::new(AtomicBool::new(false));
    let collected = Collected::default();
    let output = collected.output();
    let plugin = StopRecorder {
        start: Some(Box::new(move |alumet: &mut Registrar<'_>| {
            register(alumet)?;
            alumet.add_output("collector", output)?;
            Ok(())
        })),
        stopped: Arc::clone(&stopped),
    };
    let mut builder = PipelineBuilder::new();
    builder
        .plugin(Box::new(plugin))
        .shutdown_timeout(shutdown_timeout)
        .control_timeout(control_timeout);
    (builder.start().unwrap(), stopped, collected)
}

#[test]
fn a_source_sleeping_five_intervals_stops_at_once_skips_its_missed_polls_and_loses_nothing() {
    let interval = Duration::from_millis(20);
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let ends: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let (s, e) = (Arc::clone(&starts), Arc::clone(&ends));
    let (mut run, stopped, collected) = start(
        (Duration::from_secs(5), Duration::from_secs(10)),
        move |alumet| {
            let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
            let slow = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
                s.lock().unwrap().push(Instant::now());
                std::thread::sleep(interval * 5);
                acc.push(MeasurementPoint::new(
                    t,
                    m,
                    Resource::LocalMachine,
                    ResourceConsumer::LocalMachine,
                    1u64,
                ));
                e.lock().unwrap().push(Instant::now());
                Ok(())
            };
            alumet.add_source("slow", slow, Trigger::every(interval))?;
            Ok(())
        },
    );
    wait_until("4 polls of the slow source", || {
        starts.lock().unwrap().len() >= 4
    });
    let asked = Instant::now();
    let report = run.shutdown();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "the stop took {took:?}");
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.undelivered_points, 0);
    assert!(
        stopped.load(Ordering::SeqCst),
        "the plugin's stop was called"
    );

    let starts = starts.lock().unwrap().clone();
    let ends = ends.lock().unwrap().clone();
    assert_eq!(starts.len(), ends.len(), "every poll ended before the stop");
    assert_eq!(
        collected.len(),
        starts.len(),
        "every polled point is delivered"
    );
    // Never polled back to back: each poll starts at a deadline after the previous one
    // ended.
    for (end, next) in ends.iter().zip(starts.iter().skip(1)) {
        assert!(next > end);
    }
    // The deadlines from the first poll to the end of the last one, less the polls: each
    // was skipped, and counted.
    let (first, last_end) = (starts[0], *ends.last().unwrap());
    let deadlines = ((last_end - first).as_nanos() / interval.as_nanos()) as i64 + 1;
    let missed = deadlines - starts.len() as i64;
    let stats = run.control().element_stats();
    let slow = stats.iter().find(|s| s.name.element == "slow").unwrap();
    assert_eq!(slow.polls, starts.len() as u64);
    let skipped = slow.skipped_polls as i64;
    assert!(
        (skipped - missed).abs() <= 1,
        "skipped {skipped}, missed deadlines {missed} ({} polls)",
        starts.len()
    );
    assert!(skipped >= 4 * (starts.len() as i64 - 1), "{skipped}");
}

/// Plugin `p` with a source `blocked` (every 5 ms, blocks in its second poll until the
/// test sends on the returned channel), a periodic source `free` (every 1 ms) and a manual
/// source `manual`.
struct Blocked {
    run: alumet::pipeline::RunningPipeline,
    release: std::sync::mpsc::Sender<()>,
    entered: std::sync::mpsc::Receiver<()>,
    free: Arc<std::sync::atomic::AtomicU64>,
    manual: Arc<std::sync::atomic::AtomicU64>,
    stopped: Arc<AtomicBool>,
}

fn start_blocked(timeouts: (Duration, Duration)) -> Blocked {
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let blocked = Mutex::new(blocked);
    let (free, manual) = (counter(), counter());
    let (free2, manual2) = (free.clone(), manual.clone());
    let (run, stopped, _) = start(timeouts, move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let mut polls = 0;
        let source = move |_acc: &mut MeasurementAccumulator, _t: Timestamp| {
            polls += 1;
            if polls == 2 {
                let _ = entered_tx.send(());
                let _ = blocked.lock().unwrap().recv();
            }
            Ok(())
        };
        alumet.add_source("blocked", source, Trigger::every(Duration::from_millis(5)))?;
        let every_ms = Trigger::every(Duration::from_millis(1));
        alumet.add_source("free", counting_source(m, 1, free2), every_ms)?;
        alumet.add_source("manual", counting_source(m, 1, manual2), Trigger::manual())?;
        Ok(())
    });
    Blocked {
        run,
        release,
        entered,
        free,
        manual,
        stopped,
    }
}

#[test]
fn a_source_blocked_in_poll_delays_neither_another_group_nor_its_control_calls() {
    let b = start_blocked((Duration::from_millis(300), Duration::from_secs(10)));
    b.entered.recv_timeout(Duration::from_secs(20)).unwrap();
    let control = b.run.control();
    // Another group's periodic polls go on.
    let at = get(&b.free);
    wait_until("polls of another group", || get(&b.free) >= at + 20);
    // Control calls on other groups are answered (a wait that never returns fails here).
    let (tx, rx) = std::sync::mpsc::channel();
    let c = control.clone();
    std::thread::spawn(move || {
        let paused = c.pause(sel("p/free"));
        let triggered = c.trigger_now(sel("p/manual")).wait();
        let resumed = c.resume(sel("p/free"));
        let polled = c.poll_now(sel("p/manual"));
        let _ = tx.send((paused, triggered, resumed, polled));
    });
    let (paused, triggered, resumed, polled) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(paused.unwrap(), 1);
    assert_eq!(triggered, 1);
    assert_eq!(resumed.unwrap(), 1);
    assert_eq!(polled.unwrap(), 1);
    assert_eq!(get(&b.manual), 2);
    // Sources are listed without asking the blocked thread.
    assert_eq!(control.sources().len(), 3);

    // A call on the blocked group returns after its deadline, with an error.
    let (tx, rx) = std::sync::mpsc::channel();
    let c = control.clone();
    std::thread::spawn(move || {
        let _ = tx.send(c.pause(sel("p/blocked")));
    });
    let paused = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        matches!(paused, Err(ControlError::Pending { pending: 1, .. })),
        "{paused:?}"
    );
    // A trigger's completion can be waited for with a deadline too.
    let completion = control.trigger_now(sel("p/blocked"));
    assert_eq!(completion.wait_timeout(Duration::from_millis(50)), None);

    // Released, the queued pause applies: no more polls of the blocked source.
    b.release.send(()).unwrap();
    wait_until("the queued pause applies", || {
        control
            .sources()
            .iter()
            .any(|(n, active)| n.element == "blocked" && !active)
    });
    let mut run = b.run;
    assert!(!run.shutdown().timed_out);
    assert!(b.stopped.load(Ordering::SeqCst));
}

#[test]
fn a_source_blocked_for_good_does_not_hold_the_shutdown_past_its_deadline() {
    let b = start_blocked((Duration::from_millis(100), Duration::from_millis(500)));
    b.entered.recv_timeout(Duration::from_secs(20)).unwrap();
    let mut run = b.run;
    let report = run.shutdown();
    // It returns: that group's thread is left behind (it buffers nothing, so nothing is
    // undelivered), the other groups stop, and the plugin too.
    assert_eq!(report.undelivered_points, 0, "{report:?}");
    assert!(b.stopped.load(Ordering::SeqCst));
    drop(b.release);
}
