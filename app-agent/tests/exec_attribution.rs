//! exec with the attribution plugin, end to end through the agent binary: the real RAPL
//! plugin on a fixture sysfs tree whose package counter the command itself advances, the
//! real procfs plugin on this machine's /proc, and the real attribution plugin. The
//! summary shows the command's share of the package's joules, and the parts add up to
//! the measured energy.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::TempDir;
use common::energy::{
    assert_package0_split, attribution_config, figure, rapl_fixture, set_counter,
};
use common::{agent, run_to_exit};

#[test]
fn the_commands_share_of_the_package_energy_adds_up_with_the_rest() {
    let (sysfs, counter, before) = rapl_fixture("exec-attribution-sysfs");
    let dir = TempDir::new("exec-attribution");
    let config = attribution_config(sysfs.path());
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    // The command uses CPU (about 0.3 s: tens of clock ticks, so procfs sees it), then
    // adds 5 J to package 0's counter.
    let script = format!(
        "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; {}",
        set_counter(&counter, before + 5_000_000)
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

    assert_package0_split(&json, 5.0, "the command", &stderr);
    assert!(!text.contains("first_reading"), "{json:#}");
    // Package 1 measured 0 J: its line is there, its attribution's lines of zeros are not.
    let other = "cpu_package/1 domain=package";
    assert_eq!(
        figure(&json, &format!("rapl_consumed_energy {other}")),
        Some(0.0)
    );
    assert!(!text.contains(&format!("{other} source=rapl")), "{json:#}");
}
