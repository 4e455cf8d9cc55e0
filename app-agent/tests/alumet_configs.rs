//! Config files of the public Alumet agent (0.9) run unchanged: its regen-shaped file
//! (`tests/data/alumet-0.9-regen.toml`) with each plugin this agent has, the plugins it
//! lacks refused by name (or left out by `--plugins` and `enable = false`), and the keys
//! whose meaning cannot hold refused with what to write instead.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet_delivery::test_util::otlp::{available, Receiver};
use common::*;

/// The regen-shaped file of the public Alumet agent.
fn regen() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/alumet-0.9-regen.toml");
    std::fs::read_to_string(path).unwrap()
}

/// Overrides that keep a test off fixed ports and away from real receivers.
const OVERRIDES: [&str; 6] = [
    "--config-override",
    "plugins.prometheus-exporter.port=0",
    "--config-override",
    "plugins.influxdb.host=\"http://127.0.0.1:9\"",
    "--config-override",
    "plugins.opentelemetry.collector_host=\"http://127.0.0.1:9\"",
];

/// Runs `exec -- sleep 0.2` on the regen file with `--plugins plugins` (and `extra` args
/// before the command).
fn exec_with(dir: &Path, plugins: &str, extra: &[&str]) -> (i32, String) {
    let mut args: Vec<&str> = vec!["--plugins", plugins];
    args.extend(OVERRIDES);
    args.extend(extra);
    args.extend(["exec", "--", "sleep", "0.2"]);
    run_config(dir, &regen(), &args)
}

#[test]
fn each_plugin_of_the_regen_file_that_this_agent_has_loads_and_runs() {
    // Hardware that this machine may lack is warned about, as for this agent's own names.
    let hardware = ["rapl", "nvml", "perf"];
    let plugins = [
        "rapl",
        "procfs",
        "nvml",
        "perf",
        "prometheus-exporter",
        "influxdb",
        "opentelemetry",
        "energy-estimation-tdp",
    ];
    for plugin in plugins {
        let dir = temp_dir(&format!("alumet-regen-{plugin}"));
        // procfs as a source, csv as an output, beside the plugin.
        // An OTLP receiver that decodes what it gets (Python's opentelemetry-proto).
        let receiver = (plugin == "opentelemetry")
            .then(|| available("alumet_regen_otlp").then(|| Receiver::start("alumet_regen_otlp")))
            .flatten();
        let endpoint = receiver
            .as_ref()
            .map(|r| format!("plugins.opentelemetry.collector_host=\"{}\"", r.endpoint()));
        let extra: Vec<&str> = match &endpoint {
            Some(e) => vec!["--config-override", e],
            None => Vec::new(),
        };
        if plugin == "opentelemetry" && receiver.is_none() {
            continue;
        }
        let (code, stderr) = exec_with(&dir, &format!("{plugin},procfs,csv"), &extra);
        if let Some(r) = &receiver {
            assert!(!r.points().is_empty(), "{stderr}\n{}", r.log());
        }
        if plugin == "influxdb" {
            // Alumet's default `attributes_as = "field"` makes procfs's points collide in
            // InfluxDB (one kept per series and time): counted as lost, said, and the run
            // fails instead of losing them silently (the migration guide says what to set).
            assert_eq!(code, 1, "{plugin}: {stderr}");
            assert!(
                stderr.contains("differ only by attributes written as fields (cpu_state)"),
                "{stderr}"
            );
            continue;
        }
        assert_eq!(code, 0, "{plugin}: {stderr}");
        assert!(!stderr.contains("ERROR"), "{plugin}: {stderr}");
        if hardware.contains(&plugin) {
            let unavailable = format!("plugin {plugin} is unavailable and will not run");
            let ran = stderr.contains(&unavailable) || !stderr.contains("unavailable");
            assert!(ran, "{plugin}: {stderr}");
        }
        let csv = std::fs::read_to_string(dir.path().join("alumet-output.csv")).unwrap();
        // Alumet's CSV keys hold: `;` between fields, units appended by their symbol.
        assert!(
            csv.starts_with(
                "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id"
            ),
            "{plugin}: {csv}"
        );
        if plugin == "procfs" {
            assert!(csv.contains("\nkernel_cpu_time_ms;"), "{csv}");
            assert!(
                csv.contains("\nmem_total_B;") || csv.contains("\nmem_total_kB;"),
                "{csv}"
            );
        }
        if plugin == "energy-estimation-tdp" {
            assert!(csv.contains("\nestimated_energy_J;"), "{csv}");
        }
    }
}

#[test]
fn the_whole_regen_file_names_the_plugins_this_agent_lacks_and_runs_with_plugins() {
    let dir = temp_dir("alumet-regen-all");
    let (code, stderr) = run_config(&dir, &regen(), &["exec", "--", "true"]);
    assert_eq!(code, 78, "{stderr}");
    for plugin in [
        "mongodb",
        "elasticsearch",
        "relay-client",
        "k8s",
        "oar",
        "slurm",
        "quarch",
    ] {
        assert!(
            stderr.contains(&format!("[plugins.{plugin}]: ")),
            "{plugin} not named: {stderr}"
        );
    }
    // What this agent offers instead, and how to leave the tables out.
    assert!(stderr.contains("the plugin `cgroups`"), "{stderr}");
    assert!(stderr.contains("`prometheus-remote-write`"), "{stderr}");
    assert!(stderr.contains("--plugins"), "{stderr}");
    // Named with --plugins, the file loads and runs.
    let (code, stderr) = exec_with(&dir, "procfs,csv", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("[plugins.mongodb]: the public Alumet agent's plugin `mongodb` is not part of this agent, and this table is not in --plugins: left out"), "{stderr}");
    // Its top-level keys: accepted, said to have no effect.
    assert!(stderr.contains("`max_update_interval`"), "{stderr}");
}

#[test]
fn a_disabled_table_of_a_plugin_this_agent_lacks_is_left_out() {
    let dir = temp_dir("alumet-disabled");
    // socket-control's `enabled = false` too (the socket is not a plugin here).
    let config = "[plugins.mongodb]\nenabled = false\nhost = 'localhost'\n\
        [plugins.k8s]\nenable = false\n[plugins.procfs]\n[plugins.csv]\noutput_path = 'out.csv'\n\
        [plugins.socket-control]\nenabled = false\nsocket_path = 'ctl.sock'\n";
    let (code, stderr) = run_config(&dir, config, &["exec", "--", "true"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("[plugins.mongodb]: the public Alumet agent's plugin `mongodb` is not part of this agent, and this table is disabled: left out"),
        "{stderr}"
    );
    assert!(stderr.contains("[plugins.k8s]: "), "{stderr}");
    // An enabled one is refused.
    let (code, stderr) = run_config(
        &dir,
        "[plugins.quarch]\n[plugins.csv]\n",
        &["exec", "--", "true"],
    );
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("[plugins.quarch]: "), "{stderr}");
}

#[test]
fn attribution_formulas_are_refused_with_what_to_write_instead() {
    let dir = temp_dir("alumet-formulas");
    let config = r#"
        [plugins.procfs]
        [plugins.csv]
        output_path = "out.csv"
        [plugins.energy-attribution.formulas.attributed_energy]
        expr = "cpu_energy * cpu_usage / 100.0"
        ref = "cpu_energy"
        [plugins.energy-attribution.formulas.attributed_energy.per_resource]
        cpu_energy = { metric = "rapl_consumed_energy", resource_kind = "local_machine", domain = "package_total" }
        [plugins.energy-attribution.formulas.attributed_energy.per_consumer]
        cpu_usage = { metric = "cpu_percent", kind = "total" }
    "#;
    let (code, stderr) = run_config(&dir, config, &["exec", "--", "true"]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("[plugins.energy-attribution] key `formulas`: this agent's attribution does not evaluate formulas"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`rapl_metric`") && stderr.contains("`consumers`"),
        "{stderr}"
    );
    // Without formulas (Alumet's regen writes no table for it), the alias runs.
    let config =
        "[plugins.procfs]\n[plugins.energy-attribution]\n[plugins.csv]\noutput_path = 'out.csv'\n";
    let (code, stderr) = run_config(&dir, config, &["exec", "--", "true"]);
    assert_eq!(code, 0, "{stderr}");
}

/// The (metric, resource kind, consumer kind, attribute keys) of each row of a CSV file
/// written with `;` and without units in the metric names.
fn csv_set(path: &Path) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let mut set = std::collections::BTreeSet::new();
    for line in lines {
        let fields: Vec<&str> = line.split(';').collect();
        let mut keys: Vec<String> = Vec::new();
        for (name, value) in header.iter().zip(&fields).skip(7) {
            if *name == "__late_attributes" {
                keys.extend(
                    value
                        .split(',')
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| kv.split('=').next().unwrap_or_default().to_owned()),
                );
            } else if !value.is_empty() {
                keys.push((*name).to_owned());
            }
        }
        keys.sort();
        set.insert(format!(
            "{}|{}|{}|{}",
            fields[0],
            fields[3],
            fields[5],
            keys.join(",")
        ));
    }
    set
}

#[test]
fn procfs_and_csv_write_the_same_metrics_kinds_and_attribute_keys_as_alumet() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/alumet-0.9-procfs-set.txt");
    let alumet: std::collections::BTreeSet<String> = std::fs::read_to_string(fixture)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    // The procfs section of Alumet's regen file (polls made faster), and its CSV keys
    // with bare metric names.
    let procfs = |per_cpu: bool| {
        format!(
            "[plugins.procfs.kernel]\nenabled = true\npoll_interval = '100ms'\nper_cpu = {per_cpu}\n\
             [plugins.procfs.memory]\nenabled = true\npoll_interval = '100ms'\n\
             metrics = ['MemTotal', 'MemFree', 'MemAvailable', 'Cached', 'SwapCached', 'Active', 'Inactive', 'Mapped']\n\
             [plugins.procfs.network]\nenabled = true\npoll_interval = '100ms'\n\
             [plugins.procfs.processes]\nenabled = true\nrefresh_interval = '100ms'\nstrategy = 'watcher'\n\
             [[plugins.procfs.processes.groups]]\npoll_interval = '100ms'\nflush_interval = '100ms'\nmemory_mode = 'quick'\n\
             [plugins.csv]\noutput_path = 'out.csv'\nforce_flush = true\nappend_unit_to_metric_name = false\ncsv_delimiter = ';'\n"
        )
    };
    let ours = |per_cpu: bool| {
        let dir = temp_dir(&format!("alumet-set-{per_cpu}"));
        std::fs::write(dir.path().join("alumet-config.toml"), procfs(per_cpu)).unwrap();
        let mut cmd = agent(dir.path());
        cmd.arg("--no-default-config");
        let mut running = Running::spawn(cmd);
        running.wait_for_log("running plugins");
        std::thread::sleep(std::time::Duration::from_millis(1200));
        running.signal(libc::SIGTERM);
        let (status, stderr) = running.wait();
        assert_eq!(status.code(), Some(0), "{stderr}");
        csv_set(&dir.path().join("out.csv"))
    };
    // On purpose: per-CPU rows only with `per_cpu = true` (Alumet writes 9 rows per CPU and
    // poll whether or not they are wanted).
    let per_cpu_row = "kernel_cpu_time|cpu_core|local_machine|cpu_state";
    let mut expected = alumet.clone();
    expected.remove(per_cpu_row);
    // A machine without network interfaces but lo still has lo; every row kind is there.
    assert_eq!(ours(false), expected);
    assert_eq!(ours(true), alumet);
}
