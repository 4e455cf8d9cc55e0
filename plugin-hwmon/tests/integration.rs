//! The power integration and the public Alumet flavors, on a chip's source polled directly
//! (the same discovery and source as the plugin's), at instants the test chooses.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use alumet::measurement::{MeasurementBuffer, MeasurementPoint, Timestamp};
use alumet::metrics::MetricRegistry;
use common::*;
use plugin_hwmon::discover::discover;
use plugin_hwmon::{ChipSource, Flavor, Metrics, ProcessList};

/// The sources of every chip of the fixture, in `flavor`, with their registry.
fn sources(f: &Fixture, flavor: Flavor) -> (MetricRegistry, Vec<ChipSource>) {
    sources_with(f, flavor, None)
}

fn sources_with(
    f: &Fixture,
    flavor: Flavor,
    proc_root: Option<&std::path::Path>,
) -> (MetricRegistry, Vec<ChipSource>) {
    let consumers = alumet::consumers::ConsumerRegistry::default();
    let processes = proc_root.map(|root| ProcessList::new(&consumers, root, Duration::ZERO));
    let mut registry = MetricRegistry::default();
    let metrics = Metrics::register(&mut registry, flavor).unwrap();
    let found = discover(&f.root().join("class/hwmon"), |_| true).unwrap();
    let sources = found
        .chips
        .iter()
        .filter_map(|c| ChipSource::new(c, &metrics, flavor, processes.as_ref()))
        .collect();
    (registry, sources)
}

fn poll(source: &mut ChipSource, at: Instant) -> Vec<MeasurementPoint> {
    let mut buffer = MeasurementBuffer::new();
    source
        .poll_at(buffer.as_accumulator(), Timestamp::now(), at)
        .unwrap();
    buffer.iter().cloned().collect()
}

fn named<'a>(
    registry: &MetricRegistry,
    points: &'a [MeasurementPoint],
    name: &str,
) -> Vec<&'a MeasurementPoint> {
    let id = registry.by_name(name).unwrap().0;
    points.iter().filter(|p| p.metric == id).collect()
}

#[test]
fn power_is_integrated_exactly_over_a_rising_and_falling_series() {
    let f = Fixture::copy("grace-hopper", "integral");
    let (registry, mut sources) = sources(&f, Flavor::Hwmon);
    // hwmon0 is acpitz, hwmon1 the Module power meter.
    let module = &mut sources[1];
    let t0 = Instant::now();
    let file = "hwmon1/device/power1_average";
    // 100 W, 300 W after 1 s, 300 W after 2 s more, 100 W after 0.5 s more.
    let series = [(0, 100), (1000, 300), (3000, 300), (3500, 100)];
    let mut energies = Vec::new();
    for (ms, watts) in series {
        f.set(file, &(watts * 1_000_000).to_string());
        let points = poll(module, t0 + Duration::from_millis(ms));
        let energy = named(&registry, &points, "hwmon_energy");
        assert!(energy.iter().all(|p| text(p, "method") == "integrated"));
        energies.push(energy.iter().map(|p| p.value.as_f64()).collect::<Vec<_>>());
    }
    // Trapezoids: (100+300)/2 × 1 s, (300+300)/2 × 2 s, (300+100)/2 × 0.5 s.
    assert_eq!(energies, [vec![], vec![200.0], vec![600.0], vec![100.0]]);
}

#[test]
fn a_failed_read_starts_the_integration_again_from_the_next_reading() {
    let f = Fixture::copy("grace-hopper", "integral-gap");
    let (registry, mut sources) = sources(&f, Flavor::Hwmon);
    let module = &mut sources[1];
    let t0 = Instant::now();
    let file = "hwmon1/device/power1_average";
    poll(module, t0);
    f.set(file, "oops");
    let at_gap = poll(module, t0 + Duration::from_secs(1));
    assert!(named(&registry, &at_gap, "hwmon_energy").is_empty());
    f.set(file, "200000000");
    let baseline = poll(module, t0 + Duration::from_secs(2));
    assert!(named(&registry, &baseline, "hwmon_energy").is_empty());
    let points = poll(module, t0 + Duration::from_secs(4));
    let energy = named(&registry, &points, "hwmon_energy");
    assert_eq!(
        energy.iter().map(|p| p.value.as_f64()).collect::<Vec<_>>(),
        [400.0]
    );
}

#[test]
fn under_the_grace_hopper_name_the_public_alumet_metrics_are_reported() {
    assert_eq!(Flavor::of("grace-hopper"), Flavor::GraceHopper);
    assert_eq!(Flavor::of("hwmon"), Flavor::Hwmon);
    let f = Fixture::copy("grace-hopper", "gh-flavor");
    let (registry, mut sources) = sources(&f, Flavor::GraceHopper);
    // acpitz has no metric in this flavor.
    assert_eq!(sources.len(), 4);
    let t0 = Instant::now();
    let first = poll(&mut sources[0], t0);
    let second = poll(&mut sources[0], t0 + Duration::from_secs(2));
    let power = named(&registry, &first, "grace_instant_power");
    assert_eq!(power.len(), 1);
    assert_eq!(power[0].value.as_f64(), 350_000_000.0, "µW");
    assert_eq!(text(power[0], "sensor"), "module");
    let energy = named(&registry, &second, "grace_energy_consumption");
    // 350 W for 2 s = 700 J = 700 000 mJ.
    assert_eq!(energy[0].value.as_f64(), 700_000.0);
    let unit = |n: &str| registry.by_name(n).unwrap().1.unit.to_string();
    assert_eq!(
        (
            unit("grace_instant_power"),
            unit("grace_energy_consumption")
        ),
        ("uW".into(), "mJ".into())
    );
    assert!(registry.by_name("hwmon_power").is_none());
}

#[test]
fn under_the_jetson_name_the_public_alumet_metrics_are_reported() {
    let f = Fixture::copy("jetson-orin", "jetson-flavor");
    let (registry, mut sources) = sources(&f, Flavor::Jetson);
    let points = poll(&mut sources[0], Instant::now());
    let value = |name: &str, channel: &str| {
        let p = named(&registry, &points, name);
        let p = p
            .iter()
            .find(|p| text(p, "ina_channel_label") == channel)
            .unwrap();
        p.value.as_f64()
    };
    assert_eq!(value("input_voltage", "VDD_IN"), 19072.0);
    assert_eq!(value("input_current", "VDD_IN"), 386.0);
    // 7 361 792 µW is 7362 mW, rounded.
    assert_eq!(value("input_power", "VDD_IN"), 7362.0);
    assert_eq!(value("input_power", "VDD_SOC"), 3050.0);
    assert_eq!(points.len(), 9);
    let p = &named(&registry, &points, "input_power")[0];
    assert_eq!(text(p, "ina_channel_id"), "U64(1)");
}

/// A process of a fixture procfs: its `stat` (which lists it, as in a real `/proc`) and
/// an empty `fdinfo` directory.
fn process(root: &std::path::Path, pid: u32) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(dir.join("fdinfo")).unwrap();
    let stat = format!(
        "{pid} (app) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 5 2 0 0 20 0 1 0 1000 \
         10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
    );
    std::fs::write(dir.join("stat"), stat).unwrap();
}

/// An fdinfo file of an amdgpu client (of a process made by [`process`]).
fn client(root: &std::path::Path, pid: u32, fd: u32, pdev: &str, id: u64, gfx_ns: u64) {
    process(root, pid);
    let dir = root.join(format!("{pid}/fdinfo"));
    let text = format!(
        "pos:\t0\nflags:\t02100002\nmnt_id:\t24\ndrm-driver:\tamdgpu\ndrm-client-id:\t{id}\n\
         drm-pdev:\t{pdev}\ndrm-memory-vram:\t24 KiB\ndrm-engine-gfx:\t{gfx_ns} ns\n\
         drm-engine-compute:\t0 ns\n"
    );
    std::fs::write(dir.join(fd.to_string()), text).unwrap();
}

#[test]
fn amdgpu_processes_get_their_engine_time_as_a_utilization_from_fdinfo() {
    let f = Fixture::copy("amd-gpu-server", "fdinfo");
    let proc = alumet::test_util::TempDir::new("hwmon-fdinfo-proc");
    let gpu = "0000:03:00.0";
    // Process 1234: one client, two fds (dup) that must count once; 77: another GPU;
    // 999: an Intel GPU's client; 42: a process without DRM files.
    client(proc.path(), 1234, 5, gpu, 18, 1_000_000_000);
    client(proc.path(), 1234, 6, gpu, 18, 1_000_000_000);
    client(proc.path(), 77, 4, "0000:04:00.0", 19, 1_000_000_000);
    process(proc.path(), 999);
    std::fs::write(
        proc.path().join("999/fdinfo/3"),
        "drm-driver:\ti915\ndrm-client-id:\t2\n",
    )
    .unwrap();
    process(proc.path(), 42);
    let (registry, mut sources) = sources_with(&f, Flavor::Hwmon, Some(proc.path()));
    let amdgpu = &mut sources[1];
    let t0 = Instant::now();
    let util = |points: &[MeasurementPoint]| -> Vec<(String, f64)> {
        named(&registry, points, "amdgpu_process_utilization")
            .iter()
            .map(|p| (p.consumer.id().to_string(), p.value.as_f64()))
            .collect()
    };
    assert_eq!(util(&poll(amdgpu, t0)), [], "the first scan is a baseline");
    // 250 ms of engine time in 1 s: 25 %. A new process (555) is a baseline.
    client(proc.path(), 1234, 5, gpu, 18, 1_250_000_000);
    client(proc.path(), 1234, 6, gpu, 18, 1_250_000_000);
    client(proc.path(), 555, 3, gpu, 20, 4_000_000_000);
    let points = poll(amdgpu, t0 + Duration::from_secs(1));
    assert_eq!(util(&points), [("1234".to_string(), 25.0)]);
    let p = &named(&registry, &points, "amdgpu_process_utilization")[0];
    assert_eq!(
        p.resource,
        alumet::measurement::Resource::Gpu { bus_id: gpu.into() }
    );
    // 555 used 500 ms of 2 s: 25 %; 1234 nothing.
    client(proc.path(), 555, 3, gpu, 20, 4_500_000_000);
    let mut got = util(&poll(amdgpu, t0 + Duration::from_secs(3)));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, [("1234".to_string(), 0.0), ("555".to_string(), 25.0)]);
}

#[test]
fn a_kernel_that_does_not_tell_engine_times_gets_no_per_process_metric() {
    let f = Fixture::copy("amd-gpu-server", "old-kernel");
    let proc = alumet::test_util::TempDir::new("hwmon-old-kernel-proc");
    std::fs::create_dir_all(proc.path().join("sys/kernel")).unwrap();
    let registered = |release: &str| {
        std::fs::write(proc.path().join("sys/kernel/osrelease"), release).unwrap();
        let config = f.config(&format!(
            "procfs_root = {:?}",
            proc.path().display().to_string()
        ));
        let run = common::start(&config);
        let found = run.metric::<f64>("amdgpu_process_utilization").is_some();
        run.shutdown();
        found
    };
    // Without the metric, the attribution reports the GPU's energy as unattributed
    // (no_usage_data) instead of idle: plugin-attribution/tests/amdgpu.rs.
    assert!(!registered("5.15.0-91-generic\n"));
    assert!(registered("5.19.0\n"));
    assert!(registered("6.1.0-18-amd64\n"));
}
