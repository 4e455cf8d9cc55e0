//! What the accounting tests of the network outputs share: the sources they compare
//! (procfs and the agent at 100 ms, with the CSV output), running the agent until every
//! source has written rows, the CSV's rows per metric, and the agent's final figures.

use std::collections::BTreeMap;
use std::path::Path;

use super::{agent, Running};

/// The sources of the comparison: procfs's four sections and the agent, at 100 ms.
pub const SOURCES: &str = r#"
[plugins.agent]
poll_interval = "100ms"
flush_interval = "100ms"
[plugins.procfs.kernel]
poll_interval = "100ms"
[plugins.procfs.memory]
poll_interval = "100ms"
[plugins.procfs.network]
enabled = true
poll_interval = "100ms"
[plugins.procfs.processes]
enabled = true
[[plugins.procfs.processes.groups]]
exe_regex = ".*"
poll_interval = "200ms"
[plugins.csv]
output_path = "out.csv"
# The metric column as the network outputs name their series: the unit's UCUM code.
use_unit_display_name = false
"#;

/// Rows per metric in the CSV.
pub fn csv_rows(path: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut counts = BTreeMap::new();
    for line in text.lines().skip(1) {
        let metric = line.split(';').next().unwrap();
        *counts.entry(metric.to_owned()).or_default() += 1;
    }
    counts
}

/// Runs the agent on `config` until it has measured for a while, then stops it with
/// SIGTERM; returns its exit code and stderr.
pub fn run_agent(dir: &Path, config: &str) -> (Option<i32>, String) {
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    // Liveness only: a few polls of every source, whatever the machine's speed.
    running.wait_until("rows of every source in the CSV", |_| {
        let rows = std::fs::read_to_string(dir.join("out.csv")).unwrap_or_default();
        [
            "kernel_cpu_time",
            "network_",
            "memory_usage",
            "alumet_output_",
        ]
        .iter()
        .all(|m| rows.matches(&format!("\n{m}")).count() >= 6)
    });
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    (status.code(), stderr)
}

/// The figures the agent reports for `output`: (written, dropped, lost).
pub fn reported(stderr: &str, output: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("output {output}: ")))
        .unwrap_or_else(|| panic!("no report for {output}:\n{stderr}"));
    let after = line.split(&format!("output {output}: ")).nth(1).unwrap();
    let n: Vec<u64> = after.split(' ').filter_map(|w| w.parse().ok()).collect();
    (n[0], n[1], n[2])
}
