//! The cost of procfs's two memory modes per process: `quick` reads `/proc/PID/statm`,
//! `slow_but_accurate` also reads `/proc/PID/smaps_rollup` (the kernel walks every mapping
//! of the process to sum its proportional set size). Each file of every process of the
//! host is kept open and re-read with pread, as the plugin does; prints the CPU time per
//! read of each, over the same processes.
//!
//! `cargo run --release -p bench --bin procfs-memory -- [ROUNDS]` (100 rounds).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use alumet::test_util::cost::cpu_time;

/// Opens `name` of every process that lets us.
fn open_all(name: &str) -> Vec<(u32, File)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(f) = File::open(entry.path().join(name)) {
            out.push((pid, f));
        }
    }
    out
}

/// CPU time per read, reading each file `rounds` times; and the reads that succeeded.
fn per_read(files: &[(u32, File)], rounds: u32) -> (Duration, u64) {
    let mut buf = vec![0u8; 4096];
    let mut ok = 0u64;
    let before = cpu_time();
    for _ in 0..rounds {
        for (_, f) in files {
            if f.read_at(&mut buf, 0).is_ok_and(|n| n > 0) {
                ok += 1;
            }
        }
    }
    let spent = cpu_time() - before;
    (spent / (u32::try_from(ok).unwrap_or(u32::MAX).max(1)), ok)
}

fn main() -> anyhow::Result<()> {
    let rounds: u32 = std::env::args().nth(1).map_or(Ok(100), |a| a.parse())?;
    // The same processes in both modes: those with both files readable.
    let statm = open_all("statm");
    let rollup = open_all("smaps_rollup");
    let both: Vec<u32> = statm
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| rollup.iter().any(|(q, _)| q == p))
        .collect();
    let keep = |files: Vec<(u32, File)>| -> Vec<(u32, File)> {
        files
            .into_iter()
            .filter(|(p, _)| both.contains(p))
            .collect()
    };
    let (statm, rollup) = (keep(statm), keep(rollup));
    let (quick, n_quick) = per_read(&statm, rounds);
    let (slow, n_slow) = per_read(&rollup, rounds);
    println!(
        "{} processes, {rounds} rounds: statm {:.2} µs per read ({n_quick} reads), smaps_rollup {:.2} µs per read ({n_slow} reads): slow_but_accurate costs {:.1}x quick's memory reading",
        both.len(),
        quick.as_secs_f64() * 1e6,
        slow.as_secs_f64() * 1e6,
        (quick + slow).as_secs_f64() / quick.as_secs_f64().max(1e-12)
    );
    Ok(())
}
