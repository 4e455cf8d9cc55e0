//! Run mode: start the plugins, measure until SIGINT or SIGTERM (or `control stop`), drain,
//! stop. SIGHUP (and `control reload`) reloads the config ([`crate::reload`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};

use alumet::pipeline::{OutputStats, PipelineBuilder, PipelineControl, ShutdownReport};
use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{ConfigError, Loaded};
use crate::control::server::{Agent, ControlSocket};
use crate::notify::Notifier;
use crate::reload::{self, Current, MainEvent};

/// How the running agent reads its config again.
pub struct Reloader {
    /// Reads and checks the config file again.
    pub load: Box<dyn Fn() -> Result<Loaded, ConfigError>>,
    /// Creates a plugin instance from its config (see [`reload::apply`]).
    pub instantiate: Box<reload::Instantiate>,
}

/// Runs until a signal; returns the shutdown report.
pub fn run(loaded: Loaded, reloader: Reloader) -> anyhow::Result<ShutdownReport> {
    // Signals are blocked into a pipe before any thread starts, so none is missed.
    let signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    let notifier = Notifier::from_env();
    // Bound before any plugin starts: a socket another agent listens on stops this one
    // before it measures anything. Dropped (the file removed) when `run` returns.
    let socket = match &loaded.general.control_socket {
        Some(path) => Some(ControlSocket::bind(
            path,
            loaded.general.control_socket_group.as_deref(),
        )?),
        None => None,
    };
    let mut current = Current {
        general: loaded.general.clone(),
        instances: loaded.instances.clone(),
    };
    let mut builder = PipelineBuilder::new();
    loaded.configure(&mut builder);
    let mut pipeline = builder.start()?;
    let plugins = Arc::new(Mutex::new(pipeline.plugin_names()));
    let (events, main_events) = std::sync::mpsc::channel::<MainEvent>();
    let socket_file = socket.map(|s| {
        s.serve(Agent {
            control: pipeline.control(),
            plugins: Arc::clone(&plugins),
            reload: events.clone(),
        })
    });
    log::info!(
        "running plugins: {}; stop with SIGINT or SIGTERM, reload the config with SIGHUP",
        pipeline.plugin_names().join(", ")
    );
    let draining = Arc::new(AtomicBool::new(false));
    let socket_path = socket_file.as_ref().map(|f| f.path().to_owned());
    watch_signals(
        signals,
        pipeline.control(),
        (draining, events.clone()),
        socket_path,
    );
    let control = pipeline.control();
    std::thread::Builder::new()
        .name("alumet-shutdown".into())
        // It only waits: a small stack keeps its resident memory small.
        .stack_size(64 * 1024)
        .spawn(move || {
            control.wait_for_shutdown_request();
            let _ = events.send(MainEvent::Shutdown);
        })
        .context("starting a thread")?;
    notifier.ready(&status_line(&pipeline.plugin_names()));
    notifier.start_watchdog(pipeline.control());
    // Start-up (and each reload) ran code that the measuring loops do not run: once the
    // agent has run a while without a request, the pages it left resident go back.
    let mut startup_pages = true;
    loop {
        let event = if startup_pages {
            match main_events.recv_timeout(crate::memory::RELEASE_AFTER) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    crate::memory::release_startup_pages_logged();
                    startup_pages = false;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match main_events.recv() {
                Ok(event) => event,
                Err(_) => break,
            }
        };
        let request = match event {
            MainEvent::Shutdown => break,
            MainEvent::Reload(request) => request,
        };
        startup_pages = true;
        notifier.reloading();
        let answer = reload_now(&mut pipeline, &mut current, &reloader, request.origin);
        let names = pipeline.plugin_names();
        *plugins.lock().unwrap_or_else(|e| e.into_inner()) = names.clone();
        notifier.ready(&status_line(&names));
        if let Some(reply) = request.reply {
            let _ = reply.send(answer);
        }
    }
    notifier.stopping();
    let report = pipeline.shutdown();
    log_report(&report);
    drop(socket_file);
    Ok(report)
}

/// systemd's one-line status.
fn status_line(plugins: &[String]) -> String {
    format!("measuring: {}", plugins.join(", "))
}

/// Reads the config again and applies it; the summary, or why it changed nothing (or
/// not everything).
fn reload_now(
    pipeline: &mut alumet::pipeline::RunningPipeline,
    current: &mut Current,
    reloader: &Reloader,
    origin: &str,
) -> Result<String, String> {
    log::info!("reload requested ({origin}): reading the config again");
    let loaded = match (reloader.load)() {
        Ok(loaded) => loaded,
        Err(e) => {
            log::error!("reload: {e}");
            log::error!("reload: the config is invalid; the agent goes on with the one it runs");
            return Err(format!("the config is invalid, nothing changed: {e}"));
        }
    };
    let outcome = reload::apply(pipeline, current, loaded, reloader.instantiate.as_ref());
    for why in &outcome.restart_needed {
        log::warn!("reload: takes effect at the next restart only: {why}");
    }
    for why in &outcome.failed {
        log::error!("reload: not applied: {why}");
    }
    let summary = outcome.summary();
    log::info!("reload: {summary}");
    if outcome.failed.is_empty() {
        Ok(summary)
    } else {
        Err(summary)
    }
}

/// SIGHUP: reload. First SIGINT or SIGTERM: drain and stop. Second: exit at once, saying
/// what was not written (and removing the control socket, whose guard a forced exit does
/// not drop).
fn watch_signals(
    mut signals: Signals,
    control: PipelineControl,
    (draining, events): (Arc<AtomicBool>, Sender<MainEvent>),
    socket: Option<std::path::PathBuf>,
) {
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGHUP {
                let request = reload::Request {
                    origin: "SIGHUP",
                    reply: None,
                };
                // Once the shutdown has begun, nobody reloads: dropped.
                let _ = events.send(MainEvent::Reload(request));
                continue;
            }
            if !draining.swap(true, Ordering::SeqCst) {
                log::info!("signal {signal} received: writing what was measured, then stopping (send it again to exit at once)");
                control.request_shutdown();
                continue;
            }
            let stats = control.output_stats_at_forced_exit();
            for o in &stats {
                log_output(o);
            }
            let lost = stats.iter().map(|s| s.failed_points).max().unwrap_or(0);
            log::error!(
                "second signal: exiting now; up to {lost} measured points were not written"
            );
            if let Some(path) = &socket {
                let _ = std::fs::remove_file(path);
            }
            std::process::exit(1);
        }
    });
}

fn log_report(report: &ShutdownReport) {
    for o in &report.outputs {
        log_output(o);
    }
    if report.timed_out {
        log::error!(
            "the outputs did not finish within the shutdown timeout: {} points were not delivered",
            report.undelivered_points
        );
    }
}

/// One line for an output's figures: an error when points were dropped or lost.
fn log_output(o: &OutputStats) {
    let level = if o.dropped_points + o.failed_points > 0 {
        log::Level::Error
    } else {
        log::Level::Info
    };
    log::log!(
        level,
        "output {}: {} points written, {} dropped (queue full), {} lost (rejected, write errors, or not delivered before the deadline)",
        o.name,
        o.written_points,
        o.dropped_points,
        o.failed_points
    );
}

/// What went wrong with an output's points, if anything (`None`: every point it was given
/// reached its destination).
pub fn output_failure(o: &OutputStats) -> Option<String> {
    let problems: Vec<String> = [
        (o.failed_points > 0).then(|| format!("{} points lost", o.failed_points)),
        (o.dropped_points > 0).then(|| {
            format!(
                "{} points dropped (its queue was full: a slow output)",
                o.dropped_points
            )
        }),
        o.finish_failed
            .then(|| "its final write failed: some points may be missing".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// The exit code of a run: 0 when every point reached every output, 1 otherwise, with a
/// last log line that says why.
pub fn exit_code(report: &ShutdownReport) -> u8 {
    let failures: Vec<String> = report
        .outputs
        .iter()
        .filter_map(|o| Some(format!("output {}: {}", o.name, output_failure(o)?)))
        .collect();
    if failures.is_empty() && !report.timed_out {
        return 0;
    }
    let mut why = failures.join("; ");
    if report.timed_out && why.is_empty() {
        why = format!(
            "{} points were not delivered before the shutdown timeout",
            report.undelivered_points
        );
    }
    log::error!("exiting with status 1: not every measured point was written ({why})");
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_failed_dropped_or_did_not_finish_is_incomplete() {
        let stats = |failed, dropped, finish_failed| alumet::pipeline::OutputStats {
            name: alumet::pipeline::ElementName::new("csv", "csv"),
            written_points: 10,
            dropped_points: dropped,
            failed_points: failed,
            queued_points: 0,
            queue_capacity: 1 << 16,
            finish_failed,
        };
        assert_eq!(output_failure(&stats(0, 0, false)), None);
        assert_eq!(
            output_failure(&stats(2, 0, false)).as_deref(),
            Some("2 points lost")
        );
        let all = output_failure(&stats(2, 3, true)).unwrap_or_default();
        assert!(all.starts_with("2 points lost, 3 points dropped (its queue was full"));
        assert!(all.ends_with("its final write failed: some points may be missing"));
    }

    #[test]
    fn a_run_that_dropped_lost_or_timed_out_exits_1() {
        let stats = |failed, dropped| OutputStats {
            name: alumet::pipeline::ElementName::new("csv", "csv"),
            written_points: 10,
            dropped_points: dropped,
            failed_points: failed,
            queued_points: 0,
            queue_capacity: 1 << 16,
            finish_failed: false,
        };
        let report = |outputs, timed_out| ShutdownReport {
            outputs,
            undelivered_points: 0,
            timed_out,
        };
        assert_eq!(exit_code(&report(vec![stats(0, 0)], false)), 0);
        assert_eq!(exit_code(&report(vec![stats(1, 0)], false)), 1);
        assert_eq!(exit_code(&report(vec![stats(0, 0), stats(0, 1)], false)), 1);
        assert_eq!(exit_code(&report(vec![stats(0, 0)], true)), 1);
    }
}
