//! On the real cgroup tree, as root: memory of a real cgroup (v1 `memory`, or v2 with the
//! memory controller) on the same consumer as its CPU time; and a v2 cgroup whose last
//! process exits, read at once from `cgroup.events`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use alumet::test_util::skip::{missing_root, should_run};
use common::real::{burn_if_child, sum_cpu, within_2_percent, CpuHierarchy, TestCgroups, ROOT};
use common::{lines_of, start};

/// The work of a child (see `common/real.rs`); a no-op in the normal test run.
#[test]
fn burn_child() {
    burn_if_child();
}

/// The hierarchy that accounts memory and lets the test set a limit: v1 `memory`, or v2
/// at the root with the memory controller enabled for its children.
fn memory_hierarchy() -> Option<(PathBuf, &'static str, &'static str)> {
    let root = Path::new(ROOT);
    if root.join("memory/memory.usage_in_bytes").is_file() {
        return Some((
            root.join("memory"),
            "memory.usage_in_bytes",
            "memory.limit_in_bytes",
        ));
    }
    let subtree = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
    subtree
        .split_whitespace()
        .any(|c| c == "memory")
        .then(|| (root.to_owned(), "memory.current", "memory.max"))
}

#[test]
fn memory_usage_and_limit_of_a_real_cgroup_with_its_cpu_on_one_consumer() {
    let test = "memory_usage_and_limit_of_a_real_cgroup_with_its_cpu_on_one_consumer";
    if !should_run(test, missing_root("creating cgroups")) {
        return;
    }
    let found = memory_hierarchy();
    let missing = found
        .is_none()
        .then(|| format!("no v1 memory hierarchy nor v2 memory controller under {ROOT}"));
    if !should_run(test, missing) {
        return;
    }
    let (dir, usage_file, limit_file) = found.unwrap();
    let mut memory = TestCgroups::new(dir);
    let service = memory.mkdir("system.slice/mem.service");
    std::fs::write(service.join(limit_file), "67108864").unwrap();
    // The same path in the CPU hierarchies (v1): one consumer, both figures.
    let mut cpu: Vec<TestCgroups> = CpuHierarchy::all()
        .into_iter()
        .filter(|h| matches!(h, CpuHierarchy::V1))
        .map(|h| TestCgroups::named(h.dir(), &memory.name))
        .collect();
    cpu.iter_mut().for_each(|c| {
        c.mkdir("system.slice/mem.service");
    });
    let include = format!("include = [\"/{}/system.slice/*.service\"]\n", memory.name);
    let run = start(Path::new(ROOT), &include);
    assert_eq!(run.trigger("cgroups/*"), 1);
    assert_eq!(run.trigger("cgroups/*"), 1);
    let usage: u64 = std::fs::read_to_string(service.join(usage_file))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    let lines = lines_of(&points, &metrics, &memory.path("system.slice/mem.service"));
    common::assert_has(&lines, "memory_max [unit=mem.service] = 67108864");
    common::assert_has(
        &lines,
        &format!("memory_usage [unit=mem.service] = {usage}"),
    );
    let anonymous = (lines.iter())
        .filter(|l| l.starts_with("cgroup_memory_anonymous [unit=mem.service] = "))
        .count();
    assert_eq!(anonymous, 2, "{lines:#?}");
    if !cpu.is_empty() {
        common::assert_has(&lines, "cpu_time_delta [unit=mem.service,kind=user] = 0");
    }
}

#[test]
fn a_v2_cgroup_whose_last_process_exits_gets_a_reading_at_once() {
    let test = "a_v2_cgroup_whose_last_process_exits_gets_a_reading_at_once";
    if !should_run(test, missing_root("creating cgroups")) {
        return;
    }
    let v2 = CpuHierarchy::all()
        .into_iter()
        .find(|h| matches!(h, CpuHierarchy::V2 | CpuHierarchy::Unified));
    let missing = v2
        .is_none()
        .then(|| format!("no v2 hierarchy under {ROOT} (cgroup.events)"));
    if !should_run(test, missing) {
        return;
    }
    let h = v2.unwrap();
    let mut cg = TestCgroups::new(h.dir());
    let dir = cg.mkdir("system.slice/last.service");
    let path = cg.path("system.slice/last.service");
    let include = format!("include = [\"/{}/system.slice/*.service\"]\n", cg.name);
    let run = start(Path::new(ROOT), &include);
    assert_eq!(run.trigger("cgroups/*"), 1, "the baseline");
    let before = h.total_ns(&dir);
    cg.burn_in(&dir, 300);
    let counter_ms = (h.total_ns(&dir) - before) / 1_000_000;
    // No trigger from the test: the polls are an hour apart, the reading comes from the
    // plugin seeing `populated 0` in cgroup.events. Wait for it (up to a minute).
    let metrics = run.metrics().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut measured = 0;
    while measured == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        measured = sum_cpu(&lines_of(&run.collected().points(), &metrics, &path));
    }
    let (_report, points) = run.shutdown();
    let lines = lines_of(&points, &metrics, &path);
    eprintln!("{h:?} {path}: last reading {measured} ms, the cgroup's counter {counter_ms} ms");
    assert!(
        counter_ms >= 250,
        "the cgroup's counter grew by {counter_ms} ms only"
    );
    assert!(
        within_2_percent(sum_cpu(&lines), counter_ms),
        "the plugin says {} ms, the cgroup's counter {counter_ms} ms: {lines:#?}",
        sum_cpu(&lines)
    );
}
