//! exec with the attribution plugin, end to end through the agent binary: the real RAPL
//! plugin on a fixture sysfs tree whose package counter the command itself advances, the
//! real procfs plugin on this machine's /proc, and the real attribution plugin. The
//! summary shows the command's share of the package's joules, and the parts add up to
//! the measured energy.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet::test_util::TempDir;
use common::{agent, run_to_exit};

const ZONE: &str = "devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj";

fn figure(json: &serde_json::Value, name: &str) -> Option<f64> {
    let figures = json["figures"].as_array().unwrap();
    let f = figures.iter().find(|f| f["name"] == name)?;
    f["values"][0].as_f64()
}

#[test]
fn the_commands_share_of_the_package_energy_adds_up_with_the_rest() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-rapl/tests/fixtures/intel-server-2s");
    let sysfs = TempDir::copy_of(&fixture, "exec-attribution-sysfs");
    let dir = TempDir::new("exec-attribution");
    let counter = sysfs.path().join(ZONE);
    let before: u64 = std::fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let config = format!(
        "[plugins.rapl]\nsysfs_root = '{}'\nno_perf_events = true\npoll_interval = '1h'\n\
         [plugins.procfs.kernel]\npoll_interval = '1h'\n\
         [plugins.procfs.memory]\nenabled = false\n\
         [plugins.attribution]\n\
         [plugins.csv]\noutput_path = 'out.csv'\n",
        sysfs.path().display()
    );
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    // The command uses CPU (about 0.3 s: tens of clock ticks, so procfs sees it), then
    // adds 5 J to package 0's counter.
    let script = format!(
        "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; echo {} > '{}'",
        before + 5_000_000,
        counter.display()
    );
    let mut cmd = agent(dir.path());
    cmd.args([
        "--no-default-config",
        "exec",
        "--summary-json",
        "summary.json",
    ])
    .args(["--", "sh", "-c", &script]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();

    let resource = "cpu_package/0 domain=package";
    let measured = figure(&json, &format!("rapl_consumed_energy {resource}"));
    assert_eq!(measured, Some(5.0), "{json:#}");
    let attributed = figure(
        &json,
        &format!("attributed_energy (the command) {resource} source=rapl"),
    )
    .unwrap_or_else(|| panic!("no attributed energy in {json:#}\n{stderr}"));
    assert!(
        attributed > 0.0 && attributed <= 5.0,
        "{attributed} {json:#}"
    );
    // Every part of the 5 J, once: the command's, idle, and what is not the command's.
    let parts: f64 = json["figures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let name = f["name"].as_str().unwrap();
            name.contains(&format!("{resource} source=rapl")) && !name.ends_with("(average power)")
        })
        .map(|f| f["values"][0].as_f64().unwrap())
        .sum();
    assert!((parts - 5.0).abs() < 1e-9, "{parts} {json:#}");
    assert!(!text.contains("first_reading"), "{json:#}");
    // Package 1 measured 0 J: its line is there, its attribution's lines of zeros are not.
    let other = "cpu_package/1 domain=package";
    assert_eq!(
        figure(&json, &format!("rapl_consumed_energy {other}")),
        Some(0.0)
    );
    assert!(!text.contains(&format!("{other} source=rapl")), "{json:#}");
}
