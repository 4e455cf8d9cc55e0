//! CPU cost of the pipeline per poll: a synthetic source (N points per poll, flushed every
//! poll) into a null output, against the floor of an empty periodic wake-up at the same
//! frequency. `cargo run --release -p alumet --example pipeline_cost -- [HZ] [POINTS] [SECONDS]`
//!
//! The `bench/` crate turns this into the project's benchmark suite.

use std::time::{Duration, Instant};

use alumet::pipeline::PipelineBuilder;
use alumet::prelude::*;
use alumet::test_util::TestPlugin;

use alumet::test_util::cost::{cpu_time, floor, synthetic_source};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hz: u64 = args.first().map_or(Ok(1000), |a| a.parse())?;
    let points: u64 = args.get(1).map_or(Ok(10), |a| a.parse())?;
    let secs: u64 = args.get(2).map_or(Ok(5), |a| a.parse())?;
    let period = Duration::from_nanos(1_000_000_000 / hz);
    let run = Duration::from_secs(secs);

    let floor_us = floor(period, run);

    let polls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let polls2 = polls.clone();
    let mut builder = PipelineBuilder::new();
    builder.plugin(Box::new(TestPlugin::new("bench", move |alumet| {
        let m = alumet.create_metric::<u64>("bench_value", Unit::Unity, "synthetic")?;
        let source = synthetic_source(m, points, polls2);
        alumet.add_source("synthetic", source, Trigger::every(period))?;
        let null = |_b: &MeasurementBuffer, _c: &OutputContext| Ok(());
        alumet.add_output("null", null)?;
        Ok(())
    })));
    let mut pipeline = builder.start()?;
    std::thread::sleep(Duration::from_millis(200));
    let (cpu0, polls0, t0) = (
        cpu_time(),
        polls.load(std::sync::atomic::Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(run);
    let (cpu1, polls1, t1) = (
        cpu_time(),
        polls.load(std::sync::atomic::Ordering::Relaxed),
        Instant::now(),
    );
    let report = pipeline.shutdown();
    let n = (polls1 - polls0) as f64;
    let us_per_poll = (cpu1 - cpu0).as_secs_f64() * 1e6 / n;
    println!(
        "{hz} Hz, {points} points/poll, flush every poll, null output: achieved {:.0} Hz, \
         {us_per_poll:.1} µs CPU/poll, floor {floor_us:.1} µs ({:.2}x), {:.0} ns/point, dropped {}",
        n / (t1 - t0).as_secs_f64(),
        us_per_poll / floor_us,
        us_per_poll * 1000.0 / points as f64,
        report.outputs.iter().map(|o| o.dropped_points).sum::<u64>()
    );
    Ok(())
}
