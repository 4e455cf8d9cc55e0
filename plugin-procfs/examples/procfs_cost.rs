//! CPU cost per poll of the procfs kernel and memory sections (`/proc/stat` and
//! `/proc/meminfo`, default metrics), run by the real pipeline into a null output (on its own
//! thread, as every output), against the floor of an empty periodic wake-up at the same frequency.
//!
//! ```sh
//! cargo run --release -p plugin-procfs --example procfs_cost -- [HZ] [SECONDS] [FLUSH]
//! ```
//!
//! `FLUSH` is a humantime duration (`100ms`); the default hands the points on every poll.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alumet::pipeline::PipelineBuilder;
use alumet::plugin::PluginMetadata;
use alumet::prelude::*;
use alumet::test_util::TestPlugin;
use plugin_procfs::ProcfsPlugin;

use alumet::test_util::cost::{cpu_time, floor};

fn procfs(period: Duration, flush: &str) -> anyhow::Result<Box<dyn alumet::plugin::AnyPlugin>> {
    let p = format!("{}ns", period.as_nanos());
    let text = format!(
        "kernel = {{ poll_interval = \"{p}\", flush_interval = \"{flush}\" }}\n\
         memory = {{ poll_interval = \"{p}\", flush_interval = \"{flush}\" }}"
    );
    let table: toml::Table = text.parse()?;
    Ok(PluginMetadata::of::<ProcfsPlugin>().init(table)?)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hz: u64 = args.first().map_or(Ok(1000), |a| a.parse())?;
    let secs: u64 = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let period = Duration::from_nanos(1_000_000_000 / hz);
    let flush = args.get(2).cloned().unwrap_or_else(|| "1ns".to_owned());
    let run = Duration::from_secs(secs);

    let floor_us = floor(period, run);

    // Points are counted by the output; polls are the kernel source's (the two sources
    // share a thread and are polled in the same wake-up).
    let points = Arc::new(AtomicU64::new(0));
    let points2 = Arc::clone(&points);
    let null = move |b: &MeasurementBuffer, _: &OutputContext| {
        points2.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(())
    };
    let mut builder = PipelineBuilder::new();
    builder.plugin(procfs(period, &flush)?);
    builder.plugin(Box::new(TestPlugin::new("bench", move |alumet| {
        alumet.add_output("null", null)?;
        Ok(())
    })));
    let mut pipeline = builder.start()?;
    std::thread::sleep(Duration::from_millis(500));
    let control = pipeline.control();
    let polls = move || {
        let stats = control.element_stats();
        let kernel = stats.iter().find(|s| s.name.to_string() == "procfs/kernel");
        kernel.map_or(0, |s| s.polls)
    };
    let snapshot = || (cpu_time(), polls(), points.load(Ordering::Relaxed));
    let ((cpu0, polls0, points0), t0) = (snapshot(), Instant::now());
    std::thread::sleep(run);
    let ((cpu1, polls1, points1), t1) = (snapshot(), Instant::now());
    let report = pipeline.shutdown();
    let n = (polls1 - polls0) as f64;
    let us_per_poll = (cpu1 - cpu0).as_secs_f64() * 1e6 / n;
    println!(
        "{hz} Hz, kernel+memory, flush {flush}: achieved {:.0} Hz, {:.1} points/poll, \
         {us_per_poll:.1} µs CPU/poll, floor {floor_us:.1} µs, above floor {:.1} µs, dropped {}",
        n / (t1 - t0).as_secs_f64(),
        (points1 - points0) as f64 / n,
        us_per_poll - floor_us,
        report.outputs.iter().map(|o| o.dropped_points).sum::<u64>()
    );
    Ok(())
}
