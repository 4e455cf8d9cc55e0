//! Exec and watch modes make the processes section follow the processes the agent
//! announces (enabled, strategy `"event"`), whatever the file says; run mode keeps the
//! file's choice.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestRun};
use common::{fixture, sync_tree, TempDir};
use plugin_procfs::ProcfsPlugin;

/// How the agent announces a process: exec's `ConsumerStarted`, watch's `ConsumerWatched`.
type Announce = fn(ResourceConsumer) -> Event;

/// procfs in `mode` on the first tree of the `events` fixture, with `processes` as the
/// file's `[processes]` section.
fn start(root: &TempDir, mode: RunMode, processes: &str) -> TestRun {
    sync_tree(&fixture("events/poll1"), root.path());
    let config = format!(
        "procfs_root = '{}'\nkernel.enabled = false\nmemory.enabled = false\n\
         [processes]\nrefresh_interval = '0s'\n\
         events = {{ poll_interval = '1h', flush_interval = '1h' }}\n{processes}",
        root.path().display()
    );
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(&config).unwrap();
    tester.run_mode(mode);
    tester.start().unwrap()
}

/// The names of the sources running after process 200 is announced with `announce`.
fn sources_after_announcing(run: &TestRun, announce: Announce) -> Vec<String> {
    run.control()
        .emit(&announce(ResourceConsumer::Process { pid: 200 }));
    run.control()
        .sources()
        .iter()
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn exec_and_watch_follow_the_announced_process_whatever_the_file_says() {
    let cases: [(RunMode, Announce); 2] = [
        (RunMode::Exec, Event::ConsumerStarted),
        (RunMode::Watch, Event::ConsumerWatched),
    ];
    // The watcher strategy, the section off, or left out: the announced process is
    // measured, and no watcher group runs.
    for processes in ["strategy = 'watcher'\n", "enabled = false\n", ""] {
        for (mode, announce) in cases {
            let root = TempDir::new("procfs-run-mode");
            let run = start(&root, mode, processes);
            assert!(run.control().sources().is_empty(), "{mode:?} {processes:?}");
            let sources = sources_after_announcing(&run, announce);
            assert_eq!(
                sources,
                ["procfs/process-200-99950"],
                "{mode:?} {processes:?}"
            );
            assert_eq!(run.trigger("procfs/*"), 1);
            let (_report, points) = run.shutdown();
            assert!(
                points.iter().any(|p| p.consumer.id().to_string() == "200"),
                "{mode:?} {processes:?}"
            );
        }
    }
}

#[test]
fn run_mode_keeps_the_file_s_strategy() {
    let root = TempDir::new("procfs-run-mode-run");
    // The watcher's one group (no criterion: every process) is a source; an announcement
    // adds none.
    let run = start(
        &root,
        RunMode::Run,
        "enabled = true\nstrategy = 'watcher'\n",
    );
    let sources = sources_after_announcing(&run, Event::ConsumerStarted);
    assert_eq!(sources, ["procfs/group-0"]);
    drop(run);
    // The section off: nothing at all.
    let run = start(&root, RunMode::Run, "enabled = false\nstrategy = 'event'\n");
    assert!(sources_after_announcing(&run, Event::ConsumerStarted).is_empty());
}
