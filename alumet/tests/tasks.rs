//! `Registrar::add_task`: a loop a plugin owns gets the pipeline's shutdown, is awaited
//! until the deadline (one that does not stop is logged), and stops before the plugin's
//! `stop`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alumet::pipeline::PluginControl;
use alumet::plugin::{AnyPlugin, RegistrationError};
use alumet::prelude::*;
use alumet::test_util::{logs, PipelineTester};

type Journal = Arc<Mutex<Vec<&'static str>>>;
type Register = Box<dyn FnOnce(&mut Registrar<'_>, Journal) + Send>;

/// A plugin whose `start` registers one task built by `task`, and whose `stop` writes
/// `plugin stopped` in the journal.
struct Looper {
    name: &'static str,
    journal: Journal,
    task: Option<Register>,
}

impl AnyPlugin for Looper {
    fn name(&self) -> &str {
        self.name
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        if let Some(register) = self.task.take() {
            register(alumet, Arc::clone(&self.journal));
        }
        Ok(())
    }
    fn post_start(&mut self, _control: &PluginControl) -> anyhow::Result<()> {
        Ok(())
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        self.journal.lock().unwrap().push("plugin stopped");
        Ok(())
    }
}

fn looper(
    name: &'static str,
    task: impl FnOnce(&mut Registrar<'_>, Journal) + Send + 'static,
) -> (Looper, Journal) {
    let journal = Journal::default();
    let plugin = Looper {
        name,
        journal: Arc::clone(&journal),
        task: Some(Box::new(task)),
    };
    (plugin, journal)
}

#[test]
fn a_task_runs_until_shutdown_and_ends_before_the_plugin_stop() {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (plugin, journal) = looper("sender", move |alumet, journal| {
        alumet
            .add_task("loop", move |mut shutdown| async move {
                journal.lock().unwrap().push("task started");
                let _ = started_tx.send(());
                shutdown.wait().await;
                journal.lock().unwrap().push("task stopped");
                Ok(())
            })
            .unwrap();
    });
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    let run = tester.start().unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!journal.lock().unwrap().contains(&"task stopped"));
    let (report, _) = run.shutdown();
    assert!(!report.timed_out);
    assert_eq!(
        *journal.lock().unwrap(),
        ["task started", "task stopped", "plugin stopped"]
    );
}

#[test]
fn a_task_that_ignores_shutdown_is_logged_at_the_deadline_and_the_plugin_still_stops() {
    logs::capture();
    let (plugin, journal) = looper("stubborn", |alumet, _| {
        alumet
            .add_task("deaf", |_shutdown| async {
                std::future::pending::<()>().await;
                Ok(())
            })
            .unwrap();
    });
    let mut tester = PipelineTester::new();
    tester
        .any_plugin(plugin)
        .shutdown_timeout(Duration::from_millis(200));
    let run = tester.start().unwrap();
    run.shutdown();
    assert_eq!(*journal.lock().unwrap(), ["plugin stopped"]);
    let lines = logs::lines_with("stubborn/deaf");
    assert_eq!(
        lines,
        ["ERROR task stubborn/deaf did not stop within the shutdown deadline"]
    );
}

#[test]
fn a_task_that_fails_is_logged_with_its_error() {
    logs::capture();
    let (plugin, journal) = looper("failing", |alumet, _| {
        alumet
            .add_task("broken", |mut shutdown| async move {
                shutdown.wait().await;
                anyhow::bail!("socket closed under us")
            })
            .unwrap();
    });
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    tester.start().unwrap().shutdown();
    assert_eq!(*journal.lock().unwrap(), ["plugin stopped"]);
    assert_eq!(
        logs::lines_with("failing/broken"),
        ["ERROR task failing/broken failed: socket closed under us"]
    );
}

#[test]
fn two_tasks_of_one_plugin_need_two_names() {
    let (plugin, journal) = looper("twice", |alumet, journal| {
        let ok = |_: Shutdown| async { Ok(()) };
        alumet.add_task("same", ok).unwrap();
        let err = alumet.add_task("same", ok).unwrap_err();
        assert!(matches!(
            err,
            RegistrationError::DuplicateName { kind: "task", .. }
        ));
        assert_eq!(
            err.to_string(),
            "a task named `twice/same` exists already; choose another name"
        );
        journal.lock().unwrap().push("checked");
    });
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    tester.start().unwrap().shutdown();
    assert_eq!(*journal.lock().unwrap(), ["checked", "plugin stopped"]);
}

/// A source that pushes one point per poll.
struct Ticker(MetricId<u64>);

impl Source for Ticker {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        acc.push(MeasurementPoint::new(
            t,
            self.0,
            Resource::LocalMachine,
            ResourceConsumer::LocalMachine,
            1u64,
        ));
        Ok(())
    }
}

/// A plugin whose task, once it has the control handle, adds a source of its own.
fn adder(name: &'static str, added: std::sync::mpsc::Sender<String>) -> (Looper, Journal) {
    looper(name, move |alumet, journal| {
        let metric = alumet
            .create_metric::<u64>(&format!("{name}_ticks"), Unit::Unity, "ticks")
            .unwrap();
        alumet
            .add_task_with_control("finder", move |control, mut shutdown| async move {
                journal.lock().unwrap().push("task has the control");
                let id = control
                    .add_source("found", Ticker(metric), Trigger::manual())
                    .unwrap();
                let _ = added.send(format!("{id}"));
                shutdown.wait().await;
                Ok(())
            })
            .unwrap();
    })
}

#[test]
fn a_task_with_control_gets_its_plugin_s_handle_after_start_and_adds_its_sources() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (plugin, journal) = adder("finder", tx.clone());
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    let mut run = tester.start().unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // The source is the plugin's, named after it.
    assert_eq!(run.trigger("finder/found"), 1);
    // A plugin started while running gets its handle too.
    let (late, _) = adder("late", tx);
    run.pipeline_mut().add_plugin(Box::new(late)).unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(run.trigger("late/found"), 1);
    let (report, points) = run.shutdown();
    assert!(!report.timed_out);
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(
        *journal.lock().unwrap(),
        ["task has the control", "plugin stopped"]
    );
}

#[test]
fn a_task_with_control_of_a_pipeline_that_stops_at_once_is_not_called() {
    let (tx, _rx) = std::sync::mpsc::channel();
    let (plugin, journal) = adder("finder", tx);
    // A plugin that fails in post_start stops the pipeline before any handle is given.
    struct Failing;
    impl AnyPlugin for Failing {
        fn name(&self) -> &str {
            "failing"
        }
        fn start(&mut self, _: &mut Registrar<'_>) -> anyhow::Result<()> {
            Ok(())
        }
        fn post_start(&mut self, _: &PluginControl) -> anyhow::Result<()> {
            anyhow::bail!("no")
        }
        fn stop(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
    }
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin).any_plugin(Failing);
    assert!(tester.start().is_err());
    assert_eq!(*journal.lock().unwrap(), ["plugin stopped"]);
}
