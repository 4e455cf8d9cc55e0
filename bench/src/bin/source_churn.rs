//! Sources added and removed while running: 1000 sources added one by one to a running
//! pipeline, polled every second, then removed one by one. Prints the cost per add, per
//! remove and per poll (CPU time), and the resident memory at each step.
//!
//! `cargo run --release -p bench --bin source-churn -- [N] [SECONDS]` (1000 sources, 5 s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use alumet::measurement::MeasurementBuffer;
use alumet::metrics::{MetricId, Unit};
use alumet::pipeline::{
    ElementError, OutputContext, PipelineBuilder, PipelineControl, SourceId, Trigger,
};
use alumet::test_util::cost::{cpu_time, self_status as status, synthetic_source};
use alumet::test_util::TestPlugin;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let secs: u64 = args.next().map_or(Ok(5), |a| a.parse())?;
    let metric: Arc<OnceLock<MetricId<u64>>> = Arc::default();
    let written = Arc::new(AtomicU64::new(0));
    let (m2, w2) = (Arc::clone(&metric), Arc::clone(&written));
    let mut builder = PipelineBuilder::new();
    builder.plugin(Box::new(TestPlugin::new("bench", move |alumet| {
        let m = alumet.create_metric::<u64>("bench_value", Unit::Unity, "synthetic value")?;
        let _ = m2.set(m);
        let output = move |b: &MeasurementBuffer, _: &OutputContext| -> Result<(), ElementError> {
            w2.fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(())
        };
        alumet.add_output("null", output)?;
        Ok(())
    })));
    let mut run = builder.start()?;
    let control = run.control();
    let m = *metric.get().ok_or_else(|| anyhow::anyhow!("no metric"))?;
    let polls = Arc::new(AtomicU64::new(0));
    let rss0 = status("VmRSS")?;

    let (per_add, last_adds, ids) = add_all(&control, m, &polls, n)?;
    let rss_added = status("VmRSS")?;
    let threads = status("Threads")?;

    // Polls at 1 Hz: the CPU of the whole process over whole seconds, per poll.
    std::thread::sleep(Duration::from_millis(1500));
    let (cpu0, polls0) = (cpu_time(), polls.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs(secs));
    let (cpu1, polls1) = (cpu_time(), polls.load(Ordering::Relaxed));
    let polled = polls1 - polls0;
    let per_poll = (cpu1 - cpu0).as_secs_f64() * 1e6 / polled.max(1) as f64;
    let rss_polled = status("VmRSS")?;

    let per_remove = remove_all(&control, ids)?;
    std::thread::sleep(Duration::from_millis(200));
    let rss_removed = status("VmRSS")?;
    let threads_removed = status("Threads")?;
    let report = run.shutdown();
    let total = polls.load(Ordering::Relaxed);
    println!("sources: {n}, polled at 1 Hz for {secs} s");
    println!("add:    {per_add:.2} us per source (last 100: {last_adds:.2} us)");
    println!("poll:   {per_poll:.2} us of CPU per poll ({polled} polls)");
    println!("remove: {per_remove:.2} us per source");
    println!(
        "rss:    {rss0} kB before, {rss_added} kB with {n} sources, {rss_polled} kB after \
         polling, {rss_removed} kB after removing them"
    );
    println!("threads: {threads} with the sources, {threads_removed} after removing them");
    println!(
        "points: {total} polled, {} written, undelivered {}",
        written.load(Ordering::Relaxed),
        report.undelivered_points
    );
    anyhow::ensure!(written.load(Ordering::Relaxed) == total, "points were lost");
    Ok(())
}

type Added = (f64, f64, Vec<SourceId>);

/// Adds `n` sources polled every second; returns the mean cost per add in µs, that of the
/// last 100 adds, and how to address each source.
fn add_all(
    control: &PipelineControl,
    m: MetricId<u64>,
    polls: &Arc<AtomicU64>,
    n: usize,
) -> anyhow::Result<Added> {
    let mut ids = Vec::with_capacity(n);
    let start = Instant::now();
    let mut last_from = start;
    for i in 0..n {
        if i + 100 == n {
            last_from = Instant::now();
        }
        let source = synthetic_source(m, 1, Arc::clone(polls));
        let name = format!("s-{i}");
        let every = Trigger::every(Duration::from_secs(1));
        ids.push(control.add_source("bench", &name, Box::new(source), every)?);
    }
    let us = |d: Duration, k: usize| d.as_secs_f64() * 1e6 / k.max(1) as f64;
    Ok((
        us(start.elapsed(), n),
        us(last_from.elapsed(), n.min(100)),
        ids,
    ))
}

/// Removes every source; returns the mean cost per removal in µs.
fn remove_all(control: &PipelineControl, ids: Vec<SourceId>) -> anyhow::Result<f64> {
    let n = ids.len();
    let start = Instant::now();
    for id in ids {
        control.remove_source(id)?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64)
}
