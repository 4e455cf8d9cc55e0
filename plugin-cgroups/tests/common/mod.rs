//! Helpers of the integration tests: fixture trees, the plugin in a pipeline, points as
//! one line each.
#![allow(dead_code, clippy::unwrap_used)]

pub mod https;
pub mod real;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alumet::pipeline::PipelineControl;
use alumet::test_util::{attributes_text, PipelineTester, TempDir, TestRun};
use plugin_cgroups::CgroupsPlugin;

use alumet::measurement::MeasurementPoint;
use alumet::metrics::MetricRegistry;

/// A fixture tree, `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The plugin's config for a test: polled only when the test triggers it, never rescanned
/// by the timer, on `root`, with `extra` TOML lines.
pub fn config(root: &Path, extra: &str) -> String {
    format!(
        "cgroup_root = {:?}\npoll_interval = \"1h\"\nflush_interval = \"1h\"\nrescan_interval = \"1h\"\n{extra}",
        root.display().to_string()
    )
}

/// `metric [attrs] = value` for each point of `consumer` (a cgroup path), sorted.
pub fn lines_of(
    points: &[MeasurementPoint],
    metrics: &MetricRegistry,
    consumer: &str,
) -> Vec<String> {
    let mut out: Vec<String> = points
        .iter()
        .filter(|p| p.consumer.kind() == "cgroup" && p.consumer.id().to_string() == consumer)
        .map(|p| {
            let name = &metrics.get(p.metric).unwrap().name;
            format!("{name} [{}] = {}", attributes_text(p), p.value)
        })
        .collect();
    out.sort();
    out
}

/// The cgroup paths that have points, sorted, each once.
pub fn consumers(points: &[MeasurementPoint]) -> Vec<String> {
    let mut out: Vec<String> = (points.iter())
        .filter(|p| p.consumer.kind() == "cgroup")
        .map(|p| p.consumer.id().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Rewrites `file` under `root` in place (same inode, as a kernel file that stays open).
pub fn rewrite(root: &Path, file: &str, text: &str) {
    std::fs::write(root.join(file), text).unwrap();
}

/// Fails, showing `lines`, unless `lines` holds `line`.
#[track_caller]
pub fn assert_has(lines: &[String], line: &str) {
    assert!(lines.iter().any(|l| l == line), "no `{line}` in {lines:#?}");
}

/// Whether the plugin has the source of the cgroup at `path`, waiting (up to a minute, on
/// a loaded machine) until it is `want`.
pub fn wait_source(control: &PipelineControl, path: &str, want: bool) -> bool {
    let full = format!("cgroups/{}", plugin_cgroups::source_name(path));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let has = control.sources().iter().any(|(n, _)| n.to_string() == full);
        if has == want || Instant::now() > deadline {
            return has;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The plugin in a pipeline on `root` (see [`config`]).
pub fn start(root: &Path, extra: &str) -> TestRun {
    let mut tester = PipelineTester::new();
    tester
        .plugin_toml::<CgroupsPlugin>(&config(root, extra))
        .unwrap();
    tester.start().unwrap()
}

/// The plugin in a pipeline on a copy of the fixture `case` (the copy is returned: the
/// test changes it).
pub fn start_on_copy(case: &str, extra: &str) -> (TempDir, TestRun) {
    let tree = TempDir::copy_of(&fixture(case), &format!("cgroups-{case}"));
    let run = start(tree.path(), extra);
    (tree, run)
}

/// Moves a new cgroup directory into place at `rel` under `tree` (a fixture cannot be
/// created atomically: it is written in `staging` first), with `cpu.stat` holding
/// `cpu_stat` and 4096 bytes of memory.
pub fn move_in_cgroup(tree: &Path, staging: &Path, rel: &str, cpu_stat: &str) {
    let name = rel.rsplit('/').next().unwrap();
    let new = staging.join(name);
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(new.join("cpu.stat"), cpu_stat).unwrap();
    std::fs::write(new.join("memory.current"), "4096\n").unwrap();
    std::fs::rename(&new, tree.join(rel)).unwrap();
}
