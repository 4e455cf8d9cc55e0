//! Counters that misbehave, on the two-socket server fixture: a value above the maximum, a
//! zone that disappears (and comes back), a file that cannot be read at start or while
//! running. Each problem is logged once and costs only its own counter's points.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const PKG: &str = "cpu_package";

fn server(test: &str) -> Fixture {
    let f = Fixture::copy("intel-server-2s", test);
    f.set("intel-rapl:0", 1_000_000_000);
    f.set("intel-rapl:0/intel-rapl:0:0", 500_000_000);
    f.set("intel-rapl:1", 2_000_000_000);
    f.set("intel-rapl:1/intel-rapl:1:0", 600_000_000);
    f
}

fn energy_path(f: &Fixture, zone: &str) -> String {
    f.zone(zone).join("energy_uj").display().to_string()
}

fn count(lines: &[String], text: &str) -> usize {
    lines.iter().filter(|l| l.contains(text)).count()
}

#[test]
fn a_value_above_the_maximum_is_reported_once_and_skipped() {
    let f = server("above-max");
    let run = start(&f.config());
    poll(&run);
    f.set("intel-rapl:0", INTEL_MAX + 5);
    poll(&run);
    f.set("intel-rapl:0", INTEL_MAX + 9);
    poll(&run);
    // Back in range: the energy since the last good reading, 1 J.
    f.set("intel-rapl:0", 1_001_000_000);
    poll(&run);
    let (_, points) = run.shutdown();

    let polls = per_poll(&points);
    assert_eq!(polls.len(), 3);
    for skipped in &polls[..2] {
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(!skipped.contains_key(&key(PKG, "0", "package")));
    }
    assert_eq!(polls[2][&key(PKG, "0", "package")], 1.0);
    assert_eq!(polls[2].len(), 4);
    let logs = logs_with(&f.zone("intel-rapl:0").display().to_string());
    assert_eq!(
        count(&logs, "above its maximum 262143328850"),
        1,
        "{logs:?}"
    );
    assert_eq!(count(&logs, "back within its range"), 1, "{logs:?}");
}

#[test]
fn a_zone_that_disappears_stops_its_points_only_and_comes_back_with_a_new_baseline() {
    let f = server("disappears");
    let run = start(&f.config());
    poll(&run);
    // The kernel removes a zone (its module is unloaded): reads of the open files then
    // fail (ENODEV). A removed regular file would still read, so the test first empties
    // the files, which fails their next read the same way, then removes the directory.
    f.set("intel-rapl:0", 1_001_000_000);
    for zone in ["intel-rapl:1", "intel-rapl:1/intel-rapl:1:0"] {
        f.write(
            &format!("devices/virtual/powercap/intel-rapl/{zone}/energy_uj"),
            "",
        );
    }
    std::fs::remove_dir_all(f.zone("intel-rapl:1")).unwrap();
    poll(&run);
    f.set("intel-rapl:0", 1_002_000_000);
    poll(&run);
    // The zone comes back (the module is loaded again) with counters from elsewhere.
    let original = Fixture::copy("intel-server-2s", "disappears-original");
    copy_zone(&original, &f, "intel-rapl:1");
    f.set("intel-rapl:1", 5_000_000);
    f.set("intel-rapl:1/intel-rapl:1:0", 9_000_000);
    poll(&run); // a new baseline for package 1
    f.set("intel-rapl:1", 7_000_000);
    f.set("intel-rapl:1/intel-rapl:1:0", 9_250_000);
    poll(&run);
    let (_, points) = run.shutdown();

    let package_0 = expect(&[(PKG, "0", "package", 1.0), (PKG, "0", "dram", 0.0)]);
    let mut zeros_0 = package_0.clone();
    zeros_0.insert(key(PKG, "0", "package"), 0.0);
    let all = expect(&[
        (PKG, "0", "package", 0.0),
        (PKG, "0", "dram", 0.0),
        (PKG, "1", "package", 2.0),
        (PKG, "1", "dram", 0.25),
    ]);
    assert_eq!(
        per_poll(&points),
        [package_0.clone(), package_0, zeros_0, all]
    );
    for zone in ["intel-rapl:1", "intel-rapl:1/intel-rapl:1:0"] {
        let logs = logs_with(&energy_path(&f, zone));
        assert_eq!(count(&logs, "WARN reading"), 1, "{logs:?}");
        assert_eq!(count(&logs, "INFO"), 1, "{logs:?}");
    }
}

fn copy_zone(from: &Fixture, to: &Fixture, zone: &str) {
    let (src, dst) = (from.zone(zone), to.zone(zone));
    for sub in ["", "intel-rapl:1:0"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dst.join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
}

#[test]
fn a_file_unreadable_at_start_leaves_it_out_with_one_message() {
    let f = server("unreadable-start");
    // A directory opens but does not read (EISDIR): an injected read error, since tests
    // run as root, where permissions do not stop reads.
    let dram_0 = f.zone("intel-rapl:0/intel-rapl:0:0").join("energy_uj");
    std::fs::remove_file(&dram_0).unwrap();
    std::fs::create_dir(&dram_0).unwrap();
    let run = start(&f.config());
    poll(&run);
    f.set("intel-rapl:0", 1_000_250_000);
    f.set("intel-rapl:1/intel-rapl:1:0", 600_500_000);
    poll(&run);
    let (_, points) = run.shutdown();

    let want = expect(&[
        (PKG, "0", "package", 0.25),
        (PKG, "1", "package", 0.0),
        (PKG, "1", "dram", 0.5),
    ]);
    assert_eq!(per_poll(&points), [want]);
    let logs = logs_with(&dram_0.display().to_string());
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].starts_with("WARN reading "), "{logs:?}");
    assert!(logs[0].contains("this counter is not measured"), "{logs:?}");
}

#[test]
fn a_file_unreadable_while_running_is_reported_once_then_read_again() {
    let f = server("unreadable-running");
    let run = start(&f.config());
    poll(&run);
    f.write(
        "devices/virtual/powercap/intel-rapl/intel-rapl:1/energy_uj",
        "garbage\n",
    );
    f.set("intel-rapl:0", 1_000_100_000);
    poll(&run);
    poll(&run);
    f.set("intel-rapl:1", 2_000_000_000);
    poll(&run); // package 1: a new baseline
    f.set("intel-rapl:1", 2_000_000_001);
    poll(&run);
    let (_, points) = run.shutdown();

    let polls = per_poll(&points);
    assert_eq!(polls.len(), 4);
    assert_eq!(polls[0][&key(PKG, "0", "package")], 0.1);
    for poll in &polls[..3] {
        assert_eq!(poll.len(), 3, "{poll:?}");
        assert!(!poll.contains_key(&key(PKG, "1", "package")));
    }
    assert_eq!(polls[3][&key(PKG, "1", "package")], 0.000001);
    let logs = logs_with(&energy_path(&f, "intel-rapl:1"));
    assert_eq!(count(&logs, "not a counter: \"garbage\""), 1, "{logs:?}");
    assert_eq!(logs.len(), 2, "{logs:?}");
}

/// A counter that exists but never moves (a virtual machine's stub, a domain the firmware
/// does not measure) reads 0 J, as it is, and is reported once; the others are not.
#[test]
fn a_counter_that_never_moves_is_reported_once() {
    let f = server("never-moves");
    let run = start(&f.config());
    poll(&run);
    f.set("intel-rapl:0", 1_001_000_000);
    f.set("intel-rapl:0/intel-rapl:0:0", 500_500_000);
    f.set("intel-rapl:1/intel-rapl:1:0", 600_500_000);
    poll(&run);
    std::thread::sleep(plugin_rapl::source::STILL_AFTER);
    f.set("intel-rapl:0", 1_002_000_000);
    poll(&run);
    poll(&run);
    let (_, points) = run.shutdown();

    // Package 1's package counter stayed at 2000 J.
    let polls = per_poll(&points);
    assert_eq!(polls.len(), 3);
    assert!(polls.iter().all(|p| p[&key(PKG, "1", "package")] == 0.0));
    let still = logs_with("has not moved");
    let about = |zone: &str| count(&still, &format!("({})", energy_path(&f, zone)));
    assert_eq!(about("intel-rapl:1"), 1, "{still:?}");
    assert_eq!(about("intel-rapl:0"), 0, "{still:?}");
    assert_eq!(about("intel-rapl:1/intel-rapl:1:0"), 0, "{still:?}");
}
