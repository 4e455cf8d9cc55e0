//! perf_event without the syscall (this machine has no `power` PMU): PMU discovery and the
//! parsing of events, scales and units from the fixture trees; the count-to-joule logic
//! through the `EnergyReader` trait; the fall back to powercap when the PMU cannot be opened.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alumet::prelude::*;
use alumet::test_util::TestPlugin;
use common::*;
use plugin_rapl::domains::{self, Domain, Key, Vendor};
use plugin_rapl::perf::{self, Pmu};
use plugin_rapl::source::{Counter, EnergyReader, Group, Scale};
use plugin_rapl::{topology, RaplSource};

/// 2^-32 J, as the fixtures write it.
const PKG_SCALE: f64 = 1.0 / 4_294_967_296.0;
/// 2^-14 J.
const RAM_SCALE: f64 = 6.103515625e-05;

fn discover(f: &Fixture) -> Pmu {
    perf::discover(f.root()).unwrap().unwrap()
}

/// The keys the fixture's PMU gives, after the dedup rules.
fn kept_keys(f: &Fixture, pmu: &Pmu) -> Vec<Key> {
    let cpus = topology::cpus(f.root(), &pmu.cpus);
    let all = pmu.candidates(&cpus);
    let candidates: Vec<_> = all.iter().map(|c| c.0.clone()).collect();
    let vendor = topology::vendor(f.root());
    let selection = domains::select(&candidates, vendor);
    selection.kept.iter().map(|&i| candidates[i].key).collect()
}

#[test]
fn server_pmu_has_package_and_ram_events_on_one_cpu_per_socket() {
    let f = Fixture::copy("intel-server-2s", "perf-server");
    let pmu = discover(&f);
    assert_eq!(pmu.pmu_type, 14);
    assert_eq!(pmu.cpus, [0, 18]);
    let events: Vec<_> = pmu
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.domain, e.config, e.scale))
        .collect();
    assert_eq!(
        events,
        [
            ("energy-pkg", Domain::Package, 0x02, PKG_SCALE),
            ("energy-ram", Domain::Dram, 0x03, RAM_SCALE)
        ]
    );
    assert!(pmu.ignored.is_empty());
    let (p, d) = (Domain::Package, Domain::Dram);
    let want = [
        Key::new(0, p),
        Key::new(0, d),
        Key::new(1, p),
        Key::new(1, d),
    ];
    assert_eq!(kept_keys(&f, &pmu), want);
}

#[test]
fn laptop_pmu_has_four_domains_and_psys_is_platform() {
    let f = Fixture::copy("intel-laptop", "perf-laptop");
    let pmu = discover(&f);
    let domains: Vec<_> = pmu.events.iter().map(|e| (e.domain, e.config)).collect();
    let want = [
        (Domain::Package, 2),
        (Domain::Pp0, 1),
        (Domain::Pp1, 4),
        (Domain::Platform, 5),
    ];
    assert_eq!(domains, want);
    let keys = kept_keys(&f, &pmu);
    assert_eq!(keys.len(), 4);
    assert_eq!(keys[3].resource(), Resource::LocalMachine);
}

#[test]
fn amd_pmu_has_the_package_event_once_per_socket() {
    let f = Fixture::copy("amd-epyc", "perf-amd");
    let pmu = discover(&f);
    assert_eq!(pmu.events.len(), 1);
    assert_eq!(topology::vendor(f.root()), Vendor::Amd);
    let cpus = topology::cpus(f.root(), &pmu.cpus);
    assert_eq!(cpus[1].package, 1);
    let want = [Key::new(0, Domain::Package), Key::new(1, Domain::Package)];
    assert_eq!(kept_keys(&f, &pmu), want);
}

#[test]
fn unusable_events_are_ignored_with_a_reason_and_formats_place_the_bits() {
    let f = Fixture::copy("intel-server-2s", "perf-parse");
    let events = "bus/event_source/devices/power/events";
    f.write(&format!("{events}/energy-ram.unit"), "Watts\n");
    f.write(&format!("{events}/energy-pkg.scale"), "-1\n");
    f.write(&format!("{events}/energy-cores"), "event=0x01\n");
    f.write(&format!("{events}/energy-cores.unit"), "Joules\n");
    f.write(&format!("{events}/energy-cores.scale"), "1e-6\n");
    f.write(
        "bus/event_source/devices/power/format/event",
        "config:8-15\n",
    );
    let pmu = discover(&f);
    assert_eq!(pmu.events.len(), 1);
    assert_eq!(pmu.events[0].name, "energy-cores");
    assert_eq!(pmu.events[0].config, 0x0100);
    let mut ignored = pmu.ignored.clone();
    ignored.sort();
    assert_eq!(ignored.len(), 2, "{ignored:?}");
    assert!(
        ignored[0].contains("energy-pkg: not a scale: \"-1\""),
        "{ignored:?}"
    );
    assert!(
        ignored[1].contains("energy-ram: unit \"Watts\""),
        "{ignored:?}"
    );
    // No PMU at all.
    std::fs::remove_dir_all(f.root().join("bus")).unwrap();
    assert_eq!(perf::discover(f.root()).unwrap(), None);
}

/// A perf counter whose count the test sets.
struct FakeCount(Arc<AtomicU64>, String);

impl EnergyReader for FakeCount {
    fn read(&mut self) -> io::Result<u64> {
        Ok(self.0.load(Ordering::SeqCst))
    }
    fn label(&self) -> &str {
        &self.1
    }
}

/// One group per event of the fixture's PMU, for package 0, read from `counts`.
fn fake_groups(f: &Fixture, pmu: &Pmu, counts: &[&Arc<AtomicU64>]) -> Vec<Group> {
    counts
        .iter()
        .zip(&pmu.events)
        .map(|(count, event)| {
            let label = format!("fake {} {}", event.name, f.root().display());
            let reader = FakeCount(Arc::clone(count), label);
            let counter = Counter::new(Box::new(reader), CounterDiff::without_wrap());
            let scale = Scale::JoulesPerCount(event.scale);
            Group::new(Key::new(0, event.domain), scale, vec![counter])
        })
        .collect()
}

#[test]
fn counts_times_the_scale_give_exact_joules() {
    let f = Fixture::copy("intel-server-2s", "perf-joules");
    let pmu = discover(&f);
    let (pkg, ram) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let groups = fake_groups(&f, &pmu, &[&pkg, &ram]);
    let mut tester = alumet::test_util::PipelineTester::new();
    tester.any_plugin(TestPlugin::new("rapl", move |alumet| {
        let metric = alumet.create_metric::<f64>("rapl_consumed_energy", Unit::Joule, "test")?;
        alumet.add_source("energy", RaplSource::new(metric, groups), Trigger::manual())?;
        Ok(())
    }));
    capture_logs();
    let run = tester.start().unwrap();
    pkg.store(1 << 40, Ordering::SeqCst);
    ram.store(12_345, Ordering::SeqCst);
    poll(&run);
    // 3 * 2^32 counts of 2^-32 J; 16384 counts of 2^-14 J: exactly 3 J and 1 J.
    pkg.fetch_add(3 << 32, Ordering::SeqCst);
    ram.fetch_add(16_384, Ordering::SeqCst);
    poll(&run);
    // A 64-bit count that goes down was reset: no point for that interval.
    pkg.store(5, Ordering::SeqCst);
    ram.fetch_add(1, Ordering::SeqCst);
    poll(&run);
    pkg.store(5 + (1 << 31), Ordering::SeqCst);
    poll(&run);
    let (_, points) = run.shutdown();

    let polls = per_poll(&points);
    let pkg0 = key("cpu_package", "0", "package");
    let ram0 = key("cpu_package", "0", "dram");
    assert_eq!(
        polls[0],
        expect(&[
            ("cpu_package", "0", "package", 3.0),
            ("cpu_package", "0", "dram", 1.0)
        ])
    );
    assert_eq!(polls[1].get(&pkg0), None);
    assert_eq!(polls[1][&ram0], RAM_SCALE);
    assert_eq!(polls[2][&pkg0], 0.5);
    let resets = logs_with(&format!("fake energy-pkg {} went back", f.root().display()));
    assert_eq!(resets.len(), 1, "{resets:?}");
}

#[test]
fn a_pmu_that_cannot_be_opened_falls_back_to_powercap() {
    let f = Fixture::copy("intel-server-2s", "perf-fallback");
    // No kernel has a PMU of this type: perf_event_open fails (ENOENT; EPERM or EACCES
    // where a seccomp filter or the paranoia level refuses it first).
    f.write("bus/event_source/devices/power/type", "4294967295\n");
    f.set("intel-rapl:0", 1_000_000);
    let config = f
        .config()
        .replace("no_perf_events = true", "no_perf_events = false");
    let run = start(&config);
    poll(&run);
    f.set("intel-rapl:0", 3_000_000);
    poll(&run);
    let (_, points) = run.shutdown();
    let polls = per_poll(&points);
    assert_eq!(polls.len(), 1);
    assert_eq!(polls[0][&key("cpu_package", "0", "package")], 2.0);
    assert_eq!(polls[0].len(), 4);
}
