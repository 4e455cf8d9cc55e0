//! Sources addressed by the ids `add_source` returns: many added and removed while
//! running, ids that stay valid and never alias a later source, no point lost.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alumet::pipeline::ControlError;
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin, TestRun};
use common::*;

/// A pipeline with plugin `p` and its metric, and the ids of the sources it registered
/// at start (manual sources `m1` and `m2`, 2 and 3 points per poll).
fn start(m1: Counter, m2: Counter) -> (TestRun, MetricId<u64>, Vec<SourceId>) {
    let metric: Arc<OnceLock<MetricId<u64>>> = Arc::default();
    let ids: Arc<Mutex<Vec<SourceId>>> = Arc::default();
    let (metric2, ids2) = (Arc::clone(&metric), Arc::clone(&ids));
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        metric2.set(m).unwrap();
        let a = alumet.add_source("m1", counting_source(m, 2, m1), Trigger::manual())?;
        let b = alumet.add_source("m2", counting_source(m, 3, m2), Trigger::manual())?;
        ids2.lock().unwrap().extend([a, b]);
        Ok(())
    }));
    let run = tester.start().unwrap();
    let ids = ids.lock().unwrap().clone();
    (run, *metric.get().unwrap(), ids)
}

type Counter = Arc<std::sync::atomic::AtomicU64>;

/// Whether a thread of this process has this name.
fn thread_named(name: &str) -> bool {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks.flatten().any(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        comm.trim_end() == name
    })
}

#[test]
fn a_thousand_sources_added_and_removed_at_run_time_lose_no_point() {
    let (run, m, _) = start(counter(), counter());
    let control = run.control();
    let polls = counter();
    // Flushed only every hour: what they measured is still buffered when they are removed.
    let trigger = Trigger::every(Duration::from_millis(23)).flush_every(Duration::from_secs(3600));
    let mut ids = Vec::new();
    for i in 0..1000 {
        let source = Box::new(counting_source(m, 1, polls.clone()));
        ids.push(
            control
                .add_source("p", &format!("s-{i}"), source, trigger.clone())
                .unwrap(),
        );
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
    assert_eq!(control.sources().len(), 1002);
    let first = ControlError::DuplicateName(alumet::pipeline::ElementName::new("p", "s-0"));
    let again = control.add_source(
        "p",
        "s-0",
        Box::new(counting_source(m, 1, counter())),
        trigger.clone(),
    );
    assert_eq!(again.unwrap_err().to_string(), first.to_string());
    wait_until("2 polls of each source", || get(&polls) >= 2000);
    assert!(thread_named("alumet-src-23ms"));

    for (i, id) in ids.iter().enumerate() {
        assert_eq!(control.remove_source(*id).unwrap(), 1, "source {i}");
    }
    for id in &ids {
        assert!(
            matches!(control.remove_source(*id), Err(ControlError::NoSuchSource(x)) if x == *id)
        );
        assert!(matches!(
            control.pause(*id),
            Err(ControlError::NoSuchSource(_))
        ));
    }
    assert_eq!(control.sources().len(), 2);
    // The group left without sources stops its thread.
    wait_until("the empty group's thread to end", || {
        !thread_named("alumet-src-23ms")
    });

    // A new source takes a removed one's place and name, never its id.
    let again = counting_source(m, 5, counter());
    let new = control
        .add_source("p", "s-0", Box::new(again), Trigger::manual())
        .unwrap();
    assert!(!ids.contains(&new));
    assert_eq!(control.trigger_now(ids[0]).wait(), 0);
    assert_eq!(control.trigger_now(new).wait(), 1);
    assert_eq!(
        control.source_id(&alumet::pipeline::ElementName::new("p", "s-0")),
        Some(new)
    );

    let polled = get(&polls);
    let (report, points) = run.shutdown();
    assert_eq!(report.undelivered_points, 0);
    // One point per poll of the removed sources (flushed when removed), 5 for the new one.
    assert_eq!(points.len() as u64, polled + 5);
}

#[test]
fn pause_trigger_and_poll_by_id_reach_that_source_only() {
    let (m1, m2) = (counter(), counter());
    let (run, _, ids) = start(m1.clone(), m2.clone());
    let control = run.control();
    let (a, b) = (ids[0], ids[1]);
    assert_ne!(a, b);
    assert_eq!(control.trigger_now(a).wait(), 1);
    assert_eq!((get(&m1), get(&m2)), (1, 0));
    assert_eq!(control.pause(a).unwrap(), 1);
    assert_eq!(control.trigger_now(a).wait(), 0);
    assert_eq!(control.poll_now(b).unwrap(), 1);
    assert_eq!((get(&m1), get(&m2)), (1, 1));
    assert_eq!(control.resume(a).unwrap(), 1);
    assert_eq!(control.poll_now(a).unwrap(), 1);
    assert_eq!(
        control.set_interval(b, Duration::from_secs(3600)).unwrap(),
        1
    );
    assert_eq!((get(&m1), get(&m2)), (2, 1));
    let (_, points) = run.shutdown();
    assert_eq!(points.len(), 2 * 2 + 3);
}

#[test]
fn a_malformed_selector_is_an_error_that_says_what_is_wrong() {
    let error = Selector::parse("procfs/").unwrap_err();
    assert_eq!(error.pattern, "procfs/");
    let message = error.to_string();
    assert!(
        message.contains("`procfs/`") && message.contains("source part"),
        "{message}"
    );
    assert!(Selector::parse("a/b/c")
        .unwrap_err()
        .to_string()
        .contains("more than one `/`"));
    assert!("procfs/*".parse::<Selector>().is_ok());
}
