//! CPU cost of the CSV output per point: feeds 1,000,000 points (buffers of 30 points with
//! 2 attributes, one timestamp per buffer) straight into `Output::write`, into a file in a
//! temporary directory, and prints the CPU time of this thread per point.
//!
//! ```sh
//! cargo run --release -p plugin-csv --example csv_cost [POINTS]
//! ```
//!
//! `POINTS` (default 1,000,000) is the number of points per measurement; a small one suits
//! `valgrind --tool=callgrind`, whose instruction counts, unlike CPU time, are the same from
//! run to run (the difference of two runs with different `POINTS`, over 4 × their difference,
//! is the count per point without the start-up).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use plugin_csv::{Config, CsvOutput};

/// Points per measurement, unless the first argument says otherwise.
const POINTS: usize = 1_000_000;
const PER_BUFFER: usize = 30;
/// Distinct buffers, written round-robin (each has its own timestamp).
const BUFFERS: usize = 100;

/// CPU time of the calling thread: (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let d = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (d(usage.ru_utime), d(usage.ru_stime))
}

/// The context a pipeline hands its outputs, with an energy metric registered; the core
/// has no public constructor for it, so it is taken from a real pipeline.
fn output_context() -> anyhow::Result<OutputContext> {
    let slot: Arc<Mutex<Option<OutputContext>>> = Arc::default();
    let captured = Arc::clone(&slot);
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("bench", move |alumet| {
        alumet.create_metric::<f64>("rapl_consumed_energy", Unit::Joule, "energy")?;
        let capture = move |_: &MeasurementBuffer, ctx: &OutputContext| {
            if let Ok(mut slot) = captured.lock() {
                *slot = Some(ctx.clone());
            }
            Ok(())
        };
        alumet.add_output("capture", capture)?;
        Ok(())
    }));
    let feeder = tester.feeder("input");
    let run = tester.start()?;
    let metric = run
        .metric::<u64>("test_input")
        .ok_or_else(|| anyhow::anyhow!("no metric"))?;
    let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
    feeder.push(MeasurementPoint::new(Timestamp::now(), metric, r, c, 1));
    run.trigger("test/input");
    run.shutdown();
    let ctx = slot.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.take();
    ctx.ok_or_else(|| anyhow::anyhow!("the capturing output received nothing"))
}

fn buffers(ctx: &OutputContext) -> anyhow::Result<Vec<MeasurementBuffer>> {
    let energy = ctx
        .metrics()
        .typed_id::<f64>("rapl_consumed_energy")
        .ok_or_else(|| anyhow::anyhow!("no energy metric"))?;
    let attrs: Vec<Attributes> = (0..PER_BUFFER as u64)
        .map(|i| {
            Attributes::new([
                ("domain", AttributeValue::from("package")),
                ("socket", i.into()),
            ])
        })
        .collect();
    let start = Timestamp::now().unix_nanos();
    Ok((0..BUFFERS)
        .map(|b| {
            let t = Timestamp::from_unix_nanos(start + b as u64 * 1_000_123);
            (0..PER_BUFFER)
                .map(|i| {
                    let r = Resource::CpuPackage { id: i as u32 };
                    let value = 123.456 + (b * PER_BUFFER + i) as f64 * 0.001;
                    MeasurementPoint::new(t, energy, r, ResourceConsumer::LocalMachine, value)
                        .with_attributes(attrs[i].clone())
                })
                .collect()
        })
        .collect())
}

fn measure(
    ctx: &OutputContext,
    buffers: &[MeasurementBuffer],
    force_flush: bool,
    points: usize,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("csv-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("cost.csv");
    let config = Config {
        output_path: path.clone(),
        force_flush,
        ..Config::default()
    };
    let mut output = CsvOutput::open(&config)?;
    let rounds = (points / (PER_BUFFER * BUFFERS)).max(1);
    let points = rounds * PER_BUFFER * BUFFERS;
    let (user0, sys0) = thread_cpu();
    let wall = Instant::now();
    for _ in 0..rounds {
        for buffer in buffers {
            output
                .write(buffer, ctx)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    output.finish(ctx).map_err(|e| anyhow::anyhow!("{e}"))?;
    let wall = wall.elapsed();
    let (user1, sys1) = thread_cpu();
    let size = std::fs::metadata(&path)?.len();
    std::fs::remove_dir_all(&dir)?;
    let per = |d: Duration| d.as_nanos() as f64 / points as f64;
    let (user, sys) = (user1 - user0, sys1 - sys0);
    println!(
        "force_flush={force_flush:<5} {points} points, {} bytes: CPU {:.0} ns/point (user {:.0}, system {:.0}), wall {:.0} ns/point",
        size,
        per(user + sys),
        per(user),
        per(sys),
        per(wall)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let points = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| anyhow::anyhow!("POINTS {arg:?}: {e}"))?,
        None => POINTS,
    };
    let ctx = output_context()?;
    let buffers = buffers(&ctx)?;
    for force_flush in [true, false, true, false] {
        measure(&ctx, &buffers, force_flush, points)?;
    }
    Ok(())
}
