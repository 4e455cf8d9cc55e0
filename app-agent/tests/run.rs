//! Run mode through the binary: flags take effect, the default config, SIGTERM drains.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet_agent::plugins;
use common::*;

/// The agent plugin polls every 10 ms and flushes only every hour: every row reaches the
/// CSV at shutdown, or not at all.
const BUFFERED: &str = "[plugins.agent]\npoll_interval = '10ms'\nflush_interval = '1h'\n";

fn data_rows(csv: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    assert!(header.starts_with("metric;timestamp;value;"), "{header}");
    lines.map(str::to_owned).collect()
}

/// The number of points the agent says it wrote to `output`.
fn logged_written(stderr: &str, output: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("output {output}")))
        .unwrap_or_else(|| panic!("no report for {output} in:\n{stderr}"));
    let after = line.split(": ").nth(1).unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
}

/// Starts the agent, waits until it runs and has polled a few times, sends `signal`.
fn run_and_stop(dir: &Path, args: &[&str], signal: i32) -> (std::process::ExitStatus, String) {
    let mut cmd = agent(dir);
    cmd.args(args);
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    std::thread::sleep(std::time::Duration::from_millis(300));
    running.signal(signal);
    running.wait()
}

#[test]
fn sigterm_with_points_still_buffered_writes_them_all_and_exits_0() {
    let dir = temp_dir("sigterm");
    std::fs::write(
        dir.join("alumet-config.toml"),
        format!("{BUFFERED}[plugins.csv]\noutput_path = 'out.csv'\n"),
    )
    .unwrap();
    let (status, stderr) = run_and_stop(&dir, &["--no-default-config"], libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let rows = data_rows(&dir.join("out.csv"));
    let written = logged_written(&stderr, "csv/");
    assert!(rows.len() >= 4, "a few polls of 4 points: {rows:?}");
    assert_eq!(
        rows.len() as u64,
        written,
        "every point the pipeline accepted is in the file"
    );
    assert!(
        stderr.contains("0 dropped (queue full), 0 lost"),
        "{stderr}"
    );
    // SIGINT behaves the same (SIGHUP reloads the config: app-agent/tests/reload.rs). The
    // file grows by what each run says it wrote.
    let before = rows.len() as u64;
    let signal = libc::SIGINT;
    let (status, stderr) = run_and_stop(&dir, &["--no-default-config"], signal);
    assert_eq!(status.code(), Some(0), "{signal}: {stderr}");
    let said = format!("signal {signal} received: writing what was measured");
    assert!(stderr.contains(&said), "{stderr}");
    let now = data_rows(&dir.join("out.csv")).len() as u64;
    assert_eq!(now - before, logged_written(&stderr, "csv/"), "{stderr}");
    assert!(now - before >= 4, "a few polls of 4 points: {stderr}");
}

#[test]
fn missing_config_writes_the_default_and_runs_with_it() {
    let dir = temp_dir("default");
    let (status, stderr) = run_and_stop(&dir, &[], libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(dir.join("alumet-config.toml")).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let csv_path = parsed["plugins"]["csv"]["output_path"].as_str().unwrap();
    assert!(
        dir.join(csv_path).exists(),
        "the default output {csv_path} was written"
    );
}

#[test]
fn config_override_output_file_and_plugins_flags_take_effect() {
    let dir = temp_dir("flags");
    std::fs::write(
        dir.join("alumet-config.toml"),
        format!("{BUFFERED}[plugins.csv]\noutput_path = 'out.csv'\n"),
    )
    .unwrap();

    let args = [
        "--no-default-config",
        "--config-override",
        "plugins.csv.output_path=\"override.csv\"",
    ];
    let (status, stderr) = run_and_stop(&dir, &args, libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!data_rows(&dir.join("override.csv")).is_empty());
    assert!(!dir.join("out.csv").exists());

    let args = ["--no-default-config", "--output-file", "flag.csv"];
    let (status, stderr) = run_and_stop(&dir, &args, libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!data_rows(&dir.join("flag.csv")).is_empty());

    // --plugins csv: the agent plugin, enabled in the file, does not run.
    let args = [
        "--no-default-config",
        "--plugins",
        "csv",
        "--output-file",
        "only-csv.csv",
    ];
    let (status, stderr) = run_and_stop(&dir, &args, libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("running plugins: csv;"), "{stderr}");
    assert!(data_rows(&dir.join("only-csv.csv")).is_empty());
}

/// `plugins list --status` on `config`: the listing (the command must succeed).
fn plugin_status(dir: &Path, config: &Path) -> String {
    let mut cmd = agent(dir);
    cmd.arg("--no-default-config")
        .arg("--config")
        .arg(config)
        .args(["plugins", "list", "--status"]);
    let output = cmd.output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Whether the listing says that `plugin` is enabled.
fn enabled(listing: &str, plugin: &str) -> bool {
    listing
        .lines()
        .any(|l| l.starts_with(plugin) && l.ends_with("enabled"))
}

#[test]
fn closed_standard_descriptors_are_not_given_to_the_files_the_agent_opens() {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir("closed-fds");
    std::fs::write(dir.join("alumet-config.toml"), "[plugins.csv]\n").unwrap();
    let mut cmd = agent(&dir);
    cmd.args([
        "--no-default-config",
        "--output-file",
        "out.csv",
        "exec",
        "--",
        "true",
    ]);
    // SAFETY: close(2) is async-signal-safe; only the child's descriptors change.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(2);
            Ok(())
        });
    }
    let (code, _) = run_to_exit(cmd);
    assert_eq!(code, 0);
    // With stderr closed, the CSV file (the only file held open: no source here) would
    // get its number, and the log lines.
    let csv = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert!(!csv.contains("running plugins"), "{csv}");
}

#[test]
fn a_closed_stdout_pipe_is_an_error_not_a_signal_death() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = temp_dir("epipe");
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which we then own; close-on-exec, so that
    // no process another test starts meanwhile holds the reading end.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors, owned nowhere else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The reading end is closed before the agent starts: its first write fails.
    drop(read);
    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config", "plugins", "list"])
        .stdout(write);
    let (status, stderr) = Running::spawn(cmd).wait();
    // SIGPIPE is ignored: the write fails with EPIPE and the agent exits with a code,
    // saying why, without a panic.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), None, "{status:?}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writing to standard output: Broken pipe"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn config_regen_parses_and_gives_the_same_config_as_the_generated_default() {
    let dir = temp_dir("regen");
    let mut cmd = agent(&dir);
    cmd.args(["--config", "regen.toml", "config", "regen"]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 0, "{stderr}");
    let regen = std::fs::read_to_string(dir.join("regen.toml")).unwrap();
    let parsed: toml::Table = toml::from_str(&regen).unwrap();
    assert!(parsed["plugins"].as_table().unwrap().contains_key("csv"));

    // Loaded again: valid, and every plugin of the default is enabled.
    let listing = plugin_status(&dir, &dir.join("regen.toml"));
    assert!(
        enabled(&listing, "csv") && listing.contains("output"),
        "{listing}"
    );
    assert!(enabled(&listing, "agent"), "{listing}");

    // The default written on a first run is the same text.
    let (status, stderr) = run_and_stop(&dir, &["--config", "first-run.toml"], libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("first-run.toml")).unwrap(),
        regen
    );
}

#[test]
fn plugins_list_names_every_plugin() {
    let dir = temp_dir("list");
    let output = agent(&dir).args(["plugins", "list"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    // Derived from the registration (app-agent/src/plugins.rs), in its start order.
    let mut expected: String = plugins::names(&plugins::all())
        .iter()
        .map(|name| format!("{name}\n"))
        .collect();
    for (alias, plugin) in plugins::ALIASES {
        expected.push_str(&format!(
            "{alias} (the public Alumet agent's name of {plugin})\n"
        ));
    }
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

#[test]
fn unwritable_csv_path_is_a_config_error_naming_the_key_and_the_path() {
    // Exit 78, not 1: a service unit restarts on 1 (every 5 s, forever), not on 78.
    let dir = temp_dir("unwritable");
    let config = "[plugins.csv]\noutput_path = 'no/such/dir/out.csv'\n";
    let (code, stderr) = run_config(&dir, config, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("no/such/dir/out.csv"), "{stderr}");
    assert!(stderr.contains("output_path"), "{stderr}");
    assert!(!stderr.contains("running plugins"), "{stderr}");
    // A directory, and the same through --output-file.
    let (code, stderr) = run_config(&dir, "", &["--output-file", "."]);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
}

#[test]
fn environment_variables_are_substituted_in_values() {
    let dir = temp_dir("env");
    std::fs::write(
        dir.join("alumet-config.toml"),
        "[plugins.csv]\noutput_path = '${ALUMET_TEST_OUT}.csv'\n",
    )
    .unwrap();
    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config"])
        .env("ALUMET_TEST_OUT", "from-env");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(dir.join("from-env.csv").exists());
}

#[test]
fn the_packaged_sample_config_loads() {
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/alumet-config.toml");
    let dir = temp_dir("sample");
    let listing = plugin_status(&dir, &sample);
    assert!(enabled(&listing, "csv"), "{listing}");
}

/// A FIFO whose read end is held open but never read, with a one-page buffer: writing to
/// it blocks after a few rows, like an output whose disk or network hangs.
fn stuck_fifo(path: &Path) -> std::fs::File {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    // SAFETY: fcntl on a file descriptor we own.
    unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    reader
}

fn run_against_stuck_output(
    name: &str,
    shutdown_timeout: &str,
    signals: usize,
) -> (std::process::ExitStatus, String) {
    let dir = temp_dir(name);
    let _reader = stuck_fifo(&dir.join("stuck.csv"));
    let config = format!(
        "shutdown_timeout = '{shutdown_timeout}'\n[plugins.agent]\npoll_interval = '2ms'\nflush_interval = '2ms'\n[plugins.csv]\noutput_path = 'stuck.csv'\n"
    );
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(&dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    // A few hundred rows: far more than the pipe holds.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for _ in 0..signals {
        running.signal(libc::SIGTERM);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    running.wait()
}

#[test]
fn a_blocked_output_is_given_up_at_the_shutdown_deadline_with_a_report() {
    let (status, stderr) = run_against_stuck_output("deadline", "300ms", 1);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not stop in time") || stderr.contains("did not finish"),
        "{stderr}"
    );
    assert!(
        stderr.contains("points were not delivered") || stderr.contains("not be delivered"),
        "{stderr}"
    );
}

#[test]
fn a_second_signal_exits_at_once_and_says_what_was_not_written() {
    let (status, stderr) = run_against_stuck_output("second-signal", "60s", 2);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("second signal: exiting now;"), "{stderr}");
    assert!(
        stderr.contains("measured points were not written"),
        "{stderr}"
    );
}

/// A figure of `/proc/PID/status`, in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_pages_only_start_up_used_are_given_back_once_running_and_again_after_a_reload() {
    let dir = temp_dir("startup-pages");
    std::fs::write(
        dir.join("alumet-config.toml"),
        "[plugins.agent]\npoll_interval = '10ms'\nflush_interval = '10ms'\n\
         [plugins.csv]\noutput_path = 'out.csv'\nforce_flush = true\n",
    )
    .unwrap();
    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config"])
        .env("RUST_LOG", "info,alumet_agent::memory=debug");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    let before = status_kb(running.pid(), "RssFile:");
    running.wait_for_log("gave back the start-up pages");
    let rows_at_release = data_rows(&dir.join("out.csv")).len();
    let after = status_kb(running.pid(), "RssFile:");
    assert!(
        after < before,
        "the binary's file pages: {after} kB after the release, {before} kB before"
    );
    // The measuring loops go on, their code read back.
    running.wait_until("more rows", |_| {
        data_rows(&dir.join("out.csv")).len() >= rows_at_release + 20
    });
    // A reload runs the config code again: its pages are given back again afterwards.
    running.signal(libc::SIGHUP);
    running.wait_until("a second release, after the reload", |r| {
        r.stderr().matches("gave back the start-up pages").count() == 2
    });
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
}
