//! Refusals through the real code path: `energy_uj` files readable by root only, and
//! perf_event under `kernel.perf_event_paranoid` 2. Permissions do not stop root, so when
//! the tests run as root each scenario runs in a child process (this test binary again)
//! as the user `nobody`.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use alumet::plugin::{probe_start, Plugin, Unavailable};
use common::*;
use plugin_rapl::RaplPlugin;

/// Set in the child: the fixture root to use.
const CHILD_ROOT: &str = "PLUGIN_RAPL_TEST_ROOT";
const NOBODY: u32 = 65534;

fn make_root_only(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400)).unwrap();
}

/// Runs `scenario` on `f` as a user without privileges: here if we are not root, else in
/// a child process as `nobody` (which runs this same test, `name`, with the root path).
fn unprivileged(name: &str, f: &Fixture, scenario: fn(&Path)) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return scenario(f.root());
    }
    let exe = std::env::current_exe().unwrap();
    if !others_can_reach(&exe) || !others_can_reach(f.root()) {
        use std::io::Write;
        let why = format!(
            "{} or {} is not reachable by nobody",
            exe.display(),
            f.root().display()
        );
        let _ = writeln!(std::io::stderr(), "SKIPPED {name}: {why}");
        return;
    }
    let output = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROOT, f.root())
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "as nobody:\n{text}");
    assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
}

/// Whether a user other than the owner can reach `path` (execute the file or traverse
/// the directory, and every directory above it).
fn others_can_reach(path: &Path) -> bool {
    path.ancestors()
        .all(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// The child's side: `Some(root)` when this process is the unprivileged child.
fn child_root() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD_ROOT).map(Into::into)
}

#[test]
fn nothing_readable_stops_the_plugin_with_one_message_per_interface() {
    fn scenario(root: &Path) {
        let mut plugin = RaplPlugin::init(plugin_rapl::Config {
            sysfs_root: root.to_owned(),
            ..Default::default()
        })
        .unwrap();
        let error = probe_start(&mut plugin).unwrap_err();
        assert!(
            Unavailable::find(&error).is_none(),
            "a refusal is not absent hardware"
        );
        let text = format!("{error:#}");
        let pkg0 = root.join("devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj");
        let powercap = format!(
            "permission denied reading {} and 3 other energy_uj files: energy_uj is readable by \
             root only since Linux 5.10 (CVE-2020-8694); run the agent as root, or let its group \
             read the counters with the tmpfiles rule",
            pkg0.display()
        );
        assert!(text.starts_with("no RAPL counter may be read: "), "{text}");
        assert!(text.contains(&powercap), "{text}");
        assert_eq!(
            text.matches("CVE-2020-8694").count(),
            1,
            "one message: {text}"
        );
        // With kernel.perf_event_paranoid at 2 or more, system-wide events are refused
        // before the PMU type is even looked up.
        if plugin_rapl::advice::perf_event_paranoid().is_some_and(|p| p >= 2) {
            let perf = "perf_event_open refused: perf_event power/energy-pkg/ on cpu 0 and 3 \
                        other counters (Permission denied (os error 13)): \
                        kernel.perf_event_paranoid is ";
            assert!(text.contains(perf), "{text}");
            assert_eq!(
                text.matches("CAP_PERFMON;").count(),
                1,
                "one message: {text}"
            );
        }
    }
    if let Some(root) = child_root() {
        return scenario(&root);
    }
    let f = Fixture::copy("intel-server-2s", "denied-all");
    for zone in [
        "intel-rapl:0",
        "intel-rapl:0/intel-rapl:0:0",
        "intel-rapl:1",
        "intel-rapl:1/intel-rapl:1:0",
    ] {
        make_root_only(&f.zone(zone).join("energy_uj"));
    }
    unprivileged(
        "nothing_readable_stops_the_plugin_with_one_message_per_interface",
        &f,
        scenario,
    );
}

#[test]
fn some_files_refused_leave_only_those_out() {
    fn scenario(root: &Path) {
        let config = format!(
            "sysfs_root = '{}'\npoll_interval = '1h'\nno_perf_events = true\n",
            root.display()
        );
        let run = start(&config);
        poll(&run);
        let (_, points) = run.shutdown();
        assert!(points.is_empty());
        let run = start(&config);
        poll(&run);
        poll(&run);
        let (_, points) = run.shutdown();
        let want = expect(&[
            ("cpu_package", "0", "package", 0.0),
            ("cpu_package", "1", "package", 0.0),
        ]);
        assert_eq!(per_poll(&points), [want]);
        let dram = root.join("devices/virtual/powercap/intel-rapl/intel-rapl:0/intel-rapl:0:0");
        let logs = logs_with(&dram.display().to_string());
        let warnings: Vec<_> = logs
            .iter()
            .filter(|l| l.contains("and 1 other energy_uj file"))
            .collect();
        assert_eq!(warnings.len(), 2, "one per start: {logs:?}");
        assert!(
            warnings[0].starts_with("WARN permission denied reading"),
            "{logs:?}"
        );
        assert!(
            warnings[0].ends_with("; this counter is not measured"),
            "{logs:?}"
        );
    }
    if let Some(root) = child_root() {
        return scenario(&root);
    }
    let f = Fixture::copy("intel-server-2s", "denied-dram");
    for zone in ["intel-rapl:0/intel-rapl:0:0", "intel-rapl:1/intel-rapl:1:0"] {
        make_root_only(&f.zone(zone).join("energy_uj"));
    }
    unprivileged("some_files_refused_leave_only_those_out", &f, scenario);
}
