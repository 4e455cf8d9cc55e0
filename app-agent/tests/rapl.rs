//! The RAPL plugin through the agent binary: `--plugins rapl,csv` with `sysfs_root` at one
//! of plugin-rapl's fixture trees writes the exact joules to the CSV; without any RAPL
//! interface the agent says so in one line and keeps running; the general `sys_root` alone
//! points rapl at the tree as well.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use alumet::test_util::TempDir;
use common::{agent, Running};

/// The `max_energy_range_uj` of the Intel fixtures' package zones.
const INTEL_MAX: u64 = 262_143_328_850;

/// The energy of each `resource_kind/resource_id/domain` in the CSV, summed, in µJ (each
/// row is exact to the µJ).
fn csv_energy(csv: &Path) -> BTreeMap<String, i64> {
    let mut text = std::fs::read_to_string(csv).unwrap_or_default();
    // A row being written has no line break yet.
    text.truncate(text.rfind('\n').map_or(0, |end| end + 1));
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return BTreeMap::new();
    };
    let columns: Vec<&str> = header.split(';').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let (metric, value, kind, id, domain) = (
        col("metric"),
        col("value"),
        col("resource_kind"),
        col("resource_id"),
        col("domain"),
    );
    let mut sums = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(';').collect();
        assert_eq!(f.len(), columns.len(), "{line}");
        assert_eq!(f[metric], "rapl_consumed_energy_J", "{line}");
        let uj = (f[value].parse::<f64>().unwrap() * 1e6).round() as i64;
        *sums
            .entry(format!("{}/{}/{}", f[kind], f[id], f[domain]))
            .or_insert(0) += uj;
    }
    sums
}

/// The agent's config in `dir`: `[plugins.rapl]` with `rapl`, and the CSV output `out.csv`.
fn write_config(dir: &Path, rapl: &str) {
    let config = format!("[plugins.rapl]\n{rapl}[plugins.csv]\noutput_path = 'out.csv'\n");
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
}

/// Rows written for rapl so far.
fn csv_rows(csv: &Path) -> usize {
    std::fs::read_to_string(csv).map_or(0, |t| t.lines().skip(1).count())
}

/// Writes a counter in place, in a fixed width of 12 digits: the agent keeps the file open
/// and may read it at any moment, so the content is overwritten, never truncated.
fn set(path: &Path, uj: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(format!("{uj:012}\n").as_bytes(), 0)
        .unwrap();
}

/// A copy of plugin-rapl's fixture sysfs tree `case`, to change counters in.
fn fixture(case: &str) -> TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugin-rapl/tests/fixtures")
        .join(case);
    TempDir::copy_of(&src, "rapl-agent-sysfs")
}

/// The agent in `dir` with `args`, its stderr collected.
fn spawn(dir: &Path, args: &[&str]) -> Running {
    let mut cmd = agent(dir);
    cmd.args(args);
    Running::spawn(cmd)
}

/// SIGTERM, then the exit code and the whole stderr.
fn stop(agent: Running) -> (Option<i32>, String) {
    agent.signal(libc::SIGTERM);
    let (status, stderr) = agent.wait();
    (status.code(), stderr)
}

#[test]
fn rapl_and_csv_through_the_agent_give_the_exact_joules() {
    let sysfs = fixture("intel-server-2s");
    let zones = sysfs.path().join("devices/virtual/powercap/intel-rapl");
    let energy = |zone: &str| zones.join(zone).join("energy_uj");
    let (pkg0, dram0) = (
        energy("intel-rapl:0"),
        energy("intel-rapl:0/intel-rapl:0:0"),
    );
    let (pkg1, dram1) = (
        energy("intel-rapl:1"),
        energy("intel-rapl:1/intel-rapl:1:0"),
    );
    set(&pkg0, 1_000_000_000);
    set(&dram0, 500_000_000);
    set(&pkg1, INTEL_MAX - 1_000_000);
    set(&dram1, 7);
    let dir = TempDir::new("rapl-agent-exact");
    let rapl = format!(
        "sysfs_root = '{}'\npoll_interval = '20ms'\nflush_interval = '20ms'\nno_perf_events = true\n",
        sysfs.path().display()
    );
    write_config(dir.path(), &rapl);
    let csv = dir.path().join("out.csv");
    let mut agent = spawn(
        dir.path(),
        &["--no-default-config", "--plugins", "rapl,csv"],
    );
    agent.wait_until("running plugins", |a| {
        a.stderr().contains("running plugins: rapl, csv")
    });
    // Rows mean the baseline was read before the change below.
    agent.wait_until("rows in the CSV", |_| csv_rows(&csv) >= 8);
    set(&pkg0, 1_002_500_000);
    set(&dram0, 500_123_456);
    set(&pkg1, 1_500_000); // wraps: 1 J + 1 µJ + 1.5 J
    let want: BTreeMap<String, i64> = [
        ("cpu_package/0/package", 2_500_000),
        ("cpu_package/0/dram", 123_456),
        ("cpu_package/1/package", 2_500_001),
        ("cpu_package/1/dram", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    agent.wait_until("the change in the CSV", |_| csv_energy(&csv) == want);
    let (code, stderr) = stop(agent);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(csv_energy(&csv), want, "{stderr}");
    assert!(stderr.contains("measuring with powercap: package 0 package, package 0 dram, package 1 package, package 1 dram"), "{stderr}");
}

#[test]
fn without_rapl_the_agent_says_so_in_one_line_and_keeps_running() {
    let dir = TempDir::new("rapl-agent-unavailable");
    let empty = dir.path().join("sys");
    std::fs::create_dir_all(&empty).unwrap();
    write_config(dir.path(), &format!("sysfs_root = '{}'\n", empty.display()));
    let mut agent = spawn(
        dir.path(),
        &["--no-default-config", "--plugins", "rapl,csv"],
    );
    agent.wait_until("running plugins", |a| {
        a.stderr().contains("running plugins: csv")
    });
    let (code, stderr) = stop(agent);
    assert_eq!(code, Some(0), "{stderr}");
    let rapl: Vec<&str> = stderr.lines().filter(|l| l.contains("rapl")).collect();
    assert_eq!(rapl.len(), 1, "{stderr}");
    assert!(
        rapl[0].contains("plugin rapl is unavailable and will not run: no RAPL interface"),
        "{stderr}"
    );
    assert!(rapl[0].contains("set sysfs_root"), "{stderr}");
}

#[test]
fn the_general_sys_root_alone_points_rapl_at_the_host_tree() {
    let sysfs = fixture("intel-server-2s");
    let pkg0 = sysfs
        .path()
        .join("devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj");
    set(&pkg0, 1_000_000_000);
    let dir = TempDir::new("rapl-agent-sys-root");
    // `sys_root` among the general keys, no `sysfs_root` in the plugin's table.
    let config = format!(
        "sys_root = '{}'\n[plugins.rapl]\npoll_interval = '20ms'\nflush_interval = '20ms'\nno_perf_events = true\n[plugins.csv]\noutput_path = 'out.csv'\n",
        sysfs.path().display()
    );
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    let csv = dir.path().join("out.csv");
    let mut agent = spawn(
        dir.path(),
        &["--no-default-config", "--plugins", "rapl,csv"],
    );
    agent.wait_until("rows in the CSV", |_| csv_rows(&csv) >= 8);
    set(&pkg0, 1_002_500_000);
    let pkg0_energy = |csv: &Path| csv_energy(csv).get("cpu_package/0/package").copied();
    agent.wait_until("the change in the CSV", |_| {
        pkg0_energy(&csv) == Some(2_500_000)
    });
    let (code, stderr) = stop(agent);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(pkg0_energy(&csv), Some(2_500_000), "{stderr}");
}
