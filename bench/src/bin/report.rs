//! The cost of `alumet-agent report` on a large run: an hour at 1 Hz of a machine with N
//! processes (1000 by default), in the csv plugin's format, read and drawn. Prints the CSV's
//! size and rows, the time to read it and to draw the page, the page's size and the peak
//! resident memory. Figures, not a test: `cargo run --release -p bench --bin report --
//! [PROCESSES] [SECONDS]`.
//!
//! Each second has the rows the agent writes with rapl, procfs (kernel, memory, processes)
//! and attribution: RAPL package and dram, `kernel_cpu_time` per state, `mem_total` and
//! `mem_available`, the attribution's idle and unattributed parts, and per process
//! `cpu_time_delta` (user, system), `memory_usage` (resident) and `attributed_energy`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use alumet::test_util::cost::max_rss_kb;
use alumet::test_util::TempDir;
use linux_parse::proc::CPU_COLUMNS;

const HEADER: &str = "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;cpu_state;kind;reason;__late_attributes\n";

/// 2026-11-26T06:00:00Z.
const START: u64 = 1_795_672_800;

fn timestamp(second: u64) -> String {
    let t = START + second;
    let (h, m, s) = ((t / 3600) % 24, (t / 60) % 60, t % 60);
    format!("2026-11-26T{h:02}:{m:02}:{s:02}.000000000Z")
}

/// A cheap deterministic noise in [0, 1).
fn noise(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % 10_000) as f64 / 10_000.0
}

fn write_csv(path: &Path, processes: u64, seconds: u64) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    out.write_all(HEADER.as_bytes())?;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rows = 0;
    for s in 1..=seconds {
        let ts = timestamp(s);
        // A 5-second burst every 10 minutes: the peaks that downsampling must keep.
        let burst = if s % 600 < 5 { 90.0 } else { 0.0 };
        let package = 40.0 + 10.0 * noise(&mut rng) + burst;
        let dram = 3.0 + noise(&mut rng);
        for (domain, joules) in [("package", package), ("dram", dram)] {
            writeln!(
                out,
                "rapl_consumed_energy_J;{ts};{joules};cpu_package;0;local_machine;;{domain};;;;;"
            )?;
            writeln!(
                out,
                "idle_energy_J;{ts};1.5;cpu_package;0;local_machine;;{domain};;;;;"
            )?;
            writeln!(out, "unattributed_energy_J;{ts};0.25;cpu_package;0;local_machine;;{domain};;;untracked;")?;
        }
        // The states procfs reports (all but iowait, which proc(5) calls unreliable).
        for state in CPU_COLUMNS.iter().filter(|s| **s != "iowait") {
            let ms = (1000.0 * noise(&mut rng)) as u64;
            writeln!(
                out,
                "kernel_cpu_time_ms;{ts};{ms};local_machine;;local_machine;;;{state};;;"
            )?;
        }
        writeln!(
            out,
            "mem_total_By;{ts};34359738368;local_machine;;local_machine;;;;;;"
        )?;
        let available = 20_000_000_000 + (1e9 * noise(&mut rng)) as u64;
        writeln!(
            out,
            "mem_available_By;{ts};{available};local_machine;;local_machine;;;;;;"
        )?;
        rows += 15;
        let share = (package - 1.75) / processes as f64;
        for p in 0..processes {
            let pid = 1000 + p;
            let user = (20.0 * noise(&mut rng)) as u64;
            writeln!(
                out,
                "cpu_time_delta_ms;{ts};{user};local_machine;;process;{pid};;;user;;"
            )?;
            writeln!(
                out,
                "cpu_time_delta_ms;{ts};{};local_machine;;process;{pid};;;system;;",
                user / 4
            )?;
            writeln!(
                out,
                "memory_usage_By;{ts};{};local_machine;;process;{pid};;;resident;;",
                10_000_000 + pid * 4096
            )?;
            writeln!(
                out,
                "attributed_energy_J;{ts};{share};cpu_package;0;process;{pid};package;;;;"
            )?;
        }
        rows += 4 * processes;
    }
    out.flush()?;
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let processes: u64 = args.next().map_or(Ok(1000), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(3600), |a| a.parse())?;
    let dir = TempDir::new("bench-report");
    let csv = dir.path().join("run.csv");
    let rows = write_csv(&csv, processes, seconds)?;
    let csv_mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    println!("CSV: {seconds} s at 1 Hz, {processes} processes: {rows} rows, {csv_mb:.0} MB");
    let start = Instant::now();
    let input = alumet_report::load(std::slice::from_ref(&csv), None)?;
    let read = start.elapsed();
    let meta = alumet_report::Meta {
        agent_version: "bench".into(),
        inputs: vec![csv.display().to_string()],
        ..alumet_report::Meta::default()
    };
    let html = alumet_report::render(&input, &meta)?;
    let drawn = start.elapsed() - read;
    let page = dir.path().join("run.html");
    alumet_report::write_page(&page, &html)?;
    println!(
        "read {:.2} s ({:.0} MB/s), analysed and drawn {:.3} s, total {:.2} s",
        read.as_secs_f64(),
        csv_mb / read.as_secs_f64(),
        drawn.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    let svgs = html.matches("<svg").count();
    println!(
        "page: {} kB, {svgs} charts; peak resident memory {} MB",
        html.len() / 1000,
        max_rss_kb() / 1000
    );
    if let Some(keep) = std::env::var_os("KEEP_PAGE") {
        std::fs::copy(&page, keep)?;
    }
    Ok(())
}
