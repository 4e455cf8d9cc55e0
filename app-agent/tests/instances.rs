//! Several instances of one plugin through the binary: `[plugins.NAME]` tables with
//! `plugin = "csv"` (or another plugin) run it again with their own config, under their
//! own name.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// The agent plugin polls every 10 ms and flushes only at shutdown; two CSV instances.
const TWO_CSV: &str = "[plugins.agent]\npoll_interval = '10ms'\nflush_interval = '1h'\n\
    [plugins.csv]\noutput_path = 'a.csv'\n\
    [plugins.csv_b]\nplugin = 'csv'\noutput_path = 'b.csv'\n";

/// The data rows of a CSV file, as a set (rows are unique: each has its timestamp).
fn rows(csv: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    text.lines().skip(1).map(str::to_owned).collect()
}

/// The number of points the final report says `output` wrote.
fn logged_written(stderr: &str, output: &str) -> u64 {
    let prefix = format!("output {output}: ");
    let line = stderr
        .lines()
        .find(|l| l.contains(&prefix))
        .unwrap_or_else(|| panic!("no report for {output} in:\n{stderr}"));
    let after = line.split(&prefix).nth(1).unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
}

/// Runs the agent on `config` with `args` a little while, then stops it with SIGTERM.
fn run_a_while(dir: &Path, config: &str, args: &[&str]) -> (Option<i32>, String) {
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir);
    cmd.arg("--no-default-config").args(args);
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    std::thread::sleep(std::time::Duration::from_millis(300));
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    (status.code(), stderr)
}

#[test]
fn two_csv_instances_each_write_every_point_to_their_own_file() {
    let dir = temp_dir("two-csv");
    let (code, stderr) = run_a_while(&dir, TWO_CSV, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("running plugins: agent, csv, csv_b;"),
        "{stderr}"
    );
    let a = rows(&dir.join("a.csv"));
    let b = rows(&dir.join("b.csv"));
    assert!(a.len() >= 4, "a few polls: {a:?}");
    assert_eq!(a, b, "both instances got every point");
    // The final report and the agent's per-output metrics name each instance's output.
    assert_eq!(
        logged_written(&stderr, "csv/csv"),
        a.len() as u64,
        "{stderr}"
    );
    assert_eq!(
        logged_written(&stderr, "csv_b/csv"),
        b.len() as u64,
        "{stderr}"
    );
    for output in ["csv/csv", "csv_b/csv"] {
        assert!(
            a.iter()
                .any(|r| r.starts_with("alumet_output_written_points;") && r.contains(output)),
            "no per-output metric for {output} among {} rows",
            a.len()
        );
    }
}

#[test]
fn two_instances_of_a_source_share_its_metrics_and_run() {
    // The metrics of the two `agent` instances have the same definitions: the second
    // registration gives the same metric (MetricRegistry::register).
    let dir = temp_dir("two-agents");
    let config = format!("{TWO_CSV}[plugins.agent_b]\nplugin = 'agent'\npoll_interval = '10ms'\n");
    let (code, stderr) = run_a_while(&dir, &config, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("running plugins: agent, agent_b, csv, csv_b;"),
        "{stderr}"
    );
    // Both start and the file gets their points (their points are alike: the core's
    // tests/instances.rs tells each instance's apart).
    let cpu = rows(&dir.join("a.csv"))
        .into_iter()
        .filter(|r| r.starts_with("alumet_agent_cpu_time_ms;"))
        .count();
    assert!(cpu >= 4, "{cpu} CPU-time points");
}

#[test]
fn plugins_flag_and_status_listing_name_instances() {
    let dir = temp_dir("instances-flag");
    let (code, stderr) = run_a_while(&dir, TWO_CSV, &["--plugins", "agent,csv_b"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("running plugins: agent, csv_b;"),
        "{stderr}"
    );
    assert!(!dir.join("a.csv").exists(), "csv is not in --plugins");
    assert!(!rows(&dir.join("b.csv")).is_empty());

    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config", "plugins", "list", "--status"]);
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let listing = String::from_utf8(output.stdout).unwrap();
    let line = |name: &str| {
        let found = listing.lines().find(|l| l.split(' ').next() == Some(name));
        found
            .unwrap_or_else(|| panic!("no {name} in:\n{listing}"))
            .to_owned()
    };
    assert!(line("csv").ends_with("output   enabled"), "{listing}");
    assert!(
        line("csv_b").ends_with("output   enabled (plugin csv)"),
        "{listing}"
    );
}

#[test]
fn two_influxdb_instances_log_under_their_own_names() {
    let dir = temp_dir("instances-influx");
    // Two ports nobody listens on: each instance retries and says so under its name.
    let closed = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = format!(
        "shutdown_timeout = '200ms'\n\
         [plugins.agent]\npoll_interval = '10ms'\nflush_interval = '10ms'\n\
         [plugins.influx_a]\nplugin = 'influxdb'\napi_version = 'v1'\ndatabase = 'alumet'\nhost = 'http://127.0.0.1:{}'\n\
         [plugins.influx_b]\nplugin = 'influxdb'\napi_version = 'v1'\ndatabase = 'alumet'\nhost = 'http://127.0.0.1:{}'\n",
        closed(),
        closed()
    );
    let (code, stderr) = run_a_while(&dir, &config, &[]);
    assert_eq!(code, Some(1), "nothing delivered: {stderr}");
    for name in ["influx_a", "influx_b"] {
        assert!(
            stderr.contains(&format!("{name}: writing to http://127.0.0.1:")),
            "{name}'s retries under its name:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("output {name}/influxdb: 0 points written")),
            "{stderr}"
        );
    }
    assert!(!stderr.contains("] influxdb: "), "{stderr}");
}

#[test]
fn an_output_with_inputs_writes_only_the_points_of_those_plugins() {
    let dir = temp_dir("instances-inputs");
    let config = "[plugins.agent]\npoll_interval = '10ms'\n\
        [plugins.procfs.kernel]\npoll_interval = '10ms'\n\
        [plugins.csv]\noutput_path = 'a.csv'\n\
        [plugins.csv_b]\nplugin = 'csv'\noutput_path = 'b.csv'\ninputs = ['procfs']\n";
    let (code, stderr) = run_a_while(&dir, config, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let a = rows(&dir.join("a.csv"));
    let b = rows(&dir.join("b.csv"));
    let is_agent = |r: &String| r.starts_with("alumet_");
    assert!(a.iter().any(is_agent), "the agent's points reach csv");
    assert!(
        !b.iter().any(is_agent),
        "csv_b gets procfs's points only: {b:?}"
    );
    assert!(b.iter().any(|r| r.starts_with("kernel_cpu_time")), "{b:?}");
    // Every procfs point, and only those; and the report counts just them.
    let procfs: BTreeSet<String> = a.iter().filter(|r| !is_agent(r)).cloned().collect();
    assert_eq!(b, procfs);
    assert_eq!(
        logged_written(&stderr, "csv_b/csv"),
        b.len() as u64,
        "{stderr}"
    );
}

#[test]
fn the_public_alumet_agent_s_plugin_names_are_instances_of_ours() {
    let dir = temp_dir("aliases");
    // energy-estimation-tdp is energy-estimation; prometheus-exporter is prometheus.
    let config = "[plugins.energy-estimation-tdp]\ntdp = 50.0\nwhen = 'always'\npoll_interval = '50ms'\nflush_interval = '50ms'\n\
        [plugins.prometheus-exporter]\naddress = '127.0.0.1:0'\n[plugins.csv]\noutput_path = 'out.csv'\n";
    let (code, stderr) = run_a_while(&dir, config, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("running plugins: energy-estimation-tdp, csv, prometheus-exporter;"),
        "{stderr}"
    );
    assert!(
        rows(&dir.join("out.csv"))
            .iter()
            .any(|r| r.starts_with("estimated_energy")),
        "the alias runs the plugin"
    );
    // Both names for one plugin: an error naming both tables.
    let both = "[plugins.nvml]\n[plugins.nvidia]\n[plugins.csv]\n";
    let (code, stderr) = run_config(&dir, both, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("[plugins.nvml] (the public Alumet agent's name of plugin `nvidia`) and [plugins.nvidia] both configure"),
        "{stderr}"
    );
}

#[test]
fn the_public_alumet_grace_hopper_table_runs_hwmon_under_its_metric_names() {
    let dir = temp_dir("grace-hopper");
    let hwmon = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugin-hwmon/tests/fixtures/grace-hopper/class/hwmon");
    // The public Alumet's grace-hopper table: its keys are hwmon's.
    let config = format!(
        "[plugins.grace-hopper]\npoll_interval = '50ms'\nroot_path = {:?}\n\
         [plugins.csv]\noutput_path = 'out.csv'\n",
        hwmon.display().to_string()
    );
    let (code, stderr) = run_a_while(&dir, &config, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("running plugins: grace-hopper, csv;"),
        "{stderr}"
    );
    let rows = rows(&dir.join("out.csv"));
    for sensor in ["Module", "Grace", "CPU", "SysIO"] {
        assert!(
            rows.iter().any(|r| r.starts_with("grace_instant_power")
                && r.split([';', ','])
                    .any(|f| f == sensor || f == format!("label={sensor}"))),
            "{sensor}: {rows:?}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.starts_with("grace_energy_consumption")),
        "{rows:?}"
    );
    assert!(!rows.iter().any(|r| r.starts_with("hwmon_")), "{rows:?}");
}

#[test]
fn the_public_alumet_agent_s_enabled_and_pipeline_keys_load() {
    let dir = temp_dir("alumet-keys");
    // Its top-level pipeline keys: accepted, without effect here, and said so.
    let config = "max_update_interval = '500ms'\nsource_channel_size = 16\n\
        [plugins.agent]\nenabled = false\n[plugins.procfs]\nenabled = true\n\
        [plugins.procfs.memory]\nenabled = false\n[plugins.csv]\nenabled = true\noutput_path = 'out.csv'\n";
    let (code, stderr) = run_a_while(&dir, config, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("running plugins: procfs, csv;"),
        "`enabled = false` disables: {stderr}"
    );
    for key in ["max_update_interval", "source_channel_size"] {
        assert!(
            stderr.contains(&format!(
                "`{key}` (a key of the public Alumet agent) has no effect here"
            )),
            "{stderr}"
        );
    }
    let both = "[plugins.csv]\nenable = true\nenabled = true\n";
    let (code, stderr) = run_config(&dir, both, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("has both `enable` and `enabled`"),
        "{stderr}"
    );
}
