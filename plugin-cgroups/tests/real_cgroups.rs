//! On the real cgroup tree, as root, in every hierarchy that accounts CPU time (v1
//! `cpuacct`, v2 at the root, hybrid's `unified`): a CPU-burning child in cgroups of three
//! layouts, whose `cpu_time_delta` must add up to the cgroup's own counter within 2%, with
//! the resolvers' attributes; and a cgroup created while the plugin runs, measured at once
//! from its creation, then removed cleanly.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet::test_util::logs;
use common::real::{
    burn_if_child, setup, sum_cpu, within_2_percent, CpuHierarchy, TestCgroups, ROOT,
};
use common::{lines_of, start, wait_source};

/// The work of a child (see `common/real.rs`); a no-op in the normal test run.
#[test]
fn burn_child() {
    burn_if_child();
}

const POD: &str = "kubepods/burstable/pod1f2e3d4c-0000-4000-8000-00000000beef/c0ffee123456";
const SERVICE: &str = "system.slice/alumet-burn.service";
const STEP: &str = "slurm/uid_0/job_4242/step_0";

#[test]
fn cpu_time_of_a_child_in_each_layout_matches_the_cgroup_counter_within_2_percent() {
    let test = "cpu_time_of_a_child_in_each_layout_matches_the_cgroup_counter_within_2_percent";
    for h in setup(test) {
        cpu_time_matches(h);
    }
}

fn cpu_time_matches(h: CpuHierarchy) {
    logs::capture();
    let mut cg = TestCgroups::new(h.dir());
    let dirs = [POD, SERVICE, STEP].map(|rel| cg.mkdir(rel));
    let include = format!(
        "include = [\"/{0}/kubepods/*/pod*/*\", \"/{0}/system.slice/*.service\", \"/{0}/slurm/uid_*/job_*/step_*\"]\n",
        cg.name
    );
    let run = start(Path::new(ROOT), &include);
    assert_eq!(run.trigger("cgroups/*"), 3, "one source per test cgroup");
    let before = dirs.clone().map(|d| h.total_ns(&d));
    for d in &dirs {
        cg.burn_in(d, 300);
    }
    let after = dirs.clone().map(|d| h.total_ns(&d));
    assert_eq!(run.trigger("cgroups/*"), 3);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    for (i, rel) in [POD, SERVICE, STEP].iter().enumerate() {
        let lines = lines_of(&points, &metrics, &cg.path(rel));
        let counter_ms = (after[i] - before[i]) / 1_000_000;
        assert!(
            counter_ms >= 250,
            "{h:?} {rel}: the cgroup's counter grew by {counter_ms} ms only"
        );
        let measured = sum_cpu(&lines);
        eprintln!(
            "{h:?} {rel}: the plugin says {measured} ms, the cgroup's counter {counter_ms} ms"
        );
        assert!(within_2_percent(measured, counter_ms), "{rel}: the plugin says {measured} ms, the cgroup's counter {counter_ms} ms: {lines:#?}");
    }
    let first = |rel: &str| {
        lines_of(&points, &metrics, &cg.path(rel))
            .into_iter()
            .find(|l| l.starts_with("cpu_time_delta"))
            .unwrap()
    };
    assert!(first(POD).starts_with("cpu_time_delta [uid=1f2e3d4c-0000-4000-8000-00000000beef,qos=burstable,container=c0ffee123456,kind="), "{}", first(POD));
    assert!(
        first(SERVICE).starts_with("cpu_time_delta [unit=alumet-burn.service,kind="),
        "{}",
        first(SERVICE)
    );
    assert!(
        first(STEP).starts_with("cpu_time_delta [job_id=4242,step=0,user_id=0,kind="),
        "{}",
        first(STEP)
    );
    assert!(
        logs::lines_with(&cg.name).is_empty(),
        "{:#?}",
        logs::lines_with(&cg.name)
    );
}

#[test]
fn a_cgroup_created_while_running_is_measured_from_its_creation_and_ends_cleanly() {
    let test = "a_cgroup_created_while_running_is_measured_from_its_creation_and_ends_cleanly";
    for h in setup(test) {
        follows_a_new_cgroup(h);
    }
}

fn follows_a_new_cgroup(h: CpuHierarchy) {
    logs::capture();
    let mut cg = TestCgroups::new(h.dir());
    cg.mkdir("system.slice");
    let include = format!("include = [\"/{}/system.slice/*.service\"]\n", cg.name);
    let run = start(Path::new(ROOT), &include);
    let control = run.control();
    assert_eq!(run.trigger("cgroups/*"), 0, "nothing to measure yet");

    let late = cg.mkdir("system.slice/late.service");
    let path = cg.path("system.slice/late.service");
    assert!(wait_source(&control, &path, true), "no source for {path}");
    cg.burn_in(&late, 300);
    let counter_ms = h.total_ns(&late) / 1_000_000;
    run.trigger("cgroups/*");
    cg.rmdir(&late);
    assert!(
        !wait_source(&control, &path, false),
        "the source of {path} is still there after its removal"
    );
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    // Counted from its creation: the sum of the deltas is the whole counter.
    let lines = lines_of(&points, &metrics, &path);
    let measured = sum_cpu(&lines);
    eprintln!("{h:?} {path}: the plugin says {measured} ms, the cgroup's counter {counter_ms} ms");
    assert!(
        counter_ms >= 250,
        "{h:?}: the cgroup's counter is {counter_ms} ms only"
    );
    assert!(
        within_2_percent(measured, counter_ms),
        "the plugin says {measured} ms, the cgroup's counter {counter_ms} ms: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| l.contains("unit=late.service")),
        "{lines:#?}"
    );
    // No error nor warning about it: the removal is not a failure.
    assert!(
        logs::lines_with(&cg.name).is_empty(),
        "{:#?}",
        logs::lines_with(&cg.name)
    );
}
