//! Against the real `/proc`: a child that burns about 300 ms of CPU is measured within
//! 10% of what `getrusage(RUSAGE_CHILDREN)` says, and a child that touches 200 MiB shows
//! a resident memory within 10% of 200 MiB. The children are this test binary run again
//! with `PROCFS_TEST_WORKLOAD` set, which makes `workload_child` do the work.
//!
//! The sequence is exec mode's: announce the child, wait for its exit without reaping it
//! (`waitid(WNOWAIT)`), announce its end (the final poll reads the zombie's counters),
//! then reap it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use alumet::metrics::RawMetricId;
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestRun};
use plugin_procfs::ProcfsPlugin;

const WORKLOAD: &str = "PROCFS_TEST_WORKLOAD";
const READY: &str = "procfs-test-ready";
const MIB_200: u64 = 200 << 20;

/// The tests that start children run one at a time: RUSAGE_CHILDREN counts them all.
static CHILDREN: Mutex<()> = Mutex::new(());

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid pointer.
    assert_eq!(unsafe { libc::getrusage(who, &mut u) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The work of a child; a no-op in the normal test run.
#[test]
fn workload_child() {
    match std::env::var(WORKLOAD).as_deref() {
        Ok("cpu") => {
            let mut x: u64 = 1;
            while rusage(libc::RUSAGE_SELF) < Duration::from_millis(300) {
                for i in 0..100_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                }
            }
        }
        Ok("memory") => {
            let memory = std::hint::black_box(vec![1u8; MIB_200 as usize]);
            // Not println!: the test harness captures it.
            let mut out = std::io::stdout();
            out.write_all(format!("{READY}\n").as_bytes()).unwrap();
            out.flush().unwrap();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            drop(memory);
        }
        _ => {}
    }
}

fn spawn_workload(kind: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "workload_child", "--test-threads=1"])
        .env(WORKLOAD, kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `pid` exits, leaving it a zombie (its counters stay readable).
fn wait_exit_keep_zombie(pid: u32) {
    // SAFETY: siginfo_t is plain data; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOWAIT;
    // SAFETY: a valid pid and a valid pointer.
    let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

fn start_pipeline() -> TestRun {
    let mut tester = PipelineTester::new();
    let config = r#"
        kernel.enabled = false
        memory.enabled = false
        [processes]
        enabled = true
        strategy = "event"
        refresh_interval = "1h"
        events = { poll_interval = "50ms", flush_interval = "1h" }
    "#;
    tester.plugin_toml::<ProcfsPlugin>(config).unwrap();
    tester.start().unwrap()
}

/// The values of `metric` with `kind` for `pid`, measured before `until`.
fn values(
    points: &[MeasurementPoint],
    metric: RawMetricId,
    pid: u32,
    kind: &str,
    until: Timestamp,
) -> Vec<u64> {
    let consumer = ResourceConsumer::Process { pid };
    (points.iter())
        .filter(|p| p.metric == metric && p.consumer == consumer && p.timestamp < until)
        .filter(|p| {
            p.attributes
                .get("kind")
                .is_some_and(|k| k.to_string() == kind)
        })
        .map(|p| p.value.as_f64() as u64)
        .collect()
}

#[test]
fn cpu_time_of_a_child_matches_getrusage_within_10_percent() {
    let _one = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    let run = start_pipeline();
    let control = run.control();
    let before = rusage(libc::RUSAGE_CHILDREN);
    let mut child = spawn_workload("cpu");
    let pid = child.id();
    control.emit(&Event::ConsumerStarted(ResourceConsumer::Process { pid }));
    wait_exit_keep_zombie(pid);
    control.emit(&Event::ConsumerEnded(ResourceConsumer::Process { pid }));
    assert!(child.wait().unwrap().success());
    let kernel = (rusage(libc::RUSAGE_CHILDREN) - before).as_millis() as u64;
    let metric = run.metric::<u64>("cpu_time_delta").unwrap().raw();
    let (_report, points) = run.shutdown();

    let end = Timestamp::now();
    let user = values(&points, metric, pid, "user", end);
    let system = values(&points, metric, pid, "system", end);
    let measured: u64 = user.iter().chain(&system).sum();
    assert!(kernel >= 300, "the child used only {kernel} ms");
    let diff = measured.abs_diff(kernel);
    assert!(
        diff * 10 <= kernel,
        "procfs measured {measured} ms ({} polls), getrusage says {kernel} ms",
        user.len()
    );
}

#[test]
fn resident_memory_of_a_child_is_within_10_percent_of_what_it_touched() {
    let _one = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    let run = start_pipeline();
    let control = run.control();
    let mut child = spawn_workload("memory");
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // The harness writes "test workload_child ... " before the test runs, without a newline.
    while !line.trim_end().ends_with(READY) {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
    }
    control.emit(&Event::ConsumerStarted(ResourceConsumer::Process { pid }));
    assert_eq!(run.trigger("procfs/*"), 1);
    let released = Timestamp::now();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    wait_exit_keep_zombie(pid);
    control.emit(&Event::ConsumerEnded(ResourceConsumer::Process { pid }));
    assert!(child.wait().unwrap().success());
    let metric = run.metric::<u64>("memory_usage").unwrap().raw();
    let (_report, points) = run.shutdown();

    // Every reading taken while the child held its memory.
    let held = values(&points, metric, pid, "resident", released);
    assert!(!held.is_empty(), "no resident memory reading");
    for r in held {
        assert!(
            r.abs_diff(MIB_200) * 10 <= MIB_200,
            "resident {r} bytes, touched {MIB_200}"
        );
    }
}

#[test]
fn kernel_and_memory_of_the_real_proc_with_the_default_config() {
    let mut tester = PipelineTester::new();
    tester
        .plugin::<ProcfsPlugin>(plugin_procfs::Config::default())
        .unwrap();
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("procfs/*"), 2);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let named = |name: &str| {
        let id = metrics.by_name(name).unwrap().0;
        points.iter().filter(move |p| p.metric == id)
    };
    // The baseline was taken at start: the first poll gives every state's difference.
    let states: Vec<String> = (named("kernel_cpu_time"))
        .map(|p| p.attributes.get("cpu_state").unwrap().to_string())
        .collect();
    assert_eq!(states.len(), 9, "{states:?}");
    assert_eq!(named("kernel_n_procs_running").count(), 1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kib: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let total: Vec<u64> = named("mem_total")
        .map(|p| p.value.as_f64() as u64)
        .collect();
    assert_eq!(total, [total_kib * 1024]);
    assert_eq!(named("mem_available").count(), 1);
}
