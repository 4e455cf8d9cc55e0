//! The plugin on fake GPUs, through the same sources as on NVML: energy from the counter
//! and from power, resets, repeated readings, features a device lacks, failing and lost
//! devices, per-process metrics, and minimal mode.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use alumet::pipeline::Event;
use alumet::plugin::Unavailable;
use alumet::prelude::*;
use common::*;
use plugin_nvidia::backend::{GpuError, MemoryInfo, ProcessMemory, ProcessSample, Utilization};
use plugin_nvidia::fake::{FakeBackend, FakeGpu};
use plugin_nvidia::{Config, NvidiaPlugin};

const ENERGY: &str = "nvml_energy_consumption";
const POWER: &str = "nvml_instant_power";

#[test]
fn energy_is_the_difference_of_the_counter_and_the_first_reading_is_a_baseline() {
    let g = gpu("00000000:01:00.0");
    g.set(|s| s.energy_mj = Ok(1_000_000));
    let run = start(config(""), std::slice::from_ref(&g));
    assert_eq!(poll(&run), 1);
    for counter in [1_000_250, 1_000_600, 1_500_600] {
        g.set(|s| s.energy_mj = Ok(counter));
        poll(&run);
    }
    let m = finish(run);
    assert_eq!(
        m.values(ENERGY, "00000000:01:00.0", ""),
        [250.0, 350.0, 500_000.0]
    );
}

#[test]
fn a_repeated_counter_value_emits_no_zero_energy_point() {
    let g = gpu("00000000:02:00.0");
    g.set(|s| s.energy_mj = Ok(7_000));
    let run = start(config(""), std::slice::from_ref(&g));
    poll(&run);
    poll(&run); // not refreshed yet
    poll(&run);
    g.set(|s| s.energy_mj = Ok(7_900));
    poll(&run);
    let m = finish(run);
    // One point for the whole span, none of value zero.
    assert_eq!(m.values(ENERGY, "00000000:02:00.0", ""), [900.0]);
    // Power is a gauge: every poll reports it.
    assert_eq!(m.values(POWER, "00000000:02:00.0", "").len(), 4);
}

#[test]
fn a_counter_that_goes_down_is_a_reset_logged_once_and_that_interval_is_dropped() {
    let bus = "00000000:03:00.0";
    let g = gpu(bus);
    g.set(|s| s.energy_mj = Ok(5_000_000));
    let run = start(config(""), std::slice::from_ref(&g));
    poll(&run);
    for counter in [5_000_100, 30, 80, 10, 20] {
        g.set(|s| s.energy_mj = Ok(counter));
        poll(&run);
    }
    let m = finish(run);
    assert_eq!(m.values(ENERGY, bus, ""), [100.0, 50.0, 10.0]);
    let logs = alumet::test_util::logs::lines_with(bus);
    let resets: Vec<_> = logs.iter().filter(|l| l.contains("went down")).collect();
    assert_eq!(resets.len(), 1, "{logs:?}");
    assert!(resets[0].starts_with("WARN"), "{resets:?}");
    assert!(resets[0].contains("from 5000100 to 30 mJ"), "{resets:?}");
}

#[test]
fn without_an_energy_counter_power_is_integrated_over_the_monotonic_clock() {
    let bus = "00000000:04:00.0";
    let g = gpu(bus);
    g.set(|s| {
        s.energy_mj = Err(GpuError::NotSupported);
        s.power_mw = Ok(250_000);
    });
    let run = start(config(""), std::slice::from_ref(&g));
    let before_first = Instant::now();
    poll(&run);
    let after_first = Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(30));
    poll(&run);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before_last = Instant::now();
    poll(&run);
    let after_last = Instant::now();
    let m = finish(run);
    let energy = m.values(ENERGY, bus, "");
    assert_eq!(energy.len(), 2, "no energy at the first reading");
    // Constant 250 W: energy = 250 W × the time between the first and last readings,
    // which lies between these bounds measured around the polls.
    let total_s = energy.iter().sum::<f64>() / 250_000.0;
    let shortest = before_last.duration_since(after_first).as_secs_f64();
    let longest = after_last.duration_since(before_first).as_secs_f64();
    assert!(
        (shortest..=longest).contains(&total_s),
        "{total_s} s not in [{shortest}, {longest}]"
    );
}

#[test]
fn a_falling_power_still_adds_energy() {
    let bus = "00000000:05:00.0";
    let g = gpu(bus);
    g.set(|s| {
        s.energy_mj = Err(GpuError::NotSupported);
        s.power_mw = Ok(300_000);
    });
    let run = start(config(""), std::slice::from_ref(&g));
    poll(&run);
    std::thread::sleep(std::time::Duration::from_millis(10));
    g.set(|s| s.power_mw = Ok(100_000));
    poll(&run);
    let m = finish(run);
    let energy = m.values(ENERGY, bus, "");
    assert_eq!(energy.len(), 1);
    // At least 10 ms at no less than 100 W.
    assert!(energy[0] >= 1_000.0, "{energy:?}");
}

#[test]
fn full_mode_reports_every_device_metric_with_its_attributes() {
    let bus = "00000000:06:00.0";
    let g = gpu(bus);
    g.set(|s| {
        s.power_mw = Ok(61_500);
        s.temperature_c = Ok(55);
        s.utilization = Ok(Utilization {
            gpu: 87,
            memory: 33,
        });
        s.memory = Ok(MemoryInfo {
            used: 10,
            free: 20,
            total: 40,
            reserved: 10,
        });
    });
    let run = start(config(""), &[g]);
    poll(&run);
    let m = finish(run);
    assert_eq!(m.values(POWER, bus, ""), [61_500.0]);
    assert_eq!(m.values("nvml_temperature_gpu", bus, ""), [55.0]);
    assert_eq!(m.values("nvml_gpu_utilization", bus, ""), [87.0]);
    assert_eq!(m.values("nvml_memory_utilization", bus, ""), [33.0]);
    assert_eq!(m.values("nvml_n_compute_processes", bus, ""), [0.0]);
    assert_eq!(m.values("nvml_n_graphic_processes", bus, ""), [0.0]);
    let memory: Vec<(String, f64)> = m
        .of("nvml_gpu_memory_info")
        .map(|p| {
            (
                p.attributes.get("kind").unwrap().to_string(),
                p.value.as_f64(),
            )
        })
        .collect();
    let expected = [
        ("used", 10.0),
        ("free", 20.0),
        ("total", 40.0),
        ("reserved", 10.0),
    ];
    assert_eq!(memory, expected.map(|(k, v)| (k.to_string(), v)));
    let clocks: Vec<(String, f64)> = m
        .of("nvml_clock_info")
        .map(|p| {
            (
                p.attributes.get("clock_type").unwrap().to_string(),
                p.value.as_f64(),
            )
        })
        .collect();
    let expected = [
        ("graphics", 1000.0),
        ("sm", 1100.0),
        ("memory", 1200.0),
        ("video", 900.0),
    ];
    assert_eq!(clocks, expected.map(|(k, v)| (k.to_string(), v)));
    assert!(m.points.iter().all(|p| p.resource.kind() == "gpu"));
}

#[test]
fn minimal_mode_reports_energy_and_power_only() {
    let bus = "00000000:07:00.0";
    let g = gpu(bus);
    g.set(|s| {
        s.compute = Ok(vec![ProcessMemory {
            pid: 5,
            used_bytes: Some(1),
        }])
    });
    let run = start(config("mode = 'minimal'"), std::slice::from_ref(&g));
    poll(&run);
    g.set(|s| s.energy_mj = Ok(42));
    poll(&run);
    let m = finish(run);
    let names: Vec<String> = m.metric_names().into_iter().collect();
    assert_eq!(names, [ENERGY, POWER]);
    assert_eq!(m.values(ENERGY, bus, ""), [42.0]);
}

#[test]
fn a_measurement_the_device_lacks_is_left_out_and_the_others_go_on() {
    let bus = "00000000:08:00.0";
    let g = gpu(bus);
    g.set(|s| {
        s.temperature_c = Err(GpuError::NotSupported);
        s.clocks_mhz = Err(GpuError::NotSupported);
    });
    let run = start(config(""), &[g]);
    poll(&run);
    let m = finish(run);
    let names = m.metric_names();
    assert!(!names.contains("nvml_temperature_gpu"), "{names:?}");
    assert!(!names.contains("nvml_clock_info"), "{names:?}");
    assert!(names.contains("nvml_gpu_utilization"), "{names:?}");
    assert!(names.contains(POWER), "{names:?}");
}

#[test]
fn a_gpu_that_fails_at_start_is_skipped_and_the_others_are_measured() {
    let (good, bad) = (gpu("00000000:09:00.0"), gpu("00000000:0A:00.0"));
    bad.set(|s| s.open = Err(GpuError::Other("Unknown Error".into())));
    let run = start(config(""), &[bad, good.clone()]);
    assert_eq!(poll(&run), 1);
    good.set(|s| s.energy_mj = Ok(3));
    poll(&run);
    let m = finish(run);
    assert_eq!(m.values(ENERGY, "00000000:09:00.0", ""), [3.0]);
    let logs = alumet::test_util::logs::lines_with("GPU 0 is skipped");
    assert!(logs.iter().any(|l| l.contains("Unknown Error")), "{logs:?}");
}

#[test]
fn a_gpu_that_fails_at_start_stops_the_agent_when_skipping_is_off() {
    let bad = gpu("00000000:0B:00.0");
    bad.set(|s| s.open = Err(GpuError::Other("Unknown Error".into())));
    let config = config("skip_failed_devices = false");
    let err = try_start(config, &[gpu("00000000:0C:00.0"), bad])
        .err()
        .unwrap();
    let message = format!("{err:#}");
    assert!(message.contains("GPU 1: Unknown Error"), "{message}");
    assert!(message.contains("skip_failed_devices = true"), "{message}");
    assert!(Unavailable::find(&err).is_none(), "{message}");
}

/// The error of the plugin's start, without a pipeline (as the agent probes plugins).
fn start_error(config: Config, gpus: &[FakeGpu]) -> anyhow::Error {
    let backend = Box::new(FakeBackend(gpus.to_vec()));
    let mut plugin = NvidiaPlugin::with_backend(config, backend).unwrap();
    alumet::plugin::probe_start(&mut plugin).expect_err("the start fails")
}

#[test]
fn no_gpu_that_works_is_unavailable_not_a_failure() {
    let bad = gpu("00000000:0D:00.0");
    bad.set(|s| s.open = Err(GpuError::Lost("GPU is lost".into())));
    let err = start_error(config(""), &[bad]);
    let unavailable = Unavailable::find(&err).expect("unavailable");
    assert!(
        unavailable.reason.contains("GPU 0: the GPU is lost"),
        "{unavailable:?}"
    );
    let err = start_error(config(""), &[]);
    let unavailable = Unavailable::find(&err).expect("unavailable");
    assert!(
        unavailable.reason.contains("no NVIDIA GPU"),
        "{unavailable:?}"
    );
}

#[test]
fn an_unavailable_plugin_leaves_the_pipeline_running_without_it() {
    let run = start(config(""), &[]);
    assert_eq!(poll(&run), 0);
    finish(run);
}

#[test]
fn a_missing_nvml_library_is_unavailable_with_the_reason_and_the_fix() {
    // The real loader, on a library that is not there.
    let config = config("nvml_library = '/nonexistent/libnvidia-ml.so.1'");
    let mut plugin = <NvidiaPlugin as Plugin>::init(config).unwrap();
    let err = alumet::plugin::probe_start(&mut plugin).err().unwrap();
    let unavailable = Unavailable::find(&err).expect("unavailable");
    assert!(
        unavailable
            .reason
            .contains("/nonexistent/libnvidia-ml.so.1"),
        "{unavailable:?}"
    );
    assert!(
        unavailable.fix.contains("install the NVIDIA driver"),
        "{unavailable:?}"
    );
}

#[test]
fn without_a_driver_the_default_config_is_unavailable() {
    if std::path::Path::new("/dev/nvidiactl").exists() {
        eprintln!("SKIPPED: this machine has an NVIDIA driver; gpu-check.sh covers it");
        return;
    }
    let mut plugin = <NvidiaPlugin as Plugin>::init(Config::default()).unwrap();
    let err = alumet::plugin::probe_start(&mut plugin).err().unwrap();
    let unavailable = Unavailable::find(&err).expect("unavailable");
    assert!(
        unavailable.reason.contains("libnvidia-ml.so.1"),
        "{unavailable:?}"
    );
}

#[test]
fn a_gpu_lost_while_running_stops_its_source_only() {
    let (a, b) = (gpu("00000000:0E:00.0"), gpu("00000000:0F:00.0"));
    let run = start(config(""), &[a.clone(), b.clone()]);
    poll(&run);
    a.set(|s| s.power_mw = Err(GpuError::Lost("GPU is lost".into())));
    poll(&run);
    for gpu in [&a, &b] {
        gpu.set(|s| {
            s.power_mw = Ok(1);
            s.energy_mj = Ok(9);
        });
    }
    poll(&run);
    let m = finish(run);
    assert_eq!(m.values(ENERGY, "00000000:0E:00.0", ""), Vec::<f64>::new());
    assert_eq!(m.values(ENERGY, "00000000:0F:00.0", ""), [9.0]);
    let logs = alumet::test_util::logs::lines_with("00000000:0E:00.0 is lost");
    assert!(!logs.is_empty());
}

fn sample(pid: u32, timestamp_us: u64, sm: u32) -> ProcessSample {
    ProcessSample {
        pid,
        timestamp_us,
        sm,
        memory: 5,
        encoder: 0,
        decoder: 0,
    }
}

#[test]
fn per_process_memory_and_utilization_are_reported_per_pid() {
    let bus = "00000000:10:00.0";
    let g = gpu(bus);
    let now_us = Timestamp::now().unix_nanos() / 1000;
    g.set(|s| {
        s.compute = Ok(vec![
            ProcessMemory {
                pid: 100,
                used_bytes: Some(1 << 30),
            },
            ProcessMemory {
                pid: 200,
                used_bytes: None,
            },
        ]);
        s.graphics = Ok(vec![ProcessMemory {
            pid: 300,
            used_bytes: Some(4096),
        }]);
        s.samples = Ok(vec![
            sample(100, now_us + 1, 60),
            sample(100, now_us + 2, 80),
            sample(200, now_us + 3, 10),
        ]);
    });
    let run = start(config(""), std::slice::from_ref(&g));
    poll(&run);
    // Samples already seen are not counted again; 200 has no new sample: its latest
    // utilization is repeated (the driver samples more slowly than a fast poll).
    g.set(|s| {
        s.samples
            .as_mut()
            .unwrap()
            .push(sample(100, now_us + 9, 20))
    });
    poll(&run);
    // 200 left the GPU: no utilization for it any more.
    g.set(|s| s.compute.as_mut().unwrap().retain(|p| p.pid != 200));
    poll(&run);
    let m = finish(run);
    assert_eq!(
        m.values("nvml_n_compute_processes", bus, ""),
        [2.0, 2.0, 1.0]
    );
    assert_eq!(m.values("nvml_n_graphic_processes", bus, ""), [1.0; 3]);
    assert_eq!(
        m.values("nvml_used_gpu_memory", bus, "100"),
        [1073741824.0; 3]
    );
    assert_eq!(m.values("nvml_used_gpu_memory", bus, "300"), [4096.0; 3]);
    assert!(m.values("nvml_used_gpu_memory", bus, "200").is_empty());
    assert_eq!(
        m.values("nvml_sm_utilization", bus, "100"),
        [70.0, 20.0, 20.0]
    );
    assert_eq!(m.values("nvml_sm_utilization", bus, "200"), [10.0, 10.0]);
    assert_eq!(m.values("nvml_memory_utilization", bus, "200"), [5.0, 5.0]);
    let consumers: Vec<_> = m
        .of("nvml_sm_utilization")
        .map(|p| p.consumer.kind())
        .collect();
    assert!(consumers.iter().all(|k| *k == "process"), "{consumers:?}");
}

#[test]
fn in_event_mode_only_the_announced_process_tree_is_reported() {
    // Exec mode announces the process it starts, watch mode one already running: the
    // filter follows either.
    let announcements: [fn(ResourceConsumer) -> Event; 2] =
        [Event::ConsumerStarted, Event::ConsumerWatched];
    for (i, announce) in announcements.into_iter().enumerate() {
        let bus = "00000000:11:00.0";
        let procfs = process_tree(&format!("nvidia-event-{i}"));
        let g = gpu(bus);
        let listed = [11, 20].map(|pid| ProcessMemory {
            pid,
            used_bytes: Some(64),
        });
        g.set(|s| s.compute = Ok(listed.to_vec()));
        let extra = format!(
            "processes = 'event'\nprocfs_root = '{}'",
            procfs.path().display()
        );
        let run = start(config(&extra), &[g]);
        poll(&run); // nothing announced yet
        run.control()
            .emit(&announce(ResourceConsumer::Process { pid: 10 }));
        poll(&run);
        let m = finish(run);
        // 11 is reported (a child of the announced 10), once: after the announcement.
        assert_eq!(m.values("nvml_used_gpu_memory", bus, "11"), [64.0]);
        assert!(m.values("nvml_used_gpu_memory", bus, "20").is_empty());
        // The device's own figures are not filtered.
        assert_eq!(m.values("nvml_n_compute_processes", bus, ""), [2.0, 2.0]);
    }
}

#[test]
fn processes_none_reports_no_per_process_metric() {
    let bus = "00000000:12:00.0";
    let g = gpu(bus);
    g.set(|s| {
        s.compute = Ok(vec![ProcessMemory {
            pid: 7,
            used_bytes: Some(1),
        }])
    });
    let run = start(config("processes = 'none'"), &[g]);
    poll(&run);
    let m = finish(run);
    assert!(m
        .points
        .iter()
        .all(|p| p.consumer.kind() == "local_machine"));
}

#[test]
fn a_transient_error_is_retried_and_the_other_metrics_are_kept() {
    let bus = "00000000:13:00.0";
    let g = gpu(bus);
    let run = start(config(""), std::slice::from_ref(&g));
    poll(&run);
    g.set(|s| {
        s.temperature_c = Err(GpuError::Other("Timeout".into()));
        s.energy_mj = Ok(10);
    });
    poll(&run);
    g.set(|s| s.temperature_c = Ok(61));
    poll(&run);
    let m = finish(run);
    assert_eq!(m.values("nvml_temperature_gpu", bus, ""), [40.0, 61.0]);
    assert_eq!(m.values(ENERGY, bus, ""), [10.0]);
}
