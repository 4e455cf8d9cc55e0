//! What `run` reports is what happened: one line per output with written, dropped and lost
//! points, and exit status 1 when any point was dropped or lost.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;

use common::*;

/// The agent plugin polls every 10 ms and flushes every 50 ms.
const AGENT: &str = "[plugins.agent]\npoll_interval = '10ms'\nflush_interval = '50ms'\n";

/// The figures of the line `output NAME: W points written, D dropped (...), L lost (...)`.
fn reported(stderr: &str, output: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .rfind(|l| l.contains(&format!("output {output}: ")) && l.contains("points written"))
        .unwrap_or_else(|| panic!("no report for {output} in:\n{stderr}"));
    let after = line.split(": ").nth(1).unwrap();
    let numbers: Vec<u64> = after
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

fn start(dir: &Path, config: &str, args: &[&str]) -> Running {
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir);
    cmd.arg("--no-default-config").args(args);
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    running
}

#[test]
fn a_run_whose_csv_writes_all_fail_exits_1_and_says_why() {
    let dir = temp_dir("devfull");
    let mut running = start(&dir, AGENT, &["--output-file", "/dev/full"]);
    running.wait_for_log("failed to write");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let (written, dropped, lost) = reported(&stderr, "csv/csv");
    assert_eq!((written, dropped), (0, 0), "{stderr}");
    assert!(lost > 0, "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.contains("exiting with status 1") && last.contains("csv/csv") && last.contains("lost"),
        "the last line says why: {last}"
    );
}

#[test]
fn a_clean_run_exits_0_with_nothing_dropped_or_lost() {
    let dir = temp_dir("clean");
    let config = format!("{AGENT}[plugins.csv]\noutput_path = 'out.csv'\n");
    let running = start(&dir, &config, &[]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let (written, dropped, lost) = reported(&stderr, "csv/csv");
    let text = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert_eq!(written, text.lines().count() as u64 - 1, "{stderr}");
    assert_eq!((dropped, lost), (0, 0));
}

/// A second signal while the CSV output is blocked on a full pipe: the agent exits at once
/// and reports as lost what it had not written, and as written exactly the rows the pipe
/// holds.
#[test]
fn a_second_signal_reports_what_was_not_written() {
    let dir = temp_dir("second-signal");
    let fifo = dir.join("out.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // The test holds the pipe open (read and write: no open blocks), and makes it small,
    // so that the agent's writes block after a few rows.
    let mut pipe = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    // SAFETY: F_SETPIPE_SZ on a pipe's descriptor, with an int argument.
    let size = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size >= 4096,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    let config = format!("{AGENT}[plugins.csv]\noutput_path = 'out.fifo'\n");
    let mut running = start(&dir, &config, &[]);
    let pid = running.pid();
    running.wait_until("a write blocked on the full pipe", |_| {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        tasks.flatten().any(|t| {
            let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            wchan.contains("pipe_write")
        })
    });
    // Nothing more can be written: what the agent measures from now on piles up in the
    // output's queue (the sleep only lets it measure some more).
    std::thread::sleep(std::time::Duration::from_millis(300));
    running.signal(libc::SIGTERM);
    running.wait_for_log("signal 15 received");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("second signal: exiting now"), "{stderr}");
    let (written, _, lost) = reported(&stderr, "csv/csv");
    assert!(lost > 0, "{stderr}");
    // What the pipe holds: the header and `written` whole rows (a row cut short by the
    // full pipe is not written).
    // SAFETY: F_SETFL on our own descriptor.
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let whole_rows = text.matches('\n').count() as u64 - 1;
    assert_eq!(written, whole_rows, "{stderr}");
}
