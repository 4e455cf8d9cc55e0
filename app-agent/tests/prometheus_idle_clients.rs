//! Issue 23: 2000 idle clients that each sent half a request and hold the connection open
//! neither stop the Prometheus endpoint nor make the agent spawn a thread each. Run
//! against the real binary, in a pids cgroup limited to 200 tasks (root needed: it
//! fails under CI, skips elsewhere), and again with the agent's file descriptors limited
//! to 40, so that accept fails (EMFILE) while the clients come.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alumet::test_util::skip::{missing_root, should_run};
use alumet::test_util::TempDir;

const IDLE_CLIENTS: usize = 2000;

/// A pids cgroup created for the test: cgroup v2 where a mounted v2 hierarchy offers the
/// pids controller, else v1's `/sys/fs/cgroup/pids`. Removed on drop.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn create(max: u32) -> Result<PidsCgroup, String> {
        let name = format!("alumet-idle-clients-{}", std::process::id());
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let root = Path::new(root);
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers"));
            if controllers.is_ok_and(|c| c.split_whitespace().any(|c| c == "pids")) {
                std::fs::write(root.join("cgroup.subtree_control"), "+pids")
                    .map_err(|e| format!("enabling pids in {}: {e}", root.display()))?;
                return PidsCgroup::make(root.join(name), max);
            }
        }
        let v1 = Path::new("/sys/fs/cgroup/pids");
        if v1.join("tasks").exists() {
            return PidsCgroup::make(v1.join(name), max);
        }
        Err("no pids cgroup controller (v2 with pids, or v1 at /sys/fs/cgroup/pids)".into())
    }

    fn make(dir: PathBuf, max: u32) -> Result<PidsCgroup, String> {
        std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let cgroup = PidsCgroup(dir);
        std::fs::write(cgroup.0.join("pids.max"), max.to_string())
            .map_err(|e| format!("writing pids.max: {e}"))?;
        Ok(cgroup)
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Raises this process's soft limit of file descriptors to at least `n`.
fn raise_nofile(n: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit write or read the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur >= n {
            return;
        }
        limit.rlim_max = limit.rlim_max.max(n);
        limit.rlim_cur = n;
        let rc = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        assert_eq!(rc, 0, "raising RLIMIT_NOFILE to {n}");
    }
}

/// Lowers the file descriptor limit of process `pid` to `n`.
fn limit_nofile_of(pid: u32, n: u64) {
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: prlimit reads the struct we pass; a null old-limit pointer is allowed.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit on the agent");
}

/// `GET /metrics`, the status and how long it took; `None` when refused or cut.
fn scrape(addr: SocketAddr) -> Option<(u16, Duration)> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let status = String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, start.elapsed()))
}

/// The agent, its stderr going to a file; killed on drop.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn spawn(dir: &Path) -> Agent {
        let log = dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_alumet-agent"))
            .arg("--no-default-config")
            .current_dir(dir)
            .env_remove("ALUMET_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Agent { child, log }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&mut self, text: &str) {
        let start = Instant::now();
        while !self.stderr().contains(text) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "agent exited ({status}) before {text:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit code (30 s at most) and the whole stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: sends a signal to our own child process.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the agent did not stop:\n{}", self.stderr());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// Starts the agent (its own `agent` source and the endpoint on a free port), hands its
/// pid to `setup`, opens the idle clients, checks a scrape, the threads, then scrapes
/// after the clients left, and stops it (exit 0). Returns the stderr.
fn idle_clients_against_the_agent(tag: &str, setup: impl FnOnce(u32)) -> String {
    // Both tests may run at once in this process: room for both sets of clients.
    raise_nofile(2 * IDLE_CLIENTS as u64 + 1000);
    let dir = TempDir::new(&format!("agent-{tag}"));
    let dir = dir.path();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = format!(
        "[plugins.agent]\npoll_interval = '100ms'\n[plugins.prometheus]\naddress = '{addr}'\n"
    );
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut running = Agent::spawn(dir);
    let pid = running.child.id();
    setup(pid);
    running.wait_for_log("running plugins");
    assert_eq!(scrape(addr).map(|s| s.0), Some(200), "{}", running.stderr());

    let mut idle = Vec::with_capacity(IDLE_CLIENTS);
    for i in 0..IDLE_CLIENTS {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("idle client {i}: {e}\n{}", running.stderr()));
        // Half a request: no end of headers. A server that closed it already is fine.
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\n");
        idle.push(s);
    }
    let scraped = scrape(addr);
    let threads = threads_of(pid);
    eprintln!(
        "{tag}: scrape with {IDLE_CLIENTS} idle clients: {scraped:?}; agent threads: {threads}"
    );
    let (status, took) = scraped.unwrap_or_else(|| panic!("no answer\n{}", running.stderr()));
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2), "the scrape took {took:?}");
    assert!(threads <= 40, "{threads} threads");
    drop(idle);
    for _ in 0..3 {
        assert_eq!(scrape(addr).map(|s| s.0), Some(200), "{}", running.stderr());
    }
    let (code, stderr) = running.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    stderr
}

#[test]
fn two_thousand_idle_clients_in_a_200_task_cgroup_leave_scrapes_answered() {
    let test = "two_thousand_idle_clients_in_a_200_task_cgroup";
    if !should_run(test, missing_root("a pids cgroup")) {
        return;
    }
    let cgroup = PidsCgroup::create(200).unwrap_or_else(|e| panic!("{test}: {e}"));
    idle_clients_against_the_agent("idle-cgroup", |pid| cgroup.add(pid));
}

#[test]
fn two_thousand_idle_clients_against_40_file_descriptors_leave_scrapes_answered() {
    let stderr = idle_clients_against_the_agent("idle-nofile", |pid| limit_nofile_of(pid, 40));
    assert!(
        stderr.contains("accepting a connection failed"),
        "the descriptor shortage is logged: {stderr}"
    );
}
