//! Run mode: start the plugins, measure until SIGINT, SIGTERM or SIGHUP, drain, stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alumet::pipeline::{PipelineBuilder, PipelineControl, ShutdownReport};
use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Loaded;

/// Runs until a signal; returns the shutdown report.
pub fn run(loaded: Loaded) -> anyhow::Result<ShutdownReport> {
    // Signals are blocked into a pipe before any thread starts, so none is missed. SIGHUP
    // (the terminal of an agent started by hand closes) stops it as SIGTERM does: its
    // default action would end the agent at once, losing what is buffered.
    let signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    let mut builder = PipelineBuilder::new();
    builder.shutdown_timeout(loaded.general.shutdown_timeout);
    for plugin in loaded.plugins {
        builder.plugin(plugin);
    }
    let pipeline = builder.start()?;
    let started = pipeline.plugin_names();
    log::info!(
        "running plugins: {}; stop with SIGINT, SIGTERM or SIGHUP",
        started.join(", ")
    );
    let draining = Arc::new(AtomicBool::new(false));
    watch_signals(signals, pipeline.control(), Arc::clone(&draining));
    let report = pipeline.wait_and_shutdown();
    log_report(&report);
    Ok(report)
}

/// First signal: drain and stop. Second: exit at once, saying what was not written.
fn watch_signals(mut signals: Signals, control: PipelineControl, draining: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if !draining.swap(true, Ordering::SeqCst) {
                log::info!("signal {signal} received: writing what was measured, then stopping (send it again to exit at once)");
                control.request_shutdown();
                continue;
            }
            let pending: u64 = control.output_stats().iter().map(|s| s.queued_points).sum();
            log::error!("second signal: exiting now; {pending} measured points were not written");
            std::process::exit(1);
        }
    });
}

fn log_report(report: &ShutdownReport) {
    for o in &report.outputs {
        log::info!(
            "output {}: {} points written, {} dropped (queue full), {} lost (write errors, or not written before the deadline)",
            o.name,
            o.written_points,
            o.dropped_points,
            o.failed_points
        );
    }
    if report.timed_out {
        log::error!(
            "the outputs did not finish within the shutdown timeout: {} points were not delivered",
            report.undelivered_points
        );
    }
}
