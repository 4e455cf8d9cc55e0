//! The drop contract of alumet.h, in process: at shutdown each element's `drop_data` and
//! then `alumet_plugin_drop` are called once, even while a control handle on the pipeline
//! lives on (a signal thread keeps one); an output blocked past the shutdown deadline
//! keeps its data, and so the plugin's, until its write returns.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::sel;
use std::path::Path;
use std::time::{Duration, Instant};

use alumet::pipeline::PipelineBuilder;
use alumet_dynamic::host::PluginLibrary;

/// The `c_drops` plugin, its markers in `markers`, polled only when asked.
fn plugin(dir: &Path, markers: &Path, extra: &str) -> Box<dyn alumet::plugin::AnyPlugin> {
    let lib = PluginLibrary::open(&common::c_drops(dir)).unwrap();
    let config = format!(
        "markers = {:?}\npoll_interval_ms = 3600000\n{extra}",
        markers.to_str().unwrap()
    );
    Box::new(lib.init("c_drops", &config).unwrap())
}

/// The markers other than the output's writes.
fn drops(markers: &Path) -> Vec<String> {
    common::lines(markers)
        .into_iter()
        .filter(|l| !l.starts_with("write "))
        .collect()
}

#[test]
fn dynamic_elements_then_plugin_are_dropped_at_shutdown_while_a_control_handle_lives() {
    if !common::gcc_here(
        "dynamic_elements_then_plugin_are_dropped_at_shutdown_while_a_control_handle_lives",
    ) {
        return;
    }
    let dir = common::temp_dir("drops");
    let markers = dir.join("markers.txt");
    let mut builder = PipelineBuilder::new();
    builder.plugin(plugin(&dir, &markers, ""));
    let mut pipeline = builder.start().unwrap();
    let control = pipeline.control();
    assert_eq!(control.poll_now(sel("*")).unwrap(), 1);
    let report = pipeline.shutdown();
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.outputs[0].written_points, 1, "{report:?}");
    // Every element is dropped before the plugin's stop, the plugin's value last.
    assert_eq!(
        drops(&markers),
        ["source_drop", "output_drop", "stop", "plugin_drop"]
    );
    let all = common::lines(&markers);
    let at = |m: &str| all.iter().position(|l| l == m);
    assert!(at("write 1") < at("output_drop"), "{all:?}");
    // The handle still works, on a pipeline that holds no element any more.
    assert_eq!(control.poll_now(sel("*")).unwrap(), 0);
    drop(pipeline);
    drop(control);
    assert_eq!(drops(&markers).len(), 4);
}

#[test]
fn dynamic_output_blocked_past_the_deadline_is_dropped_when_its_write_returns() {
    if !common::gcc_here(
        "dynamic_output_blocked_past_the_deadline_is_dropped_when_its_write_returns",
    ) {
        return;
    }
    let dir = common::temp_dir("drops-blocked");
    let markers = dir.join("markers.txt");
    let mut builder = PipelineBuilder::new();
    builder.shutdown_timeout(Duration::from_millis(100));
    builder.plugin(plugin(&dir, &markers, "write_sleep_ms = 2000\n"));
    let mut pipeline = builder.start().unwrap();
    assert_eq!(pipeline.control().poll_now(sel("*")).unwrap(), 1);
    let report = pipeline.shutdown();
    drop(pipeline);
    assert!(report.timed_out, "{report:?}");
    // The output's thread is still in `write`: its data, and the plugin's, are kept.
    assert_eq!(drops(&markers), ["source_drop", "stop"]);
    // Its write returns: the output is dropped without `finish`, then the plugin.
    let start = Instant::now();
    while drops(&markers).len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            drops(&markers)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        common::lines(&markers),
        [
            "source_drop",
            "stop",
            "write 1",
            "output_drop",
            "plugin_drop"
        ]
    );
}
