//! CPU cost of the rapl plugin per poll, on a copy of a fixture sysfs tree (powercap files
//! on tmpfs or disk: the syscalls are those of a real machine, the kernel's RAPL read is
//! not). Prints the cost of `poll` alone, then of the whole pipeline at HZ (the plugin into
//! a null output) against the floor of an empty periodic wake-up.
//!
//! ```sh
//! cargo run --release -p plugin-rapl --example rapl_cost -- [HZ] [SECONDS] [CASE] [FLUSH]
//! # defaults: 1000 5 intel-server-2s every-poll (or `5s`, any humantime flush interval)
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alumet::pipeline::PipelineBuilder;
use alumet::prelude::*;
use alumet::test_util::TestPlugin;
use plugin_rapl::{Config, RaplPlugin, RaplSource};

use alumet::test_util::cost::{cpu_time, floor};

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if kind.is_dir() {
            copy_tree(&from, &to)?;
        } else {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// `poll` alone, called back to back: CPU µs per poll and points per poll.
fn bare_poll(config: &Config) -> anyhow::Result<(f64, usize)> {
    let opened = plugin_rapl::setup::open(config)?;
    let mut registry = alumet::metrics::MetricRegistry::new();
    let metric = registry.register::<f64>("rapl_consumed_energy", Unit::Joule, "energy")?;
    let mut source = RaplSource::new(metric, opened.groups);
    let mut buffer = MeasurementBuffer::with_capacity(64);
    let n = 200_000u32;
    let cpu0 = cpu_time();
    for _ in 0..n {
        buffer.clear();
        source
            .poll(buffer.as_accumulator(), Timestamp::now())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok((
        (cpu_time() - cpu0).as_secs_f64() * 1e6 / f64::from(n),
        buffer.len(),
    ))
}

/// The plugin in a pipeline into a null output, for `run` after a warm-up:
/// the CPU time of the process, the points received and the time elapsed.
fn run_pipeline(config: Config, run: Duration) -> anyhow::Result<(Duration, u64, Duration)> {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let mut builder = PipelineBuilder::new();
    builder.plugin(Box::new(RaplPlugin::init(config)?));
    builder.plugin(Box::new(TestPlugin::new("bench", move |alumet| {
        let null = move |b: &MeasurementBuffer, _c: &OutputContext| {
            counter.fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(())
        };
        alumet.add_output("null", null)?;
        Ok(())
    })));
    let mut pipeline = builder.start()?;
    std::thread::sleep(Duration::from_millis(200));
    let (cpu0, n0, t0) = (cpu_time(), received.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(run);
    let (cpu1, n1, t1) = (cpu_time(), received.load(Ordering::Relaxed), Instant::now());
    pipeline.shutdown();
    Ok((cpu1 - cpu0, n1 - n0, t1 - t0))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hz: u64 = args.first().map_or(Ok(1000), |a| a.parse())?;
    let secs: u64 = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let case = args.get(2).map_or("intel-server-2s", String::as_str);
    let period = Duration::from_nanos(1_000_000_000 / hz);
    let flush = match args.get(3).map(String::as_str) {
        None | Some("every-poll") => period,
        Some(d) => alumet::humantime_serde::re::humantime::parse_duration(d)?,
    };

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case);
    let root: PathBuf = std::env::temp_dir().join(format!("rapl-cost-{}", std::process::id()));
    copy_tree(&fixture, &root)?;
    let config = Config {
        poll_interval: period,
        flush_interval: flush,
        no_perf_events: true,
        sysfs_root: root.clone(),
    };

    let (poll_us, points) = bare_poll(&config)?;
    println!("{case}: poll alone {poll_us:.2} µs CPU for {points} points");

    let floor_us = floor(period, Duration::from_secs(secs));
    let (cpu, received, elapsed) = run_pipeline(config, Duration::from_secs(secs))?;
    let _ = std::fs::remove_dir_all(&root);

    // Every poll after the first gives `points` points; with a longer flush interval the
    // points arrive in batches, so the polls are counted from the rate instead.
    let polls = if flush == period {
        received as f64 / points.max(1) as f64
    } else {
        elapsed.as_secs_f64() * hz as f64
    };
    let us_per_poll = cpu.as_secs_f64() * 1e6 / polls;
    println!(
        "{hz} Hz, flush every {}, null output: achieved {:.0} Hz, {us_per_poll:.1} µs \
         CPU/poll, floor {floor_us:.1} µs ({:.2}x)",
        alumet::humantime_serde::re::humantime::format_duration(flush),
        polls / elapsed.as_secs_f64(),
        us_per_poll / floor_us,
    );
    Ok(())
}
