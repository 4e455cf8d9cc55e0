//! The cost of the `hwmon` plugin: N sensors (default 50) on a fixture tree shaped like a
//! server's (coretemp, an amdgpu with power and an energy counter, a power meter, nvme, a
//! Super I/O chip), read through the plugin's own discovery and sources.
//!
//! 1. The poll alone: every chip's source polled in a loop; CPU time per poll of all N
//!    sensors, and the allocations per poll once warm (expected: 0).
//! 2. The plugin in a pipeline at 1 Hz and at 100 Hz for SECONDS each: the process's CPU
//!    time per poll (every chip, one wake-up), next to the wake-up floor at that rate.
//!
//! `cargo run --release -p bench --bin hwmon -- [N] [SECONDS]` (50 sensors, 10 s).
//! The files are tmpfs or disk files, not the kernel's: a real sensor's read also costs
//! its driver's work (an I2C transfer for some chips, cached for most), which is the
//! kernel's, not the agent's.

#[path = "../shared.rs"]
mod shared;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use alumet::measurement::{MeasurementBuffer, Timestamp};
use alumet::metrics::MetricRegistry;
use alumet::pipeline::PipelineBuilder;
use alumet::plugin::PluginMetadata;
use alumet::test_util::cost::{cpu_time, floor};
use alumet::test_util::TempDir;
use plugin_hwmon::{discover::discover, ChipSource, Flavor, Metrics};
use shared::{counting_output, ALLOCATIONS};

/// (chip name, device, sensor files and values): the sensors are taken from these in
/// turn until there are N.
/// A chip: its name, its device, its sensor files (stem or file name) and values.
type ChipSpec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const CHIPS: [ChipSpec; 5] = [
    (
        "coretemp",
        "coretemp.0",
        &[
            ("temp1", "45000"),
            ("temp2", "41000"),
            ("temp3", "43000"),
            ("temp4", "42000"),
            ("temp5", "44000"),
            ("temp6", "40000"),
            ("temp7", "46000"),
            ("temp8", "47000"),
            ("temp9", "41000"),
            ("temp10", "43000"),
        ],
    ),
    (
        "amdgpu",
        "0000:03:00.0",
        &[
            ("power1_average", "35000000"),
            ("energy1_input", "123456789000"),
            ("temp1", "41000"),
            ("temp2", "43000"),
            ("temp3", "45000"),
            ("fan1", "820"),
            ("in0", "806"),
            ("in1", "1350"),
            ("power2_input", "12000000"),
            ("temp4", "39000"),
        ],
    ),
    (
        "power_meter",
        "ACPI000D:00",
        &[
            ("power1_average", "245000000"),
            ("power2_average", "240000000"),
            ("power3_average", "120000000"),
            ("power4_average", "95000000"),
            ("power5_average", "15000000"),
            ("power6_average", "12000000"),
            ("power7_average", "11000000"),
            ("power8_average", "10000000"),
            ("power9_average", "9000000"),
            ("power10_average", "8000000"),
        ],
    ),
    (
        "nvme",
        "nvme0",
        &[
            ("temp1", "38850"),
            ("temp2", "39850"),
            ("temp3", "40850"),
            ("temp4", "41850"),
            ("temp5", "42850"),
            ("temp6", "38850"),
            ("temp7", "39850"),
            ("temp8", "40850"),
            ("temp9", "41850"),
            ("temp10", "42850"),
        ],
    ),
    (
        "nct6798",
        "nct6775.656",
        &[
            ("fan1", "1200"),
            ("fan2", "0"),
            ("fan3", "900"),
            ("in0", "1032"),
            ("in1", "1016"),
            ("in2", "3344"),
            ("in3", "3312"),
            ("in4", "1008"),
            ("in5", "1800"),
            ("in6", "1200"),
        ],
    ),
];

/// Writes a sysfs root with `n` sensors under `root`; returns how many chips.
fn fixture(root: &Path, n: usize) -> anyhow::Result<usize> {
    let mut written = 0;
    let mut chips = 0;
    for round in 0.. {
        for (i, (name, device, sensors)) in CHIPS.iter().enumerate() {
            if written >= n {
                return Ok(chips);
            }
            let hwmon = format!("hwmon{}", round * CHIPS.len() + i);
            let dev = root.join("devices").join(format!("{device}-{round}"));
            let dir = dev.join("hwmon").join(&hwmon);
            std::fs::create_dir_all(&dir)?;
            std::fs::create_dir_all(root.join("class/hwmon"))?;
            std::os::unix::fs::symlink(&dir, root.join("class/hwmon").join(&hwmon))?;
            std::os::unix::fs::symlink(&dev, dir.join("device"))?;
            std::fs::write(dir.join("name"), format!("{name}\n"))?;
            for (file, value) in sensors.iter().take(n - written) {
                let file = if file.contains('_') {
                    file.to_string()
                } else {
                    format!("{file}_input")
                };
                std::fs::write(dir.join(file), format!("{value}\n"))?;
                written += 1;
            }
            chips += 1;
        }
    }
    Ok(chips)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let secs: u64 = args.next().map_or(Ok(10), |a| a.parse())?;
    let tmp = TempDir::new("bench-hwmon");
    let chips = fixture(tmp.path(), n)?;
    println!(
        "{n} sensors on {chips} chips (fixture files under {})",
        tmp.path().display()
    );
    poll_alone(tmp.path())?;
    for hz in [1u64, 100] {
        in_pipeline(tmp.path(), hz, secs)?;
    }
    Ok(())
}

/// Part 1: the sources polled in a loop.
fn poll_alone(root: &Path) -> anyhow::Result<()> {
    let mut registry = MetricRegistry::default();
    let metrics = Metrics::register(&mut registry, Flavor::Hwmon)?;
    let found = discover(&root.join("class/hwmon"), |_| true)?;
    let mut sources: Vec<ChipSource> = found
        .chips
        .iter()
        .filter_map(|c| ChipSource::new(c, &metrics, Flavor::Hwmon, None))
        .collect();
    let mut buffer = MeasurementBuffer::with_capacity(1024);
    let t0 = Instant::now();
    let mut poll = |i: u32| -> anyhow::Result<usize> {
        buffer.clear();
        let at = t0 + Duration::from_millis(u64::from(i));
        for s in &mut sources {
            s.poll_at(buffer.as_accumulator(), Timestamp::now(), at)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(buffer.len())
    };
    for i in 0..1000 {
        poll(i)?;
    }
    let polls = 20_000;
    let (cpu0, allocs0) = (cpu_time(), ALLOCATIONS.load(Ordering::SeqCst));
    let mut points = 0;
    for i in 1000..1000 + polls {
        points = poll(i)?;
    }
    let (allocs1, cpu1) = (ALLOCATIONS.load(Ordering::SeqCst), cpu_time());
    println!(
        "poll alone: {:.2} us of CPU per poll of every sensor ({points} points per poll), {:.3} allocations per poll once warm ({polls} polls)",
        (cpu1 - cpu0).as_secs_f64() * 1e6 / f64::from(polls),
        (allocs1 - allocs0) as f64 / f64::from(polls)
    );
    Ok(())
}

/// Part 2: the plugin in a pipeline at `hz`, with an output that counts the points.
fn in_pipeline(root: &Path, hz: u64, secs: u64) -> anyhow::Result<()> {
    let period = Duration::from_nanos(1_000_000_000 / hz);
    let table: toml::Table = toml::from_str(&format!(
        "sysfs_root = {:?}\npoll_interval = '{}us'\nflush_interval = '1s'\namdgpu_processes = false\n",
        root.display().to_string(),
        period.as_micros()
    ))?;
    let mut builder = PipelineBuilder::new();
    builder.plugin(PluginMetadata::of::<plugin_hwmon::HwmonPlugin>().init(table)?);
    let written = counting_output(&mut builder);
    let mut run = builder.start()?;
    std::thread::sleep(Duration::from_secs(2).max(period * 10));
    let (cpu0, w0) = (cpu_time(), written.load(Ordering::SeqCst));
    std::thread::sleep(Duration::from_secs(secs));
    let (cpu1, w1) = (cpu_time(), written.load(Ordering::SeqCst));
    run.shutdown();
    let polls = (secs * hz) as f64;
    let per_poll = (cpu1 - cpu0).as_secs_f64() * 1e6 / polls;
    let floor = floor(period, Duration::from_secs(secs.min(3)));
    println!(
        "pipeline at {hz} Hz: {per_poll:.1} us of CPU per poll, the whole process (wake-up floor alone {floor:.1} us), {:.2} % of one core, {:.0} points per poll",
        (cpu1 - cpu0).as_secs_f64() * 100.0 / secs as f64,
        (w1 - w0) as f64 / polls
    );
    Ok(())
}
