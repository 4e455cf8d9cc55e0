//! A plugin instance's elements removed as a unit while running, and transforms and
//! outputs added while running: no point measured is lost, and each removed output's
//! figures add up.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alumet::metrics::RawMetricId;
use alumet::pipeline::{ControlError, OutputOptions};
use alumet::plugin::{AnyPlugin, Registrar};
use alumet::prelude::*;
use alumet::test_util::PipelineTester;
use common::*;

/// What a [`Recorder`] saw and what happened to it.
#[derive(Clone, Default)]
struct Seen {
    points: Arc<AtomicU64>,
    /// Points of the metric `watched`, if set.
    watched: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
}

/// An output that counts what it writes, and records its `finish` and its drop.
struct Recorder {
    seen: Seen,
    watched: Option<RawMetricId>,
}

impl Output for Recorder {
    fn write(&mut self, buffer: &MeasurementBuffer, _: &OutputContext) -> Result<(), ElementError> {
        let watched = buffer
            .iter()
            .filter(|p| Some(p.metric) == self.watched)
            .count();
        self.seen
            .watched
            .fetch_add(watched as u64, Ordering::SeqCst);
        let n = buffer.len() as u64;
        self.seen.points.fetch_add(n, Ordering::SeqCst);
        Ok(())
    }
    fn finish(&mut self, _: &OutputContext) -> Result<(), ElementError> {
        self.seen.finished.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.seen.dropped.store(true, Ordering::SeqCst);
    }
}

/// A transform that passes every point on, counting them, and pushes one point of
/// `marker` when it finishes.
struct Marking {
    marker: MetricId<u64>,
    seen: Arc<AtomicU64>,
}

impl Transform for Marking {
    fn apply(
        &mut self,
        b: &mut MeasurementBuffer,
        _: &TransformContext,
    ) -> Result<(), ElementError> {
        self.seen.fetch_add(b.len() as u64, Ordering::SeqCst);
        Ok(())
    }
    fn finish(
        &mut self,
        b: &mut MeasurementBuffer,
        _: &TransformContext,
    ) -> Result<(), ElementError> {
        b.push(point(self.marker, 0));
        Ok(())
    }
}

/// Plugin `gone`: a source every millisecond (metric `gone_value`), a [`Marking`]
/// transform (metric `gone_finish`) and a [`Recorder`] output; it records its `stop`.
struct Gone {
    polls: Arc<AtomicU64>,
    seen: Seen,
    stopped: Arc<AtomicBool>,
}

impl AnyPlugin for Gone {
    fn name(&self) -> &str {
        "gone"
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let value = alumet.create_metric::<u64>("gone_value", Unit::Unity, "a value")?;
        let marker = alumet.create_metric::<u64>("gone_finish", Unit::Unity, "a marker")?;
        let source = counting_source(value, 1, Arc::clone(&self.polls));
        alumet.add_source("s", source, Trigger::every(Duration::from_millis(1)))?;
        let seen = counter();
        alumet.add_transform("t", Marking { marker, seen })?;
        let recorder = Recorder {
            seen: self.seen.clone(),
            watched: Some(value.raw()),
        };
        alumet.add_output("out", recorder)?;
        Ok(())
    }
    fn post_start(&mut self, _: &alumet::pipeline::PluginControl) -> anyhow::Result<()> {
        Ok(())
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        self.stopped.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Plugin `kept`: a source every millisecond, flushing while the other plugin goes.
fn kept(polls: Arc<AtomicU64>) -> alumet::test_util::TestPlugin {
    alumet::test_util::TestPlugin::new("kept", move |alumet| {
        let m = alumet.create_metric::<u64>("kept_value", Unit::Unity, "a value")?;
        let source = counting_source(m, 1, polls);
        alumet.add_source("s", source, Trigger::every(Duration::from_millis(1)))?;
        Ok(())
    })
}

#[test]
fn removing_a_plugin_while_running_loses_none_of_its_points() {
    let (gone_polls, kept_polls) = (counter(), counter());
    let (seen, stopped) = (Seen::default(), Arc::new(AtomicBool::new(false)));
    let gone = Gone {
        polls: Arc::clone(&gone_polls),
        seen: seen.clone(),
        stopped: Arc::clone(&stopped),
    };
    let mut tester = PipelineTester::new();
    tester
        .any_plugin(gone)
        .any_plugin(kept(Arc::clone(&kept_polls)));
    let run = tester.start().unwrap();
    let control = run.control();
    wait_until("both sources polled", || {
        get(&gone_polls) >= 50 && get(&kept_polls) >= 50
    });

    let removed = control.remove_plugin("gone").unwrap();
    let polled = get(&gone_polls);
    assert_eq!(removed.sources, 1);
    let names: Vec<String> = removed.transforms.iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["gone/t"]);
    assert_eq!(removed.outputs.len(), 1);
    let out = &removed.outputs[0];
    assert_eq!(out.name.to_string(), "gone/out");
    // Its finish ran, it was dropped, and its figures add up to what it was given.
    assert!(
        seen.finished.load(Ordering::SeqCst),
        "finish of the removed output"
    );
    assert!(
        seen.dropped.load(Ordering::SeqCst),
        "drop of the removed output"
    );
    assert_eq!(out.queued_points, 0);
    assert_eq!((out.dropped_points, out.failed_points), (0, 0));
    assert_eq!(out.written_points, get(&seen.points));
    assert_eq!(get(&seen.watched), polled, "every point of its own source");
    assert!(
        !stopped.load(Ordering::SeqCst),
        "stop is not called by remove_plugin"
    );
    assert!(control.sources().iter().all(|(n, _)| n.plugin == "kept"));
    assert!(control
        .element_stats()
        .iter()
        .all(|s| s.name.plugin != "gone"));
    assert_eq!(control.remove_plugin("gone").unwrap().sources, 0);

    let kept_before = get(&kept_polls);
    wait_until("the other plugin polls on", || {
        get(&kept_polls) > kept_before + 5
    });
    assert_eq!(get(&gone_polls), polled, "a removed source was polled");
    let written_at_removal = get(&seen.points);
    let value = run.metric::<u64>("gone_value").unwrap().raw();
    let marker = run.metric::<u64>("gone_finish").unwrap().raw();
    let (report, points) = run.shutdown();
    assert!(stopped.load(Ordering::SeqCst), "stop at shutdown");
    assert_eq!(
        get(&seen.points),
        written_at_removal,
        "a removed output wrote"
    );
    // The other plugin's output received every point of the removed source, and the
    // point of the removed transform's finish.
    let count = |m| points.iter().filter(|p| p.metric == m).count() as u64;
    assert_eq!(count(value), polled);
    assert_eq!(count(marker), 1);
    // The removed output stays in the report, settled.
    let out = output_stats(&report, "out");
    assert_eq!(out.written_points, written_at_removal);
    assert_eq!(out.queued_points, 0);
    assert_eq!(output_stats(&report, "collector").failed_points, 0);
    assert_eq!(report.undelivered_points, 0);
}

#[test]
fn outputs_and_transforms_added_while_running_get_the_points_flushed_after() {
    let polls = counter();
    let (plugin_polls, feeder_metric) = (Arc::clone(&polls), "a_value");
    let a = alumet::test_util::TestPlugin::new("a", move |alumet| {
        let m = alumet.create_metric::<u64>(feeder_metric, Unit::Unity, "a value")?;
        alumet.add_source("s", counting_source(m, 2, plugin_polls), Trigger::manual())?;
        Ok(())
    });
    let mut tester = PipelineTester::new();
    tester.any_plugin(a);
    let run = tester.start().unwrap();
    let control = run.control();
    for _ in 0..3 {
        assert_eq!(run.trigger("a/s"), 1);
    }
    let seen = Seen::default();
    let recorder = |seen: &Seen| Recorder {
        seen: seen.clone(),
        watched: None,
    };
    let options = OutputOptions::default();
    control
        .add_output("late", "out", Box::new(recorder(&seen)), options.clone())
        .unwrap();
    let transformed = counter();
    let t2 = Arc::clone(&transformed);
    let transform = move |b: &mut MeasurementBuffer, _: &TransformContext| {
        t2.fetch_add(b.len() as u64, Ordering::SeqCst);
        Ok(())
    };
    control
        .add_transform("late", "t", Box::new(transform))
        .unwrap();
    // Names are unique among transforms and outputs; a plugin's handle adds its own.
    let again = control.add_output("late", "out", Box::new(recorder(&seen)), options.clone());
    assert!(matches!(again, Err(ControlError::DuplicateName(_))));
    let late = control.plugin_control("late");
    let again = late.add_transform(
        "t",
        |_: &mut MeasurementBuffer, _: &TransformContext| Ok(()),
    );
    assert!(matches!(again, Err(ControlError::DuplicateName(_))));
    let other = Seen::default();
    late.add_output("other", recorder(&other), options.clone())
        .unwrap();
    for _ in 0..5 {
        assert_eq!(run.trigger("a/s"), 1);
    }
    // Elements added while running are removed like the others.
    let removed = control.remove_plugin("late").unwrap();
    assert_eq!((removed.sources, removed.transforms.len()), (0, 1));
    let out = &removed.outputs[0];
    assert_eq!((out.written_points, out.queued_points), (10, 0));
    assert!(seen.finished.load(Ordering::SeqCst) && seen.dropped.load(Ordering::SeqCst));
    assert_eq!(
        get(&other.points),
        10,
        "the output added by the plugin's handle"
    );
    assert_eq!(removed.outputs.len(), 2);
    assert_eq!(run.trigger("a/s"), 1);
    let (report, points) = run.shutdown();
    assert_eq!(points.len(), 18, "the collector got every point");
    assert_eq!(
        get(&seen.points),
        10,
        "the added output got the points flushed after"
    );
    assert_eq!(
        get(&transformed),
        10,
        "the added transform saw the points flushed after"
    );
    let out = output_stats(&report, "out");
    assert_eq!((out.written_points, out.queued_points), (10, 0));
    // Nothing is added once the pipeline has shut down.
    let late = control.add_output("late", "other", Box::new(recorder(&seen)), options);
    assert!(matches!(late, Err(ControlError::ShuttingDown)));
}
