//! systemd's notify protocol against a test-owned NOTIFY_SOCKET: READY once the pipeline
//! runs, RELOADING then READY around a reload, STOPPING at shutdown, watchdog pings.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Receives every datagram on `socket` into the returned list, on a thread of its own.
fn collect(socket: UnixDatagram) -> Arc<Mutex<Vec<String>>> {
    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let into = Arc::clone(&messages);
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            into.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    messages
}

/// The index of the first message after `from` holding `line` as one of its lines.
fn find(messages: &[String], from: usize, line: &str) -> Option<usize> {
    (from..messages.len()).find(|&i| messages[i].lines().any(|l| l == line))
}

#[test]
fn ready_reloading_stopping_and_watchdog_pings_in_order() {
    let dir = temp_dir("notify");
    let socket_path = dir.join("notify.sock");
    let messages = collect(UnixDatagram::bind(&socket_path).unwrap());
    std::fs::write(
        dir.join("alumet-config.toml"),
        "[plugins.agent]\npoll_interval = '20ms'\n[plugins.csv]\noutput_path = 'out.csv'\n",
    )
    .unwrap();
    let mut cmd = agent(&dir);
    cmd.arg("--no-default-config")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "100000");
    let mut running = Running::spawn(cmd);
    let got = |line: &'static str, from: usize| {
        let messages = Arc::clone(&messages);
        move |_: &Running| find(&messages.lock().unwrap(), from, line).is_some()
    };
    running.wait_until("READY=1", got("READY=1", 0));
    let ready = find(&messages.lock().unwrap(), 0, "READY=1").unwrap();
    running.wait_until("two watchdog pings", |_| {
        let m = messages.lock().unwrap();
        m.iter().filter(|m| m.as_str() == "WATCHDOG=1\n").count() >= 2
    });
    running.signal(libc::SIGHUP);
    running.wait_until("RELOADING=1", got("RELOADING=1", ready + 1));
    let reloading = find(&messages.lock().unwrap(), ready + 1, "RELOADING=1").unwrap();
    running.wait_until("READY=1 after the reload", got("READY=1", reloading + 1));
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let messages = messages.lock().unwrap().clone();
    let again = find(&messages, reloading + 1, "READY=1").unwrap();
    let stopping = find(&messages, again + 1, "STOPPING=1");
    assert!(stopping.is_some(), "{messages:?}");
    assert!(
        messages[ready].contains("STATUS=measuring: agent, csv"),
        "{messages:?}"
    );
    assert!(
        messages[reloading].contains("MONOTONIC_USEC="),
        "{messages:?}"
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_the_agent_runs() {
    let dir = temp_dir("no-notify");
    std::fs::write(
        dir.join("alumet-config.toml"),
        "[plugins.agent]\npoll_interval = '20ms'\n[plugins.csv]\noutput_path = 'out.csv'\n",
    )
    .unwrap();
    let mut cmd = agent(&dir);
    cmd.arg("--no-default-config")
        .env_remove("NOTIFY_SOCKET")
        .env("WATCHDOG_USEC", "100000");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("NOTIFY_SOCKET"), "{stderr}");
}
