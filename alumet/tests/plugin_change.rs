//! Plugin instances added, removed and replaced while the pipeline runs (a config reload):
//! no point lost or doubled, an old output done before its replacement writes, the new
//! metrics known to every output.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alumet::pipeline::PluginChangeError;
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use common::*;

/// What the recording outputs saw, in order: `write VERSION`, `finish VERSION`.
type Log = Arc<Mutex<Vec<String>>>;

/// An output that keeps the values it receives and logs its writes and its finish.
struct Recorder {
    version: &'static str,
    values: Arc<Mutex<Vec<u64>>>,
    log: Log,
}

impl Output for Recorder {
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        _ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("write {}", self.version));
        let mut values = self.values.lock().unwrap();
        for p in buffer.iter() {
            if let MeasurementValue::U64(v) = p.value {
                values.push(v);
            }
        }
        Ok(())
    }

    fn finish(&mut self, _ctx: &OutputContext) -> Result<(), ElementError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("finish {}", self.version));
        Ok(())
    }
}

fn recorder_plugin(
    name: &str,
    version: &'static str,
    values: &Arc<Mutex<Vec<u64>>>,
    log: &Log,
) -> TestPlugin {
    let (values, log) = (Arc::clone(values), Arc::clone(log));
    TestPlugin::new(name, move |alumet| {
        alumet.add_output(
            "out",
            Recorder {
                version,
                values,
                log,
            },
        )?;
        Ok(())
    })
}

fn source_plugin(polls: &Arc<std::sync::atomic::AtomicU64>) -> TestPlugin {
    let polls = Arc::clone(polls);
    TestPlugin::new("src", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        alumet.add_source(
            "s",
            counting_source(m, 3, polls),
            Trigger::every(Duration::from_millis(1)),
        )?;
        Ok(())
    })
}

#[test]
fn an_output_replaced_while_running_loses_and_doubles_no_point() {
    let polls = counter();
    let kept: Arc<Mutex<Vec<u64>>> = Arc::default();
    let replaced: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (kept_log, log): (Log, Log) = (Arc::default(), Arc::default());
    let mut tester = PipelineTester::new();
    tester.any_plugin(source_plugin(&polls));
    tester.any_plugin(recorder_plugin("kept", "k", &kept, &kept_log));
    tester.any_plugin(recorder_plugin("changed", "1", &replaced, &log));
    let mut run = tester.start().unwrap();
    for version in ["2", "3", "4"] {
        let before = get(&polls);
        wait_until("polls between the replacements", || {
            get(&polls) >= before + 20
        });
        let removed = run
            .pipeline_mut()
            .replace_plugin(Box::new(recorder_plugin(
                "changed", version, &replaced, &log,
            )))
            .unwrap();
        assert_eq!(removed.outputs.len(), 1, "the old output's final figures");
        assert_eq!(
            removed.outputs[0].dropped_points + removed.outputs[0].failed_points,
            0
        );
    }
    let before = get(&polls);
    wait_until("polls after the last replacement", || {
        get(&polls) >= before + 20
    });
    let (report, _) = run.shutdown();
    assert!(!report.timed_out);

    let mut kept = kept.lock().unwrap().clone();
    let mut replaced = replaced.lock().unwrap().clone();
    kept.sort_unstable();
    let total = replaced.len();
    replaced.sort_unstable();
    replaced.dedup();
    assert_eq!(replaced.len(), total, "no point reached two instances");
    assert_eq!(
        replaced, kept,
        "every point reached one instance of the replaced output"
    );
    assert!(kept.len() >= 240, "{} points", kept.len());

    // Each instance finished before the next one wrote anything.
    let log = log.lock().unwrap().clone();
    for (old, new) in [("1", "2"), ("2", "3"), ("3", "4")] {
        let finished = log
            .iter()
            .position(|e| *e == format!("finish {old}"))
            .unwrap();
        let first_write = log
            .iter()
            .position(|e| *e == format!("write {new}"))
            .unwrap();
        assert!(
            finished < first_write,
            "{old} finished before {new} wrote: {log:?}"
        );
        assert!(
            !log[finished..].contains(&format!("write {old}")),
            "{log:?}"
        );
    }
}

#[test]
fn a_plugin_added_while_running_has_its_metrics_known_to_every_output() {
    let names: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&names);
    let mut tester = PipelineTester::new();
    let polls = counter();
    tester.any_plugin(source_plugin(&polls));
    tester.any_plugin(TestPlugin::new("names", move |alumet| {
        alumet.add_output("out", move |b: &MeasurementBuffer, ctx: &OutputContext| {
            let mut seen = seen.lock().unwrap();
            for p in b.iter() {
                let name = ctx.metrics().get(p.metric).map_or("?", |m| m.name.as_str());
                seen.push(name.to_owned());
            }
            Ok(())
        })?;
        Ok(())
    }));
    let mut run = tester.start().unwrap();
    let stopped = Arc::new(AtomicBool::new(false));
    let task_ended = Arc::new(AtomicBool::new(false));
    let late_polls = counter();
    let (p, ended) = (Arc::clone(&late_polls), Arc::clone(&task_ended));
    let late = TestPlugin::new("late", move |alumet| {
        let m = alumet.create_metric::<u64>("late_value", Unit::Unity, "added later")?;
        // Flushed every 10 polls: the removal flushes the rest.
        let trigger =
            Trigger::every(Duration::from_millis(2)).flush_every(Duration::from_millis(20));
        alumet.add_source("s", counting_source(m, 1, p), trigger)?;
        alumet.add_task("loop", move |mut shutdown| async move {
            shutdown.wait().await;
            ended.store(true, Ordering::SeqCst);
            Ok(())
        })?;
        Ok(())
    });
    let stopped_flag = Arc::clone(&stopped);
    run.pipeline_mut()
        .add_plugin(Box::new(StopFlag(late, stopped_flag)))
        .unwrap();
    assert!(run.pipeline().plugin_names().contains(&"late".to_owned()));
    assert!(matches!(
        run.pipeline_mut()
            .add_plugin(Box::new(TestPlugin::new("late", |_| Ok(())))),
        Err(PluginChangeError::Running(_))
    ));
    wait_until("the new source's points", || get(&late_polls) >= 25);
    let removed = run.pipeline_mut().remove_plugin("late").unwrap();
    assert_eq!(removed.sources, 1);
    assert!(stopped.load(Ordering::SeqCst), "its stop was called");
    assert!(task_ended.load(Ordering::SeqCst), "its task was stopped");
    let polled = get(&late_polls);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(get(&late_polls), polled, "no poll after the removal");
    assert!(matches!(
        run.pipeline_mut().remove_plugin("late"),
        Err(PluginChangeError::NotRunning(_))
    ));
    let _ = run.shutdown();
    let names = names.lock().unwrap().clone();
    assert!(
        !names.iter().any(|n| n == "?"),
        "every metric known to the output"
    );
    let late_points = names.iter().filter(|n| *n == "late_value").count() as u64;
    assert_eq!(
        late_points, polled,
        "every poll's point, the unflushed ones too"
    );
}

#[test]
fn a_replacement_that_fails_to_start_leaves_the_old_instance_running() {
    let polls = counter();
    let mut tester = PipelineTester::new();
    tester.any_plugin(source_plugin(&polls));
    let mut run = tester.start().unwrap();
    let broken = TestPlugin::new("src", |_| anyhow::bail!("bad setting"));
    let err = run
        .pipeline_mut()
        .replace_plugin(Box::new(broken))
        .unwrap_err();
    assert!(err.to_string().contains("bad setting"), "{err}");
    let before = get(&polls);
    wait_until("the old source polls on", || get(&polls) >= before + 5);
    let (report, points) = run.shutdown();
    assert!(!report.timed_out);
    assert!(!points.is_empty());
}

/// A plugin whose `stop` sets a flag.
struct StopFlag(TestPlugin, Arc<AtomicBool>);

impl alumet::plugin::AnyPlugin for StopFlag {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn start(&mut self, alumet: &mut alumet::plugin::Registrar<'_>) -> anyhow::Result<()> {
        self.0.start(alumet)
    }
    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()> {
        self.0.post_start(control)
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        self.1.store(true, Ordering::SeqCst);
        Ok(())
    }
}
