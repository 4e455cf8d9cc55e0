//! Cgroups that a test creates on the real tree, as root: `alumet-test-<pid>-<n>` at the
//! root of a hierarchy, removed at the end even when a check fails (the guard kills the
//! children, moves what is left to the root, then removes the directories deepest first).
//!
//! A CPU-burning child is the test binary run again with `CGROUPS_TEST_BURN` set: it
//! waits for a line on its standard input (sent once it is in its cgroup), burns that many
//! ms of CPU, and exits.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use alumet::test_util::skip::{missing_root, should_run};

pub const BURN: &str = "CGROUPS_TEST_BURN";
pub const ROOT: &str = "/sys/fs/cgroup";

/// The work of a child (see the module's doc); a no-op in the normal test run. Each test
/// binary that uses [`TestCgroups::burn_in`] calls it from a test named `burn_child`.
pub fn burn_if_child() {
    let Ok(ms) = std::env::var(BURN) else { return };
    let ms: u64 = ms.parse().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let mut x: u64 = 1;
    while self_cpu() < Duration::from_millis(ms) {
        for i in 0..100_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

pub fn self_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// A hierarchy that accounts CPU time, and how to read a cgroup's total in ns there.
#[derive(Clone, Copy, Debug)]
pub enum CpuHierarchy {
    /// v1 `cpuacct`.
    V1,
    /// v2 at the root (a v2-only host).
    V2,
    /// v2 at `unified` (a hybrid host: no controller there, but `cpu.stat` counts).
    Unified,
}

impl CpuHierarchy {
    /// Those of this host.
    pub fn all() -> Vec<Self> {
        let root = Path::new(ROOT);
        let mut found = Vec::new();
        if root.join("cgroup.controllers").is_file() {
            found.push(CpuHierarchy::V2);
        }
        if root.join("cpuacct/cpuacct.usage").is_file() {
            found.push(CpuHierarchy::V1);
        }
        if root.join("unified/cgroup.controllers").is_file() {
            found.push(CpuHierarchy::Unified);
        }
        found
    }

    pub fn dir(self) -> PathBuf {
        match self {
            CpuHierarchy::V1 => Path::new(ROOT).join("cpuacct"),
            CpuHierarchy::V2 => PathBuf::from(ROOT),
            CpuHierarchy::Unified => Path::new(ROOT).join("unified"),
        }
    }

    /// The cgroup's CPU time, in ns.
    pub fn total_ns(self, cgroup: &Path) -> u64 {
        match self {
            CpuHierarchy::V1 => {
                let text = std::fs::read_to_string(cgroup.join("cpuacct.usage")).unwrap();
                text.trim().parse().unwrap()
            }
            CpuHierarchy::V2 | CpuHierarchy::Unified => {
                let text = std::fs::read_to_string(cgroup.join("cpu.stat")).unwrap();
                let line = text.lines().find(|l| l.starts_with("usage_usec ")).unwrap();
                line[11..].trim().parse::<u64>().unwrap() * 1000
            }
        }
    }
}

/// Cgroups this test created, removed when dropped (children killed first).
pub struct TestCgroups {
    hierarchy: PathBuf,
    /// The test's parent, relative to the hierarchy's root (`alumet-test-PID-N`).
    pub name: String,
    created: Vec<PathBuf>,
    children: Vec<Child>,
}

impl TestCgroups {
    pub fn new(hierarchy: PathBuf) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Self::named(
            hierarchy,
            &format!("alumet-test-{}-{n}", std::process::id()),
        )
    }

    /// The test's parent `name` in another hierarchy.
    pub fn named(hierarchy: PathBuf, name: &str) -> Self {
        let name = name.to_owned();
        let mut t = TestCgroups {
            hierarchy,
            name,
            created: Vec::new(),
            children: Vec::new(),
        };
        t.mkdir("");
        t
    }

    /// Creates `rel` (and its parents) under the test's parent; returns its directory.
    pub fn mkdir(&mut self, rel: &str) -> PathBuf {
        let mut dir = self.hierarchy.join(&self.name);
        let parts = std::iter::once("").chain(rel.split('/').filter(|p| !p.is_empty()));
        for part in parts {
            if !part.is_empty() {
                dir = dir.join(part);
            }
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("creating the cgroup {}: {e}", dir.display()));
                self.created.push(dir.clone());
            }
        }
        dir
    }

    /// The cgroup path the plugin sees for `rel`.
    pub fn path(&self, rel: &str) -> String {
        format!("/{}/{rel}", self.name)
    }

    /// Runs a child that burns `ms` of CPU in the cgroup `dir`, and waits for its end.
    pub fn burn_in(&mut self, dir: &Path, ms: u64) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "burn_child", "--test-threads=1"])
            .env(BURN, ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "the burning child failed: {status}");
    }

    /// Removes `dir` (its processes are gone).
    pub fn rmdir(&mut self, dir: &Path) {
        std::fs::remove_dir(dir).unwrap();
        self.created.retain(|d| d != dir);
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let root_procs = self.hierarchy.join("cgroup.procs");
        for dir in self.created.iter().rev() {
            // Whatever still runs there goes back to the root, then the directory goes.
            if let Ok(pids) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in pids.lines() {
                    let _ = std::fs::write(&root_procs, pid);
                }
            }
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("cannot remove the test cgroup {}: {e}", dir.display());
            }
        }
    }
}

/// The hierarchies to test on; empty when this test may not run here (it fails under CI).
pub fn setup(test: &str) -> Vec<CpuHierarchy> {
    if !should_run(test, missing_root("creating cgroups")) {
        return Vec::new();
    }
    let found = CpuHierarchy::all();
    let missing = found
        .is_empty()
        .then(|| format!("no cpuacct (v1) nor v2 hierarchy under {ROOT}"));
    if !should_run(test, missing) {
        return Vec::new();
    }
    found
}

pub fn sum_cpu(lines: &[String]) -> u64 {
    (lines.iter())
        .filter(|l| l.starts_with("cpu_time_delta "))
        .map(|l| l.rsplit(" = ").next().unwrap().parse::<u64>().unwrap())
        .sum()
}

pub fn within_2_percent(measured: u64, counter_ms: u64) -> bool {
    measured.abs_diff(counter_ms) * 50 <= counter_ms
}
