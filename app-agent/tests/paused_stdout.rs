//! A reader of stdout that stops reading (`alumet-agent | less`, paused) does not stop the
//! measurements: the stdout output waits on its own thread, the sources and the other
//! outputs go on.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::*;

fn csv_rows(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("out.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn a_stdout_pipe_nobody_reads_does_not_stop_the_csv() {
    let dir = temp_dir("paused-stdout");
    let config = "[plugins.agent]\npoll_interval = '10ms'\nflush_interval = '10ms'\n\
                  [plugins.stdout]\n[plugins.csv]\noutput_path = 'out.csv'\n";
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(&dir);
    // stdout is a pipe the test never reads.
    cmd.arg("--no-default-config").stdout(Stdio::piped());
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    let pid = running.pid();
    running.wait_until("a write blocked on the full stdout pipe", |_| {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        tasks.flatten().any(|t| {
            let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            wchan.contains("pipe_write")
        })
    });
    // From now on stdout takes nothing; the CSV still gets a row every few milliseconds.
    let before = csv_rows(&dir);
    running.wait_until("the CSV grows while stdout is blocked", |_| {
        csv_rows(&dir) >= before + 100
    });
    running.signal(libc::SIGKILL);
    let _ = running.wait();
}
