use super::*;

fn cand(package: u32, domain: Domain, die: u32, mmio: bool, label: &str) -> Candidate {
    Candidate {
        key: Key::new(package, domain),
        die,
        mmio,
        label: label.to_owned(),
    }
}

fn kept_labels(candidates: &[Candidate], vendor: Vendor) -> Vec<&str> {
    select(candidates, vendor)
        .kept
        .iter()
        .map(|&i| candidates[i].label.as_str())
        .collect()
}

#[test]
fn mmio_duplicate_of_a_package_is_skipped_but_kept_alone() {
    let c = [
        cand(0, Domain::Package, 0, false, "intel-rapl:0"),
        cand(0, Domain::Pp0, 0, false, "intel-rapl:0:0"),
        cand(0, Domain::Package, 0, true, "intel-rapl-mmio:0"),
    ];
    let s = select(&c, Vendor::Intel);
    assert_eq!(s.kept, [0, 1]);
    assert_eq!(s.skipped.len(), 1);
    assert!(
        s.skipped[0].starts_with("intel-rapl-mmio:0: skipped"),
        "{s:?}"
    );
    // Without the MSR zone, the MMIO one is the only reading of the package: kept.
    assert_eq!(kept_labels(&c[2..], Vendor::Intel), ["intel-rapl-mmio:0"]);
}

#[test]
fn one_platform_counter_at_most() {
    let c = [
        cand(0, Domain::Package, 0, false, "cpu0 pkg"),
        cand(0, Domain::Platform, 0, false, "cpu0 psys"),
        cand(1, Domain::Package, 0, false, "cpu8 pkg"),
        cand(1, Domain::Platform, 0, false, "cpu8 psys"),
    ];
    assert_eq!(
        kept_labels(&c, Vendor::Intel),
        ["cpu0 pkg", "cpu0 psys", "cpu8 pkg"]
    );
    assert_eq!(
        Key::new(1, Domain::Platform).resource(),
        Resource::LocalMachine
    );
    assert_eq!(
        Key::new(1, Domain::Dram).resource(),
        Resource::CpuPackage { id: 1 }
    );
}

#[test]
fn amd_dies_are_mirrors_intel_dies_are_parts() {
    let dies = [
        cand(0, Domain::Package, 0, false, "package-0-die-0"),
        cand(0, Domain::Pp0, 0, false, "package-0-die-0 core"),
        cand(0, Domain::Package, 1, false, "package-0-die-1"),
        cand(0, Domain::Pp0, 1, false, "package-0-die-1 core"),
        cand(1, Domain::Package, 0, false, "package-1-die-0"),
        cand(1, Domain::Package, 1, false, "package-1-die-1"),
    ];
    let amd = ["package-0-die-0", "package-0-die-0 core", "package-1-die-0"];
    assert_eq!(kept_labels(&dies, Vendor::Amd), amd);
    // Unknown vendor, package and core only: AMD's layout.
    assert_eq!(kept_labels(&dies, Vendor::Unknown), amd);
    // Intel: every die has its own counters, summed per package.
    assert_eq!(kept_labels(&dies, Vendor::Intel).len(), 6);
    let s = select(&dies, Vendor::Amd);
    assert!(s.skipped[0].contains("mirrors package-0-die-0"), "{s:?}");
    // Unknown vendor with a dram domain: not AMD's layout, dies are parts.
    let mut with_dram = dies.to_vec();
    with_dram.push(cand(0, Domain::Dram, 0, false, "dram"));
    assert_eq!(kept_labels(&with_dram, Vendor::Unknown).len(), 7);
}

#[test]
fn same_die_twice_is_a_duplicate_on_intel_too() {
    let c = [
        cand(0, Domain::Package, 0, false, "a"),
        cand(0, Domain::Package, 0, false, "b"),
    ];
    let s = select(&c, Vendor::Intel);
    assert_eq!(s.kept, [0]);
    assert_eq!(s.skipped, ["b: skipped, duplicate of a"]);
}

#[test]
fn wrap_time_at_tdp() {
    // A real Intel package range at 125 W: about 35 minutes.
    assert_eq!(wrap_time(262_143_328_850, 125_000_000).as_secs(), 2097);
    // AMD's 32-bit counter of 15.3 µJ units at 280 W: under 4 minutes.
    assert_eq!(wrap_time(65_532_610_987, 280_000_000).as_secs(), 234);
    assert_eq!(wrap_time(1000, 0), Duration::from_secs(1000));
    // What sysfs says may be anything: the largest range at 1 µW (a TDP file saying 1)
    // panicked converting 2^64 s to a Duration.
    assert_eq!(wrap_time(u64::MAX, 1), Duration::MAX);
    assert_eq!(wrap_time(u64::MAX, 0), Duration::MAX);
}

#[test]
fn wrap_warning_names_the_fastest_counter() {
    let counters = [
        WrapInfo {
            label: "intel-rapl:0".into(),
            max_energy_range_uj: 262_143_328_850,
            tdp_uw: Some(125_000_000),
        },
        WrapInfo {
            label: "intel-rapl:0:0".into(),
            max_energy_range_uj: 65_712_999_613,
            tdp_uw: Some(125_000_000),
        },
    ];
    assert_eq!(wrap_warning(Duration::from_secs(1), &counters), None);
    // 65712 s / 125 W = 525 s.
    assert_eq!(wrap_warning(Duration::from_secs(525), &counters), None);
    let w = wrap_warning(Duration::from_secs(600), &counters).unwrap();
    assert!(w.contains("intel-rapl:0:0"), "{w}");
    assert!(w.contains("8m 45s"), "{w}");
    assert!(w.contains("its TDP 125 W"), "{w}");
    // Unknown TDP: the documented default.
    let unknown = [WrapInfo {
        tdp_uw: None,
        ..counters[0].clone()
    }];
    let w = wrap_warning(Duration::from_secs(3600), &unknown).unwrap();
    assert!(w.contains("an assumed 500 W"), "{w}");
    assert_eq!(wrap_warning(Duration::from_secs(3600), &[]), None);
}
