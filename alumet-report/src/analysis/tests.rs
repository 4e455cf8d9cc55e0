use super::*;
use crate::read::{Data, Group, Key, Series};

const S: i64 = 1_000_000_000;

fn key(metric: &str, unit: &str, resource: (&str, &str), attrs: &[(&str, &str)]) -> Key {
    Key {
        metric: metric.into(),
        unit: unit.into(),
        resource: (resource.0.into(), resource.1.into()),
        consumer: ("local_machine".into(), String::new()),
        attrs: attrs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    }
}

fn series(key: Key, points: &[(i64, f64)]) -> Series {
    Series {
        key,
        points: points.to_vec(),
    }
}

fn value(a: &Analysis, name: &str) -> f64 {
    let found = a.figures.iter().find(|f| f.name == name);
    found
        .unwrap_or_else(|| panic!("no figure {name}: {:?}", a.figures))
        .value
}

#[test]
fn power_is_the_energy_of_each_interval_over_its_length_and_the_total_adds_package_and_dram() {
    let rapl = |domain| {
        key(
            "rapl_consumed_energy",
            "J",
            ("cpu_package", "0"),
            &[("domain", domain)],
        )
    };
    let data = Data {
        machine: vec![
            // 10 J before the first reading (no interval), 20 J in 2 s, 6 J in 0.5 s.
            series(
                rapl("package"),
                &[(0, 10.0), (2 * S, 20.0), (5 * S / 2, 6.0)],
            ),
            series(rapl("dram"), &[(0, 1.0), (2 * S, 4.0), (5 * S / 2, 1.0)]),
            // A part of package: drawn, not in the total.
            series(rapl("pp0"), &[(0, 1.0), (2 * S, 8.0), (5 * S / 2, 2.0)]),
        ],
        rows: 9,
        ..Data::default()
    };
    let a = analyse(&data, 10);
    let labels: Vec<&str> = a.power.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(
        labels,
        ["RAPL package 0", "RAPL dram 0", "RAPL pp0 0", "total"]
    );
    assert_eq!(a.power[0].points, vec![(2.0, 10.0), (2.5, 12.0)]);
    assert_eq!(a.power[1].points, vec![(2.0, 2.0), (2.5, 2.0)]);
    assert_eq!(a.power[3].points, vec![(2.0, 12.0), (2.5, 14.0)]);
    assert!(!a.estimated);
    assert_eq!(value(&a, "energy, RAPL package 0"), 36.0);
    assert_eq!(value(&a, "average power, RAPL package 0"), 26.0 / 2.5);
    assert_eq!(value(&a, "energy, total"), 42.0);
    assert_eq!(value(&a, "average power, total"), 26.0 / 2.5 + 5.0 / 2.5);
}

#[test]
fn an_estimate_is_labelled_so_and_makes_the_total_only_when_nothing_is_measured() {
    let estimated = key(
        "estimated_energy",
        "J",
        ("local_machine", ""),
        &[("model", "tdp")],
    );
    let data = Data {
        machine: vec![series(estimated, &[(0, 5.0), (S, 50.0)])],
        ..Data::default()
    };
    let a = analyse(&data, 10);
    assert!(a.estimated);
    let labels: Vec<&str> = a.power.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "estimated_energy local_machine model=tdp (estimated)",
            "total (estimated)"
        ]
    );
    assert_eq!(a.power[1].points, vec![(1.0, 50.0)]);
}

fn group(
    metric: &str,
    unit: &str,
    attrs: &[(&str, &str)],
    totals: &[(&str, f64)],
    over_time: &[(i64, f64)],
) -> Group {
    let mut key = key(metric, unit, ("local_machine", ""), attrs);
    key.consumer = (String::new(), String::new());
    Group {
        key,
        totals: totals.iter().map(|(c, v)| ((*c).into(), *v)).collect(),
        over_time: over_time.to_vec(),
    }
}

#[test]
fn consumers_are_ranked_with_the_rest_grouped_then_idle_and_unattributed_by_reason() {
    let package = [("domain", "package")];
    let dram = [("domain", "dram")];
    let unattributed = |reason| {
        let k = key(
            "unattributed_energy",
            "J",
            ("cpu_package", "0"),
            &[("reason", reason)],
        );
        series(k, &[(S, 0.5), (2 * S, 0.25)])
    };
    let data = Data {
        machine: vec![
            series(
                key("idle_energy", "J", ("cpu_package", "0"), &package),
                &[(S, 3.0), (2 * S, 3.0)],
            ),
            unattributed("untracked"),
            unattributed("first_reading"),
        ],
        groups: vec![
            group(
                "attributed_energy",
                "J",
                &package,
                &[("process 1", 5.0), ("process 2", 9.0), ("process 3", 1.0)],
                &[],
            ),
            group(
                "attributed_energy",
                "J",
                &dram,
                &[("process 1", 5.0), ("process 4", 2.0)],
                &[],
            ),
        ],
        ..Data::default()
    };
    let a = analyse(&data, 2);
    let bars: Vec<(&str, f64, BarKind)> = a
        .consumers
        .iter()
        .map(|b| (b.label.as_str(), b.joules, b.kind))
        .collect();
    assert_eq!(
        bars,
        vec![
            ("process 1", 10.0, BarKind::Consumer),
            ("process 2", 9.0, BarKind::Consumer),
            ("2 other consumers", 3.0, BarKind::Rest),
            ("idle", 6.0, BarKind::Idle),
            ("unattributed (first_reading)", 0.75, BarKind::Unattributed),
            ("unattributed (untracked)", 0.75, BarKind::Unattributed),
        ]
    );
    assert_eq!(value(&a, "attributed energy, all consumers"), 22.0);
}

#[test]
fn cpu_and_memory_of_the_machine_and_the_processes_and_what_no_chart_shows() {
    let state = |s| {
        key(
            "kernel_cpu_time",
            "ms",
            ("local_machine", ""),
            &[("cpu_state", s)],
        )
    };
    let data = Data {
        machine: vec![
            series(state("user"), &[(0, 100.0), (S, 700.0), (2 * S, 300.0)]),
            series(state("system"), &[(0, 100.0), (S, 300.0), (2 * S, 100.0)]),
            series(state("idle"), &[(0, 100.0), (S, 1000.0), (2 * S, 1600.0)]),
            series(
                key("mem_total", "By", ("local_machine", ""), &[]),
                &[(0, 4096.0 * 1048576.0)],
            ),
            series(
                key("mem_available", "By", ("local_machine", ""), &[]),
                &[(0, 1024.0 * 1048576.0)],
            ),
            series(
                key("kernel_context_switches", "1", ("local_machine", ""), &[]),
                &[(S, 7.0), (2 * S, 8.0)],
            ),
        ],
        groups: vec![
            group(
                "cpu_time_delta",
                "ms",
                &[("kind", "user")],
                &[("process 1", 500.0)],
                &[(S, 250.0), (2 * S, 250.0)],
            ),
            group(
                "cpu_time_delta",
                "ms",
                &[("kind", "guest")],
                &[("process 1", 9.0)],
                &[(S, 9.0)],
            ),
            group(
                "memory_usage",
                "By",
                &[("kind", "resident")],
                &[],
                &[(S, 2097152.0), (2 * S, 1048576.0)],
            ),
        ],
        ..Data::default()
    };
    let a = analyse(&data, 10);
    let cpu: Vec<(&str, &[(f64, f64)])> = a
        .cpu
        .iter()
        .map(|l| (l.label.as_str(), l.points.as_slice()))
        .collect();
    assert_eq!(
        cpu,
        vec![
            (
                "machine (busy states)",
                [(1.0, 100.0), (2.0, 40.0)].as_slice()
            ),
            // The first sum has no known interval, as a series' first point.
            ("processes", [(2.0, 25.0)].as_slice()),
        ]
    );
    assert_eq!(value(&a, "CPU time, machine (busy states)"), 1.6);
    assert_eq!(value(&a, "CPU time, processes (user + system)"), 0.5);
    assert_eq!(a.memory[0].points, vec![(0.0, 3072.0)]);
    assert_eq!(a.memory[1].points, vec![(1.0, 2.0), (2.0, 1.0)]);
    assert_eq!(value(&a, "peak resident memory, processes"), 2.0);
    let other: Vec<(&str, usize, f64)> = a
        .other
        .iter()
        .map(|o| (o.metric.as_str(), o.series, o.sum))
        .collect();
    // The guest time (part of user), the idle state, a counter: listed, not drawn.
    let expected = [
        ("cpu_time_delta_ms", 1, 9.0),
        ("kernel_context_switches_1", 1, 15.0),
        ("kernel_cpu_time_ms", 1, 2700.0),
    ];
    assert_eq!(other, expected);
}
