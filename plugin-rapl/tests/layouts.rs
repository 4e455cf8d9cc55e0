//! Exact joules per (package, domain) on each machine layout, through the plugin in a real
//! pipeline reading a fixture sysfs tree: every domain counted once, psys only as
//! `platform`, MMIO duplicates and AMD die mirrors skipped, across a wrap and across polls
//! with no change.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const PKG: &str = "cpu_package";
const LOCAL: &str = "local_machine";

#[test]
fn two_socket_intel_server_gives_package_and_dram_of_each_socket() {
    let f = Fixture::copy("intel-server-2s", "server");
    f.set("intel-rapl:0", 1_000_000_000);
    f.set("intel-rapl:0/intel-rapl:0:0", 500_000_000);
    f.set("intel-rapl:1", INTEL_MAX - 1_000_000);
    f.set("intel-rapl:1/intel-rapl:1:0", 7);
    let run = start(&f.config());
    poll(&run); // the baseline: no points
    poll(&run); // no change: zeros
    f.set("intel-rapl:0", 1_002_500_000);
    f.set("intel-rapl:0/intel-rapl:0:0", 500_123_456);
    // Wraps: 1 J up to the maximum, 1 µJ to 0, 1.5 J after.
    f.set("intel-rapl:1", 1_500_000);
    poll(&run);
    poll(&run);
    let (_, points) = run.shutdown();

    let zeros = expect(&[
        (PKG, "0", "package", 0.0),
        (PKG, "0", "dram", 0.0),
        (PKG, "1", "package", 0.0),
        (PKG, "1", "dram", 0.0),
    ]);
    let changed = expect(&[
        (PKG, "0", "package", 2.5),
        (PKG, "0", "dram", 0.123456),
        (PKG, "1", "package", 2.500001),
        (PKG, "1", "dram", 0.0),
    ]);
    assert_eq!(per_poll(&points), [zeros.clone(), changed, zeros]);
    assert!(points.iter().all(|p| p.consumer.kind() == LOCAL));
}

#[test]
fn intel_laptop_counts_mmio_and_class_links_once_and_psys_as_platform_only() {
    let f = Fixture::copy("intel-laptop", "laptop");
    let mmio = f
        .root()
        .join("devices/virtual/powercap/intel-rapl-mmio/intel-rapl-mmio:0");
    let set_package = |uj: u64| {
        // The MMIO zone reads the same package counter.
        f.set("intel-rapl:0", uj);
        std::fs::write(mmio.join("energy_uj"), format!("{uj}\n")).unwrap();
    };
    set_package(1_000_000_000);
    f.set("intel-rapl:0/intel-rapl:0:0", 400_000_000);
    f.set("intel-rapl:0/intel-rapl:0:1", 100_000_000);
    f.set("intel-rapl:1", 5_000_000_000);
    let run = start(&f.config());
    poll(&run);
    set_package(1_003_000_000);
    f.set("intel-rapl:0/intel-rapl:0:0", 401_750_000);
    f.set("intel-rapl:0/intel-rapl:0:1", 100_250_000);
    f.set("intel-rapl:1", 5_009_000_000);
    poll(&run);
    let (_, points) = run.shutdown();

    // Package 3 J: neither the MMIO copy (6 J) nor psys (12 J) is added to it.
    let want = expect(&[
        (PKG, "0", "package", 3.0),
        (PKG, "0", "pp0", 1.75),
        (PKG, "0", "pp1", 0.25),
        (LOCAL, "", "platform", 9.0),
    ]);
    assert_eq!(per_poll(&points), [want]);
    let skipped = logs_with(&mmio.display().to_string());
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0].contains("intel-rapl-mmio duplicate"),
        "{skipped:?}"
    );
}

/// Sets the package and core counters of every die of an AMD package: they mirror one
/// socket-wide counter.
fn set_amd(f: &Fixture, package: u32, package_uj: u64, core_uj: u64) {
    for die in 0..4 {
        let zone = format!("intel-rapl:{}", package * 4 + die);
        f.set(&zone, package_uj);
        f.set(&format!("{zone}/{zone}:0"), core_uj);
    }
}

fn amd_epyc_counts_each_socket_once(f: &Fixture) {
    set_amd(f, 0, 21_000_000_000, 300_000_000);
    set_amd(f, 1, AMD_MAX - 500_000, 400_000_000);
    let run = start(&f.config());
    poll(&run);
    set_amd(f, 0, 21_002_000_000, 301_000_000);
    // Wraps: 0.5 J up to the maximum, 1 µJ to 0, 0.499999 J after.
    set_amd(f, 1, 499_999, 400_000_000);
    poll(&run);
    let (_, points) = run.shutdown();

    // Four dies per socket, each 2 J: the socket used 2 J, not 8.
    let want = expect(&[
        (PKG, "0", "package", 2.0),
        (PKG, "0", "pp0", 1.0),
        (PKG, "1", "package", 1.0),
        (PKG, "1", "pp0", 0.0),
    ]);
    assert_eq!(per_poll(&points), [want]);
    let mirrors = logs_with(&f.root().display().to_string());
    let mirrors: Vec<_> = mirrors.iter().filter(|l| l.contains("mirrors")).collect();
    assert_eq!(
        mirrors.len(),
        12,
        "3 dies x (package, core) x 2 sockets: {mirrors:?}"
    );
}

#[test]
fn amd_epyc_counts_die_mirrors_once() {
    let f = Fixture::copy("amd-epyc", "amd");
    amd_epyc_counts_each_socket_once(&f);
}

#[test]
fn amd_layout_is_recognized_without_the_vendor() {
    // No modalias (a container that mounts only the powercap tree, say): package and core
    // domains alone are AMD's layout.
    let f = Fixture::copy("amd-epyc", "amd-novendor");
    std::fs::remove_file(f.root().join("devices/system/cpu/modalias")).unwrap();
    amd_epyc_counts_each_socket_once(&f);
}

#[test]
fn class_powercap_alone_is_enough() {
    // A container that bind-mounts only /sys/class/powercap: the links' targets are the
    // zones themselves, here real directories.
    let f = Fixture::copy("intel-server-2s", "class-only");
    let class = f.root().join("class/powercap");
    std::fs::create_dir_all(&class).unwrap();
    let devices = f.root().join("devices/virtual/powercap/intel-rapl");
    std::fs::rename(
        devices.join("intel-rapl:0/intel-rapl:0:0"),
        class.join("intel-rapl:0:0"),
    )
    .unwrap();
    std::fs::rename(devices.join("intel-rapl:0"), class.join("intel-rapl:0")).unwrap();
    std::fs::remove_dir_all(f.root().join("devices/virtual/powercap")).unwrap();
    let set = |rel: &str, uj: u64| {
        std::fs::write(class.join(rel).join("energy_uj"), format!("{uj}\n")).unwrap();
    };
    set("intel-rapl:0", 10_000_000);
    set("intel-rapl:0:0", 20_000_000);
    let run = start(&f.config());
    poll(&run);
    set("intel-rapl:0", 11_000_000);
    set("intel-rapl:0:0", 20_500_000);
    poll(&run);
    let (_, points) = run.shutdown();
    let want = expect(&[(PKG, "0", "package", 1.0), (PKG, "0", "dram", 0.5)]);
    assert_eq!(per_poll(&points), [want]);
}
