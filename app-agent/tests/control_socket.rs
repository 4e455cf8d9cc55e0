//! The control socket against a running agent: status, pause, resume, set-interval,
//! trigger and stop; bad requests; the socket's mode; stale and live sockets.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use common::*;
use serde_json::Value;

/// The agent plugin polls every 10 ms, flushes every poll; the CSV output writes it all.
const CONFIG: &str = "control_socket = 'c.sock'\n[plugins.agent]\npoll_interval = '10ms'\nflush_interval = '10ms'\n[plugins.csv]\noutput_path = 'out.csv'\n";

/// Runs `alumet-agent control ARGS` in `dir`; returns its exit code, stdout and stderr.
fn control(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = agent(dir);
    cmd.arg("control").args(args);
    let out = cmd.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The reply to `args` with --json, which must be `{"ok":..}`: its value.
fn ok(dir: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = control(dir, &all);
    let reply: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(code, 0, "{reply} {err}");
    reply["ok"].clone()
}

/// Sends raw bytes on the socket; returns the reply line.
fn raw(socket: &Path, bytes: &[u8]) -> Value {
    let mut stream = UnixStream::connect(socket).unwrap();
    let _ = stream.write_all(bytes);
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// The agent/self source's entry in the status.
fn source(dir: &Path) -> Value {
    let status = ok(dir, &["status"]);
    let elements = status["elements"].as_array().unwrap();
    elements
        .iter()
        .find(|e| e["name"] == "agent/self")
        .unwrap_or_else(|| panic!("no agent/self in {status}"))
        .clone()
}

fn start(dir: &Path, config: &str) -> Running {
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    running
}

/// Stops the agent with SIGTERM; it must exit 0 (nothing dropped or lost).
fn sigterm_exits_0(running: Running) {
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

fn polls(dir: &Path) -> u64 {
    source(dir)["polls"].as_u64().unwrap()
}

#[test]
fn status_after_a_pause_matches_the_final_report_and_stop_drains() {
    let dir = temp_dir("ctl-status");
    let mut running = start(&dir, CONFIG);
    running.wait_until("a few polls", |_| polls(&dir) >= 3);
    assert_eq!(ok(&dir, &["pause", "agent/*"]), "paused 1 source(s)");
    let paused = source(&dir);
    assert_eq!(paused["state"], "paused", "{paused}");
    assert_eq!(paused["interval"], "10ms", "{paused}");
    let points = paused["points"].as_u64().unwrap();
    let status = ok(&dir, &["status"]);
    assert_eq!(status["plugins"], serde_json::json!(["agent", "csv"]));
    // The CSV output's queue: the default capacity.
    assert_eq!(status["outputs"][0]["capacity"], 65536, "{status}");
    let (code, table, _) = control(&dir, &["status"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("ELEMENT") && table.contains("agent/self"),
        "{table}"
    );
    assert!(
        table.contains("OUTPUT") && table.contains("csv/csv"),
        "{table}"
    );
    let (code, out, err) = control(&dir, &["stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stopping"), "{out}");
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let report = format!("output csv/csv: {points} points written, 0 dropped");
    assert!(stderr.contains(&report), "{report} in:\n{stderr}");
    let rows = std::fs::read_to_string(dir.join("out.csv"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(rows as u64, points + 1, "the header and every point");
    assert!(
        !dir.join("c.sock").exists(),
        "the socket is removed at exit"
    );
}

#[test]
fn pause_set_interval_trigger_and_resume_act_on_the_source() {
    let dir = temp_dir("ctl-act");
    let mut running = start(&dir, CONFIG);
    running.wait_until("a few polls", |_| polls(&dir) >= 3);
    // Paused: no point comes while other sources would have polled 20 times.
    ok(&dir, &["pause", "agent/self"]);
    let points = source(&dir)["points"].as_u64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(source(&dir)["points"].as_u64().unwrap(), points);
    let (code, _, err) = control(&dir, &["trigger", "agent/self"]);
    assert_eq!(code, 1, "a paused source is not polled");
    assert!(err.contains("matches no active source"), "{err}");
    // Every hour: resumed, it does not poll again within the test.
    ok(&dir, &["set-interval", "agent/*", "1h"]);
    assert_eq!(source(&dir)["interval"], "1h");
    ok(&dir, &["resume", "agent/self"]);
    let before = polls(&dir);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(polls(&dir), before, "no poll at 1h");
    assert_eq!(ok(&dir, &["trigger", "agent/self"]), "polled 1 source(s)");
    assert_eq!(polls(&dir), before + 1, "one trigger, one poll");
    // Back to 10 ms: polls come again.
    ok(&dir, &["set-interval", "agent/self", "10ms"]);
    running.wait_until("polls at 10ms", |_| polls(&dir) >= before + 10);
    sigterm_exits_0(running);
}

#[test]
fn bad_requests_get_an_error_reply_and_the_agent_goes_on() {
    let dir = temp_dir("ctl-bad");
    let running = start(&dir, CONFIG);
    let socket = dir.join("c.sock");
    // A client that sends half a request holds only its own connection, for 5 s at most.
    let mut idle = UnixStream::connect(&socket).unwrap();
    idle.write_all(b"{\"command\":").unwrap();
    let error = |bytes: &[u8]| {
        let reply = raw(&socket, bytes);
        assert!(reply.get("ok").is_none(), "{reply}");
        reply["error"].as_str().unwrap().to_owned()
    };
    assert!(error(b"not json\n").starts_with("malformed request"));
    assert!(error(b"{\"command\":\"explode\"}\n").starts_with("malformed request"));
    assert!(error(b"{\"command\":\"pause\"}\n").contains("selector"));
    let e = error(b"{\"command\":\"stop\",\"now\":true}\n");
    assert!(e.contains("unknown field `now`"), "not a stop: {e}");
    let mut huge = vec![b' '; 70 * 1024];
    huge.push(b'\n');
    assert!(error(&huge).starts_with("request too large"));
    let e = error(b"{\"command\":\"pause\",\"selector\":\"a/b/c\"}\n");
    assert!(e.starts_with("invalid selector `a/b/c`"), "{e}");
    let e = error(b"{\"command\":\"resume\",\"selector\":\"nope/*\"}\n");
    assert_eq!(e, "selector `nope/*` matches no source");
    let e = error(b"{\"command\":\"set-interval\",\"selector\":\"*\",\"interval\":\"soon\"}\n");
    assert!(e.starts_with("invalid interval `soon`"), "{e}");
    let e = error(b"{\"command\":\"set-interval\",\"selector\":\"*\",\"interval\":\"0s\"}\n");
    assert!(e.contains("longer than zero"), "{e}");
    // A reload of the unchanged file changes nothing.
    let reply = raw(&socket, b"{\"command\":\"reload\"}\n");
    assert_eq!(reply["ok"], "reloaded: no plugin changed", "{reply}");
    // Unharmed: it answers, measures, and stops cleanly.
    let reply = raw(&socket, b"{\"command\":\"status\"}\n");
    assert_eq!(
        reply["ok"]["plugins"],
        serde_json::json!(["agent", "csv"]),
        "{reply}"
    );
    let (code, out, _) = control(&dir, &["--json", "set-interval", "*", "5ms"]);
    assert_eq!(
        (code, out.trim()),
        (0, "{\"ok\":\"set the interval to 5ms of 1 source(s)\"}")
    );
    let (code, out, _) = control(&dir, &["--json", "resume", "nope/*"]);
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        r#"{"error":"selector `nope/*` matches no source"}"#
    );
    let mut line = String::new();
    BufReader::new(idle).read_line(&mut line).unwrap();
    assert!(line.contains("no complete request within 5s"), "{line}");
    sigterm_exits_0(running);
}

#[test]
fn the_socket_is_0600_whatever_the_umask() {
    let dir = temp_dir("ctl-mode");
    // SAFETY: umask only changes this process's creation mask, inherited by the agent.
    let previous = unsafe { libc::umask(0) };
    let running = start(&dir, CONFIG);
    // SAFETY: restoring it.
    unsafe { libc::umask(previous) };
    let meta = std::fs::symlink_metadata(dir.join("c.sock")).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    sigterm_exits_0(running);
    assert!(!dir.join("c.sock").exists(), "removed at exit");
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = temp_dir("ctl-stale");
    let socket = dir.join("c.sock");
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists(), "a stale socket file, nobody listening");
    let running = start(&dir, CONFIG);
    assert!(running
        .stderr()
        .contains("replaced the stale control socket"));
    assert_eq!(ok(&dir, &["status"])["plugins"][0], "agent");
    sigterm_exits_0(running);

    let _live = UnixListener::bind(&socket).unwrap();
    let (code, stderr) = run_config(&dir, CONFIG, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("another process listens on c.sock"),
        "{stderr}"
    );
    assert!(socket.exists(), "the other process's socket is left alone");
    drop(_live);

    std::fs::remove_file(&socket).unwrap();
    std::fs::write(&socket, "data").unwrap();
    let (code, stderr) = run_config(&dir, CONFIG, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("c.sock exists and is not a socket"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "data");
    std::fs::remove_file(&socket).unwrap();

    // An agent that holds the path's lock (starting at the same moment) stops this one
    // before it looks at the socket file.
    let lock = std::fs::File::open(dir.join("c.sock.lock")).unwrap();
    // SAFETY: flock on a descriptor the test owns.
    let rc = unsafe { libc::flock(std::os::unix::io::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    let (code, stderr) = run_config(&dir, CONFIG, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("another agent holds c.sock.lock"),
        "{stderr}"
    );
    drop(lock);
    let running = start(&dir, CONFIG);
    sigterm_exits_0(running);
}

#[test]
fn the_client_names_the_missing_socket_and_how_to_turn_it_on() {
    let dir = temp_dir("ctl-client");
    let (code, _, err) = control(&dir, &["--socket", "gone.sock", "status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no agent listens on gone.sock"), "{err}");
    assert!(err.contains("control_socket"), "{err}");
    let no_socket = "[plugins.agent]\n[plugins.csv]\noutput_path = 'out.csv'\n";
    std::fs::write(dir.join("alumet-config.toml"), no_socket).unwrap();
    let (code, _, err) = control(&dir, &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("sets no `control_socket`"), "{err}");
    std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
    let (code, _, err) = control(&dir, &["stop"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no agent listens on c.sock"),
        "the config's path: {err}"
    );
}

#[test]
fn a_socket_in_a_missing_directory_is_a_config_error() {
    let dir = temp_dir("ctl-nodir");
    let config = CONFIG.replace("'c.sock'", "'no/such/dir/c.sock'");
    let (code, stderr) = run_config(&dir, &config, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("control_socket: the directory of no/such/dir/c.sock does not exist"),
        "{stderr}"
    );
    assert!(!dir.join("out.csv").exists(), "nothing was measured");
}

#[test]
fn the_public_alumet_socket_control_table_turns_the_socket_on() {
    let dir = temp_dir("ctl-alumet-table");
    let config =
        "[plugins.agent]\npoll_interval = '10ms'\n[plugins.csv]\noutput_path = 'out.csv'\n\
        [plugins.socket-control]\nsocket_path = 'alumet.sock'\n";
    let running = start(&dir, config);
    assert!(dir.join("alumet.sock").exists());
    // The client finds the socket through the same table.
    let status = ok(&dir, &["status"]);
    assert_eq!(status["plugins"], serde_json::json!(["agent", "csv"]));
    sigterm_exits_0(running);
    assert!(!dir.join("alumet.sock").exists());

    // Another key, or two different sockets: config errors (exit 78).
    for (name, extra) in [
        (
            "key",
            "[plugins.socket-control]\nsocket_path = 'a.sock'\nport = 1\n",
        ),
        ("two", "[plugins.socket-control]\nsocket_path = 'a.sock'\n"),
    ] {
        let dir = temp_dir(&format!("ctl-alumet-table-{name}"));
        let general = if name == "two" {
            "control_socket = 'b.sock'\n"
        } else {
            ""
        };
        let config = format!("{general}[plugins.csv]\noutput_path = 'out.csv'\n{extra}");
        let (code, stderr) = run_config(&dir, &config, &[]);
        assert_eq!(code, 78, "{name}: {stderr}");
        let expected = if name == "key" {
            "unknown key `port`"
        } else {
            "name two sockets"
        };
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

#[test]
fn a_socket_group_gets_the_socket_in_mode_0660_and_an_unknown_one_is_a_config_error() {
    use std::os::unix::fs::MetadataExt;
    if !alumet::test_util::skip::should_run(
        "control socket group",
        alumet::test_util::skip::missing_root("gives the socket to another group"),
    ) {
        return;
    }
    let dir = temp_dir("ctl-group");
    let config = CONFIG.replace(
        "control_socket = 'c.sock'\n",
        "control_socket = 'c.sock'\ncontrol_socket_group = 'daemon'\n",
    );
    let running = start(&dir, &config);
    let meta = std::fs::symlink_metadata(dir.join("c.sock")).unwrap();
    // SAFETY: getgrnam with a valid C string; the result is read at once.
    let daemon = unsafe { libc::getgrnam(c"daemon".as_ptr()) };
    assert!(!daemon.is_null(), "no group daemon here");
    // SAFETY: checked non-null just above.
    let gid = unsafe { (*daemon).gr_gid };
    assert_eq!(
        (meta.permissions().mode() & 0o777, meta.gid()),
        (0o660, gid)
    );
    assert_eq!(ok(&dir, &["status"])["plugins"][0], "agent");
    sigterm_exits_0(running);

    let unknown = CONFIG.replace(
        "control_socket = 'c.sock'\n",
        "control_socket = 'c.sock'\ncontrol_socket_group = 'no-such-group-here'\n",
    );
    let (code, stderr) = run_config(&dir, &unknown, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("control_socket_group: no group named `no-such-group-here`"),
        "{stderr}"
    );
    assert!(!dir.join("c.sock").exists(), "no socket left behind");
}
