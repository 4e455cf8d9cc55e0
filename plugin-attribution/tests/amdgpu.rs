//! AMD GPU energy from the hwmon plugin (`hwmon_energy` on a `gpu` resource) split by its
//! per-process engine utilization (`amdgpu_process_utilization`), as NVML's GPUs are; its
//! other energy (a power meter, Grace) left alone; without per-process data, unattributed.

mod common;

use alumet::metrics::MetricRegistry;
use alumet::prelude::*;
use common::{close, gpu, ts, Harness, Inputs};
use plugin_attribution::{Attribution, Config, OutputMetrics};

const TOL: f64 = 1e-9;
const GPU: &str = "0000:03:00.0";

/// The harness with hwmon's metrics, registered as the hwmon plugin does (the
/// utilization only when `with_processes`).
fn harness(with_processes: bool) -> (Harness, MetricId<f64>, Option<MetricId<f64>>) {
    let mut metrics = MetricRegistry::new();
    let inputs = Inputs::register(&mut metrics);
    let energy = metrics
        .register("hwmon_energy", Unit::Joule, "energy")
        .expect("energy");
    let util = with_processes.then(|| {
        metrics
            .register("amdgpu_process_utilization", Unit::Percent, "use")
            .expect("util")
    });
    let outputs = OutputMetrics::register(&mut metrics).expect("outputs");
    let h = Harness {
        attribution: Attribution::new(Config::default(), outputs),
        metrics,
        inputs,
        outputs,
    };
    (h, energy, util)
}

fn energy(id: MetricId<f64>, t_ms: u64, resource: Resource, joules: f64) -> MeasurementPoint {
    MeasurementPoint::new(
        ts(t_ms),
        id,
        resource,
        ResourceConsumer::LocalMachine,
        joules,
    )
    .with_attributes(Attributes::new([("chip", "amdgpu"), ("method", "counter")]))
}

fn util(id: MetricId<f64>, t_ms: u64, pid: u32, percent: f64) -> MeasurementPoint {
    MeasurementPoint::new(
        ts(t_ms),
        id,
        gpu(GPU),
        ResourceConsumer::Process { pid },
        percent,
    )
}

fn on_process(out: &common::Out, pid: u32) -> f64 {
    out.points
        .iter()
        .filter(|p| p.metric == out.outputs.attributed.raw())
        .filter(|p| p.consumer == ResourceConsumer::Process { pid })
        .map(|p| p.value.as_f64())
        .sum()
}

#[test]
fn amd_gpu_energy_is_split_by_engine_utilization_marked_source_hwmon() {
    let (mut h, e, u) = harness(true);
    let u = u.expect("registered");
    let out = h.feed(vec![energy(e, 0, gpu(GPU), 3.0)]);
    close(out.unattributed("gpu", "first_reading"), 3.0, TOL);
    // 1 s later: 90 J, process 1 kept the engines busy 50 % of the time, process 2 25 %.
    let out = h.feed(vec![
        energy(e, 1000, gpu(GPU), 90.0),
        util(u, 1000, 1, 50.0),
        util(u, 1000, 2, 25.0),
    ]);
    close(on_process(&out, 1), 60.0, TOL);
    close(on_process(&out, 2), 30.0, TOL);
    assert!(out.max_imbalance() <= TOL);
    assert!(out.points.iter().all(|p| p
        .attributes
        .get("source")
        .map(|s| s.to_string())
        .as_deref()
        == Some("hwmon")));
}

#[test]
fn hwmon_energy_of_other_resources_is_not_attributed() {
    let (mut h, e, _) = harness(true);
    let meter = Resource::custom("hwmon_chip", "power_meter/ACPI000D:00");
    h.feed(vec![energy(e, 0, meter.clone(), 200.0)]);
    let out = h.feed(vec![energy(e, 1000, meter, 245.0)]);
    assert!(out.points.is_empty(), "{:?}", out.points);
}

#[test]
fn without_per_process_data_amd_gpu_energy_is_unattributed_with_the_reason() {
    let (mut h, e, _) = harness(false);
    h.feed(vec![energy(e, 0, gpu(GPU), 0.0)]);
    let out = h.feed(vec![energy(e, 1000, gpu(GPU), 40.0)]);
    close(out.unattributed("gpu", "no_usage_data"), 40.0, TOL);
    assert_eq!(on_process(&out, 1), 0.0);
}
