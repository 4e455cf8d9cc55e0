//! The processes section on fixture trees that change between polls: processes that
//! vanish, pids reused by new processes, children of announced processes
//! (`tests/fixtures/tree/{processes,events}/poll{1,2,3}`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestRun};
use common::{by_poll, fixture, ms, pages, sync_tree, TempDir};
use plugin_procfs::ProcfsPlugin;

fn cpu(pid: u32, user: u64, system: u64) -> Vec<String> {
    [("user", user), ("system", system), ("guest", 0)]
        .iter()
        .map(|(k, t)| {
            format!(
                "cpu_time_delta local_machine: process:{pid} [kind={k}] = {}",
                ms(*t)
            )
        })
        .collect()
}

fn memory(pid: u32, resident: u64, shared: u64, size: u64) -> Vec<String> {
    [
        ("resident", resident),
        ("shared", shared),
        ("virtual", size),
    ]
    .iter()
    .map(|(k, n)| {
        format!(
            "memory_usage local_machine: process:{pid} [kind={k}] = {}",
            pages(*n)
        )
    })
    .collect()
}

/// The lines of one poll without `cpu_percent` (its value depends on wall time), and
/// the pids that had a `cpu_percent`.
fn split_percent(lines: &[String]) -> (Vec<String>, Vec<String>) {
    let (percent, rest): (Vec<String>, Vec<String>) = lines
        .iter()
        .cloned()
        .partition(|l| l.starts_with("cpu_percent "));
    let pids = percent
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap().to_owned())
        .collect();
    (rest, pids)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// procfs on the fixture at `root`, processes only, listed again every `refresh`, with one
/// group per item of `groups` (each the group's keys besides `poll_interval = "1h"`).
fn groups_config(root: &TempDir, refresh: &str, groups: &[&str]) -> String {
    let mut config = format!(
        "procfs_root = {:?}\nkernel.enabled = false\nmemory.enabled = false\n\
         [processes]\nenabled = true\nrefresh_interval = {refresh:?}\n",
        root.path().display().to_string()
    );
    for keys in groups {
        config.push_str(&format!(
            "[[processes.groups]]\n{keys}\npoll_interval = \"1h\"\n"
        ));
    }
    config
}

#[test]
fn watcher_skips_vanished_processes_and_treats_reused_pids_as_new() {
    let root = TempDir::new("watcher");
    sync_tree(&fixture("processes/poll1"), root.path());
    let config = groups_config(&root, "0s", &[""]);
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(&config).unwrap();
    let run = tester.start().unwrap();
    for poll in ["poll1", "poll2", "poll3"] {
        sync_tree(&fixture(&format!("processes/{poll}")), root.path());
        assert_eq!(run.trigger("procfs/group-0"), 1);
    }
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let polls = by_poll(&points, &metrics);
    assert_eq!(polls.len(), 3);

    // poll1: both processes ran before the watch began: memory only, CPU baselines.
    let (lines, percent) = split_percent(&polls[0]);
    let mut expected = memory(100, 300, 100, 1000);
    expected.extend(memory(101, 400, 50, 2000));
    assert_eq!((lines, percent), (sorted(expected), vec![]));

    // poll2: 101 exited (skipped quietly); 102 started during the watch: measured from
    // its start.
    let (lines, percent) = split_percent(&polls[1]);
    let mut expected = cpu(100, 20, 30);
    expected.extend(memory(100, 310, 100, 1100));
    expected.extend(cpu(102, 7, 3));
    expected.extend(memory(102, 500, 60, 3000));
    assert_eq!(lines, sorted(expected));
    assert_eq!(percent, ["process:100"]);

    // poll3: pid 100 belongs to a new process (another start time, smaller counters): a
    // new consumer measured from its start, never a negative or huge difference.
    let (lines, percent) = split_percent(&polls[2]);
    let mut expected = cpu(100, 4, 1);
    expected.extend(memory(100, 20, 10, 50));
    expected.extend(cpu(102, 2, 0));
    expected.extend(memory(102, 520, 60, 3000));
    assert_eq!(lines, sorted(expected));
    assert_eq!(percent, ["process:102"]);
}

#[test]
fn a_process_joins_the_first_group_it_matches() {
    let root = TempDir::new("groups");
    sync_tree(&fixture("processes/poll2"), root.path());
    std::os::unix::fs::symlink("/usr/sbin/server", root.path().join("100/exe")).unwrap();
    std::os::unix::fs::symlink("/opt/app/worker", root.path().join("102/exe")).unwrap();
    let config = groups_config(&root, "0s", &[r#"exe_regex = "/worker$""#, "ppid = 1", ""]);
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(&config).unwrap();
    let run = tester.start().unwrap();
    let mut consumers = Vec::new();
    for group in 0..3 {
        assert_eq!(run.trigger(&format!("procfs/group-{group}")), 1);
    }
    let (_report, points) = run.shutdown();
    for p in &points {
        let pair = (p.timestamp, p.consumer.id().to_string());
        if !consumers.contains(&pair) {
            consumers.push(pair);
        }
    }
    let ids: Vec<&str> = consumers.iter().map(|(_, id)| id.as_str()).collect();
    // Group 0: the worker (its parent is 100); group 1: the server; group 2: nobody left.
    assert_eq!(ids, ["102", "100"]);
}

#[test]
fn groups_share_one_listing_of_proc_from_the_core() {
    let root = TempDir::new("shared-scan");
    sync_tree(&fixture("processes/poll2"), root.path());
    let config = groups_config(&root, "1h", &["ppid = 1", "ppid = 100", ""]);
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(&config).unwrap();
    let run = tester.start().unwrap();
    for group in 0..3 {
        assert_eq!(run.trigger(&format!("procfs/group-{group}")), 1);
    }
    let listing = (run.pipeline().consumers())
        .processes(root.path())
        .current();
    let pids: Vec<u32> = listing.entries.iter().map(|p| p.pid).collect();
    let (_report, points) = run.shutdown();
    // One scan for the three groups, and it found the tree's processes.
    assert_eq!(listing.generation, 1);
    assert_eq!(pids, [100, 102]);
    let mut measured: Vec<String> = points.iter().map(|p| p.consumer.id().to_string()).collect();
    measured.sort();
    measured.dedup();
    assert_eq!(measured, ["100", "102"]);
}

#[test]
fn slow_but_accurate_memory_reads_smaps_rollup_and_adds_the_proportional_set_size() {
    let root = TempDir::new("pss");
    sync_tree(&fixture("processes/poll2"), root.path());
    let rollup = |rss: u64, pss: u64| {
        format!(
            "55ebe1387000-7ffc9c65e000 ---p 00000000 00:00 0 [rollup]\nRss: {rss} kB\nPss: {pss} kB\n\
             Pss_Dirty: 10 kB\nShared_Clean: 300 kB\nShared_Dirty: 12 kB\nPrivate_Clean: 1 kB\n"
        )
    };
    std::fs::write(root.path().join("100/smaps_rollup"), rollup(9000, 2500)).unwrap();
    std::fs::write(root.path().join("102/smaps_rollup"), rollup(400, 7)).unwrap();
    let config = |mode: &str| groups_config(&root, "0s", &[&format!("memory_mode = {mode:?}")]);
    let memory_of = |mode: &str| {
        let mut tester = PipelineTester::new();
        tester.plugin_toml::<ProcfsPlugin>(&config(mode)).unwrap();
        let run = tester.start().unwrap();
        assert_eq!(run.trigger("procfs/group-0"), 1);
        let metrics = run.metrics().clone();
        let (_report, points) = run.shutdown();
        let mut lines: Vec<String> = (points.iter())
            .map(|p| common::line(p, &metrics))
            .filter(|l| l.starts_with("memory_usage"))
            .collect();
        lines.sort();
        lines
    };
    let value = |lines: &[String], pid: u32, kind: &str| -> u64 {
        let l = lines
            .iter()
            .find(|l| l.contains(&format!("process:{pid} ")) && l.contains(&format!("kind={kind}")))
            .unwrap_or_else(|| panic!("no {kind} for {pid}: {lines:?}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let quick = memory_of("quick");
    let accurate = memory_of("slow_but_accurate");
    assert_eq!(
        quick.len(),
        6,
        "resident, shared, virtual of two processes: {quick:?}"
    );
    assert_eq!(
        accurate.len(),
        8,
        "and their proportional set size: {accurate:?}"
    );
    for (pid, rss, pss) in [(100, 9000, 2500), (102, 400, 7)] {
        // smaps_rollup's figures, kB to bytes.
        assert_eq!(value(&accurate, pid, "resident"), rss * 1024);
        assert_eq!(value(&accurate, pid, "shared"), (300 + 12) * 1024);
        assert_eq!(value(&accurate, pid, "proportional"), pss * 1024);
        // The virtual size is statm's in both modes; quick reads statm only.
        assert_eq!(
            value(&accurate, pid, "virtual"),
            value(&quick, pid, "virtual")
        );
        assert_ne!(value(&quick, pid, "resident"), rss * 1024);
    }
}

/// Sum of `cpu_time_delta` per (pid, kind).
fn cpu_sums(points: &[MeasurementPoint], metric: MetricId<u64>) -> BTreeMap<(String, String), u64> {
    let mut sums = BTreeMap::new();
    for p in points.iter().filter(|p| p.metric == metric.raw()) {
        let kind = p.attributes.get("kind").unwrap().to_string();
        *sums.entry((p.consumer.id().to_string(), kind)).or_default() += p.value.as_f64() as u64;
    }
    sums
}

/// procfs alone, with the event strategy, on `root`, which gets the first tree of the
/// `events` fixture (uptime 1000 s; process 200 started 0.5 s before).
fn start_events(root: &TempDir) -> TestRun {
    sync_tree(&fixture("events/poll1"), root.path());
    let config = format!(
        r#"
        procfs_root = "{}"
        kernel.enabled = false
        memory.enabled = false
        [processes]
        enabled = true
        strategy = "event"
        refresh_interval = "0s"
        events = {{ poll_interval = "1h", flush_interval = "1h" }}
        "#,
        root.path().display()
    );
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(&config).unwrap();
    tester.start().unwrap()
}

#[test]
fn event_strategy_measures_the_announced_process_and_its_descendants() {
    let root = TempDir::new("events");
    let run = start_events(&root);
    let control = run.control();
    let metric = run.metric::<u64>("cpu_time_delta").unwrap();
    control.emit(&Event::ConsumerStarted(ResourceConsumer::Process {
        pid: 200,
    }));
    assert_eq!(run.trigger("procfs/*"), 1);
    sync_tree(&fixture("events/poll2"), root.path());
    assert_eq!(run.trigger("procfs/*"), 1);
    sync_tree(&fixture("events/poll3"), root.path());
    // Named after the pid and its start time.
    let sources: Vec<String> = (control.sources().iter())
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(sources, ["procfs/process-200-99950"]);
    // The final poll happens inside the handler; then the source is removed (not merely
    // paused: `exec -r N` would pile them up).
    control.emit(&Event::ConsumerEnded(ResourceConsumer::Process {
        pid: 200,
    }));
    assert_eq!(run.trigger("procfs/*"), 0);
    assert!(control.sources().is_empty(), "{:?}", control.sources());
    assert!(
        !(control.element_stats().iter()).any(|s| s.name.to_string().contains("process-200")),
        "its statistics go with it"
    );
    let (_report, points) = run.shutdown();

    // 200 started 0.5 s before it was announced: measured from its start (90 + 20 ticks
    // at the end), and so are its descendants: 201 and 202, its child and grandchild
    // started after the announcement, and 204, a child started before it (12 + 4 ticks
    // when last seen). 203 claims 200 as parent but started before it (a reused pid): not
    // a descendant. 300 is unrelated.
    assert_eq!(
        events_cpu(&points, metric),
        [
            (Some(ms(90)), Some(ms(20))),
            (Some(ms(25)), Some(ms(1))),
            (Some(ms(2)), Some(ms(2))),
            (Some(ms(12)), Some(ms(4))),
            (None, None),
            (None, None),
        ]
    );
}

/// User and system CPU time of processes 200, 201, 202, 204, 203 and 300 of the `events`
/// fixture.
fn events_cpu(
    points: &[MeasurementPoint],
    metric: MetricId<u64>,
) -> [(Option<u64>, Option<u64>); 6] {
    let sums = cpu_sums(points, metric);
    let get = |pid: &str, kind: &str| sums.get(&(pid.to_owned(), kind.to_owned())).copied();
    ["200", "201", "202", "204", "203", "300"].map(|pid| (get(pid, "user"), get(pid, "system")))
}

/// Watch mode announces a process that was already running: what it used before is not
/// counted, what its children use from their start is.
#[test]
fn a_watched_process_is_measured_from_the_announcement() {
    let root = TempDir::new("events-watched");
    let run = start_events(&root);
    let control = run.control();
    let metric = run.metric::<u64>("cpu_time_delta").unwrap();
    // At uptime 1000 s; 200 started 0.5 s before, and has used 30 + 10 ticks.
    control.emit(&Event::ConsumerWatched(ResourceConsumer::Process {
        pid: 200,
    }));
    assert_eq!(run.trigger("procfs/*"), 1);
    sync_tree(&fixture("events/poll2"), root.path());
    assert_eq!(run.trigger("procfs/*"), 1);
    sync_tree(&fixture("events/poll3"), root.path());
    control.emit(&Event::ConsumerEnded(ResourceConsumer::Process {
        pid: 200,
    }));
    let (_report, points) = run.shutdown();

    // 200 from its first reading: 90 - 30 and 20 - 10 ticks. 201 and 202 started during
    // the watch: from their start. 204, a child that started before the watch, from its
    // first reading too: 12 - 7 and 4 - 3.
    assert_eq!(
        events_cpu(&points, metric),
        [
            (Some(ms(60)), Some(ms(10))),
            (Some(ms(25)), Some(ms(1))),
            (Some(ms(2)), Some(ms(2))),
            (Some(ms(5)), Some(ms(1))),
            (None, None),
            (None, None),
        ]
    );
}
