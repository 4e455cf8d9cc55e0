//! The kernel, memory and network sections with `procfs_root` on a fixture tree that
//! changes between polls (`tests/fixtures/tree/system/poll{1,2,3}`): the points are
//! exactly the fixture's values and differences; counters that go down are resets.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::measurement::Timestamp;
use alumet::plugin::{probe_start, Unavailable};
use alumet::test_util::PipelineTester;
use common::{by_trigger, fixture, ms, sync_tree, TempDir};
use plugin_procfs::{Config, ProcfsPlugin};

const STATES: [&str; 9] = [
    "user",
    "nice",
    "system",
    "idle",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

/// `kernel_cpu_time` lines of one resource, from differences in ticks.
fn cpu(resource: &str, ticks: [u64; 9]) -> Vec<String> {
    STATES
        .iter()
        .zip(ticks)
        .map(|(s, t)| {
            let v = ms(t);
            format!("kernel_cpu_time {resource} local_machine: [cpu_state={s}] = {v}")
        })
        .collect()
}

fn machine(metric: &str, value: u64) -> String {
    format!("{metric} local_machine: local_machine: [] = {value}")
}

/// `network_*` lines of one interface and direction: bytes, packets, errors, drops.
fn net(iface: &str, dir: &str, v: [u64; 4]) -> Vec<String> {
    let names = [
        "network_bytes",
        "network_packets",
        "network_errors",
        "network_packet_drops",
    ];
    (names.iter().zip(v))
        .map(|(m, v)| {
            format!("{m} local_machine: local_machine: [interface={iface},direction={dir}] = {v}")
        })
        .collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn fixture_tree_gives_exactly_its_values_and_differences() {
    let root = TempDir::new("system");
    sync_tree(&fixture("system/poll1"), root.path());
    let config = format!(
        r#"
        procfs_root = "{}"
        kernel = {{ poll_interval = "1h", per_cpu = true }}
        memory = {{ poll_interval = "1h", metrics = ["MemTotal", "MemFree", "Active(anon)", "HugePages_Total", "NoSuchKey"] }}
        network = {{ enabled = true, poll_interval = "1h" }}
        "#,
        root.path().display()
    );
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(&config).unwrap();
    // The baseline of every counter is taken at start, from poll1.
    let run = tester.start().unwrap();
    sync_tree(&fixture("system/poll2"), root.path());
    assert_eq!(run.trigger("procfs/*"), 3);
    let between = Timestamp::now();
    sync_tree(&fixture("system/poll3"), root.path());
    assert_eq!(run.trigger("procfs/*"), 3);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let polls = by_trigger(&points, &metrics, &[between]);
    assert_eq!(polls.len(), 2, "{polls:#?}");

    let mut poll2 = cpu("local_machine:", [100, 0, 30, 150, 2, 1, 0, 0, 0]);
    poll2.extend(cpu("cpu_core:0", [60, 0, 15, 70, 1, 1, 0, 0, 0]));
    poll2.extend(cpu("cpu_core:1", [40, 0, 15, 80, 1, 0, 0, 0, 0]));
    poll2.extend([
        machine("kernel_context_switches", 600),
        machine("kernel_new_forks", 10),
        machine("kernel_n_procs_running", 3),
        machine("kernel_n_procs_blocked", 1),
        machine("mem_total", 1_000_000 * 1024),
        machine("mem_free", 498_000 * 1024),
        machine("active_anon", 2000 * 1024),
        machine("hugepages_total", 5),
    ]);
    poll2.extend(net("lo", "rx", [500, 5, 0, 0]));
    poll2.extend(net("lo", "tx", [500, 5, 0, 0]));
    poll2.extend(net("eth0", "rx", [30_000, 50, 0, 1]));
    poll2.extend(net("eth0", "tx", [6000, 15, 2, 0]));
    assert_eq!(polls[0], sorted(poll2));

    // cpu2 came online (a baseline, no point yet); every eth0 counter went down (the
    // interface was reset): no point rather than a huge difference.
    let mut poll3 = cpu("local_machine:", [1, 0, 0, 0, 0, 0, 0, 0, 0]);
    poll3.extend(cpu("cpu_core:0", [1, 0, 0, 0, 0, 0, 0, 0, 0]));
    poll3.extend(cpu("cpu_core:1", [0; 9]));
    poll3.extend([
        machine("kernel_context_switches", 400),
        machine("kernel_new_forks", 0),
        machine("kernel_n_procs_running", 1),
        machine("kernel_n_procs_blocked", 0),
        machine("mem_total", 1_000_000 * 1024),
        machine("mem_free", 497_000 * 1024),
        machine("active_anon", 3000 * 1024),
        machine("hugepages_total", 6),
    ]);
    poll3.extend(net("lo", "rx", [100, 1, 0, 0]));
    poll3.extend(net("lo", "tx", [100, 1, 0, 0]));
    assert_eq!(polls[1], sorted(poll3));

    let unit = |name: &str| metrics.by_name(name).unwrap().1.unit.code().to_owned();
    let units = [
        "kernel_cpu_time",
        "mem_total",
        "hugepages_total",
        "network_bytes",
    ]
    .map(unit);
    assert_eq!(units, ["ms", "By", "1", "By"]);
    assert!(metrics.by_name("no_such_key").is_none());
}

#[test]
fn a_root_without_stat_is_unavailable_and_names_procfs_root() {
    let empty = TempDir::new("empty");
    let odd = TempDir::new("stat-dir");
    std::fs::create_dir(odd.path().join("stat")).unwrap();
    for root in [empty.path(), odd.path()] {
        let config = Config {
            procfs_root: root.to_owned(),
            ..Config::default()
        };
        let mut plugin = <ProcfsPlugin as alumet::plugin::Plugin>::init(config).unwrap();
        let err = probe_start(&mut plugin).unwrap_err();
        let unavailable = Unavailable::find(&err).expect("an Unavailable error");
        assert!(unavailable.reason.contains("stat"), "{unavailable}");
        assert!(unavailable.fix.contains("procfs_root"), "{unavailable}");
    }
}

#[test]
fn unreadable_memory_and_network_files_skip_their_section_only() {
    let root = TempDir::new("partial");
    std::fs::copy(fixture("system/poll1/stat"), root.path().join("stat")).unwrap();
    let config = format!(
        r#"
        procfs_root = "{}"
        kernel = {{ poll_interval = "1h" }}
        memory = {{ poll_interval = "1h" }}
        network = {{ enabled = true, poll_interval = "1h" }}
        "#,
        root.path().display()
    );
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<ProcfsPlugin>(&config).unwrap();
    let run = tester.start().unwrap();
    let sources: Vec<String> = run
        .control()
        .sources()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        sources.iter().filter(|s| s.starts_with("procfs/")).count(),
        1,
        "{sources:?}"
    );
    assert!(sources.contains(&"procfs/kernel".to_owned()));
    run.shutdown();
}
