//! Energy per cgroup on real cgroups (created by the tests, as root; under `CI` a test that
//! cannot create them fails), with the real RAPL plugin on a fixture powercap tree, the
//! real procfs plugin (machine CPU time from /proc), the cgroups and attribution plugins:
//!
//! - `watch --cgroup PATH` measures one cgroup until it is removed; the summary's CPU time
//!   is the cgroup's own counter within 2%, and its energy adds up;
//! - `run` with `consumers = "cgroup"` over a parent and its two children: the parts of
//!   every RAPL interval add up to the measured energy exactly, only the children get
//!   energy, and the parent's own CPU time is `unattributed_energy` (`parent_cgroup`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alumet::test_util::skip::{missing_root, should_run};
use alumet::test_util::TempDir;
use common::energy::{
    assert_package0_split, attribution_config, figure, rapl_fixture, set_counter,
};
use common::{agent, run_config, temp_dir, Running};

const ROOT: &str = "/sys/fs/cgroup";

/// The v2 hierarchy (the root of a v2 host, `unified` on a hybrid one), where
/// `cgroup.events` says when a cgroup's last process exits.
fn v2_hierarchy() -> Option<PathBuf> {
    [Path::new(ROOT).to_owned(), Path::new(ROOT).join("unified")]
        .into_iter()
        .find(|d| d.join("cgroup.controllers").is_file())
}

/// What a test here starts from: its cgroups (none yet) in the v2 hierarchy, a name for
/// its own, and a fixture RAPL tree with package 0's counter and its value.
struct Setup {
    cgroups: Cgroups,
    name: String,
    sysfs: TempDir,
    counter: PathBuf,
    before: u64,
}

/// `None` when the test may not run here (not root, no v2 hierarchy): under CI it fails.
fn setup(test: &str, short: &str) -> Option<Setup> {
    if !should_run(test, missing_root("creating cgroups")) {
        return None;
    }
    let found = v2_hierarchy();
    let missing = found
        .is_none()
        .then(|| format!("no v2 hierarchy under {ROOT} (nor {ROOT}/unified)"));
    should_run(test, missing).then_some(())?;
    let (sysfs, counter, before) = rapl_fixture(&format!("{short}-sysfs"));
    Some(Setup {
        cgroups: Cgroups::new(&found?),
        name: format!("alumet-{short}-test-{}", std::process::id()),
        sysfs,
        counter,
        before,
    })
}

/// Cgroups created by a test, removed (deepest first) when dropped, their processes
/// moved to the root first.
struct Cgroups {
    hierarchy: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    fn new(hierarchy: &Path) -> Self {
        Cgroups {
            hierarchy: hierarchy.to_owned(),
            dirs: Vec::new(),
        }
    }

    fn mkdir(&mut self, rel: &str) -> PathBuf {
        let dir = self.hierarchy.join(rel);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        self.dirs.push(dir.clone());
        dir
    }

    fn rmdir(&mut self, dir: &Path) {
        std::fs::remove_dir(dir).unwrap();
        self.dirs.retain(|d| d != dir);
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            if let Ok(pids) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in pids.lines() {
                    let _ = std::fs::write(self.hierarchy.join("cgroup.procs"), pid);
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A shell in cgroup `dir` that waits for a line on its stdin, then counts to `n` and
/// runs `then`.
fn burner(dir: &Path, n: u32, then: &str) -> Child {
    let script = format!("read go; i=0; while [ $i -lt {n} ]; do i=$((i+1)); done; {then}");
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
    child
}

fn go(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
}

fn usage_usec(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("cpu.stat")).unwrap();
    let line = text.lines().find(|l| l.starts_with("usage_usec ")).unwrap();
    line[11..].trim().parse().unwrap()
}

#[test]
fn watch_cgroup_measures_it_until_it_is_removed_with_its_cpu_time_and_energy() {
    let test = "watch_cgroup_measures_it_until_it_is_removed_with_its_cpu_time_and_energy";
    let Some(s) = setup(test, "watch-cgroup") else {
        return;
    };
    let (mut cgroups, name, counter, before) = (s.cgroups, s.name, s.counter, s.before);
    let dir = temp_dir("watch-cgroup");
    let config = attribution_config(s.sysfs.path());
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    let cg = cgroups.mkdir(&name);
    // The job: CPU, then 5 J more on package 0.
    let then = set_counter(&counter, before + 5_000_000);
    let mut job = burner(&cg, 150_000, &then);

    let mut cmd = agent(dir.path());
    cmd.args(["--no-default-config", "watch", "--cgroup", &name])
        .args(["--summary-json", "summary.json"]);
    let mut running = Running::spawn(cmd);
    running.wait_for_log(&format!("watching cgroup /{name}: measured from now"));
    let usage_before = usage_usec(&cg);
    go(&mut job);
    assert!(job.wait().unwrap().success());
    running.wait_for_log(&format!("no process left in cgroup /{name}"));
    let usage_after = usage_usec(&cg);
    cgroups.rmdir(&cg);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");

    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["command"], format!("cgroup /{name}"), "{json:#}");
    let cpu_s = figure(&json, "user CPU time (cgroup)").unwrap()
        + figure(&json, "system CPU time (cgroup)").unwrap();
    let measured_ms = (cpu_s * 1000.0).round() as u64;
    let counter_ms = (usage_after - usage_before) / 1000;
    eprintln!("summary: {measured_ms} ms of CPU; the cgroup's counter: {counter_ms} ms");
    assert!(counter_ms >= 100, "the job used {counter_ms} ms only");
    assert!(
        measured_ms.abs_diff(counter_ms) * 50 <= counter_ms,
        "summary {measured_ms} ms, counter {counter_ms} ms: {json:#}\n{stderr}"
    );
    assert_package0_split(&json, 5.0, "the cgroup", &stderr);
}

#[test]
fn watch_cgroup_of_a_path_that_is_no_cgroup_is_a_usage_error() {
    let root = TempDir::new("watch-cgroup-root");
    std::fs::write(root.path().join("cgroup.controllers"), "cpu\n").unwrap();
    let dir = temp_dir("watch-cgroup-missing");
    let config = format!(
        "cgroup_root = '{}'\n[plugins.csv]\noutput_path = 'out.csv'\n",
        root.path().display()
    );
    let (code, stderr) = run_config(
        dir.path(),
        &config,
        &["watch", "--cgroup", "system.slice/none.service"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no cgroup /system.slice/none.service under")
            && stderr.contains("systemd-cgls"),
        "{stderr}"
    );
    let (code, stderr) = run_config(dir.path(), &config, &["watch", "--cgroup", "a/../.."]);
    assert_eq!(code, 2, "{stderr}");
    let (code, stderr) = run_config(dir.path(), &config, &["watch", "1", "--cgroup", "a"]);
    assert_eq!(code, 2, "{stderr}");
    // A cgroup that exists, but --plugins leaves the cgroups plugin out: a config error.
    std::fs::create_dir(root.path().join("present")).unwrap();
    let (code, stderr) = run_config(
        dir.path(),
        &config,
        &["--plugins", "csv", "watch", "--cgroup", "present"],
    );
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("add `cgroups` to --plugins"), "{stderr}");
}

/// One CSV row: its columns by header name, its late attributes split.
fn rows(csv: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    lines
        .map(|line| {
            let mut row: BTreeMap<String, String> = (header.iter())
                .zip(line.split(';'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let late = row.remove("__late_attributes").unwrap_or_default();
            for pair in late.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap();
                row.insert(k.to_owned(), v.to_owned());
            }
            row
        })
        .collect()
}

/// The energy of package 0 in the CSV rows.
fn package0(rows: &[BTreeMap<String, String>]) -> f64 {
    (rows.iter())
        .filter(|r| r["metric"].starts_with("rapl_consumed_energy"))
        .filter(|r| r.get("domain").is_some_and(|d| d == "package"))
        .filter(|r| r["resource_id"] == "0")
        .map(|r| r["value"].parse::<f64>().unwrap())
        .sum()
}

#[test]
fn attribution_over_real_cgroups_on_fixture_rapl_sums_to_the_machines_energy_exactly() {
    let test = "attribution_over_real_cgroups_on_fixture_rapl_sums_to_the_machines_energy_exactly";
    let Some(mut s) = setup(test, "attribution-cgroups") else {
        return;
    };
    s.cgroups.mkdir(&s.name);
    let (mut cgroups, name, counter, before) = (s.cgroups, s.name, s.counter, s.before);
    let a = cgroups.mkdir(&format!("{name}/a"));
    let b = cgroups.mkdir(&format!("{name}/b"));
    // A process of the parent's own needs a leaf on v2: the parent's own time is the
    // time of `a` and `b` against the parent's, read at different instants; a burner in
    // `own` (not measured) is the parent's time outside its measured children.
    let own = cgroups.mkdir(&format!("{name}/own"));
    let dir = temp_dir("attribution-cgroups");
    let config = format!(
        "[plugins.rapl]\nsysfs_root = '{}'\nno_perf_events = true\npoll_interval = '100ms'\nflush_interval = '100ms'\n\
         [plugins.procfs.kernel]\npoll_interval = '100ms'\nflush_interval = '100ms'\n\
         [plugins.procfs.memory]\nenabled = false\n\
         [plugins.cgroups]\npoll_interval = '100ms'\nflush_interval = '100ms'\n\
         include = ['/{name}', '/{name}/a', '/{name}/b']\n\
         [plugins.attribution]\nconsumers = 'cgroup'\nidle_power = {{ package = 1.0 }}\n\
         [plugins.csv]\noutput_path = 'out.csv'\n",
        s.sysfs.path().display()
    );
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir.path());
    cmd.args(["--no-default-config", "run"]);
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    // The counter's first interval has no known start (`first_reading`): the jobs come
    // after it.
    let csv_path = dir.path().join("out.csv");
    running.wait_until("a first RAPL interval", |_| {
        std::fs::read_to_string(&csv_path).is_ok_and(|csv| csv.contains("attribution_imbalance"))
    });
    let mut jobs = [(&a, 1), (&b, 2), (&own, 3)].map(|(d, j)| {
        let energy = before + j * 2_000_000;
        burner(d, 100_000, &set_counter(&counter, energy))
    });
    for job in &mut jobs {
        go(job);
        assert!(job.wait().unwrap().success());
    }
    // Run mode takes no final reading at shutdown: stop once RAPL has read the 6 J.
    running.wait_until("the 6 J of package 0 in the CSV", |_| {
        let csv = std::fs::read_to_string(&csv_path).unwrap_or_default();
        (package0(&rows(&csv)) - 6.0).abs() < 1e-9
    });
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");

    let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let rows = rows(&csv);
    let key = |r: &BTreeMap<String, String>| {
        let field = |k: &str| r.get(k).cloned().unwrap_or_default();
        (
            field("timestamp"),
            field("resource_kind"),
            field("resource_id"),
            field("domain"),
        )
    };
    let mut measured: BTreeMap<_, f64> = BTreeMap::new();
    let mut parts: BTreeMap<_, f64> = BTreeMap::new();
    let mut to = BTreeMap::<String, f64>::new();
    let mut parent_cgroup = 0.0;
    for r in &rows {
        let value: f64 = r["value"].parse().unwrap();
        let metric = r["metric"].as_str();
        if metric.starts_with("rapl_consumed_energy")
            && r.get("domain")
                .is_some_and(|d| d == "package" || d == "dram")
        {
            *measured.entry(key(r)).or_default() += value;
        } else if ["attributed_energy", "idle_energy", "unattributed_energy"]
            .iter()
            .any(|m| metric.starts_with(m))
            && r.get("source").is_some_and(|s| s == "rapl")
        {
            *parts.entry(key(r)).or_default() += value;
            if metric.starts_with("attributed_energy") {
                assert_eq!(r["consumer_kind"], "cgroup", "{r:?}");
                *to.entry(r["consumer_id"].clone()).or_default() += value;
            }
            if r.get("reason").is_some_and(|s| s == "parent_cgroup") {
                parent_cgroup += value;
            }
        }
    }
    // The 6 J the jobs added, on package 0.
    assert!((package0(&rows) - 6.0).abs() < 1e-9, "{csv}");
    // Every interval measured, attributed once, to the joule's rounding.
    assert_eq!(
        measured.keys().collect::<Vec<_>>(),
        parts.keys().collect::<Vec<_>>(),
        "{csv}"
    );
    for (k, m) in &measured {
        let p = parts[k];
        assert!(
            (p - m).abs() <= 1e-9 * m.max(1.0),
            "{k:?}: parts {p}, measured {m}"
        );
    }
    // The children got energy, the parent none; its time outside them is reported.
    let child = |c: &str| to.get(&format!("/{name}/{c}")).copied().unwrap_or(0.0);
    assert!(
        child("a") > 0.0 && child("b") > 0.0,
        "{to:?}\n{csv}\n{stderr}"
    );
    assert!(!to.contains_key(&format!("/{name}")), "{to:?}");
    assert!(parent_cgroup > 0.0, "no parent_cgroup part\n{csv}");
    let imbalance = rows
        .iter()
        .filter(|r| r["metric"].starts_with("attribution_imbalance"))
        .map(|r| r["value"].parse::<f64>().unwrap().abs())
        .fold(0.0, f64::max);
    assert!(imbalance <= 1e-9, "{imbalance}");
}
