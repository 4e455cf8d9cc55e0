//! CPU energy split by CPU time, with fake procfs and RAPL points of known values fed
//! in separate buffers, as separate sources flush them.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{close, Harness};
use plugin_attribution::Config;

const TOL: f64 = 1e-9;

fn config(idle: &[(&str, f64)]) -> Config {
    Config {
        idle_power: idle
            .iter()
            .map(|(d, w)| (d.to_string(), *w))
            .collect::<BTreeMap<_, _>>(),
        ..Config::default()
    }
}

/// The readings at time 0: origins only (their periods are unknown).
fn origins(h: &mut Harness, pids: &[u32]) {
    let i = h.inputs;
    let first = h.feed(vec![i.rapl(0, "package", 5.0), i.rapl(0, "dram", 1.0)]);
    assert_eq!(first.unattributed("package", "first_reading"), 5.0);
    assert_eq!(first.unattributed("dram", "first_reading"), 1.0);
    assert_eq!(first.intervals(), [0, 0]);
    h.feed(i.kernel(0, 0, 4000));
    let procs = pids
        .iter()
        .flat_map(|pid| i.proc(0, *pid, 50, 50))
        .collect();
    h.feed(procs);
}

#[test]
fn two_processes_split_exactly_once_the_cpu_data_has_arrived() {
    let mut h = Harness::new(config(&[("package", 2.0)]));
    let i = h.inputs;
    origins(&mut h, &[10, 20]);

    // RAPL flushes first: the interval waits for the CPU time that covers its end.
    let out = h.feed(vec![
        i.rapl(1000, "package", 10.0),
        i.rapl(1000, "dram", 3.0),
    ]);
    assert!(out.points.is_empty());
    assert_eq!(h.attribution.pending_intervals(), 2);
    let out = h.feed(i.kernel(1000, 800, 4000));
    assert!(out.points.is_empty(), "processes not read yet");

    let mut procs = i.proc(1000, 10, 300, 100);
    procs.extend(i.proc(1000, 20, 200, 0));
    let out = h.feed(procs);
    assert_eq!(out.intervals(), [1000, 1000]);
    // package: 2 J idle (2 W for 1 s); 8 J over 800 ms of busy time: 400 ms, 200 ms and
    // 200 ms of no measured process.
    close(out.idle("package"), 2.0, TOL);
    close(out.process(10, "package"), 4.0, TOL);
    close(out.process(20, "package"), 2.0, TOL);
    close(out.unattributed("package", "untracked"), 2.0, TOL);
    // dram has no idle power configured: all 3 J go by CPU time.
    close(out.idle("dram"), 0.0, TOL);
    close(out.process(10, "dram"), 1.5, TOL);
    close(out.process(20, "dram"), 0.75, TOL);
    close(out.unattributed("dram", "untracked"), 0.75, TOL);
    assert!(out.max_imbalance() <= TOL);
    assert_eq!(h.attribution.pending_intervals(), 0);
    assert!(h.finish().points.is_empty());
}

#[test]
fn an_interval_where_nothing_ran_is_all_idle() {
    let mut h = Harness::new(config(&[("package", 2.0)]));
    let i = h.inputs;
    origins(&mut h, &[10]);
    let mut points = vec![i.rapl(1000, "package", 7.5)];
    points.extend(i.kernel(1000, 0, 4000));
    points.extend(i.proc(1000, 10, 0, 0));
    let out = h.feed(points);
    assert_eq!(out.intervals(), [1000]);
    assert_eq!(out.idle("package"), 7.5);
    assert_eq!(out.process(10, "package"), 0.0);
    assert_eq!(out.total("package"), 7.5);
    let attributed = out
        .points
        .iter()
        .filter(|p| p.metric == h.outputs.attributed.raw());
    assert_eq!(attributed.count(), 0, "no consumer used CPU");
}

#[test]
fn a_process_that_exits_mid_interval_leaves_its_unread_time_untracked() {
    let mut h = Harness::new(config(&[]));
    let i = h.inputs;
    origins(&mut h, &[10, 30]);
    // 1 s: both ran 200 ms.
    let mut points = vec![i.rapl(1000, "package", 10.0)];
    points.extend(i.kernel(1000, 400, 4000));
    points.extend(i.proc(1000, 10, 200, 0));
    points.extend(i.proc(1000, 30, 150, 50));
    let out = h.feed(points);
    close(out.process(10, "package"), 5.0, TOL);
    close(out.process(30, "package"), 5.0, TOL);

    // 30 exits at 2.5 s, after its reading at 2 s: its last 100 ms are never read.
    let mut points = vec![i.rapl(2000, "package", 10.0)];
    points.extend(i.kernel(2000, 400, 4000));
    points.extend(i.proc(2000, 10, 200, 0));
    points.extend(i.proc(2000, 30, 200, 0));
    h.feed(points);
    let mut points = vec![i.rapl(3000, "package", 9.0)];
    points.extend(i.kernel(3000, 300, 4000));
    points.extend(i.proc(3000, 10, 200, 0));
    // 10 was read at 2 s and again at 3 s, 30 was not: 30 has ended, no waiting.
    let out = h.feed(points);
    assert_eq!(out.intervals(), [3000]);
    close(out.process(10, "package"), 6.0, TOL);
    close(out.process(30, "package"), 0.0, TOL);
    close(out.unattributed("package", "untracked"), 3.0, TOL);
    assert!(out.max_imbalance() <= TOL);
}

/// Origins at 0, then process 30 alone, read at 1 s, with all of the energy of (0, 1 s].
fn process_30_read_once(h: &mut Harness) {
    let i = h.inputs;
    origins(h, &[30]);
    let mut points = vec![i.rapl(1000, "package", 4.0)];
    points.extend(i.kernel(1000, 400, 4000));
    points.extend(i.proc(1000, 30, 400, 0));
    close(h.feed(points).process(30, "package"), 4.0, TOL);
}

#[test]
fn a_lone_process_that_ends_is_waited_for_max_delay_then_attributed() {
    let mut h = Harness::new(Config {
        max_delay: Duration::from_millis(2500),
        ..config(&[])
    });
    let i = h.inputs;
    process_30_read_once(&mut h);
    // 30 is not read any more: its data might be late, so the interval waits.
    let mut emitted = Vec::new();
    for t in [2000, 3000, 4000, 5000] {
        let mut points = vec![i.rapl(t, "package", 4.0)];
        points.extend(i.kernel(t, 100, 4000));
        let out = h.feed(points);
        emitted.push((t, out.intervals()));
    }
    // 5 s is more than max_delay (2.5 s) after 2 s: that interval is attributed with what
    // arrived; the others wait until then.
    assert_eq!(
        emitted,
        [
            (2000, vec![]),
            (3000, vec![]),
            (4000, vec![]),
            (5000, vec![2000])
        ]
    );
    let rest = h.finish();
    assert_eq!(rest.intervals(), [3000, 4000, 5000]);
    close(rest.unattributed("package", "untracked"), 12.0, TOL);
    assert!(rest.max_imbalance() <= TOL);
}

#[test]
fn a_lone_process_that_ends_is_known_gone_once_the_watermark_passes_its_last_reading() {
    // No max_delay to wait for: the pipeline's watermark says when every source that
    // could still read the process has polled without it.
    let mut h = Harness::new(Config {
        max_delay: Duration::from_secs(3600),
        ..config(&[])
    });
    let i = h.inputs;
    process_30_read_once(&mut h);
    // 30 is not read any more.
    let mut points = vec![i.rapl(2000, "package", 4.0)];
    points.extend(i.kernel(2000, 100, 4000));
    assert!(h.feed(points).points.is_empty(), "waits for 30's data");
    // A watermark at its last reading: its source may not have polled since.
    assert!(h.tick(Some(1000)).points.is_empty());
    assert!(h.tick(None).points.is_empty());
    assert_eq!(h.attribution.pending_intervals(), 1);
    // Past it, every source polled after 1 s, without 30; but a new consumer's reading
    // could still cover (1 s, 2 s] until the watermark reaches 2 s.
    assert!(h.tick(Some(1500)).points.is_empty());
    // Then the interval is attributed at this tick, without a new buffer.
    let out = h.tick(Some(2000));
    assert_eq!(out.intervals(), [2000]);
    close(out.process(30, "package"), 0.0, TOL);
    close(out.unattributed("package", "untracked"), 4.0, TOL);
    assert!(out.max_imbalance() <= TOL);
    assert_eq!(h.attribution.pending_intervals(), 0);
}

#[test]
fn intervals_pending_at_shutdown_are_attributed_with_the_data_received() {
    let mut h = Harness::new(config(&[]));
    let i = h.inputs;
    origins(&mut h, &[10]);
    let mut points = i.kernel(1000, 500, 4000);
    points.extend(i.proc(1000, 10, 500, 0));
    h.feed(points);
    // RAPL reads at 2 s; CPU data stops at 1.5 s.
    let mut points = i.kernel(1500, 250, 2000);
    points.extend(i.proc(1500, 10, 200, 0));
    h.feed(points);
    let out = h.feed(vec![
        i.rapl(1000, "package", 5.0),
        i.rapl(2000, "package", 8.0),
    ]);
    assert_eq!(out.intervals(), [1000]);
    assert_eq!(h.attribution.pending_intervals(), 1);

    let rest = h.finish();
    assert_eq!(rest.intervals(), [2000]);
    // Half of (1 s, 2 s] has CPU data: 4 J split over 250 ms busy (200 ms for 10).
    close(rest.unattributed("package", "no_usage_data"), 4.0, TOL);
    close(rest.process(10, "package"), 3.2, TOL);
    close(rest.unattributed("package", "untracked"), 0.8, TOL);
    assert!(rest.max_imbalance() <= TOL);
    assert_eq!(h.attribution.pending_intervals(), 0);
}

#[test]
fn cgroups_receive_energy_when_chosen_and_not_by_default() {
    for (consumers, expected) in [
        (plugin_attribution::Consumers::Cgroup, [4.0, 2.0]),
        // "auto" in run mode: processes only.
        (plugin_attribution::Consumers::Auto, [0.0, 0.0]),
    ] {
        let mut h = Harness::new(Config {
            consumers,
            ..config(&[])
        });
        let i = h.inputs;
        h.feed(vec![i.rapl(0, "package", 1.0)]);
        let mut points = i.kernel(0, 0, 4000);
        points.extend(i.cgroup(0, "/a", 0, 0));
        points.extend(i.cgroup(0, "/b", 0, 0));
        h.feed(points);
        let mut points = vec![i.rapl(1000, "package", 6.0)];
        points.extend(i.kernel(1000, 600, 4000));
        points.extend(i.cgroup(1000, "/a", 300, 100));
        points.extend(i.cgroup(1000, "/b", 200, 0));
        let mut out = h.feed(points);
        // Without a consumer of the chosen kind, the watermark tells that none will come.
        out.points.extend(h.tick(Some(1000)).points);
        assert_eq!(out.intervals(), [1000]);
        close(
            out.attributed(&common::cgroup("/a"), "package"),
            expected[0],
            TOL,
        );
        close(
            out.attributed(&common::cgroup("/b"), "package"),
            expected[1],
            TOL,
        );
        close(out.total("package"), 6.0, TOL);
    }
}

#[test]
fn measured_idle_is_the_lowest_power_seen() {
    let mut h = Harness::new(Config {
        idle: plugin_attribution::IdleMode::Measured,
        ..config(&[])
    });
    let i = h.inputs;
    origins(&mut h, &[10]);
    let mut idle = Vec::new();
    for (t, joules) in [(1000, 10.0), (2000, 6.0), (3000, 8.0)] {
        let mut points = vec![i.rapl(t, "package", joules)];
        points.extend(i.kernel(t, 500, 4000));
        points.extend(i.proc(t, 10, 500, 0));
        let out = h.feed(points);
        idle.push(out.idle("package"));
        close(
            out.process(10, "package"),
            joules - out.idle("package"),
            TOL,
        );
    }
    // 10 W (all of it), then 6 W (all of it), then the 6 W floor.
    assert_eq!(idle, [10.0, 6.0, 6.0]);
}

/// Without RAPL, the energy-estimation plugin's estimate is split the same way, each part
/// marked `source = estimated` (never mixed with measured energy).
#[test]
fn estimated_energy_is_split_when_nothing_measures_and_its_parts_say_so() {
    let mut h = Harness::with_cpu_energy(config(&[]), "estimated_energy");
    let i = h.inputs;
    h.feed(vec![i.rapl(0, "package", 5.0)]);
    h.feed(i.kernel(0, 0, 4000));
    h.feed(i.proc(0, 10, 50, 50));
    h.feed(vec![i.rapl(1000, "package", 10.0)]);
    h.feed(i.kernel(1000, 800, 4000));
    let out = h.feed(i.proc(1000, 10, 300, 100));
    close(out.process(10, "package"), 5.0, TOL);
    close(out.unattributed("package", "untracked"), 5.0, TOL);
    assert!(out.max_imbalance() <= TOL);
    let sources: std::collections::BTreeSet<String> = out
        .points
        .iter()
        .filter_map(|p| p.attributes.get("source").map(|s| s.to_string()))
        .collect();
    assert_eq!(sources, ["estimated".to_owned()].into_iter().collect());
}
