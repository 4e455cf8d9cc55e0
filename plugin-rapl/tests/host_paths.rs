//! The host root paths of the agent's general config (`sys_root`), handed to the plugin by
//! the core: a fixture tree given only there is what rapl reads; the plugin's own
//! `sysfs_root`, set elsewhere than `/sys`, wins over it.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet::plugin::HostPaths;
use alumet::test_util::PipelineTester;
use common::*;
use plugin_rapl::RaplPlugin;

/// Starts rapl with `config` (TOML) and the general `sys_root`, polls twice around one
/// joule on package 0, and returns that package's energy in the second poll.
fn package_energy(config: &str, sys_root: &Path, f: &Fixture) -> Option<f64> {
    f.set("intel-rapl:0", 1_000_000_000);
    capture_logs();
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<RaplPlugin>(config).unwrap();
    tester.host_paths(HostPaths {
        sys_root: sys_root.to_owned(),
        ..HostPaths::default()
    });
    let run = tester.start().unwrap();
    poll(&run);
    f.set("intel-rapl:0", 1_001_000_000);
    poll(&run);
    let (_, points) = run.shutdown();
    per_poll(&points)
        .last()
        .and_then(|p| p.get(&key("cpu_package", "0", "package")).copied())
}

#[test]
fn a_tree_given_only_as_the_general_sys_root_is_what_rapl_reads() {
    let f = Fixture::copy("intel-server-2s", "general-root");
    // No sysfs_root in the plugin's table.
    let config = "poll_interval = '1h'\nno_perf_events = true\n";
    assert_eq!(package_energy(config, f.root(), &f), Some(1.0));
}

#[test]
fn the_plugin_sysfs_root_wins_over_the_general_sys_root() {
    let f = Fixture::copy("intel-server-2s", "own-root");
    // The general key names a tree without RAPL: used, rapl would be unavailable.
    let empty = alumet::test_util::TempDir::new("rapl-general-empty");
    assert_eq!(package_energy(&f.config(), empty.path(), &f), Some(1.0));
}
