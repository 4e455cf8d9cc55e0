//! A plugin's control handle reaches only its own sources and event handlers, and reads
//! every element's statistics; the agent removes a plugin's sources as a unit while
//! running, without losing their points.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alumet::pipeline::{ControlError, ElementKind, PluginControl};
use alumet::plugin::{AnyPlugin, Registrar};
use alumet::prelude::*;
use alumet::test_util::{sel, PipelineTester};
use common::*;

type StartFn = Box<dyn FnOnce(&mut Registrar<'_>) -> anyhow::Result<()> + Send>;

/// A plugin that keeps the control handle its `post_start` receives.
struct Kept {
    name: String,
    start: Option<StartFn>,
    control: Arc<OnceLock<PluginControl>>,
}

impl Kept {
    fn new(
        name: &str,
        start: impl FnOnce(&mut Registrar<'_>) -> anyhow::Result<()> + Send + 'static,
    ) -> (Self, Arc<OnceLock<PluginControl>>) {
        let control: Arc<OnceLock<PluginControl>> = Arc::default();
        let plugin = Kept {
            name: name.to_owned(),
            start: Some(Box::new(start)),
            control: Arc::clone(&control),
        };
        (plugin, control)
    }
}

impl AnyPlugin for Kept {
    fn name(&self) -> &str {
        &self.name
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        self.start.take().map_or(Ok(()), |start| start(alumet))
    }
    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()> {
        let _ = self.control.set(control.clone());
        Ok(())
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

type Ids = Arc<Mutex<Vec<SourceId>>>;

/// Plugin `name` with manual sources `x` and `y` (one point per poll, metric
/// `NAME_value`), counting their polls in `polls`; their ids go to the returned list.
fn two_sources(name: &str, polls: Arc<AtomicU64>) -> (Kept, Arc<OnceLock<PluginControl>>, Ids) {
    let ids: Ids = Arc::default();
    let (ids2, metric) = (Arc::clone(&ids), format!("{name}_value"));
    let (plugin, control) = Kept::new(name, move |alumet| {
        let m = alumet.create_metric::<u64>(&metric, Unit::Unity, "a value")?;
        for source in ["x", "y"] {
            let s = counting_source(m, 1, polls.clone());
            ids2.lock()
                .unwrap()
                .push(alumet.add_source(source, s, Trigger::manual())?);
        }
        Ok(())
    });
    (plugin, control, ids)
}

fn not_owned<T>(result: Result<T, ControlError>) -> bool {
    matches!(result, Err(ControlError::NotOwned { .. }))
}

#[test]
fn a_plugin_control_cannot_touch_another_plugin_s_sources() {
    let (a_polls, ab_polls) = (counter(), counter());
    let (a, a_control, _) = two_sources("a", a_polls.clone());
    let (ab, _, ab_ids) = two_sources("ab", ab_polls.clone());
    let mut tester = PipelineTester::new();
    tester.any_plugin(a).any_plugin(ab);
    let run = tester.start().unwrap();
    let control = a_control.get().unwrap();
    let theirs = ab_ids.lock().unwrap()[0];

    // By id: refused, whatever the call.
    assert!(not_owned(control.pause(theirs)));
    assert!(not_owned(control.resume(theirs)));
    assert!(not_owned(control.remove_source(theirs)));
    assert!(not_owned(control.poll_now(theirs)));
    assert!(not_owned(control.trigger_now(theirs)));
    let ms = Duration::from_millis(5);
    assert!(not_owned(control.set_interval(theirs, ms)));
    // By a selector that names other plugins only: refused, and says which plugin.
    let err = control.pause(sel("ab/*")).unwrap_err();
    assert!(err.to_string().contains("`ab/*`"), "{err}");
    assert!(err.to_string().contains("plugin `a`"), "{err}");
    assert!(not_owned(control.remove_source(sel("ab"))));
    assert!(not_owned(control.trigger_now(sel("b*/x"))));
    // A selector whose plugin part matches `a` is confined to `a`: `ab` is untouched.
    assert_eq!(control.pause(sel("a*")).unwrap(), 2);
    assert_eq!(control.poll_now(sel("*")).unwrap(), 0);
    assert_eq!(control.resume(sel("*/*")).unwrap(), 2);
    assert_eq!(control.remove_source(sel("*/nothing")).unwrap(), 0);
    assert_eq!(get(&ab_polls), 0);
    let all = run.control().sources();
    assert_eq!(
        all.iter().filter(|(n, on)| n.plugin == "ab" && *on).count(),
        2
    );
    // The agent's handle still reaches them.
    assert_eq!(run.trigger("ab"), 2);
    assert_eq!(get(&ab_polls), 2);
    assert!(control.source_id("x").is_some());
    assert_eq!(control.sources().len(), 2);
    drop(run);
}

#[test]
fn a_plugin_control_reaches_its_own_sources_by_id_and_selector() {
    let polls = counter();
    let (a, a_control, a_ids) = two_sources("a", polls.clone());
    let mut tester = PipelineTester::new();
    tester.any_plugin(a);
    let run = tester.start().unwrap();
    let control = a_control.get().unwrap();
    assert_eq!(control.plugin_name(), "a");
    let ids = a_ids.lock().unwrap().clone();
    let (x, y) = (ids[0], ids[1]);

    assert_eq!(control.trigger_now(x).unwrap().wait(), 1);
    assert_eq!(control.poll_now(sel("a/*")).unwrap(), 2);
    assert_eq!(get(&polls), 3);
    assert_eq!(control.pause(y).unwrap(), 1);
    assert_eq!(control.poll_now(sel("*")).unwrap(), 1);
    assert_eq!(control.resume(sel("a/y")).unwrap(), 1);
    assert_eq!(control.trigger_now(sel("*/y")).unwrap().wait(), 1);
    assert_eq!(get(&polls), 5);

    // A source added through the handle is the plugin's: named after it, reachable by id.
    let m = run.metric::<u64>("a_value").unwrap();
    let added = counter();
    let every = Trigger::every(Duration::from_millis(2));
    let z = control
        .add_source("z", counting_source(m, 1, added.clone()), every)
        .unwrap();
    assert_eq!(control.source_id("z"), Some(z));
    wait_until("the added source polls", || get(&added) >= 2);
    assert_eq!(
        control.set_interval(z, Duration::from_secs(3600)).unwrap(),
        1
    );
    assert_eq!(control.remove_source(z).unwrap(), 1);
    assert!(matches!(
        control.pause(z),
        Err(ControlError::NoSuchSource(id)) if id == z
    ));
    assert_eq!(control.remove_source(x).unwrap(), 1);
    let names: Vec<String> = control
        .sources()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(names, ["a/y"]);
    let (_, points) = run.shutdown();
    assert_eq!(points.len() as u64, get(&polls) + get(&added));
}

#[test]
fn a_plugin_control_reads_every_plugin_s_statistics() {
    let (a, a_control, _) = two_sources("a", counter());
    let (b, _, _) = two_sources("b", counter());
    let mut tester = PipelineTester::new();
    tester.any_plugin(a).any_plugin(b);
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("b/x"), 1);
    let control = a_control.get().unwrap();
    let stats = control.element_stats();
    let bx = stats.iter().find(|s| s.name.to_string() == "b/x").unwrap();
    assert_eq!((bx.kind, bx.polls, bx.points), (ElementKind::Source, 1, 1));
    assert!(stats.iter().any(|s| s.name.to_string() == "test/collector"));
    let outputs = control.output_stats();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].name.to_string(), "test/collector");
    drop(run);
}

#[test]
fn removing_a_plugin_s_sources_while_running_loses_none_of_their_points() {
    let (gone_polls, twin_polls) = (counter(), counter());
    // Polled often, flushed every hour: what they measured is buffered at the removal.
    let hourly =
        |ms| Trigger::every(Duration::from_millis(ms)).flush_every(Duration::from_secs(3600));
    let polls = gone_polls.clone();
    let mut tester = PipelineTester::new();
    tester.any_plugin(alumet::test_util::TestPlugin::new("gone", move |alumet| {
        let m = alumet.create_metric::<u64>("gone_value", Unit::Unity, "a value")?;
        for (name, ms) in [("fast", 1), ("other", 3), ("third", 3)] {
            alumet.add_source(name, counting_source(m, 2, polls.clone()), hourly(ms))?;
        }
        Ok(())
    }));
    // Another instance, whose name starts the same: it stays.
    let twin = twin_polls.clone();
    tester.any_plugin(alumet::test_util::TestPlugin::new("gone2", move |alumet| {
        let m = alumet.create_metric::<u64>("twin_value", Unit::Unity, "a value")?;
        alumet.add_source("fast", counting_source(m, 1, twin), hourly(1))?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    let control = run.control();
    let gone_metric = run.metric::<u64>("gone_value").unwrap();
    // One added while running is the plugin's as well.
    let added = control.plugin_control("gone");
    let late = counting_source(gone_metric, 2, gone_polls.clone());
    added.add_source("late", late, hourly(2)).unwrap();
    wait_until("every source polled a few times", || get(&gone_polls) >= 40);

    assert_eq!(control.remove_plugin_sources("gone").unwrap(), 4);
    let polled = get(&gone_polls);
    assert!(control.sources().iter().all(|(n, _)| n.plugin == "gone2"));
    assert_eq!(control.remove_plugin_sources("gone").unwrap(), 0);
    let twin_before = get(&twin_polls);
    wait_until("the other instance polls on", || {
        get(&twin_polls) > twin_before + 5
    });
    assert_eq!(get(&gone_polls), polled, "a removed source was polled");

    let (report, points) = run.shutdown();
    let gone = points
        .iter()
        .filter(|p| p.metric == gone_metric.raw())
        .count() as u64;
    assert_eq!(gone, 2 * polled, "points of the removed sources");
    assert_eq!(points.len() as u64, 2 * polled + get(&twin_polls));
    assert_eq!(report.undelivered_points, 0);
}

#[test]
fn event_handlers_are_added_and_removed_while_running() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let at_start = Arc::new(OnceLock::new());
    let (seen2, at_start2) = (Arc::clone(&seen), Arc::clone(&at_start));
    let (a, a_control) = Kept::new("a", move |alumet| {
        let seen = Arc::clone(&seen2);
        let id = alumet.on_event(move |_, c| {
            seen.lock()
                .unwrap()
                .push(format!("start:{}", c.plugin_name()))
        });
        at_start2.set(id).unwrap();
        Ok(())
    });
    let seen3 = Arc::clone(&seen);
    let (b, b_control) = Kept::new("b", |_| Ok(()));
    let mut tester = PipelineTester::new();
    tester.any_plugin(a).any_plugin(b);
    let run = tester.start().unwrap();
    let (control, a, b) = (
        run.control(),
        a_control.get().unwrap(),
        b_control.get().unwrap(),
    );
    let event = Event::ConsumerEnded(ResourceConsumer::Process { pid: 1 });
    let seen_b = Arc::clone(&seen3);
    let later = b.on_event(move |_, c| {
        seen_b
            .lock()
            .unwrap()
            .push(format!("late:{}", c.plugin_name()))
    });
    control.emit(&event);
    assert_eq!(*seen.lock().unwrap(), ["start:a", "late:b"]);

    // Not another plugin's to remove; its own, once.
    assert!(not_owned(a.remove_subscriber(later)));
    let first = *at_start.get().unwrap();
    assert!(a.remove_subscriber(first).unwrap());
    assert!(!a.remove_subscriber(first).unwrap());
    control.emit(&event);
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(control.remove_plugin_subscribers("b"), 1);
    control.emit(&event);
    assert_eq!(seen.lock().unwrap().len(), 3);
    drop(run);
}

/// A plugin `NAME` with an autonomous source `ticker` that sends one point a millisecond
/// until its `Shutdown` fires, then one last point ([`ticker`]); returns its id's cell, how many points
/// it sent, and whether its task has ended.
fn ticker_plugin(
    name: &'static str,
) -> (
    alumet::test_util::TestPlugin,
    Arc<OnceLock<SourceId>>,
    Arc<AtomicU64>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let id: Arc<OnceLock<SourceId>> = Arc::default();
    let sent = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (id2, sent2, ended2) = (Arc::clone(&id), Arc::clone(&sent), Arc::clone(&ended));
    let plugin = alumet::test_util::TestPlugin::new(name, move |alumet| {
        let m = alumet.create_metric::<u64>("ticks", Unit::Unity, "v")?;
        let source_id = alumet.add_autonomous_source("ticker", ticker(m, sent2, ended2))?;
        id2.set(source_id).unwrap();
        Ok(())
    });
    (plugin, id, sent, ended)
}

#[test]
fn an_autonomous_source_has_an_id_and_is_removed_by_it_without_losing_a_point() {
    let (plugin, id, sent, ended) = ticker_plugin("auto");
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    let run = tester.start().unwrap();
    let control = run.control();
    let id = *id.get().unwrap();
    wait_until("5 points", || get(&sent) >= 5);
    // Not polled by the pipeline: only removal applies.
    match control.pause(id) {
        Err(ControlError::Autonomous(name)) => assert_eq!(name.to_string(), "auto/ticker"),
        other => panic!("pause of an autonomous source: {other:?}"),
    }
    assert!(control
        .sources()
        .iter()
        .any(|(s, _)| s.to_string() == "auto/ticker"));
    assert_eq!(control.remove_source(id).unwrap(), 1);
    wait_until("its task ended", || {
        ended.load(std::sync::atomic::Ordering::SeqCst)
    });
    assert!(matches!(
        control.remove_source(id),
        Err(ControlError::NoSuchSource(_))
    ));
    assert!(!control
        .sources()
        .iter()
        .any(|(s, _)| s.to_string() == "auto/ticker"));
    let (report, points) = run.shutdown();
    assert_eq!(
        points.len() as u64,
        get(&sent),
        "every point it sent, the last one too"
    );
    assert_eq!(report.undelivered_points, 0);
}

#[test]
fn an_autonomous_source_is_removed_with_its_plugin_s_sources() {
    let (plugin, _, sent, ended) = ticker_plugin("auto");
    let (other, _, other_sent, other_ended) = ticker_plugin("other");
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin).any_plugin(other);
    let run = tester.start().unwrap();
    wait_until("points of both", || {
        get(&sent) >= 3 && get(&other_sent) >= 3
    });
    assert_eq!(run.control().remove_plugin_sources("auto").unwrap(), 1);
    wait_until("its task ended", || {
        ended.load(std::sync::atomic::Ordering::SeqCst)
    });
    // The other plugin's source goes on.
    let before = get(&other_sent);
    wait_until("the other one still sends", || {
        get(&other_sent) >= before + 3
    });
    assert!(!other_ended.load(std::sync::atomic::Ordering::SeqCst));
    let (_, points) = run.shutdown();
    assert_eq!(points.len() as u64, get(&sent) + get(&other_sent));
}
