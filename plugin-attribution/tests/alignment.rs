//! RAPL, /proc/stat and per-process readings at different times: the attribution is
//! compared with the exact one, computed from the true usage at the RAPL interval bounds,
//! and must be within the documented interpolation bound.

mod common;

use std::collections::HashMap;

use alumet::prelude::*;
use common::{Harness, MS, T0};
use plugin_attribution::split::error_bound;
use plugin_attribution::{Config, Series};

/// 10 ms slots; true usage per slot, in ms.
const SLOT: u64 = 10;
const SLOTS: usize = 1100;
const PIDS: [u32; 3] = [11, 22, 33];
const JOULES: f64 = 10.0;

/// True per-slot usage: each process alternates busy and idle stretches of random
/// length; the kernel adds a little of its own.
struct Truth {
    procs: Vec<Vec<u64>>,
    machine: Vec<u64>,
}

impl Truth {
    fn random(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let procs: Vec<Vec<u64>> = PIDS
            .iter()
            .map(|_| {
                let mut v = Vec::with_capacity(SLOTS);
                while v.len() < SLOTS {
                    let (len, ms) = (rng.usize(1..40), if rng.bool() { SLOT } else { 0 });
                    v.extend(std::iter::repeat_n(ms, len));
                }
                v.truncate(SLOTS);
                v
            })
            .collect();
        let machine = (0..SLOTS)
            .map(|s| procs.iter().map(|p| p[s]).sum::<u64>() + rng.u64(0..3))
            .collect();
        Truth { procs, machine }
    }

    /// Cumulative usage at `t_ms` (a multiple of the slot).
    fn cumulative(per_slot: &[u64], t_ms: u64) -> u64 {
        per_slot[..(t_ms / SLOT) as usize].iter().sum()
    }
}

/// Feeds procfs every second at offset `procs_at`, /proc/stat at `kernel_at`, RAPL at
/// `rapl_at` (ms); returns the outputs and the test's own series of the readings.
fn run(
    truth: &Truth,
    procs_at: u64,
    kernel_at: u64,
    rapl_at: u64,
) -> (common::Out, Vec<Series>, Series) {
    let mut h = Harness::new(Config::default());
    let i = h.inputs;
    let mut events: Vec<(u64, u8)> = Vec::new();
    for k in 0..10u64 {
        events.extend([(procs_at + k * 1000, 0), (kernel_at + k * 1000, 1)]);
        if k < 9 {
            events.push((rapl_at + k * 1000, 2));
        }
    }
    events.sort();
    let (mut series, mut machine) = (vec![Series::new(); PIDS.len()], Series::new());
    let (mut last_procs, mut last_kernel): (Option<u64>, Option<u64>) = (None, None);
    let mut points = Vec::new();
    for (t, source) in events {
        let delta = |per_slot: &[u64], prev: Option<u64>| {
            Truth::cumulative(per_slot, t) - prev.map_or(0, |p| Truth::cumulative(per_slot, p))
        };
        let buffer = match source {
            0 => {
                let mut buffer = Vec::new();
                for ((pid, usage), s) in PIDS.iter().zip(&truth.procs).zip(&mut series) {
                    let d = if last_procs.is_some() {
                        delta(usage, last_procs)
                    } else {
                        0
                    };
                    s.add(last_procs, t, d as f64);
                    buffer.extend(i.proc(t, *pid, d, 0));
                }
                last_procs = Some(t);
                buffer
            }
            1 => {
                let d = if last_kernel.is_some() {
                    delta(&truth.machine, last_kernel)
                } else {
                    0
                };
                machine.add(last_kernel, t, d as f64);
                last_kernel = Some(t);
                i.kernel(t, d, 4 * 1000)
            }
            _ => vec![i.rapl(t, "package", JOULES)],
        };
        points.extend(h.feed(buffer).points);
    }
    points.extend(h.finish().points);
    (
        common::Out {
            points,
            outputs: h.outputs,
        },
        series,
        machine,
    )
}

/// Checks every RAPL interval after the first; returns the largest error seen.
fn check(truth: &Truth, procs_at: u64, kernel_at: u64, rapl_at: u64) -> f64 {
    let (out, series, machine) = run(truth, procs_at, kernel_at, rapl_at);
    let mut by_time: HashMap<(u64, u32), f64> = HashMap::new();
    for p in out
        .points
        .iter()
        .filter(|p| p.metric == out.outputs.attributed.raw())
    {
        if let ResourceConsumer::Process { pid } = p.consumer {
            *by_time
                .entry(((p.timestamp.unix_nanos() - T0) / MS, pid))
                .or_default() += p.value.as_f64();
        }
    }
    let mut worst: f64 = 0.0;
    for k in 1..9u64 {
        let (a, b) = (rapl_at + (k - 1) * 1000, rapl_at + k * 1000);
        let ns = |t: u64| t * 1_000_000;
        // The seconds the series hold are ms here: only ratios matter.
        let busy_true =
            (Truth::cumulative(&truth.machine, b) - Truth::cumulative(&truth.machine, a)) as f64;
        let busy = machine.delta(ns(a), ns(b));
        let busy_err = machine.bound_at(ns(a)) + machine.bound_at(ns(b));
        let used: f64 = series.iter().map(|s| s.delta(ns(a), ns(b))).sum();
        let errs: Vec<f64> = series
            .iter()
            .map(|s| s.bound_at(ns(a)) + s.bound_at(ns(b)))
            .collect();
        let denom = busy.max(used);
        let denom_err = busy_err.max(errs.iter().sum());
        for (j, pid) in PIDS.iter().enumerate() {
            let used_true = (Truth::cumulative(&truth.procs[j], b)
                - Truth::cumulative(&truth.procs[j], a)) as f64;
            let exact = JOULES * used_true / busy_true;
            let got = by_time.get(&(b, *pid)).copied().unwrap_or(0.0);
            let bound = error_bound(
                JOULES,
                series[j].delta(ns(a), ns(b)),
                errs[j],
                denom,
                denom_err,
            );
            assert!(
                (got - exact).abs() <= bound + 1e-9,
                "interval ({a}, {b}] pid {pid}: got {got}, exact {exact}, bound {bound}"
            );
            worst = worst.max((got - exact).abs());
        }
    }
    worst
}

#[test]
fn misaligned_readings_stay_within_the_interpolation_bound() {
    let mut worst: f64 = 0.0;
    for seed in 0..20 {
        let truth = Truth::random(seed);
        worst = worst.max(check(&truth, 0, 130, 370));
        worst = worst.max(check(&truth, 500, 20, 990));
    }
    // The readings really are misaligned: interpolation is not exact.
    assert!(worst > 0.01, "largest error {worst}");
}

#[test]
fn readings_taken_together_give_the_exact_split() {
    for seed in 100..110 {
        let truth = Truth::random(seed);
        let worst = check(&truth, 0, 0, 0);
        assert!(worst <= 1e-9, "largest error {worst}");
    }
}
