//! The fixture RAPL tree and the summary's energy figures, for the tests of the
//! attribution through the agent.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use alumet::test_util::TempDir;

/// Package 0's counter, in the fixture tree.
pub const ZONE: &str = "devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj";

/// A copy of the `intel-server-2s` powercap tree, its package 0 counter and the value there.
pub fn rapl_fixture(name: &str) -> (TempDir, PathBuf, u64) {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-rapl/tests/fixtures/intel-server-2s");
    let sysfs = TempDir::copy_of(&fixture, name);
    let counter = sysfs.path().join(ZONE);
    let before = std::fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (sysfs, counter, before)
}

/// A shell command that sets the fixture counter at `counter` to `value` in place (`1<>`,
/// no truncation first): the agent keeps the file open and reads it with pread, so a
/// truncating `echo >` could be read empty in between, and that interval's energy lost.
/// The values only grow, so the new text is never shorter than the old.
pub fn set_counter(counter: &Path, value: u64) -> String {
    format!("printf '%s\\n' {value} 1<> '{}'", counter.display())
}

/// rapl on `sysfs`, procfs's kernel CPU time, the attribution, CSV to `out.csv`; readings
/// at the start and the end of exec or watch only.
pub fn attribution_config(sysfs: &Path) -> String {
    format!(
        "[plugins.rapl]\nsysfs_root = '{}'\nno_perf_events = true\npoll_interval = '1h'\n\
         [plugins.procfs.kernel]\npoll_interval = '1h'\n\
         [plugins.procfs.memory]\nenabled = false\n\
         [plugins.attribution]\n\
         [plugins.csv]\noutput_path = 'out.csv'\n",
        sysfs.display()
    )
}

/// The value of the summary's figure `name` (first run).
pub fn figure(json: &serde_json::Value, name: &str) -> Option<f64> {
    let figures = json["figures"].as_array().unwrap();
    let f = figures.iter().find(|f| f["name"] == name)?;
    f["values"][0].as_f64()
}

/// The sum of the attribution's parts (attributed, idle, unattributed) of `resource`'s
/// RAPL energy in the summary: the measured energy, when they add up.
pub fn rapl_parts(json: &serde_json::Value, resource: &str) -> f64 {
    (json["figures"].as_array().unwrap().iter())
        .filter(|f| {
            let name = f["name"].as_str().unwrap();
            name.contains(&format!("{resource} source=rapl")) && !name.ends_with("(average power)")
        })
        .map(|f| f["values"][0].as_f64().unwrap())
        .sum()
}

/// Checks the summary's package 0 line: `joules` measured, a share in `(0, joules]`
/// attributed to `whose` (`the command`, `the cgroup`), and every part adding up to
/// `joules`.
#[track_caller]
pub fn assert_package0_split(json: &serde_json::Value, joules: f64, whose: &str, stderr: &str) {
    let resource = "cpu_package/0 domain=package";
    let measured = figure(json, &format!("rapl_consumed_energy {resource}"));
    assert_eq!(measured, Some(joules), "{json:#}");
    let attributed = figure(
        json,
        &format!("attributed_energy ({whose}) {resource} source=rapl"),
    )
    .unwrap_or_else(|| panic!("no attributed energy in {json:#}\n{stderr}"));
    // Up to rounding: the parts are sums of floating-point shares (a cgroup that gets the
    // whole interval can sum to 5.000000000000001 J of 5).
    assert!(
        attributed > 0.0 && attributed <= joules + 1e-9,
        "{attributed} {json:#}"
    );
    // Every part, once: the command's, idle, and what is not the command's.
    let parts = rapl_parts(json, resource);
    assert!((parts - joules).abs() < 1e-9, "{parts} {json:#}");
}
