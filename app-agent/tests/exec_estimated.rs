//! exec on a machine without RAPL (this one): the energy-estimation plugin's joules in the
//! summary, labelled as estimated, equal its model applied to the CPU time that procfs
//! measured over the same run (both read `/proc/stat` at the run's start and end).
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::TempDir;
use common::energy::figure;
use common::{agent, run_to_exit};

#[test]
fn the_estimate_is_the_tdp_model_applied_to_the_measured_cpu_time() {
    let dir = TempDir::new("exec-estimated");
    // Long intervals: the sources are read at the start and at the end of the command.
    let config = "[plugins.energy-estimation]\nmodel = 'tdp'\ntdp = 40.0\nnb_cpu = 4\nwhen = 'always'\npoll_interval = '1h'\n\
        [plugins.procfs.kernel]\npoll_interval = '1h'\n[plugins.procfs.memory]\nenabled = false\n\
        [plugins.energy-to-carbon]\nintensity = 360.0\n[plugins.csv]\noutput_path = 'out.csv'\n";
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir.path());
    cmd.args([
        "--no-default-config",
        "--plugins",
        "procfs,energy-estimation,energy-to-carbon,csv",
        "exec",
        "--summary-json",
        "summary.json",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done",
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let label = "estimated_energy, estimated (model tdp) CPU";
    let estimated = figure(&json, label).unwrap_or_else(|| panic!("no {label:?} in {json:#}"));
    assert!(figure(&json, &format!("{label} (average power)")).is_some());
    // Its grams, beside it: 360 g/kWh is 0.1 mg per joule.
    let carbon = "carbon_emissions of estimated_energy local_machine model=tdp domain=package (fixed 360 g/kWh)";
    let grams = figure(&json, carbon).unwrap_or_else(|| panic!("no {carbon:?} in {json:#}"));
    assert!(
        (grams - estimated / 10_000.0).abs() <= 1e-12 + estimated * 1e-9,
        "{grams} g for {estimated} J"
    );

    // The machine's busy CPU time over the run, as procfs measured it (ms).
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert!(
        csv.starts_with(
            "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;cpu_state;"
        ),
        "{csv}"
    );
    let busy = ["user", "nice", "system", "irq", "softirq"];
    let busy_ms: f64 = csv
        .lines()
        .filter(|l| l.starts_with("kernel_cpu_time_ms;"))
        .map(|l| l.split(';').collect::<Vec<_>>())
        .filter(|f| busy.contains(&f[7]))
        .map(|f| f[2].parse::<f64>().unwrap())
        .sum();
    assert!(busy_ms > 0.0, "{csv}");
    // The model: 40 W over 4 CPUs, 10 J per busy CPU-second. The two plugins read
    // /proc/stat at slightly different instants at each end, and it counts in clock ticks
    // (10 ms): within 1 %, plus two ticks of busy time (0.2 J; one tick was seen: 2.9 J
    // against 3 J).
    let expected = busy_ms / 1000.0 * 10.0;
    assert!(
        (estimated - expected).abs() <= expected * 0.01 + 0.2,
        "estimated {estimated} J, model on procfs's {busy_ms} ms: {expected} J"
    );
}
