//! Dynamic plugins written in Rust, through the agent binary: the example `cdylib` crate
//! (`dynamic-plugin-example`, built once by this test binary) runs like the C one, its
//! init errors reach the operator, and a panic in one of its sources stops that source
//! only.
#![allow(clippy::unwrap_used)]

mod common;
mod dynamic_support;

use common::*;
use dynamic_support::*;

fn config(extra: &str) -> String {
    format!(
        "[plugins.rust_example]\npath = '{}'\npoll_interval_ms = 10\n{extra}\n[plugins.csv]\noutput_path = 'out.csv'\n",
        rust_example().display()
    )
}

#[test]
fn dynamic_rust_plugin_source_reaches_the_csv_and_its_output_receives_every_point() {
    let dir = temp_dir("dynamic-rust");
    std::fs::write(
        dir.join("alumet-config.toml"),
        config("output_path = 'lines.txt'"),
    )
    .unwrap();
    let mut cmd = agent(&dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    wait_for_lines(&dir.join("lines.txt"), "rust_example_polls ", 3);
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(" rust_example] rust_example stopped"),
        "the plugin's log line, under its name: {stderr}"
    );

    let rows = rows_of(&dir.join("out.csv"), "rust_example_polls");
    assert!(rows.len() >= 3, "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["value"], (i + 1).to_string());
        assert_eq!(
            (row["resource_kind"].as_str(), row["resource_id"].as_str()),
            ("example", "counter")
        );
        assert_eq!(row["origin"], "rust");
    }
    let lines = lines_starting(&dir.join("lines.txt"), "rust_example_polls ");
    let expected: Vec<String> = (1..=rows.len())
        .map(|n| format!("rust_example_polls example counter {n} origin=rust"))
        .collect();
    assert_eq!(lines, expected);
}

#[test]
fn dynamic_rust_plugin_init_failure_gives_the_plugins_message() {
    let dir = temp_dir("dynamic-rust-init");
    let (code, stderr) = run_config(&dir, &config("poll_intervall_ms = 5"), &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("plugin `rust_example`")
            && stderr.contains(
                "failed to initialize: invalid config: unknown field `poll_intervall_ms`"
            ),
        "{stderr}"
    );
}

#[test]
fn dynamic_rust_plugin_panicking_in_poll_stops_that_source_only() {
    let dir = temp_dir("dynamic-rust-panic");
    let lines = dir.join("lines.txt");
    std::fs::write(
        dir.join("alumet-config.toml"),
        config("output_path = 'lines.txt'\npanic_on_poll = 3"),
    )
    .unwrap();
    let mut cmd = agent(&dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("source rust_example/panicky stopped after a fatal error");
    // The other source of the same plugin (same thread, same interval) goes on polling.
    let before = lines_starting(&lines, "rust_example_polls ").len();
    wait_for_lines(&lines, "rust_example_polls ", before + 5);
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("panicked: rust_example: panic on poll 3 as configured"),
        "{stderr}"
    );

    // The panicky source measured twice, then nothing: the CSV and the plugin's output agree.
    let panicky: Vec<String> = rows_of(&dir.join("out.csv"), "rust_example_panicky")
        .into_iter()
        .map(|r| r["value"].clone())
        .collect();
    assert_eq!(panicky, ["1.0", "2.0"]);
    assert_eq!(lines_starting(&lines, "rust_example_panicky ").len(), 2);
    let counter = rows_of(&dir.join("out.csv"), "rust_example_polls");
    assert!(counter.len() >= before + 5, "{} rows", counter.len());
}
