//! Runs the built `alumet-agent` binary in a temporary directory.
#![allow(dead_code, clippy::unwrap_used)]

pub mod accounting;
pub mod energy;

use alumet::test_util::TempDir;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh, empty directory for one test, removed with its content when dropped.
pub fn temp_dir(name: &str) -> TempDir {
    TempDir::new(&format!("agent-{name}"))
}

/// The agent command, run in `dir`, with a clean environment for its own variables.
pub fn agent(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alumet-agent"));
    c.current_dir(dir)
        .env_remove("ALUMET_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A running agent whose stderr is collected.
pub struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// Disconnects when the reader has read all of stderr (every writer closed it).
    read_all: std::sync::mpsc::Receiver<()>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let (reading, read_all) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _reading = reading;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running {
            child,
            stderr,
            read_all,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `text` (fails after 30 s, or if the agent exits first).
    pub fn wait_for_log(&mut self, text: &str) {
        self.wait_until(&format!("{text:?} in the log"), |r| {
            r.stderr().contains(text)
        });
    }

    /// Waits until `done` holds (fails after 30 s, or if the agent exits first).
    pub fn wait_until(&mut self, what: &str, mut done: impl FnMut(&Running) -> bool) {
        let start = Instant::now();
        while !done(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.rest_of_stderr();
                panic!("agent exited ({status}) before {what}:\n{}", self.stderr());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {what}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Once the agent has exited: waits until its stderr is read to the end (5 s at most:
    /// a process it started may still hold it).
    fn rest_of_stderr(&self) {
        let _ = self.read_all.recv_timeout(Duration::from_secs(5));
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: sends a signal to our own child process.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0);
    }

    /// Waits for the exit (fails after 30 s) and returns the status and the whole stderr.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.rest_of_stderr();
                return (status, self.stderr());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("agent did not exit:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    /// A test that fails midway leaves no agent running (it would keep the test harness's
    /// output open).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the agent to completion (it must exit on its own) and returns its exit code and stderr.
pub fn run_to_exit(cmd: Command) -> (i32, String) {
    let (status, stderr) = Running::spawn(cmd).wait();
    (status.code().unwrap_or(-1), stderr)
}

/// Writes `config` to `dir/alumet-config.toml` and runs the agent on it with `args`.
pub fn run_config(dir: &Path, config: &str, args: &[&str]) -> (i32, String) {
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir);
    cmd.args(["--no-default-config"]).args(args);
    run_to_exit(cmd)
}

/// An RFC 3339 time as the CSV output writes it (`2026-11-26T06:25:59.123456789Z`), in
/// nanoseconds since the Unix epoch.
pub fn unix_ns(rfc3339: &str) -> u64 {
    let t = humantime::parse_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{rfc3339}: {e}"));
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::try_from(d.as_nanos()).unwrap()
}
