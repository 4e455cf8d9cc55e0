//! exec and watch through the binary: exit codes, signals, repeats, CPU time.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

const CONFIG: &str =
    "[plugins.agent]\npoll_interval = '1h'\n[plugins.csv]\noutput_path = 'out.csv'\n";

/// `exec -r REPEAT --summary-json s.json -- sh -c SCRIPT` in `dir`.
fn exec_sh(dir: &Path, repeat: u32, script: &str) -> (i32, String) {
    let repeat = repeat.to_string();
    let args = [
        "-r",
        &repeat,
        "--summary-json",
        "s.json",
        "--",
        "sh",
        "-c",
        script,
    ];
    exec(dir, &args)
}

/// The figure `name` of a JSON summary.
fn figure<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let figures = json["figures"].as_array().unwrap();
    figures.iter().find(|f| f["name"] == name).unwrap()
}

/// The summary that `--summary-json s.json` wrote in `dir`.
fn summary_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("s.json")).unwrap()).unwrap()
}

/// The agent on [`CONFIG`] in `dir`: `alumet-agent GLOBAL... exec ARGS...`.
fn agent_exec(dir: &Path, global: &[&str], args: &[&str]) -> std::process::Command {
    std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
    let mut cmd = agent(dir);
    cmd.arg("--no-default-config")
        .args(global)
        .arg("exec")
        .args(args);
    cmd
}

fn exec(dir: &Path, args: &[&str]) -> (i32, String) {
    run_to_exit(agent_exec(dir, &[], args))
}

#[test]
fn exit_codes_follow_the_shell_conventions() {
    let dir = temp_dir("exec-codes");
    let cases: [(&[&str], i32, &str); 10] = [
        (&["true"], 0, "wall time"),
        // An agent option misspelt is a usage error (as perf stat), not a command to run;
        // options glued to their value work; a program starting with `-` needs `--`.
        (
            &["--no-sumary", "--", "true"],
            2,
            "a similar argument exists: '--no-summary'",
        ),
        (&["-r2", "true"], 0, "(2 runs)"),
        (
            &["--", "-not-an-option"],
            127,
            "command not found: `-not-an-option`",
        ),
        (&["sh", "-c", "exit 3"], 3, "wall time"),
        (&["sh", "-c", "kill -KILL $$"], 128 + 9, "wall time"),
        (
            &["--ignore-exit-code", "--", "sh", "-c", "exit 3"],
            0,
            "wall time",
        ),
        (
            &["slep", "1"],
            127,
            "command not found: `slep`. Did you mean `sleep`?",
        ),
        (&["/etc/passwd"], 126, "cannot execute `/etc/passwd`"),
        (&["--", "/"], 126, "cannot execute `/`"),
    ];
    for (args, code, message) in cases {
        let (got, stderr) = exec(&dir, args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: {message:?} not in {stderr}"
        );
    }
}

/// Writes an executable file `name` in `dir` with `content`.
fn executable(dir: &Path, name: &str, content: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// [`exec`] with `dir` first on PATH.
fn exec_on_path(dir: &Path, args: &[&str]) -> (i32, String) {
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let mut cmd = agent_exec(dir, &[], &["--"]);
    cmd.args(args).env("PATH", path);
    run_to_exit(cmd)
}

#[test]
fn a_script_without_a_shebang_runs_with_sh_as_execvp_runs_it() {
    let dir = temp_dir("exec-no-shebang");
    executable(&dir, "job", b"echo \"ran with $1\" > ran.txt\nexit 7\n");
    let (code, stderr) = exec(&dir, &["./job", "arg1"]);
    assert_eq!(code, 7, "{stderr}");
    assert!(stderr.contains("wall time"), "{stderr}");
    let ran = std::fs::read_to_string(dir.join("ran.txt")).unwrap();
    assert_eq!(ran, "ran with arg1\n");
    // Found on PATH, too.
    std::fs::remove_file(dir.join("ran.txt")).unwrap();
    let (code, stderr) = exec_on_path(&dir, &["job", "arg2"]);
    assert_eq!(code, 7, "{stderr}");
    let ran = std::fs::read_to_string(dir.join("ran.txt")).unwrap();
    assert_eq!(ran, "ran with arg2\n");
}

#[test]
fn files_that_cannot_run_say_why() {
    let dir = temp_dir("exec-cannot-run");
    executable(
        &dir,
        "bad-interp",
        b"#!/surely/not/an/interpreter -x\necho no\n",
    );
    // An ELF header for another machine (AArch64), then zeros: not for a shell either.
    let mut foreign =
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00".to_vec();
    foreign.resize(256, 0);
    executable(&dir, "foreign", &foreign);
    std::fs::create_dir(dir.join("a-dir")).unwrap();
    executable(&dir, "crlf", b"#!/bin/sh\r\necho no\r\n");
    let cases: [(&str, i32, &str); 4] = [
        (
            "./bad-interp",
            127,
            "its interpreter `/surely/not/an/interpreter` (its #! line) was not found",
        ),
        ("./foreign", 126, "a binary for another architecture"),
        ("./a-dir", 126, "it is a directory"),
        (
            "./crlf",
            127,
            "ends with a carriage return (Windows line endings)",
        ),
    ];
    // Where qemu-user runs foreign binaries (binfmt_misc), the AArch64 file is run.
    let qemu = std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists();
    for (program, want, message) in cases {
        if qemu && program == "./foreign" {
            continue;
        }
        let (code, stderr) = exec(&dir, &[program]);
        assert_eq!(code, want, "{program}: {stderr}");
        assert!(
            stderr.contains(message),
            "{program}: {message:?} not in {stderr}"
        );
    }
    // Found on PATH, the script is there: not "command not found".
    let (code, stderr) = exec_on_path(&dir, &["bad-interp"]);
    assert_eq!(code, 127, "{stderr}");
    assert!(stderr.contains("its interpreter `/surely"), "{stderr}");
}

#[test]
fn sigterm_is_forwarded_to_the_command_and_the_summary_printed() {
    let dir = temp_dir("exec-sigterm");
    // With --ignore-exit-code too: a measurement cut short is not a success.
    for ignore in [&[][..], &["--ignore-exit-code"]] {
        let mut cmd = agent_exec(&dir, &[], ignore);
        cmd.args(["--", "sleep", "30"]);
        let mut running = Running::spawn(cmd);
        running.wait_for_log("running plugins");
        std::thread::sleep(std::time::Duration::from_millis(200));
        running.signal(libc::SIGTERM);
        let (status, stderr) = running.wait();
        assert_eq!(status.code(), Some(143), "{ignore:?}: {stderr}");
        assert!(stderr.contains("measurements for 'sleep 30'"), "{stderr}");
        assert!(
            stderr.contains("signal 15 received: forwarded it to pid"),
            "{stderr}"
        );
    }
}

/// Counts, at the C level (one byte per delivery, through Python's wakeup fd, so two
/// quick signals are not merged into one handler call), the SIGINTs that reach it in
/// 1.5 s, and writes the count to `sigints`.
const COUNT_SIGINTS: &str = r#"
import os, signal, time
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
signal.signal(signal.SIGINT, lambda *_: None)
print("ready", flush=True)
time.sleep(1.5)
os.set_blocking(r, False)
with open("sigints", "w") as f:
    f.write(str(len(os.read(r, 100))))
"#;

/// The agent, leading a new session whose controlling terminal is a pty, running
/// `exec -- ARGS`; what it and the command write to the terminal is collected.
struct PtySession {
    agent: std::process::Child,
    /// The pty's master side: what is written to it is typed on the terminal; dropping
    /// every handle to it hangs the terminal up.
    master: Option<std::os::fd::OwnedFd>,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Tells the reader to close its copy of the master side.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PtySession {
    fn start(dir: &Path, args: &[&str]) -> PtySession {
        use std::io::Read;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;

        std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
        // Both sides close-on-exec from the start: a process that another test starts
        // meanwhile must not hold the pty (the hangup would not happen, the end not come).
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: posix_openpt returns a new descriptor or -1.
        let master = unsafe { libc::posix_openpt(flags) };
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor, owned nowhere else.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: grantpt, unlockpt and ptsname_r on our master, into our buffer.
        let rc = unsafe {
            if libc::grantpt(master.as_raw_fd()) != 0 || libc::unlockpt(master.as_raw_fd()) != 0 {
                -1
            } else {
                libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len())
            }
        };
        assert_eq!(rc, 0, "pty: {}", std::io::Error::last_os_error());
        // SAFETY: ptsname_r wrote a NUL-terminated path; open returns a new descriptor.
        let slave = unsafe { libc::open(name.as_ptr(), flags) };
        assert!(
            slave >= 0,
            "opening the pty: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor, owned nowhere else.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        let mut cmd = agent(dir);
        cmd.args(["--no-default-config", "exec", "--"])
            .args(args)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe. The agent leads a new session
        // whose controlling terminal is the pty (its stdin): what is typed on it goes to
        // its foreground process group, the agent's and the command's.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let agent = cmd.spawn().unwrap();
        // The command holds this process's copies of the slave side: drop them, so that
        // the reader sees the end (EIO) once the agent and the command are gone.
        drop(cmd);
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        let mut from_pty = std::fs::File::from(master.try_clone().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut poll = libc::pollfd {
                fd: from_pty.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // Until the end (EIO), or until told to let go of the master (a hangup).
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                // SAFETY: one valid pollfd, ours.
                if unsafe { libc::poll(&mut poll, 1, 20) } == 0 {
                    continue;
                }
                match from_pty.read(&mut buf) {
                    Ok(n @ 1..) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                    _ => break,
                }
            }
        });
        PtySession {
            agent,
            master: Some(master),
            output,
            reader: Some(reader),
            stop,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits (30 s at most) until the terminal shows `text`.
    fn wait_for(&self, text: &str) {
        let start = std::time::Instant::now();
        while !self.output().contains(text) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "{text:?} not shown:\n{}",
                self.output()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Types `bytes` on the terminal.
    fn type_in(&self, bytes: &[u8]) {
        use std::io::Write;
        let master = self.master.as_ref().unwrap().try_clone().unwrap();
        std::fs::File::from(master).write_all(bytes).unwrap();
    }

    /// Hangs the terminal up: closes every handle to the master side.
    fn hang_up(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.reader.take().unwrap().join().unwrap();
        self.master = None;
    }

    /// Waits for the agent's exit (30 s at most) and for the rest of its output (5 s at
    /// most); returns the exit code and the output.
    fn wait(mut self) -> (Option<i32>, String) {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.agent.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "agent did not exit:\n{}",
                self.output()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        if let Some(reader) = self.reader.take() {
            let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !reader.is_finished() && std::time::Instant::now() < end {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            reader.join().unwrap();
        }
        (status.code(), self.output())
    }
}

impl Drop for PtySession {
    /// A failed assertion leaves no agent (nor its command) running.
    fn drop(&mut self) {
        if let Ok(None) = self.agent.try_wait() {
            let _ = self.agent.kill();
            let _ = self.agent.wait();
        }
    }
}

/// Whether python3 runs here: under CI its absence fails the test; elsewhere the skip is
/// shown on the terminal.
fn python3() -> bool {
    use alumet::test_util::skip::{missing_tool, should_run};
    should_run(
        "ctrl_c_in_a_terminal_reaches_the_command_once",
        missing_tool("python3", "python3"),
    )
}

#[test]
fn ctrl_c_in_a_terminal_reaches_the_command_once() {
    if !python3() {
        return;
    }
    let dir = temp_dir("exec-ctrl-c");
    std::fs::write(dir.join("count.py"), COUNT_SIGINTS).unwrap();
    let session = PtySession::start(&dir, &["python3", "count.py"]);
    session.wait_for("ready");
    session.type_in(b"\x03");
    let (code, output) = session.wait();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("signal 2 from the terminal: pid"),
        "{output}"
    );
    assert!(output.contains("wall time"), "{output}");
    let sigints = std::fs::read_to_string(dir.join("sigints")).unwrap();
    assert_eq!(
        sigints, "1",
        "SIGINTs the command received; agent output:\n{output}"
    );
}

#[test]
fn a_hangup_of_the_agents_terminal_is_forwarded_to_the_command() {
    // The kernel sends a hangup's SIGHUP to the session leader alone: the agent here.
    let dir = temp_dir("exec-hangup");
    let mut session = PtySession::start(&dir, &["sh", "-c", "echo ready; exec sleep 30"]);
    session.wait_for("ready");
    session.hang_up();
    let (code, output) = session.wait();
    assert_eq!(code, Some(128 + libc::SIGHUP), "{output}");
}

#[test]
fn repeat_runs_the_command_n_times_and_reports_the_spread() {
    let dir = temp_dir("exec-repeat");
    let counter = dir.join("count");
    let script = format!("echo x >> {}", counter.display());
    let (code, stderr) = exec_sh(&dir, 3, &script);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "x\nx\nx\n");
    assert!(stderr.contains("(3 runs)"), "{stderr}");
    assert!(stderr.contains("+-"), "mean ± stddev: {stderr}");
    let json = summary_json(&dir);
    assert_eq!(json["runs"], 3);
    let wall = &figure(&json, "wall time")["values"];
    assert_eq!(wall.as_array().unwrap().len(), 3);
}

#[test]
fn with_repeats_a_failed_run_is_the_exit_code_even_if_later_runs_succeed() {
    let dir = temp_dir("exec-repeat-fail");
    std::fs::write(dir.join("count"), "").unwrap();
    // The first run exits 5, the two others 0.
    let script = "n=$(wc -l < count); echo x >> count; [ \"$n\" -ne 0 ] || exit 5";
    let (code, stderr) = exec_sh(&dir, 3, script);
    assert_eq!(
        std::fs::read_to_string(dir.join("count")).unwrap(),
        "x\nx\nx\n"
    );
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("run 1 of 3 exited with 5"), "{stderr}");
    assert!(stderr.contains("(3 runs)"), "{stderr}");
    let json = summary_json(&dir);
    assert_eq!(json["exit_code"], 5);
    assert_eq!(json["run_exit_codes"], serde_json::json!([5, 0, 0]));
}

#[test]
fn a_summary_file_that_cannot_be_created_fails_before_the_command_runs() {
    let dir = temp_dir("exec-summary-path");
    let args = [
        "--summary-json",
        "no-such-dir/s.json",
        "--",
        "sh",
        "-c",
        "touch ran",
    ];
    let (code, stderr) = exec(&dir, &args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot create the summary file no-such-dir/s.json (--summary-json)"),
        "{stderr}"
    );
    assert!(!dir.join("ran").exists(), "the command must not run");
    assert!(!dir.join("out.csv").exists(), "no output must be opened");
}

#[test]
fn a_command_that_cannot_start_leaves_no_summary_file() {
    let dir = temp_dir("exec-summary-no-start");
    let args = ["--summary-json", "s.json", "--", "surely-not-a-command-xyz"];
    let (code, stderr) = exec(&dir, &args);
    assert_eq!(code, 127, "{stderr}");
    assert!(
        !dir.join("s.json").exists(),
        "an empty summary file is left"
    );
    // A summary from before is kept, as it was.
    std::fs::write(dir.join("s.json"), "{\"old\": 1}\n").unwrap();
    let (code, stderr) = exec(&dir, &args);
    assert_eq!(code, 127, "{stderr}");
    let kept = std::fs::read_to_string(dir.join("s.json")).unwrap();
    assert_eq!(kept, "{\"old\": 1}\n");
    // And replaced by a run that ends.
    let (code, stderr) = exec(&dir, &["--summary-json", "s.json", "--", "true"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(summary_json(&dir)["figures"].is_array());
}

#[test]
fn by_default_only_the_summary_follows_the_commands_output() {
    let dir = temp_dir("exec-quiet");
    let quiet = |args: &[&str]| {
        let mut cmd = agent_exec(&dir, &[], args);
        cmd.env_remove("RUST_LOG");
        run_to_exit(cmd)
    };
    let (code, stderr) = quiet(&["--", "sh", "-c", "echo own >&2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.starts_with("own\n"), "{stderr}");
    assert!(!stderr.contains(" INFO "), "{stderr}");
    assert!(stderr.contains("wall time"), "{stderr}");
    // Errors still show.
    let (code, stderr) = quiet(&["--", "surely-not-a-command-xyz"]);
    assert_eq!(code, 127);
    assert!(stderr.contains("command not found"), "{stderr}");
}

#[test]
fn an_output_that_loses_points_fails_the_agent_and_the_summary_says_so() {
    let dir = temp_dir("exec-output-lost");
    // Each write fails, or (force_flush off) only the final flush.
    for extra in [
        &[][..],
        &["--config-override", "plugins.csv.force_flush=false"],
    ] {
        let global = [&["--output-file", "/dev/full"][..], extra].concat();
        let (code, stderr) = run_to_exit(agent_exec(&dir, &global, &["--", "true"]));
        assert_eq!(code, 1, "{extra:?}: {stderr}");
        assert!(
            stderr.contains("by output csv/csv (incomplete: "),
            "{extra:?}: {stderr}"
        );
    }
}

#[test]
fn the_summary_file_is_never_written_over_measured_data() {
    let dir = temp_dir("exec-summary-over-csv");
    // The CSV of an earlier run, then the same path given as the summary file.
    let (code, stderr) = exec(&dir, &["true"]);
    assert_eq!(code, 0, "{stderr}");
    let before = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert!(before.starts_with("metric;"), "{before}");
    let (code, stderr) = exec(&dir, &["--summary-json", "out.csv", "--", "true"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("holds something else than a JSON summary"),
        "{stderr}"
    );
    let after = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert_eq!(after, before, "the CSV must be left as it was");
    // A new file that the CSV output also writes: found at the end, left to the CSV.
    let both = |file: &str, program: &str| {
        let args = ["--summary-json", file, "--", program];
        run_to_exit(agent_exec(&dir, &["--output-file", file], &args))
    };
    let (code, stderr) = both("new.csv", "true");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("written by someone else"), "{stderr}");
    assert!(stderr.contains("wall time"), "the text summary: {stderr}");
    let csv = std::fs::read_to_string(dir.join("new.csv")).unwrap();
    assert!(csv.starts_with("metric;") && !csv.contains('{'), "{csv}");
    assert!(csv.lines().count() > 1, "the run's points: {csv}");
    // Nor removed when the command cannot start, after the CSV output wrote to it.
    let (code, stderr) = both("early.csv", "surely-not-a-command-xyz");
    assert_eq!(code, 127, "{stderr}");
    let csv = std::fs::read_to_string(dir.join("early.csv")).unwrap();
    assert!(csv.starts_with("metric;"), "{csv}");
}

#[test]
fn with_repeats_a_run_that_cannot_start_ends_them_and_the_runs_made_are_summed_up() {
    let dir = temp_dir("exec-repeat-gone");
    // Runs once, then removes itself: the second run cannot start.
    let script = dir.join("once.sh");
    std::fs::write(&script, "#!/bin/sh\nrm -- \"$0\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = ["-r", "3", "--summary-json", "s.json", "--", "./once.sh"];
    let (code, stderr) = exec(&dir, &args);
    assert_eq!(code, 127, "{stderr}");
    assert!(stderr.contains("run 2 of 3: command not found"), "{stderr}");
    assert!(stderr.contains("'./once.sh' (1 run)"), "{stderr}");
    let json = summary_json(&dir);
    assert_eq!(json["runs"], 1);
    assert_eq!(json["exit_code"], 127);
    assert_eq!(json["run_exit_codes"], serde_json::json!([0]));
    // --ignore-exit-code is about the command's codes, not about a run that never started.
    std::fs::write(&script, "#!/bin/sh\nrm -- \"$0\"\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = ["--ignore-exit-code", "-r", "3", "--", "./once.sh"];
    let (code, stderr) = exec(&dir, &args);
    assert_eq!(code, 127, "{stderr}");
}

#[test]
fn a_summary_that_cannot_be_written_keeps_the_text_summary_and_the_command_code() {
    let dir = temp_dir("exec-summary-full");
    // /dev/full opens, and every write to it fails (ENOSPC).
    for (command, expected) in [("exit 3", 3), ("true", 1)] {
        let args = ["--summary-json", "/dev/full", "--", "sh", "-c", command];
        let (code, stderr) = exec(&dir, &args);
        assert_eq!(code, expected, "{command}: {stderr}");
        assert!(
            stderr.contains("writing the summary to /dev/full"),
            "{stderr}"
        );
        assert!(stderr.contains("wall time"), "{stderr}");
    }
    assert!(dir.join("out.csv").exists());
}

/// Seconds in the `times` builtin's format (`0m0.280000s` or `0m0.28s`).
fn seconds(field: &str) -> f64 {
    let (m, s) = field.trim_end_matches('s').split_once('m').unwrap();
    m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
}

#[test]
fn cpu_time_of_the_command_matches_what_the_command_itself_accounts() {
    let dir = temp_dir("exec-cpu");
    // Burns a fixed amount of CPU (about 0.7 s, whatever the machine's load) in a shell
    // loop without forks, then writes the shell's own accounting (`times`: the shell's
    // user and system time, then its children's; 10 ms ticks) to a file.
    let burn = "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; times > times.txt";
    let (code, stderr) = exec_sh(&dir, 1, burn);
    assert_eq!(code, 0, "{stderr}");
    let times = std::fs::read_to_string(dir.join("times.txt")).unwrap();
    let own: f64 = times.split_whitespace().map(seconds).sum();
    let json = summary_json(&dir);
    let mean = |name: &str| figure(&json, name)["mean"].as_f64().unwrap();
    let measured = mean("user CPU time") + mean("system CPU time");
    assert!(own > 0.1, "the loop burns CPU: {times}");
    assert!(
        (measured - own).abs() / own < 0.10,
        "summary {measured} s, the command's own {own} s ({times})"
    );
}

/// The sources' threads start only when the command outlives the first periodic poll:
/// a shorter command is measured by the readings before and after it, and ends without
/// a thread to stop (docs/performance.md). A longer one gets them, and its points.
#[test]
fn source_threads_start_only_for_a_command_that_outlives_the_first_poll() {
    let dir = temp_dir("exec-threads");
    let script = "sleep 0.1; ls /proc/$PPID/task > short.txt; \
                  sleep 1.9; ls /proc/$PPID/task > long.txt";
    let cmd = agent_exec(
        &dir,
        &["--config-override", "plugins.agent.poll_interval='1s'"],
        &["--", "sh", "-c", script],
    );
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 0, "{stderr}");
    let threads = |file: &str| {
        let tasks = std::fs::read_to_string(dir.join(file)).unwrap();
        tasks.lines().count()
    };
    assert_eq!(
        threads("short.txt"),
        1,
        "before the first poll: the main thread alone"
    );
    assert!(threads("long.txt") >= 2, "after it: the source thread too");
    // The source polled at 1 s, between the readings before and after the command.
    let rows = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    let timestamps: std::collections::BTreeSet<&str> = rows
        .lines()
        .skip(1)
        .filter_map(|l| l.split(';').nth(1))
        .collect();
    assert!(timestamps.len() >= 3, "{rows}");
}

/// The dynamic loader relocates every pointer in the binary's tables at each start, used
/// or not. The `regex` crate's Unicode tables (names and ranges of every property, script
/// and case folding) were 6 700 of the release build's 12 540 relocations and 33 of its 56
/// copy-on-write pages, about 0.2 ms of each start (docs/performance.md): procfs's
/// `exe_regex` uses `regex-lite`.
///
/// What is checked is the dependency graph of the shipped build (`cargo tree -e no-dev`):
/// the binary this test run builds may hold the tables, because a dev-dependency of some
/// workspace crate (proptest) turns on regex-syntax's Unicode features for test builds.
#[test]
fn the_agent_carries_no_unicode_property_tables() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = std::process::Command::new(cargo)
        .args(["tree", "--offline", "--manifest-path", manifest])
        .args(["-p", "alumet-agent", "-e", "no-dev", "--prefix", "none"])
        .args(["-f", "{p} [{f}]"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(tree.contains("alumet-agent"), "{tree}");
    for line in tree.lines() {
        let unicode_regex = line.starts_with("regex-syntax ") && line.contains("unicode");
        assert!(
            !unicode_regex,
            "the agent's dependencies bring Unicode tables back: {line} \
             (`cargo tree -e no-dev -i regex-syntax -f '{{p}} [{{f}}]'`)"
        );
    }
}

/// Every shared library costs each start of the agent its mapping and relocation (about
/// 0.1 ms of `exec -- true`, docs/performance.md): libm came with tokio's multi-thread
/// scheduler (its one `pow`) and is gone with it; libgcc_s, the unwinder, is linked
/// statically instead (build.rs).
#[test]
fn the_agent_maps_no_shared_library_beyond_libc() {
    let dir = temp_dir("exec-libs");
    // The command's parent is the agent: its memory map lists the libraries it loaded.
    let (code, stderr) = exec_sh(&dir, 1, "cat /proc/$PPID/maps > maps.txt");
    assert_eq!(code, 0, "{stderr}");
    let maps = std::fs::read_to_string(dir.join("maps.txt")).unwrap();
    let mut libs: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter_map(|path| path.rsplit('/').next())
        .filter(|name| name.contains(".so"))
        .collect();
    libs.sort_unstable();
    libs.dedup();
    assert!(
        libs.iter().any(|l| l.starts_with("libc.so")),
        "the map is the agent's: {maps}"
    );
    // Before glibc 2.34, libpthread, libdl and librt were separate parts of the C library.
    let mut glibc = vec!["libc.so", "libpthread", "libdl.", "librt.", "ld-linux"];
    // The unwinder is linked statically where the linker has it (build.rs says).
    if env!("ALUMET_STATIC_UNWINDER") != "1" {
        glibc.push("libgcc_s.so");
    }
    let extra: Vec<&&str> = libs
        .iter()
        .filter(|l| !glibc.iter().any(|k| l.starts_with(k)))
        .collect();
    assert!(extra.is_empty(), "libraries beyond libc: {extra:?}");
}

#[test]
fn watch_a_missing_or_impossible_pid_is_a_clear_error() {
    let dir = temp_dir("watch-missing");
    std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config", "watch", "999999999"]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no process with pid 999999999"), "{stderr}");
    // 0 and pids above i32::MAX are not processes for kill(2) (0 is our process group,
    // 2^32-1 becomes -1: every process): refused at the command line.
    for pid in ["0", "4294967295"] {
        let mut cmd = agent(&dir);
        cmd.args(["--no-default-config", "watch", pid]);
        let (code, stderr) = run_to_exit(cmd);
        assert_eq!(code, 2, "{pid}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid value '{pid}' for '[PID]'")),
            "{stderr}"
        );
    }
    // The agent itself: sh replaces itself with the agent, so $$ is the agent's pid.
    let script = format!(
        "exec '{}' --no-default-config watch $$",
        env!("CARGO_BIN_EXE_alumet-agent")
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.current_dir(&dir)
        .env_remove("ALUMET_CONFIG")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is the agent itself"), "{stderr}");
}

#[test]
fn watch_of_a_process_that_has_already_exited_is_a_clear_error() {
    let dir = temp_dir("watch-zombie");
    // Our child, never reaped: a zombie once it has exited.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    wait_for_stat(child.id(), "never exited", |(state, ..)| *state == 'Z');
    std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
    let mut cmd = agent(&dir);
    let pid = child.id().to_string();
    cmd.args(["--no-default-config", "watch", &pid]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("has already exited (a zombie"), "{stderr}");
    child.wait().unwrap();
}

/// A `sleep SECONDS` started by the test (not by the agent), and the agent command that
/// watches it.
fn watch_a_sleep(dir: &Path, seconds: &str) -> (std::process::Child, std::process::Command) {
    std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
    let sleeper = std::process::Command::new("sleep")
        .arg(seconds)
        .spawn()
        .unwrap();
    let mut cmd = agent(dir);
    cmd.args(["--no-default-config", "watch", &sleeper.id().to_string()]);
    (sleeper, cmd)
}

#[test]
fn watch_a_running_process_until_it_exits() {
    let dir = temp_dir("watch");
    let (mut sleeper, cmd) = watch_a_sleep(&dir, "30");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    // It exits (killed, and reaped by this test, its parent) while the agent watches.
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("measurements for 'pid "), "{stderr}");
    assert!(!stderr.contains("stopped watching"), "{stderr}");
}

#[test]
fn watch_ends_when_the_process_exits_even_if_its_parent_has_not_reaped_it() {
    // SAFETY: pidfd_open of this process; the descriptor is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
    if fd < 0 {
        // Kernels before 5.3, or a seccomp filter (some container runtimes): the agent
        // polls /proc, where a zombie looks alive until reaped.
        eprintln!(
            "SKIPPED: no pidfd_open here ({})",
            std::io::Error::last_os_error()
        );
        return;
    }
    // SAFETY: the descriptor pidfd_open just returned.
    unsafe { libc::close(fd as i32) };
    let dir = temp_dir("watch-zombie");
    let (mut sleeper, cmd) = watch_a_sleep(&dir, "0.3");
    // The sleeper stays a zombie (this test is its parent and reaps it only afterwards):
    // its /proc entry remains, but it has exited.
    let (code, stderr) = run_to_exit(cmd);
    sleeper.wait().unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("measurements for 'pid "), "{stderr}");
}

/// `(state, user + system ticks, command name)` of process `pid`, from its stat file.
fn stat_of(pid: u32) -> (char, u64, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let open = text.find('(').unwrap();
    let close = text.rfind(')').unwrap();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<u64>().unwrap();
    // After the name: state (field 3), ..., utime (14) and stime (15).
    let state = fields[0].chars().next().unwrap();
    (
        state,
        ticks(11) + ticks(12),
        text[open + 1..close].to_owned(),
    )
}

/// Waits until `done` holds for the stat of `pid` (fails after 30 s).
fn wait_for_stat(pid: u32, what: &str, done: impl Fn(&(char, u64, String)) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let stat = stat_of(pid);
        if done(&stat) {
            return;
        }
        assert!(start.elapsed().as_secs() < 30, "{what}: {stat:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A process started by a test, killed (and reaped) when the test ends, even by a panic.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A watch counts the CPU time that the process uses while watched, not what it used
/// before (as `perf stat -p`), even for a process younger than a second.
#[test]
fn watch_counts_the_cpu_time_used_during_the_watch_and_not_before() {
    let dir = temp_dir("watch-cpu");
    std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
    let fifo = dir.join("go");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // Burns CPU, waits (without a fork) until the test opens the FIFO, burns again, then
    // becomes `sleep` (exec keeps its CPU times).
    let burn = "i=0; while [ $i -lt 250000 ]; do i=$((i+1)); done";
    let watched = std::process::Command::new("sh")
        .args(["-c", &format!("{burn}; read x < go; {burn}; exec sleep 30")])
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let watched = KilledOnDrop(watched);
    let pid = watched.0.id();
    // Blocked opening the FIFO: the first burn is over.
    wait_for_stat(pid, "the first burn", |(state, ..)| *state == 'S');
    let before = stat_of(pid).1;
    let mut cmd = agent(&dir);
    cmd.args([
        "--no-default-config",
        "--plugins",
        "procfs,csv",
        "watch",
        "--summary-json",
        "s.json",
        &pid.to_string(),
    ]);
    let mut running = Running::spawn(cmd);
    // The readings that open the watch's window are in the CSV file: the process's
    // first reading (a baseline) gives no CPU-time row, the next one, just before the
    // window opens, does.
    running.wait_until("the readings before the watch", |_| {
        std::fs::read_to_string(dir.join("out.csv")).is_ok_and(|rows| {
            rows.lines().any(|l| {
                l.starts_with("cpu_time_delta_ms;") && l.contains(&format!(";process;{pid};"))
            })
        })
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(&fifo, "\n").unwrap();
    wait_for_stat(pid, "the second burn", |(_, _, name)| name == "sleep");
    let after = stat_of(pid).1;
    // The process goes on running: SIGINT ends the watch, with a final reading of it.
    running.signal(libc::SIGINT);
    let (status, stderr) = running.wait();
    drop(watched);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let json = summary_json(&dir);
    let mean = |name: &str| figure(&json, name)["mean"].as_f64().unwrap();
    let measured = mean("user CPU time (procfs)") + mean("system CPU time (procfs)");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let during = (after - before) as f64 / hz;
    let tolerance = 0.03 + 0.1 * during;
    assert!(
        before as f64 / hz > 2.0 * tolerance && during > 2.0 * tolerance,
        "both burns use more CPU than the tolerance: {before} ticks, then {during} s"
    );
    // Clock ticks (10 ms), read at slightly different moments.
    let close = |x: f64| (x - during).abs() <= tolerance;
    assert!(
        close(measured),
        "summary {measured} s; the process used {during} s while watched, {} s before",
        before as f64 / hz
    );
    // The CSV rows too: the first reading is not a difference from the process's start.
    let rows = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    let written: f64 = (rows.lines())
        .map(|l| l.split(';').collect::<Vec<_>>())
        .filter(|f| f[0] == "cpu_time_delta_ms" && f[6] == pid.to_string())
        .map(|f| f[2].parse::<f64>().unwrap() / 1000.0)
        .sum();
    assert!(
        close(written),
        "{written} s in the CSV rows, {during} s while watched:\n{rows}"
    );
}

#[test]
fn sigint_ends_a_watch_and_leaves_the_process_running() {
    let dir = temp_dir("watch-sigint");
    let (mut sleeper, cmd) = watch_a_sleep(&dir, "30");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    std::thread::sleep(std::time::Duration::from_millis(200));
    running.signal(libc::SIGINT);
    let (status, stderr) = running.wait();
    let alive = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        alive,
        "the watched process must not get the signal: {stderr}"
    );
    assert!(
        stderr.contains("stopped watching pid") && stderr.contains("goes on running"),
        "{stderr}"
    );
    assert!(stderr.contains("measurements for 'pid "), "{stderr}");
}

#[test]
fn a_command_running_past_two_seconds_has_the_start_up_pages_given_back_a_short_one_not() {
    let dir = temp_dir("exec-release");
    let with_log = |args: &[&str]| {
        let mut cmd = agent_exec(&dir, &[], args);
        cmd.env("RUST_LOG", "info,alumet_agent::memory=debug");
        run_to_exit(cmd)
    };
    let (code, stderr) = with_log(&["--", "sleep", "2.5"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("gave back the start-up pages"),
        "a 2.5 s command: {stderr}"
    );
    assert!(
        stderr.contains("wall time"),
        "the summary follows: {stderr}"
    );
    let (code, stderr) = with_log(&["--", "true"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("start-up pages"),
        "a short command ends before: {stderr}"
    );
}
