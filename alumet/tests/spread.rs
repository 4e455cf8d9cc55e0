//! Many sources of one interval are spread over a few threads a phase apart: a tick of
//! 1000 sources becomes four shorter ticks a quarter of the interval apart. Counted in
//! threads and sources; the phases are checked with wide margins (a quarter of the
//! interval is 100 ms here; the threads' wake-ups are a few ms late at most).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin, TestRun};
use common::*;

const INTERVAL: Duration = Duration::from_millis(400);

/// Every poll: the source, the thread that polled it, when.
type Log = Arc<Mutex<Vec<(usize, ThreadId, Instant)>>>;

fn probe(i: usize, log: Log) -> impl Source {
    move |_: &mut MeasurementAccumulator, _: Timestamp| {
        let now = Instant::now();
        log.lock()
            .unwrap()
            .push((i, std::thread::current().id(), now));
        Ok(())
    }
}

/// The polls after `from`: per thread, how many sources it polled and its first poll.
fn by_thread(log: &Log, from: Instant) -> HashMap<ThreadId, (HashSet<usize>, Instant)> {
    let mut threads: HashMap<ThreadId, (HashSet<usize>, Instant)> = HashMap::new();
    for &(i, thread, at) in log.lock().unwrap().iter().filter(|(_, _, at)| *at >= from) {
        let entry = threads.entry(thread).or_insert((Default::default(), at));
        entry.0.insert(i);
        entry.1 = entry.1.min(at);
    }
    threads
}

/// The first polls of the threads, in order, are `step` apart (within a quarter of it).
fn assert_staggered(firsts: &mut [Instant], step: Duration) {
    firsts.sort();
    for pair in firsts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap > step * 3 / 4 && gap < step * 5 / 4,
            "threads {gap:?} apart, not {step:?}: {firsts:?}"
        );
    }
}

#[test]
fn a_thousand_sources_added_while_running_go_to_four_threads_a_quarter_interval_apart() {
    let log: Log = Arc::default();
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", |_| Ok(())));
    let run = tester.start().unwrap();
    let control = run.control();
    for i in 0..1000 {
        control
            .add_source(
                "p",
                &format!("s-{i}"),
                Box::new(probe(i, log.clone())),
                Trigger::every(INTERVAL),
            )
            .unwrap();
    }
    let added = Instant::now();
    // One full interval after the last add, every source has been polled at least once.
    wait_until("an interval of polls", || {
        Instant::now() >= added + INTERVAL * 2
    });
    let threads = by_thread(&log, added);
    let mut sizes: Vec<usize> = threads.values().map(|(s, _)| s.len()).collect();
    sizes.sort();
    // 256 per thread, the fourth taking the rest.
    assert_eq!(sizes, [232, 256, 256, 256], "sources per thread");
    let polled: HashSet<usize> = threads
        .values()
        .flat_map(|(s, _)| s.iter().copied())
        .collect();
    assert_eq!(polled.len(), 1000, "every source polled");
    let mut firsts: Vec<Instant> = threads.values().map(|(_, first)| *first).collect();
    assert_staggered(&mut firsts, INTERVAL / 4);

    // A source added now goes to the thread with the fewest sources (the fourth).
    let fewest = *threads.iter().min_by_key(|(_, (s, _))| s.len()).unwrap().0;
    control
        .add_source(
            "p",
            "late",
            Box::new(probe(1000, log.clone())),
            Trigger::every(INTERVAL),
        )
        .unwrap();
    wait_until("the late source's poll", || {
        log.lock().unwrap().iter().any(|(i, _, _)| *i == 1000)
    });
    let late = log
        .lock()
        .unwrap()
        .iter()
        .find(|(i, _, _)| *i == 1000)
        .unwrap()
        .1;
    assert_eq!(late, fewest);
    let (report, _) = run.shutdown();
    assert_eq!(report.undelivered_points, 0);
}

/// A pipeline whose plugin registers `n` probes of [`INTERVAL`] at start, after two
/// intervals of polls: the polls per thread since the start, and the pipeline.
fn registered_at_start(n: usize) -> (HashMap<ThreadId, (HashSet<usize>, Instant)>, TestRun) {
    let log: Log = Arc::default();
    let mut tester = PipelineTester::new();
    let log2 = log.clone();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        for i in 0..n {
            let probe = probe(i, log2.clone());
            alumet.add_source(&format!("s-{i}"), probe, Trigger::every(INTERVAL))?;
        }
        Ok(())
    }));
    let run = tester.start().unwrap();
    let from = Instant::now();
    wait_until("two intervals of polls", || {
        Instant::now() >= from + INTERVAL * 2
    });
    (by_thread(&log, from), run)
}

#[test]
fn six_hundred_sources_registered_at_start_go_to_three_threads_a_quarter_interval_apart() {
    let (threads, run) = registered_at_start(600);
    let mut sizes: Vec<usize> = threads.values().map(|(s, _)| s.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [200, 200, 200], "sources per thread");
    // Each thread's sources are polled together, at its own phase.
    let mut firsts: Vec<Instant> = threads.values().map(|(_, first)| *first).collect();
    assert_staggered(&mut firsts, INTERVAL / 4);
    let (report, _) = run.shutdown();
    assert_eq!(report.undelivered_points, 0);
}

#[test]
fn a_few_sources_of_one_interval_share_one_thread() {
    let (threads, run) = registered_at_start(256);
    assert_eq!(threads.len(), 1, "one thread for 256 sources");
    run.shutdown();
}
