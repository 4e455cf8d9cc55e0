//! Cgroup mode on a real cgroup v2 created by the test: the counters of the processes in
//! it, on every CPU, summed, and nothing of the processes outside it.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use alumet::consumers::CgroupEntry;
use alumet::pipeline::Event;
use alumet::prelude::*;
use alumet::test_util::skip::{missing_root, should_run};
use alumet::test_util::PipelineTester;
use plugin_perf::PerfPlugin;

/// The cgroup v2 mount: `/sys/fs/cgroup` on a v2 host, `/sys/fs/cgroup/unified` on a
/// hybrid one (the development machines).
fn v2_root() -> Option<&'static Path> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|p| {
            mounts
                .lines()
                .any(|l| l.contains(&format!(" {p} cgroup2 ")))
        })
        .map(Path::new)
}

/// A new cgroup v2 named after `tag` and the test process, or `None` (with the reason
/// said, and a failure under CI) where the test cannot create one.
fn new_cgroup(tag: &str) -> Option<(&'static Path, String, std::path::PathBuf)> {
    let root = v2_root();
    let missing = missing_root("creates a cgroup")
        .or_else(|| root.is_none().then(|| "no cgroup v2 mount".to_owned()));
    if !should_run("perf cgroup mode", missing) {
        return None;
    }
    let root = root.unwrap();
    let name = format!("alumet-perf-{tag}-{}", std::process::id());
    let dir = root.join(&name);
    std::fs::create_dir(&dir).unwrap();
    Some((root, name, dir))
}

/// The CPU time the kernel charged to the cgroup `dir` (`cpu.stat`), in ms.
fn usage_ms(dir: &Path) -> f64 {
    let text = std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
    let usec = text.lines().find_map(|l| l.strip_prefix("usage_usec "));
    usec.and_then(|u| u.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1000.0
}

/// A busy loop of `seconds` in the cgroup `dir` (it moves itself there, then execs).
fn busy_in(dir: &Path, seconds: u32) -> Child {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec timeout {seconds} sh -c 'while :; do :; done'",
        dir.display()
    );
    Command::new("sh").args(["-c", &script]).spawn().unwrap()
}

#[test]
fn a_cgroup_s_processes_are_counted_on_every_cpu() {
    let Some((root, name, dir)) = new_cgroup("test") else {
        return;
    };
    let mut tester = PipelineTester::new();
    let config = format!(
        "events = ['task-clock', 'context-switches']\npoll_interval = '1h'\ncgroup_root = {:?}\n",
        root.display().to_string()
    );
    tester.plugin_toml::<PerfPlugin>(&config).unwrap();
    let run = tester.start().unwrap();
    let control = run.control();
    let path = format!("/{name}");
    control.emit(&Event::ConsumerWatched(ResourceConsumer::ControlGroup {
        path: path.as_str().into(),
    }));
    // One second of a busy loop inside, while the test itself (outside) also works.
    let before = usage_ms(&dir);
    let mut child = busy_in(&dir, 1);
    let mut outside = 0u64;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(1100) {
        outside = outside.wrapping_add(1);
    }
    child.wait().unwrap();
    let used_ms = usage_ms(&dir) - before;
    assert!(outside > 0);
    assert_eq!(run.trigger(&format!("perf/cgroup-{name}")), 1);
    let task_clock = run.metric::<u64>("perf_task_clock").unwrap();
    let (_, points) = run.shutdown();
    let _ = std::fs::remove_dir(&dir);
    let counted: Vec<u64> = points
        .iter()
        .filter(|p| p.metric == task_clock.raw())
        .filter(|p| {
            p.consumer
                == ResourceConsumer::ControlGroup {
                    path: path.as_str().into(),
                }
        })
        .map(|p| p.value.as_f64() as u64)
        .collect();
    assert_eq!(
        counted.len(),
        1,
        "one point, summed over the CPUs: {counted:?}"
    );
    let ms = counted[0] as f64 / 1e6;
    // What the kernel charged to the cgroup (cpu.stat), within 10 %: the test's own busy
    // second, outside it, is not counted.
    assert!(used_ms > 100.0, "the loop ran: {used_ms} ms");
    assert!(
        (ms - used_ms).abs() <= used_ms * 0.1 + 20.0,
        "{ms} ms of task-clock, cpu.stat says {used_ms} ms"
    );
}

/// Polls `cond` every 20 ms for up to 10 s.
fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn the_cgroups_that_the_cgroups_plugin_publishes_are_counted_until_they_go() {
    let Some((root, name, dir)) = new_cgroup("published") else {
        return;
    };
    let mut tester = PipelineTester::new();
    let config = format!(
        "events = ['task-clock']\ncgroups = true\npoll_interval = '1h'\ncgroup_root = {:?}\n",
        root.display().to_string()
    );
    tester.plugin_toml::<PerfPlugin>(&config).unwrap();
    let run = tester.start().unwrap();
    let path = format!("/{name}");
    // What the cgroups plugin does when it finds the cgroup.
    let published = run.pipeline().consumers().cgroups();
    published
        .publish("cgroups", [CgroupEntry::new(&path)])
        .unwrap();
    let selector = format!("perf/cgroup-{name}");
    assert!(
        wait_for(|| run.trigger(&selector) == 1),
        "no source for the published cgroup"
    );
    let before = usage_ms(&dir);
    busy_in(&dir, 1).wait().unwrap();
    let used_ms = usage_ms(&dir) - before;
    // Gone from the listing: its source gets a last reading, then goes.
    published.publish("cgroups", []).unwrap();
    assert!(
        wait_for(|| run.trigger(&selector) == 0),
        "the source of the cgroup that went is still there"
    );
    let task_clock = run.metric::<u64>("perf_task_clock").unwrap();
    let (_, points) = run.shutdown();
    let _ = std::fs::remove_dir(&dir);
    let consumer = ResourceConsumer::ControlGroup {
        path: path.as_str().into(),
    };
    let ms: f64 = (points.iter())
        .filter(|p| p.metric == task_clock.raw() && p.consumer == consumer)
        .map(|p| p.value.as_f64() / 1e6)
        .sum();
    assert!(used_ms > 100.0, "the loop ran: {used_ms} ms");
    assert!(
        (ms - used_ms).abs() <= used_ms * 0.1 + 20.0,
        "{ms} ms of task-clock, cpu.stat says {used_ms} ms"
    );
}
