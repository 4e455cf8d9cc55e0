//! Hostile config values are configuration errors (exit 78, naming the key), never a
//! panic, an abort, a hang or a run that fills the memory.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const CSV: &str = "[plugins.csv]\noutput_path = 'out.csv'\n";

/// Runs the agent on `config` with `args`; checks exit 78 and that stderr holds every one
/// of `expected`.
fn refused(name: &str, config: &str, args: &[&str], expected: &[&str]) {
    let dir = temp_dir(name);
    let (code, stderr) = run_config(&dir, config, args);
    assert_eq!(code, 78, "{name}: {stderr}");
    for e in expected {
        assert!(stderr.contains(e), "{name}: {e:?} not in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    assert!(!dir.join("out.csv").exists(), "{name}: nothing is opened");
}

#[test]
fn a_poll_interval_below_10us_is_refused_naming_the_key() {
    let config = format!("{CSV}[plugins.procfs.kernel]\npoll_interval = '1ns'\n");
    refused(
        "1ns",
        &config,
        &[],
        &["poll_interval", "too short: at least 10us", "line 4"],
    );
    let config = format!("{CSV}[plugins.agent]\npoll_interval = '9us'\n");
    refused("9us", &config, &[], &["poll_interval", "at least 10us"]);
}

#[test]
fn durations_too_long_for_the_clock_are_refused_naming_the_key() {
    let config = format!("shutdown_timeout = '400000000000y'\n{CSV}");
    refused(
        "timeout-years",
        &config,
        &[],
        &["shutdown_timeout", "too long: at most 100 years", "line 1"],
    );
    let config = format!("{CSV}[plugins.agent]\npoll_interval = '400000000000y'\n");
    refused(
        "interval-years",
        &config,
        &[],
        &["poll_interval", "too long"],
    );
    let config = format!("{CSV}[plugins.agent]\nflush_interval = '400000000000y'\n");
    refused("flush-years", &config, &[], &["flush_interval", "too long"]);
    // The same through the command line.
    refused(
        "override-years",
        CSV,
        &["--config-override", "shutdown_timeout='400000000000y'"],
        &["--config-override", "shutdown_timeout", "too long"],
    );
}

#[test]
fn a_shutdown_timeout_that_would_discard_every_buffered_point_is_refused() {
    for value in ["0s", "10ms"] {
        let config = format!("shutdown_timeout = '{value}'\n{CSV}");
        refused(
            "timeout-zero",
            &config,
            &[],
            &["shutdown_timeout", "at least 100ms"],
        );
    }
}

#[test]
fn an_override_holding_more_than_one_value_is_refused() {
    refused(
        "override-newline",
        CSV,
        &[
            "--config-override",
            "plugins.csv.output_path=\"x.csv\"\nshutdown_timeout='1s'",
        ],
        &[
            "--config-override",
            "must be one TOML value",
            "`shutdown_timeout` follows it",
        ],
    );
}

#[test]
fn a_config_that_is_not_a_regular_file_or_too_large_is_refused_at_once() {
    let dir = temp_dir("config-files");
    let run = |config: &std::path::Path| {
        let mut cmd = agent(&dir);
        cmd.arg("--config").arg(config);
        run_to_exit(cmd)
    };
    // A device that never ends: refused without reading it.
    let (code, stderr) = run(std::path::Path::new("/dev/zero"));
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("not a regular file"),
        "{stderr}"
    );
    // A FIFO with no writer: refused without waiting for one.
    let fifo = dir.join("config.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (code, stderr) = run(&fifo);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    // A directory.
    let (code, stderr) = run(dir.path());
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("a directory"), "{stderr}");
    // A regular file over 4 MiB (a comment: valid TOML, were it read).
    let big = dir.join("big.toml");
    std::fs::write(&big, format!("#{}\n", "x".repeat(4 << 20))).unwrap();
    let (code, stderr) = run(&big);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("larger than 4 MiB"), "{stderr}");
}
