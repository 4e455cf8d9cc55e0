//! GPU energy split by per-process SM utilization, with fake NVML points.

mod common;

use alumet::prelude::*;
use common::{close, gpu, Harness};
use plugin_attribution::Config;

const TOL: f64 = 1e-9;

fn attributed_on(out: &common::Out, bus: &str, pid: u32) -> f64 {
    out.points
        .iter()
        .filter(|p| p.metric == out.outputs.attributed.raw() && p.resource == gpu(bus))
        .filter(|p| p.consumer == ResourceConsumer::Process { pid })
        .map(|p| p.value.as_f64())
        .sum()
}

#[test]
fn gpu_energy_is_split_by_sm_utilization_and_an_unused_gpu_is_idle() {
    let mut h = Harness::new(Config::default());
    let i = h.inputs;
    // First readings: energy of an unknown period.
    let out = h.feed(vec![
        i.gpu_energy(0, "A", 1000.0),
        i.gpu_energy(0, "B", 500.0),
    ]);
    close(out.unattributed("gpu", "first_reading"), 1.5, TOL);

    // 1 s later: 100 J (in mJ) on A, used 60 % by 1 and 20 % by 2; B ran nothing.
    let out = h.feed(vec![
        i.gpu_util(1000, "A", 1, 60.0),
        i.gpu_util(1000, "A", 2, 20.0),
        i.gpu_energy(1000, "A", 100_000.0),
        i.gpu_energy(1000, "B", 40_000.0),
    ]);
    close(attributed_on(&out, "A", 1), 75.0, TOL);
    close(attributed_on(&out, "A", 2), 25.0, TOL);
    close(out.idle("gpu"), 40.0, TOL);
    assert_eq!(attributed_on(&out, "B", 1), 0.0);
    assert!(out.max_imbalance() <= TOL);
    let sources: Vec<_> = out
        .points
        .iter()
        .map(|p| p.attributes.get("source").map(|s| s.to_string()))
        .collect();
    assert!(
        sources.iter().all(|s| s.as_deref() == Some("nvml")),
        "{sources:?}"
    );

    // Energy read before the utilization in the same poll; 2 is absent (used nothing).
    let out = h.feed(vec![
        i.gpu_energy(2000, "A", 50_000.0),
        i.gpu_util(2000, "A", 1, 30.0),
    ]);
    close(attributed_on(&out, "A", 1), 50.0, TOL);
    close(attributed_on(&out, "A", 2), 0.0, TOL);
}

#[test]
fn gpu_idle_power_is_taken_first() {
    let mut h = Harness::new(Config {
        idle_power: [("gpu".to_string(), 30.0)].into_iter().collect(),
        ..Config::default()
    });
    let i = h.inputs;
    h.feed(vec![i.gpu_energy(0, "A", 0.0)]);
    let out = h.feed(vec![
        i.gpu_util(1000, "A", 1, 75.0),
        i.gpu_util(1000, "A", 2, 25.0),
        i.gpu_energy(1000, "A", 100_000.0),
    ]);
    close(out.idle("gpu"), 30.0, TOL);
    close(attributed_on(&out, "A", 1), 52.5, TOL);
    close(attributed_on(&out, "A", 2), 17.5, TOL);
    // No process: everything is idle, not only the baseline.
    let out = h.feed(vec![i.gpu_energy(2000, "A", 45_000.0)]);
    close(out.idle("gpu"), 45.0, TOL);
}
