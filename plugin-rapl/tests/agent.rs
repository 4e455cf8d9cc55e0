//! Through the agent binary: `--plugins rapl,csv` with `sysfs_root` at a fixture tree writes
//! the exact joules to the CSV; without any RAPL interface the agent says so in one line
//! and keeps running.
//!
//! The binary is `$ALUMET_AGENT_BIN`, else `<workspace>/target/debug/alumet-agent`, which
//! `cargo test --workspace` (the CI command) builds before running any test. Run alone
//! (`cargo test -p plugin-rapl`), these tests skip, loudly, when it is missing (build it
//! with `cargo build -p alumet-agent`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Fixture, INTEL_MAX};

/// The agent binary, if it exists and knows the rapl plugin.
fn agent_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("ALUMET_AGENT_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/alumet-agent"),
        PathBuf::from,
    );
    if !bin.is_file() {
        skip(&format!(
            "no agent binary at {} (cargo build -p alumet-agent)",
            bin.display()
        ));
        return None;
    }
    let list = Command::new(&bin)
        .args(["plugins", "list"])
        .output()
        .unwrap();
    if !String::from_utf8_lossy(&list.stdout).contains("rapl") {
        skip(&format!("{} does not list the rapl plugin", bin.display()));
        return None;
    }
    Some(bin)
}

/// Says why a test is skipped, on stderr even when the test harness captures output.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED agent test: {why}");
}

/// The agent running in `dir`, its stderr collected.
struct Agent {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    fn spawn(bin: &Path, dir: &Path, args: &[&str]) -> Agent {
        let mut child = Command::new(bin)
            .current_dir(dir)
            .args(args)
            .env_remove("ALUMET_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
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
        Agent { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (30 s at most, and while the agent runs) until `done` holds.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&Agent) -> bool) {
        let start = Instant::now();
        while !done(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
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

    /// SIGTERM, then the exit code and the whole stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: sends a signal to our own child process.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.stderr());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("agent did not exit:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-rapl-agent-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The energy of each `resource_kind/resource_id/domain` in the CSV, summed, in µJ (each
/// row is exact to the µJ).
fn csv_energy(csv: &Path) -> BTreeMap<String, i64> {
    let mut text = std::fs::read_to_string(csv).unwrap_or_default();
    // A row being written has no line break yet.
    text.truncate(text.rfind('\n').map_or(0, |end| end + 1));
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return BTreeMap::new();
    };
    let columns: Vec<&str> = header.split(';').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let (metric, value, kind, id, domain) = (
        col("metric"),
        col("value"),
        col("resource_kind"),
        col("resource_id"),
        col("domain"),
    );
    let mut sums = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(';').collect();
        assert_eq!(f.len(), columns.len(), "{line}");
        assert_eq!(f[metric], "rapl_consumed_energy_J", "{line}");
        let uj = (f[value].parse::<f64>().unwrap() * 1e6).round() as i64;
        *sums
            .entry(format!("{}/{}/{}", f[kind], f[id], f[domain]))
            .or_insert(0) += uj;
    }
    sums
}

/// The agent's config in `dir`: `[plugins.rapl]` with `rapl`, and the CSV output `out.csv`.
fn write_config(dir: &Path, rapl: &str) {
    let config = format!("[plugins.rapl]\n{rapl}[plugins.csv]\noutput_path = 'out.csv'\n");
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
}

/// Rows written for rapl so far.
fn csv_rows(csv: &Path) -> usize {
    std::fs::read_to_string(csv).map_or(0, |t| t.lines().skip(1).count())
}

/// Writes a counter in place, in a fixed width of 12 digits: the agent keeps the file open
/// and may read it at any moment, so the content is overwritten, never truncated.
fn set(path: &Path, uj: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(format!("{uj:012}\n").as_bytes(), 0)
        .unwrap();
}

#[test]
fn rapl_and_csv_through_the_agent_give_the_exact_joules() {
    let Some(bin) = agent_bin() else { return };
    let f = Fixture::copy("intel-server-2s", "agent");
    let energy = |zone: &str| f.zone(zone).join("energy_uj");
    let (pkg0, dram0) = (
        energy("intel-rapl:0"),
        energy("intel-rapl:0/intel-rapl:0:0"),
    );
    let (pkg1, dram1) = (
        energy("intel-rapl:1"),
        energy("intel-rapl:1/intel-rapl:1:0"),
    );
    set(&pkg0, 1_000_000_000);
    set(&dram0, 500_000_000);
    set(&pkg1, INTEL_MAX - 1_000_000);
    set(&dram1, 7);
    let dir = temp_dir("exact");
    let rapl = format!(
        "sysfs_root = '{}'\npoll_interval = '20ms'\nflush_interval = '20ms'\nno_perf_events = true\n",
        f.root().display()
    );
    write_config(&dir, &rapl);
    let csv = dir.join("out.csv");
    let mut agent = Agent::spawn(
        &bin,
        &dir,
        &["--no-default-config", "--plugins", "rapl,csv"],
    );
    agent.wait_until("running plugins", |a| {
        a.stderr().contains("running plugins: rapl, csv")
    });
    // Rows mean the baseline was read before the change below.
    agent.wait_until("rows in the CSV", |_| csv_rows(&csv) >= 8);
    set(&pkg0, 1_002_500_000);
    set(&dram0, 500_123_456);
    set(&pkg1, 1_500_000); // wraps: 1 J + 1 µJ + 1.5 J
    let want: BTreeMap<String, i64> = [
        ("cpu_package/0/package", 2_500_000),
        ("cpu_package/0/dram", 123_456),
        ("cpu_package/1/package", 2_500_001),
        ("cpu_package/1/dram", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    agent.wait_until("the change in the CSV", |_| csv_energy(&csv) == want);
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(csv_energy(&csv), want, "{stderr}");
    assert!(stderr.contains("measuring with powercap: package 0 package, package 0 dram, package 1 package, package 1 dram"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_rapl_the_agent_says_so_in_one_line_and_keeps_running() {
    let Some(bin) = agent_bin() else { return };
    let dir = temp_dir("unavailable");
    let empty = dir.join("sys");
    std::fs::create_dir_all(&empty).unwrap();
    write_config(&dir, &format!("sysfs_root = '{}'\n", empty.display()));
    let mut agent = Agent::spawn(
        &bin,
        &dir,
        &["--no-default-config", "--plugins", "rapl,csv"],
    );
    agent.wait_until("running plugins", |a| {
        a.stderr().contains("running plugins: csv")
    });
    let (code, stderr) = agent.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let rapl: Vec<&str> = stderr.lines().filter(|l| l.contains("rapl")).collect();
    assert_eq!(rapl.len(), 1, "{stderr}");
    assert!(
        rapl[0].contains("plugin rapl is unavailable and will not run: no RAPL interface"),
        "{stderr}"
    );
    assert!(rapl[0].contains("set sysfs_root"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
