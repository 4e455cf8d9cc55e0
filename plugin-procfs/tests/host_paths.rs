//! The host root paths of the agent's general config (`proc_root`), handed to the plugin
//! by the core: a fixture tree given only there is what procfs reads; the plugin's own
//! `procfs_root`, set elsewhere than `/proc`, wins over it.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet::plugin::HostPaths;
use alumet::test_util::PipelineTester;
use common::{by_poll, fixture, sync_tree, TempDir};
use plugin_procfs::ProcfsPlugin;

const KERNEL_ONLY: &str = r#"
kernel = { poll_interval = "1h" }
memory = { enabled = false }
processes = { enabled = false }
"#;

/// Starts procfs with `config` (TOML) and the general `proc_root`, polls it on the
/// fixture's second state, and returns the `kernel_context_switches` lines.
fn context_switches(config: &str, proc_root: &Path, tree: &Path) -> Vec<String> {
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(config).unwrap();
    tester.host_paths(HostPaths {
        proc_root: proc_root.to_owned(),
        ..HostPaths::default()
    });
    let run = tester.start().unwrap();
    sync_tree(&fixture("system/poll2"), tree);
    run.trigger("procfs/*");
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let polls = by_poll(&points, &metrics);
    polls
        .concat()
        .into_iter()
        .filter(|l| l.starts_with("kernel_context_switches"))
        .collect()
}

const SWITCHES: &str = "kernel_context_switches local_machine: local_machine: [] = 600";

#[test]
fn a_tree_given_only_as_the_general_proc_root_is_what_procfs_reads() {
    let tree = TempDir::new("general-root");
    sync_tree(&fixture("system/poll1"), tree.path());
    // No procfs_root in the plugin's table.
    let lines = context_switches(KERNEL_ONLY, tree.path(), tree.path());
    assert_eq!(lines, [SWITCHES]);
}

#[test]
fn the_plugin_procfs_root_wins_over_the_general_proc_root() {
    let tree = TempDir::new("own-root");
    sync_tree(&fixture("system/poll1"), tree.path());
    // The general key names a tree without `stat`: used, procfs would be unavailable.
    let elsewhere = TempDir::new("general-empty");
    let config = format!("procfs_root = '{}'\n{KERNEL_ONLY}", tree.path().display());
    let lines = context_switches(&config, elsewhere.path(), tree.path());
    assert_eq!(lines, [SWITCHES]);
}
