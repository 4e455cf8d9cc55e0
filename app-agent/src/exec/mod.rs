//! Exec and watch modes: measure one command (or one running process) from just before
//! it starts to just after it ends, then print a summary.
//!
//! Sequence of one run: trigger every source (baseline readings), spawn, announce the
//! consumer, wait for the exit without reaping (starting the sources' threads if the
//! command outlives their first periodic poll), trigger every source again (final
//! readings, while the process is still a zombie with its counters), announce the end,
//! reap. Energy counters read at both ends give the run's energy up to their resolution,
//! whatever the sources' intervals. A watch announces the process first (it is already
//! running), so that per-process sources take their baseline with the other readings,
//! before the summary's window opens, and count only what it uses while watched. A watch
//! of a cgroup (`--cgroup`) announces the cgroup (the cgroups plugin then measures it
//! alone), takes a reading when its last process exits (its counters are final), and ends
//! when it is removed.

mod aggregator;
pub mod cgroup;
pub mod child;
mod signals;
pub mod summary;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alumet::measurement::{ResourceConsumer, Timestamp};
use alumet::pipeline::{Event, PipelineBuilder, PipelineControl, PluginControl, RunningPipeline};
use alumet::plugin::{AnyPlugin, Registrar, RunMode};
use anyhow::Context;

use crate::config::Loaded;
use aggregator::{Aggregator, Window};
use summary::{figures, Run, Summary, SummaryFile};

/// What to measure.
#[derive(Debug, Clone)]
pub enum Target {
    /// A command to start, `-r` times.
    Command {
        /// The program (looked up on PATH).
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
    },
    /// A running process, until it exits.
    Pid(u32),
    /// A cgroup, until it is removed: its path from the cgroup root, or its directory.
    Cgroup(PathBuf),
}

/// What is watched, identified before the pipeline starts.
enum Watched {
    Process(child::Watched),
    Cgroup(cgroup::WatchedCgroup),
}

/// Options of exec and watch.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// What to measure.
    pub target: Target,
    /// Exit 0 whatever the command's exit code.
    pub ignore_exit_code: bool,
    /// Print the summary on stderr.
    pub summary: bool,
    /// Also write the summary as JSON here.
    pub summary_json: Option<PathBuf>,
    /// Write the run's HTML report here at the end.
    pub report: Option<PathBuf>,
    /// How many times to run the command.
    pub repeat: u32,
    /// Where procfs is mounted (to follow a watched process).
    pub proc_root: PathBuf,
}

/// The internal plugin that adds the summary's aggregator as the last transform.
struct ExecPlugin(Aggregator);

impl AnyPlugin for ExecPlugin {
    fn name(&self) -> &str {
        "exec"
    }
    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        alumet.add_transform("summary", self.0.transform())?;
        Ok(())
    }
    fn post_start(&mut self, _control: &PluginControl) -> anyhow::Result<()> {
        Ok(())
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Runs exec or watch; returns the exit code for the agent.
pub fn exec(loaded: Loaded, opts: &ExecOptions) -> anyhow::Result<i32> {
    signals::install().context("installing signal handlers")?;
    let watched = match &opts.target {
        Target::Pid(pid) => Some(Watched::Process(watch(*pid, opts)?)),
        Target::Cgroup(path) => {
            let root = &loaded.general.cgroup_root;
            let found = cgroup::WatchedCgroup::open(path, root)?;
            let measured = (loaded.plugins.iter()).any(|p| p.plugin_name() == "cgroups");
            anyhow::ensure!(
                measured,
                crate::config::ConfigError(
                    "watch --cgroup needs the cgroups plugin, which --plugins leaves out: add `cgroups` to --plugins".into()
                )
            );
            Some(Watched::Cgroup(found))
        }
        Target::Command { .. } => None,
    };
    let summary_file = create_summary_file(opts)?;
    let report = (opts.report.clone())
        .map(|path| crate::report::RunReport::new(path, &loaded))
        .transpose()?;
    let aggregator = Aggregator::default();
    let mut builder = PipelineBuilder::new();
    // Per-process sources (procfs, nvidia) follow the processes announced below.
    builder.run_mode(match opts.target {
        Target::Command { .. } => RunMode::Exec,
        Target::Pid(_) | Target::Cgroup(_) => RunMode::Watch,
    });
    // The sources' threads start while the command runs (their start is not on the path
    // from the agent's start to the command's): the readings around it are taken here.
    builder.defer_source_threads();
    // Counters give no point at their first reading, and the attribution cannot split a
    // first point (its interval has no known start): with it, a second baseline reading
    // makes the command's interval the second one.
    let two_baselines = (loaded.plugins.iter()).any(|p| p.plugin_name() == "attribution");
    loaded.configure(&mut builder);
    builder.plugin(Box::new(ExecPlugin(aggregator.clone())));
    let mut pipeline = builder.start()?;
    log::info!(
        "running plugins: {}; measuring {}",
        pipeline.plugin_names().join(", "),
        describe(&opts.target, watched.as_ref())
    );
    let mut runs = Vec::new();
    let mut codes = Codes::default();
    for i in 0..opts.repeat.max(1) {
        if i > 0 && signals::received().is_some() {
            break;
        }
        match one_run(
            &pipeline,
            &aggregator,
            opts,
            watched.as_ref(),
            two_baselines,
        ) {
            Ok(run) => {
                let run_code = run.ended.map_or(0, |e| e.code);
                if run_code != 0 && opts.repeat > 1 {
                    log::warn!("run {} of {} exited with {run_code}", i + 1, opts.repeat);
                }
                codes.ran(run_code);
                runs.push(run);
            }
            Err(RunError::Spawn(e)) if runs.is_empty() => {
                log::error!("{e}");
                pipeline.shutdown();
                return Ok(e.code);
            }
            // A later run that cannot start (the program was removed, say) ends the
            // repeats; the runs made are summed up.
            Err(RunError::Spawn(e)) => {
                log::error!("run {} of {}: {e}", i + 1, opts.repeat);
                codes.not_started(e.code);
                break;
            }
            Err(RunError::Other(e)) => {
                pipeline.shutdown();
                return Err(e);
            }
        }
    }
    let code = codes.first_failure;
    let finished = finish(
        &mut pipeline,
        &aggregator,
        (opts, watched.as_ref()),
        (summary_file, report.as_ref()),
        &mut runs,
        code,
    )?;
    // A watch ends on a signal by design (exit 0): only a command's run is interrupted.
    let interrupted = match opts.target {
        Target::Command { .. } => signals::received(),
        Target::Pid(_) | Target::Cgroup(_) => None,
    };
    Ok(codes.agent(finished, opts.ignore_exit_code, interrupted))
}

/// The exit codes of the runs of `-r N`.
#[derive(Default)]
struct Codes {
    /// The first failed run's code (0: none failed): a later success does not hide it.
    first_failure: i32,
    /// The code of a run that could not start (127, 126): not the command's own, so
    /// `--ignore-exit-code` does not hide it.
    not_started: Option<i32>,
}

impl Codes {
    fn ran(&mut self, code: i32) {
        if self.first_failure == 0 {
            self.first_failure = code;
        }
    }

    fn not_started(&mut self, code: i32) {
        self.ran(code);
        self.not_started = Some(code);
    }

    /// The agent's exit code, from `finished`, what [`finish`] made of the runs' codes.
    /// `--ignore-exit-code` hides the command's own codes only: not a run that could not
    /// start, nor a measurement stopped by signal `interrupted` to the agent (a timeout,
    /// Ctrl-C), which is not a success.
    fn agent(&self, finished: i32, ignore_exit_code: bool, interrupted: Option<i32>) -> i32 {
        match (self.not_started, interrupted) {
            _ if !ignore_exit_code || finished != 0 => finished,
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => finished,
        }
    }
}

/// Identifies the process to watch, before anything starts.
fn watch(pid: u32, opts: &ExecOptions) -> anyhow::Result<child::Watched> {
    anyhow::ensure!(
        pid != std::process::id(),
        "pid {pid} is the agent itself, which would wait for its own end: give the pid of \
         the process to measure"
    );
    let watched = child::Watched::open(pid, &opts.proc_root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("no process with pid {pid}: check the pid (`ps -p {pid}`)")
        }
        _ => anyhow::anyhow!("watching pid {pid}: {e}"),
    })?;
    anyhow::ensure!(
        !watched.is_zombie(),
        "pid {pid} has already exited (a zombie that its parent has not reaped yet): there is \
         nothing left to measure"
    );
    Ok(watched)
}

/// Creates the `--summary-json` file, if any, before anything runs.
fn create_summary_file(opts: &ExecOptions) -> anyhow::Result<Option<SummaryFile<'_>>> {
    let Some(path) = &opts.summary_json else {
        return Ok(None);
    };
    let file = SummaryFile::create(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::InvalidData => "",
            _ => ": give a path in an existing, writable directory",
        };
        anyhow::anyhow!(
            "cannot create the summary file {} (--summary-json): {e}{hint}",
            path.display()
        )
    })?;
    Ok(Some(file))
}

enum RunError {
    Spawn(child::SpawnError),
    Other(anyhow::Error),
}

fn one_run(
    pipeline: &RunningPipeline,
    aggregator: &Aggregator,
    opts: &ExecOptions,
    watched: Option<&Watched>,
    two_baselines: bool,
) -> Result<Run, RunError> {
    let control = pipeline.control();
    // Announced before the readings that open the window: a per-consumer source takes its
    // first reading of the process or cgroup (what it used before the watch) there,
    // outside the window.
    match watched {
        Some(Watched::Process(_)) => {
            if let Target::Pid(pid) = opts.target {
                control.emit(&Event::ConsumerWatched(ResourceConsumer::Process { pid }));
            }
        }
        Some(Watched::Cgroup(cg)) => {
            control.emit(&Event::ConsumerWatched(cg.consumer()));
        }
        None => {}
    }
    poll_all(&control);
    if two_baselines {
        // Both before the window.
        poll_all(&control);
    }
    aggregator.open(Timestamp::now());
    if let Some(Watched::Cgroup(cg)) = watched {
        log::info!(
            "watching cgroup {}: measured from now until it is removed",
            cg.path
        );
    }
    let start = Instant::now();
    // The process whose end is awaited (none for a cgroup).
    let pid = match &opts.target {
        Target::Command { program, args } => {
            // On this thread, which spawns it: what the command will inherit opens now.
            control.emit(&Event::CommandStarting);
            let pid = child::spawn(program, args).map_err(RunError::Spawn)?;
            signals::measure(pid);
            control.emit(&Event::ConsumerStarted(ResourceConsumer::Process { pid }));
            Some(pid)
        }
        // Not ours: signals to the agent end the watch, and are not sent on to it.
        Target::Pid(pid) => {
            start_source_threads(pipeline);
            Some(*pid)
        }
        Target::Cgroup(_) => {
            start_source_threads(pipeline);
            None
        }
    };
    let (wall, ended, consumer) = match (watched, pid) {
        (Some(Watched::Cgroup(cg)), _) => (cgroup::wait(pipeline, cg, start)?, None, cg.consumer()),
        (w, Some(pid)) => {
            let process = match w {
                Some(Watched::Process(p)) => Some(p),
                _ => None,
            };
            let (wall, ended) = wait_end(pipeline, process, pid, start)?;
            (wall, ended, ResourceConsumer::Process { pid })
        }
        (_, None) => {
            let e = anyhow::anyhow!("internal error: nothing to wait for");
            return Err(RunError::Other(e));
        }
    };
    aggregator.close(Timestamp::now());
    if let Some(pid) = pid {
        signals::log_forwarded(pid);
    }
    control.emit(&Event::ConsumerEnded(consumer));
    Ok(Run {
        wall,
        ended,
        window: Window::default(),
    })
}

/// Waits for the command to exit; if it runs longer than [`crate::memory::RELEASE_AFTER`],
/// gives back the pages only start-up used meanwhile.
fn wait_exit_releasing(pid: u32, start: Instant) -> std::io::Result<()> {
    match child::wait_exit_until(pid, start + crate::memory::RELEASE_AFTER) {
        Ok(true) => return Ok(()),
        Ok(false) => crate::memory::release_startup_pages_logged(),
        // Waiting without the release still works.
        Err(e) => log::debug!("waiting for the command until the release of start-up pages: {e}"),
    }
    child::wait_exit(pid)
}

/// Waits for the end of the command (or of the watch, when `watched`), then takes the
/// final readings; returns the wall time and, for a command, how it ended.
fn wait_end(
    pipeline: &RunningPipeline,
    watched: Option<&child::Watched>,
    pid: u32,
    start: Instant,
) -> Result<(Duration, Option<child::Ended>), RunError> {
    let control = pipeline.control();
    let Some(watched) = watched else {
        // The sources' threads start only if the command is still running at their first
        // periodic poll (one interval after the pipeline started): a shorter command is
        // measured by the readings before and after it alone, and ends without a thread
        // to stop (0.18 ms of `exec -- true`, docs/performance.md).
        // (Or until the start-up pages are given back, if that comes first.)
        let release_at = start + crate::memory::RELEASE_AFTER;
        let exited_early = pipeline.next_deferred_poll().is_some_and(|due| {
            let exited = child::wait_exit_until(pid, due.min(release_at)).unwrap_or_else(|e| {
                log::debug!("waiting for the command until the first poll: {e}");
                false
            });
            if !exited {
                start_source_threads(pipeline);
            }
            exited
        });
        let exited = if exited_early {
            Ok(())
        } else {
            wait_exit_releasing(pid, start)
        };
        let wall = start.elapsed();
        poll_all(&control);
        signals::unmeasure();
        let ended = exited
            .and_then(|()| child::wait(pid))
            .map_err(|e| RunError::Other(anyhow::anyhow!("waiting for the command: {e}")))?;
        return Ok((wall, Some(ended)));
    };
    let release = crate::memory::ReleaseOnce::after(start);
    let exited = watched
        .wait(|| {
            release.check();
            signals::received().is_some()
        })
        .map_err(|e| RunError::Other(anyhow::anyhow!("watching pid {pid}: {e}")))?;
    let wall = start.elapsed();
    poll_all(&control);
    if let (false, Some(signal)) = (exited, signals::received()) {
        log::info!("signal {signal} received: stopped watching pid {pid}, which goes on running");
    }
    Ok((wall, None))
}

/// Takes a reading of every source now, and waits for it (see `PipelineControl::poll_now`).
fn poll_all(control: &PipelineControl) {
    if let Err(e) = control.poll_now(alumet::pipeline::Selector::all()) {
        log::warn!("a reading of the sources was not taken: {e}");
    }
}

fn start_source_threads(pipeline: &RunningPipeline) {
    if let Err(e) = pipeline.start_source_threads() {
        log::error!(
            "the sources' threads could not start ({e}): only the readings at the start and the end of the command are taken"
        );
    }
}

fn finish(
    pipeline: &mut RunningPipeline,
    aggregator: &Aggregator,
    (opts, watched): (&ExecOptions, Option<&Watched>),
    (summary_file, run_report): (Option<SummaryFile<'_>>, Option<&crate::report::RunReport>),
    runs: &mut [Run],
    code: i32,
) -> anyhow::Result<i32> {
    let report = pipeline.shutdown();
    for (run, window) in runs.iter_mut().zip(aggregator.windows()) {
        run.window = window;
    }
    let summary = Summary {
        command: describe(&opts.target, watched),
        runs: runs.len(),
        exit_code: code,
        run_exit_codes: runs
            .iter()
            .filter_map(|r| r.ended.map(|e| e.code))
            .collect(),
        figures: figures(runs),
        points_written: report
            .outputs
            .iter()
            .map(|o| (o.name.to_string(), o.written_points))
            .collect(),
        output_failures: report
            .outputs
            .iter()
            .filter_map(|o| Some((o.name.to_string(), crate::run::output_failure(o)?)))
            .collect(),
    };
    if opts.summary {
        // Not eprint!, which panics when stderr is gone (a terminal hung up): the
        // figures are also in the JSON file and the outputs.
        let _ = std::io::stderr().write_all(summary.render().as_bytes());
    }
    // Measured data that did not reach an output is the agent's failure.
    let mut failed = !summary.output_failures.is_empty();
    if let Some(file) = summary_file {
        let path = file.path().to_owned();
        if let Err(e) = file.write(&summary) {
            log::error!("writing the summary to {}: {e}", path.display());
            failed = true;
        }
    }
    if let Some(run_report) = run_report {
        if let Err(e) = run_report.write(&summary) {
            log::error!("writing the report {}: {e:#}", run_report.path.display());
            failed = true;
        }
    }
    if report.timed_out {
        log::error!(
            "{} measured points could not be written before the shutdown timeout",
            report.undelivered_points
        );
        failed = true;
    }
    let child_code = if opts.ignore_exit_code { 0 } else { code };
    // The agent's own failure never turns a failed command into a success, nor hides
    // the command's own code.
    Ok(if failed && child_code == 0 {
        1
    } else {
        child_code
    })
}

fn describe(target: &Target, watched: Option<&Watched>) -> String {
    if let Some(Watched::Cgroup(cg)) = watched {
        return format!("cgroup {}", cg.path);
    }
    match target {
        Target::Command { program, args } => std::iter::once(program)
            .chain(args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        Target::Pid(pid) => format!("pid {pid}"),
        Target::Cgroup(path) => format!("cgroup {}", path.display()),
    }
}
