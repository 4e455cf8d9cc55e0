//! CPU energy split over cgroups (`consumers = "cgroup"`): nested cgroups counted once,
//! processes left out, and the parts adding up to the measured energy; and the default
//! (`"auto"`, processes in `run`) leaving cgroups out.

mod common;

use std::collections::BTreeMap;

use alumet::plugin::RunMode;
use alumet::prelude::MeasurementPoint;
use common::{cgroup, close, Harness};
use plugin_attribution::{Attribution, Config, Consumers};

const TOL: f64 = 1e-9;

fn config(consumers: Consumers) -> Config {
    Config {
        consumers,
        idle_power: BTreeMap::from([("package".to_owned(), 2.0)]),
        ..Config::default()
    }
}

/// The readings at 0, whose periods are unknown: `energy`, the machine's CPU time, and
/// the cgroups at `paths`.
fn origins(h: &mut Harness, energy: MeasurementPoint, paths: &[&str]) {
    let i = h.inputs;
    let mut at0 = vec![energy];
    at0.extend(i.kernel(0, 0, 4000));
    for path in paths {
        at0.extend(i.cgroup(0, path, 0, 0));
    }
    h.feed(at0);
}

/// A pod with two measured containers, a service, and a process, at 0 and 1 s; RAPL
/// measures 10 J over (0, 1 s], the machine was busy 800 ms.
fn pod_service_and_process(h: &mut Harness) -> common::Out {
    let i = h.inputs;
    let mut at0 = vec![i.rapl(0, "package", 1.0)];
    at0.extend(i.kernel(0, 0, 4000));
    at0.extend(i.proc(0, 10, 0, 0));
    for path in ["/pod", "/pod/a", "/pod/b", "/svc"] {
        at0.extend(i.cgroup(0, path, 0, 0));
    }
    h.feed(at0);
    let mut at1 = vec![i.rapl(1000, "package", 10.0)];
    at1.extend(i.kernel(1000, 800, 4000));
    // The process (400 ms) runs in some cgroup: with cgroups chosen it gets nothing.
    at1.extend(i.proc(1000, 10, 300, 100));
    // The pod's 300 ms include its containers' 100 and 150: 50 ms of its own.
    at1.extend(i.cgroup(1000, "/pod", 200, 100));
    at1.extend(i.cgroup(1000, "/pod/a", 100, 0));
    at1.extend(i.cgroup(1000, "/pod/b", 100, 50));
    at1.extend(i.cgroup(1000, "/svc", 60, 40));
    h.feed(at1)
}

#[test]
fn only_the_deepest_cgroups_get_energy_and_a_parents_own_time_is_unattributed() {
    let mut h = Harness::new(config(Consumers::Cgroup));
    let out = pod_service_and_process(&mut h);
    assert_eq!(out.intervals(), [1000]);
    // 2 J idle; 8 J over 800 ms of busy time: 0.01 J per ms.
    close(out.idle("package"), 2.0, TOL);
    close(out.attributed(&cgroup("/pod/a"), "package"), 1.0, TOL);
    close(out.attributed(&cgroup("/pod/b"), "package"), 1.5, TOL);
    close(out.attributed(&cgroup("/svc"), "package"), 1.0, TOL);
    close(out.attributed(&cgroup("/pod"), "package"), 0.0, TOL);
    close(out.unattributed("package", "parent_cgroup"), 0.5, TOL);
    // 800 - (100 + 150 + 100 + 50) ms: busy time of no measured cgroup.
    close(out.unattributed("package", "untracked"), 4.0, TOL);
    close(out.process(10, "package"), 0.0, TOL);
    assert!(out.max_imbalance() <= TOL);
    close(out.total("package"), 10.0, TOL);
    let consumers: Vec<String> = (out.points.iter())
        .filter(|p| p.metric == h.outputs.attributed.raw())
        .map(|p| format!("{}:{}", p.consumer.kind(), p.consumer.id()))
        .collect();
    assert_eq!(consumers.len(), 3, "{consumers:?}");
    assert!(
        consumers.iter().all(|c| c.starts_with("cgroup:")),
        "{consumers:?}"
    );
}

#[test]
fn by_default_processes_get_the_energy_in_run_mode_and_cgroups_are_left_out() {
    let mut h = Harness::new(config(Consumers::Auto));
    let out = pod_service_and_process(&mut h);
    close(out.process(10, "package"), 4.0, TOL);
    close(out.attributed(&cgroup("/pod/a"), "package"), 0.0, TOL);
    close(out.unattributed("package", "untracked"), 4.0, TOL);
    close(out.unattributed("package", "parent_cgroup"), 0.0, TOL);
    assert!(out.max_imbalance() <= TOL);
    let mut h = Harness::new(config(Consumers::Process));
    close(
        pod_service_and_process(&mut h).process(10, "package"),
        4.0,
        TOL,
    );
}

#[test]
fn children_that_used_more_than_their_parent_never_give_more_than_the_energy() {
    // Interpolation or rounding can make the children's sum exceed the parent's: the
    // parent adds nothing, and the parts still add up.
    let mut h = Harness::new(config(Consumers::Cgroup));
    let i = h.inputs;
    origins(
        &mut h,
        i.rapl(0, "package", 1.0),
        &["/job", "/job/step_0", "/job/step_1"],
    );
    let mut at1 = vec![i.rapl(1000, "package", 6.0)];
    at1.extend(i.kernel(1000, 500, 4000));
    at1.extend(i.cgroup(1000, "/job", 500, 0));
    at1.extend(i.cgroup(1000, "/job/step_0", 300, 0));
    at1.extend(i.cgroup(1000, "/job/step_1", 300, 0));
    let out = h.feed(at1);
    // D = max(500, 600): 4 J of active energy over 600 ms.
    close(out.attributed(&cgroup("/job/step_0"), "package"), 2.0, TOL);
    close(out.attributed(&cgroup("/job/step_1"), "package"), 2.0, TOL);
    close(out.unattributed("package", "parent_cgroup"), 0.0, TOL);
    close(out.unattributed("package", "untracked"), 0.0, TOL);
    close(out.total("package"), 6.0, TOL);
    assert!(out.max_imbalance() <= TOL);
}

#[test]
fn in_watch_mode_auto_takes_the_announced_cgroup() {
    let mut h = Harness::new(config(Consumers::Auto));
    h.attribution = Attribution::with_run_mode(config(Consumers::Auto), h.outputs, RunMode::Watch);
    let i = h.inputs;
    let mut at0 = vec![i.rapl(0, "package", 1.0)];
    at0.extend(i.kernel(0, 0, 4000));
    at0.extend(i.cgroup(0, "/watched", 0, 0));
    h.feed(at0);
    let mut at1 = vec![i.rapl(1000, "package", 4.0)];
    at1.extend(i.kernel(1000, 200, 4000));
    at1.extend(i.cgroup(1000, "/watched", 100, 0));
    let out = h.feed(at1);
    close(out.attributed(&cgroup("/watched"), "package"), 1.0, TOL);
    close(out.unattributed("package", "untracked"), 1.0, TOL);
    assert!(out.max_imbalance() <= TOL);
}

#[test]
fn energy_that_arrives_after_the_cpu_time_still_finds_it() {
    // RAPL flushes every 5 s, the cgroups every poll: the cgroups' usage since the
    // watermark is kept for the energy readings that have not arrived yet.
    let mut h = Harness::new(config(Consumers::Cgroup));
    let i = h.inputs;
    let mut energy = Vec::new();
    for k in 0..=10u64 {
        let t = k * 100;
        let mut points = i.kernel(t, 50, 200);
        points.extend(i.cgroup(t, "/job", 40, 0));
        h.feed(points);
        h.tick(Some(0));
        energy.push(i.rapl(t, "package", if k == 0 { 1.0 } else { 0.5 }));
    }
    let out = h.feed(energy);
    assert_eq!(out.intervals().len(), 11);
    // 10 intervals of 0.5 J: 0.2 J idle (2 W × 0.1 s), 0.3 J over 50 ms busy, 40 of the job.
    close(
        out.attributed(&cgroup("/job"), "package"),
        10.0 * 0.3 * 0.8,
        1e-9,
    );
    assert!(out.max_imbalance() <= TOL);
}

#[test]
fn gpu_energy_goes_to_the_cgroups_of_the_gpu_processes() {
    // The processes' cgroups, from fixture /proc/PID/cgroup files: 101 in /pod/a (v1
    // cpuacct), 102 in /svc, 103 in /pod itself, 104 in an unmeasured cgroup, 105 gone.
    let proc_root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gpu-cgroups/proc");
    let mut h = Harness::new(config(Consumers::Cgroup));
    h.attribution = Attribution::with_run_mode(config(Consumers::Cgroup), h.outputs, RunMode::Run)
        .with_proc_root(proc_root);
    let i = h.inputs;
    origins(
        &mut h,
        i.gpu_energy(0, "A", 1.0),
        &["/pod", "/pod/a", "/svc"],
    );
    let mut at1 = vec![i.gpu_energy(1000, "A", 100_000.0)];
    for (pid, percent) in [
        (101, 40.0),
        (102, 20.0),
        (103, 10.0),
        (104, 10.0),
        (105, 20.0),
    ] {
        at1.push(i.gpu_util(1000, "A", pid, percent));
    }
    at1.extend(i.kernel(1000, 0, 4000));
    for path in ["/pod", "/pod/a", "/svc"] {
        at1.extend(i.cgroup(1000, path, 0, 0));
    }
    let out = h.feed(at1);
    close(out.attributed(&cgroup("/pod/a"), "gpu"), 40.0, TOL);
    close(out.attributed(&cgroup("/svc"), "gpu"), 20.0, TOL);
    close(out.attributed(&cgroup("/pod"), "gpu"), 0.0, TOL);
    close(out.unattributed("gpu", "parent_cgroup"), 10.0, TOL);
    close(out.unattributed("gpu", "untracked"), 30.0, TOL);
    close(out.total("gpu"), 100.0, TOL);
    assert!(out.max_imbalance() <= TOL);
}
