//! The cost of reading perf_event counters, as the perf plugin reads them each poll: 8
//! counters of one process (the agent's own, inherited, one by one), and 8 counters of
//! each of N cgroups in cgroup mode on every CPU. Prints the CPU time per poll.
//!
//! `cargo run --release -p bench --bin perf-counters -- [CGROUPS] [POLLS]` (100 cgroups,
//! 2000 polls). The events are software ones (task-clock, page-faults, ...), which every
//! machine has; a hardware counter is read by the same system call. The cgroups are
//! created (as root) in the cgroup v2 tree and removed at the end; without root or cgroup
//! v2, only the process case runs.

use std::path::PathBuf;
use std::time::Duration;

use alumet::test_util::cost::cpu_time;
use perf_counter::{Counter, Group, Reading, Target};

const EVENTS: [&str; 8] = [
    "task-clock",
    "cpu-clock",
    "page-faults",
    "minor-faults",
    "major-faults",
    "context-switches",
    "cpu-migrations",
    "alignment-faults",
];

fn per_poll(polls: u32, mut poll: impl FnMut()) -> Duration {
    for _ in 0..polls / 10 {
        poll();
    }
    let start = cpu_time();
    for _ in 0..polls {
        poll();
    }
    (cpu_time() - start) / polls
}

fn v2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .find(|p| {
            mounts
                .lines()
                .any(|l| l.contains(&format!(" {p} cgroup2 ")))
        })
        .map(PathBuf::from)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cgroups: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let polls: u32 = args.next().map_or(Ok(2000), |a| a.parse())?;
    let specs: Vec<_> = EVENTS
        .iter()
        .map(|e| {
            plugin_perf::events::parse(e)
                .map(|e| e.spec)
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;

    let me = Target::Process {
        pid: std::process::id(),
        inherit: true,
    };
    let counters: Vec<Counter> = specs
        .iter()
        .map(|s| Counter::open(s, me))
        .collect::<Result<_, _>>()?;
    let mut sink = 0u64;
    let one = per_poll(polls, || {
        for c in &counters {
            sink = sink.wrapping_add(c.read().map_or(0, |r| r.value));
        }
    });
    println!(
        "process, 8 counters one by one: {:.1} µs per poll",
        one.as_secs_f64() * 1e6
    );

    let Some(root) = v2_root().filter(|_| unsafe { libc::geteuid() } == 0) else {
        println!("cgroups: skipped (needs root and a cgroup v2 mount)");
        return Ok(());
    };
    // SAFETY: sysconf only reads a configuration value.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u32;
    let base = root.join(format!("alumet-bench-perf-{}", std::process::id()));
    std::fs::create_dir(&base)?;
    let mut dirs = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for i in 0..cgroups {
        let dir = base.join(format!("c{i}"));
        std::fs::create_dir(&dir)?;
        let fd = std::fs::File::open(&dir)?;
        for cpu in 0..cpus {
            use std::os::fd::AsRawFd;
            let target = Target::Cgroup {
                cgroup: fd.as_raw_fd(),
                cpu,
            };
            // The software events of one PMU in a group; task-clock and cpu-clock, PMUs
            // of their own, alone: as the plugin opens hardware events of a cgroup.
            groups.push(Group::open(&specs[2..], target)?);
            groups.push(Group::open(&specs[..1], target)?);
            groups.push(Group::open(&specs[1..2], target)?);
        }
        dirs.push((dir, fd));
    }
    let mut readings: Vec<Reading> = Vec::new();
    let all = per_poll(polls / 10, || {
        for g in &mut groups {
            if g.read(&mut readings).is_ok() {
                sink = sink.wrapping_add(readings[0].value);
            }
        }
    });
    println!(
        "{cgroups} cgroups x {cpus} CPUs x 8 counters (3 reads per cgroup and CPU): {:.1} µs per poll, {:.2} µs per cgroup",
        all.as_secs_f64() * 1e6,
        all.as_secs_f64() * 1e6 / cgroups as f64
    );
    drop(groups);
    for (dir, fd) in dirs {
        drop(fd);
        let _ = std::fs::remove_dir(dir);
    }
    let _ = std::fs::remove_dir(&base);
    std::hint::black_box(sink);
    Ok(())
}
