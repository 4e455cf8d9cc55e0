//! Property test: on thousands of random intervals (random poll periods and phases, flush
//! batches, processes that come and go, CPU data that stops, idle settings), every energy
//! reading is attributed exactly once, its parts are never negative and add up to it.
//!
//! Random inputs come from `fastrand` with fixed seeds: deterministic, a failure names its
//! seed, and no new dependency to build (proptest would add shrinking, at the cost of a
//! larger build on the shared 2-core machines).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use alumet::prelude::*;
use common::{Harness, Inputs, MS, T0};
use plugin_attribution::{Config, IdleMode};

const DOMAINS: [&str; 2] = ["package", "dram"];

/// One source's readings every 100 ms to 2 s, flushed every 1 to 4 polls, as a
/// pipeline would.
fn buffers(
    rng: &mut fastrand::Rng,
    end: u64,
    mut poll: impl FnMut(&mut fastrand::Rng, u64, u64) -> Vec<MeasurementPoint>,
) -> Vec<(u64, Vec<MeasurementPoint>)> {
    let period = rng.u64(100..2000);
    let batch = rng.usize(1..5);
    let mut t = rng.u64(0..period);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let mut n = 0;
    while t <= end {
        pending.extend(poll(rng, t, period));
        n += 1;
        if n % batch == 0 {
            out.push((t, std::mem::take(&mut pending)));
        }
        t += period + rng.u64(0..period / 10 + 1);
    }
    out.push((end, pending));
    out
}

fn random_config(rng: &mut fastrand::Rng) -> Config {
    let idle = if rng.bool() {
        IdleMode::Fixed
    } else {
        IdleMode::Measured
    };
    let idle_power = DOMAINS
        .iter()
        .map(|d| (d.to_string(), rng.f64() * 20.0))
        .collect();
    Config {
        idle,
        idle_power,
        max_delay: Duration::from_millis(rng.u64(500..5000)),
        ..Config::default()
    }
}

/// The readings of one random scenario, buffers sorted by flush time; and the RAPL
/// readings, per (time in ms, domain).
type Scenario = (
    Vec<(u64, Vec<MeasurementPoint>)>,
    BTreeMap<(u64, String), f64>,
);

fn scenario(rng: &mut fastrand::Rng, i: Inputs) -> Scenario {
    let end = rng.u64(5_000..30_000);
    let mut energy = BTreeMap::new();
    let mut all = buffers(rng, end, |rng, t, _| {
        DOMAINS
            .iter()
            .map(|d| {
                let joules = if rng.u8(0..10) == 0 {
                    0.0
                } else {
                    rng.f64() * 100.0
                };
                energy.insert((t, d.to_string()), joules);
                i.rapl(t, d, joules)
            })
            .collect()
    });
    let kernel_end = if rng.bool() { end } else { rng.u64(0..end) };
    all.extend(buffers(rng, kernel_end, |rng, t, p| {
        i.kernel(t, rng.u64(0..=4 * p), 4 * p)
    }));
    let lives: Vec<(u32, u64, u64)> = (0..rng.u32(0..6))
        .map(|pid| {
            let start = rng.u64(0..end);
            (pid + 1, start, rng.u64(start..=end))
        })
        .collect();
    all.extend(buffers(rng, end, |rng, t, p| {
        let alive = lives.iter().filter(|(_, s, e)| (*s..=*e).contains(&t));
        alive
            .flat_map(|(pid, _, _)| i.proc(t, *pid, rng.u64(0..=p), rng.u64(0..=p / 4)))
            .collect()
    }));
    // Flush order: by flush time, ties in random order.
    all.sort_by_key(|(t, _)| (*t, rng.u32(..)));
    (all, energy)
}

#[test]
fn parts_add_up_to_every_reading_exactly_once() {
    let (mut intervals, mut attributed) = (0, 0);
    for seed in 0..300 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut h = Harness::new(random_config(&mut rng));
        let (buffers, energy) = scenario(&mut rng, h.inputs);
        let mut points = Vec::new();
        for (_, buffer) in buffers {
            points.extend(h.feed(buffer).points);
        }
        points.extend(h.finish().points);
        assert_eq!(h.attribution.pending_intervals(), 0, "seed {seed}");

        let o = h.outputs;
        let parts = [o.attributed.raw(), o.idle.raw(), o.unattributed.raw()];
        let mut sums: HashMap<(u64, String), f64> = HashMap::new();
        let mut imbalances: HashMap<(u64, String), f64> = HashMap::new();
        for p in &points {
            let key = (
                (p.timestamp.unix_nanos() - T0) / MS,
                p.attributes
                    .get("domain")
                    .map_or_else(String::new, |d| d.to_string()),
            );
            let v = p.value.as_f64();
            attributed += usize::from(p.metric == o.attributed.raw() && v > 0.0);
            if parts.contains(&p.metric) {
                assert!(v >= -1e-12, "seed {seed}: negative part {p:?}");
                *sums.entry(key).or_default() += v;
            } else if p.metric == o.imbalance.raw() {
                assert!(
                    imbalances.insert(key.clone(), v).is_none(),
                    "seed {seed}: {key:?} attributed twice"
                );
            }
        }
        assert_eq!(
            imbalances.len(),
            energy.len(),
            "seed {seed}: every reading attributed once"
        );
        for (key, joules) in &energy {
            let tol = 1e-9 * joules.max(1.0);
            let sum = sums.get(key).copied().unwrap_or(0.0);
            assert!(
                (sum - joules).abs() <= tol,
                "seed {seed} {key:?}: parts {sum} != {joules}"
            );
            let imbalance = imbalances.get(key).copied().unwrap_or(f64::NAN);
            assert!(
                imbalance.abs() <= tol,
                "seed {seed} {key:?}: imbalance {imbalance}"
            );
        }
        intervals += energy.len();
    }
    assert!(intervals > 5000, "only {intervals} intervals");
    assert!(attributed > 2000, "only {attributed} attributed points");
}
