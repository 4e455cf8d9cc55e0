//! exec with the perf plugin's software events (real here: no PMU needed), against Linux's
//! `perf stat` on the same deterministic workloads, and against getrusage of the command.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use alumet::test_util::TempDir;
use common::energy::figure;
use common::{agent, run_to_exit};

/// A Python workload: burns `burn` seconds of CPU, writes `pages` fresh pages, sleeps
/// `sleeps` times 1 ms (a context switch each).
fn workload(burn: f64, pages: usize, sleeps: usize) -> Vec<String> {
    let script = format!(
        "import mmap, time\n\
         end = time.process_time() + {burn}\n\
         while time.process_time() < end: pass\n\
         m = mmap.mmap(-1, {pages} * 4096)\n\
         for i in range({pages}): m[i * 4096] = 1\n\
         for i in range({sleeps}): time.sleep(0.001)\n"
    );
    vec!["python3".into(), "-c".into(), script]
}

/// `perf stat`'s counts of the workload (event -> value; task-clock in ms).
fn perf_stat(command: &[String]) -> Option<BTreeMap<String, f64>> {
    let out = Command::new("perf")
        .args([
            "stat",
            "-x,",
            "-e",
            "task-clock,page-faults,context-switches",
            "--",
        ])
        .args(command)
        .output();
    let missing = match &out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "perf stat failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Some(format!(
            "perf cannot run ({e}); install linux-perf (.ci/run does)"
        )),
    };
    if !alumet::test_util::skip::should_run("perf stat", missing) {
        return None;
    }
    let text = String::from_utf8_lossy(&out.ok()?.stderr).into_owned();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() > 2 {
            if let Ok(v) = fields[0].parse::<f64>() {
                counts.insert(fields[2].to_owned(), v);
            }
        }
    }
    Some(counts)
}

/// The agent's summary of the workload (figure name -> value).
fn agent_exec(dir: &TempDir, command: &[String]) -> serde_json::Value {
    let config = "[plugins.perf]\nevents = ['task-clock', 'page-faults', 'context-switches', 'cycles']\npoll_interval = '1h'\n\
        [plugins.csv]\noutput_path = 'out.csv'\n";
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir.path());
    cmd.args([
        "--no-default-config",
        "--plugins",
        "perf,csv",
        "exec",
        "--summary-json",
        "summary.json",
        "--",
    ])
    .args(command);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn within(a: f64, b: f64, share: f64, slack: f64) -> bool {
    (a - b).abs() <= b.abs() * share + slack
}

#[test]
fn software_counts_agree_with_perf_stat_and_getrusage() {
    let small = workload(0.3, 2_000, 300);
    let large = workload(0.3, 12_000, 300);
    let Some(stat_small) = perf_stat(&small) else {
        return;
    };
    let stat_large = perf_stat(&large).unwrap();
    let dir = TempDir::new("exec-perf");
    let ours_small = agent_exec(&dir, &small);
    let ours_large = agent_exec(&dir, &large);
    let ours = |json: &serde_json::Value, name: &str| {
        figure(json, name).unwrap_or_else(|| panic!("no {name:?} in {json:#}"))
    };

    // CPU time: task-clock within 5 % of the child's rusage in the same run (rusage also
    // counts the exit's unmapping of the pages, after the counters stop, and samples at
    // the tick); perf stat's run is another run of the workload, whose startup and page
    // faults take a few percent more or less CPU on a busy machine: within 10 %.
    let task = ours(&ours_large, "task-clock (msec)");
    let rusage_ms =
        (ours(&ours_large, "user CPU time") + ours(&ours_large, "system CPU time")) * 1000.0;
    assert!(
        within(task, rusage_ms, 0.05, 10.0),
        "task-clock {task} ms, getrusage {rusage_ms} ms"
    );
    assert!(
        within(task, stat_large["task-clock"], 0.10, 5.0),
        "task-clock {task} ms, perf stat {}",
        stat_large["task-clock"]
    );

    // Page faults: 10 000 more pages give 10 000 more faults (within 64: the loop's own
    // heap grows too), for
    // the agent as for perf stat; the totals agree within 2 %.
    let faults = |j: &serde_json::Value| ours(j, "page-faults");
    let ours_extra = faults(&ours_large) - faults(&ours_small);
    let stat_extra = stat_large["page-faults"] - stat_small["page-faults"];
    assert!(
        within(ours_extra, 10_000.0, 0.0, 64.0),
        "agent: {ours_extra} more faults"
    );
    assert!(
        within(stat_extra, 10_000.0, 0.0, 64.0),
        "perf stat: {stat_extra} more faults"
    );
    assert!(
        within(faults(&ours_large), stat_large["page-faults"], 0.02, 0.0),
        "{} vs {}",
        faults(&ours_large),
        stat_large["page-faults"]
    );

    // Context switches: one per sleep, as perf stat counts them (within 5 %: two runs, each
    // preempted a few times more or less on a busy machine), on a workload
    // that only sleeps (a busy one is also preempted, as often as the machine is loaded).
    let sleeper = workload(0.0, 1, 1000);
    let stat = perf_stat(&sleeper).unwrap();
    let cs = ours(&agent_exec(&dir, &sleeper), "context-switches");
    assert!(cs >= 1000.0, "{cs} context switches for 1000 sleeps");
    assert!(
        within(cs, stat["context-switches"], 0.05, 5.0),
        "{cs} vs perf stat {}",
        stat["context-switches"]
    );
}

#[test]
fn without_a_pmu_cycles_is_left_out_with_the_reason_and_software_events_are_counted() {
    let pmu = std::path::Path::new("/sys/bus/event_source/devices/cpu").exists()
        || std::fs::read_dir("/sys/bus/event_source/devices")
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("armv"))
            })
            .unwrap_or(false);
    let dir = TempDir::new("exec-perf-nopmu");
    let config = "[plugins.perf]\nevents = ['cycles', 'task-clock']\n[plugins.csv]\noutput_path = 'out.csv'\n";
    std::fs::write(dir.path().join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(dir.path());
    cmd.env("RUST_LOG", "warn").args([
        "--no-default-config",
        "--plugins",
        "perf,csv",
        "exec",
        "--summary-json",
        "s.json",
        "--",
        "true",
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    assert!(figure(&json, "task-clock (msec)").is_some(), "{json:#}");
    if !pmu {
        assert!(
            stderr.contains("cycles: not supported here") && stderr.contains("no hardware PMU"),
            "{stderr}"
        );
        assert!(figure(&json, "cycles").is_none());
        // The default config disables the plugin here, with the reason.
        let regen = TempDir::new("perf-regen");
        let out = agent(regen.path())
            .args(["config", "regen"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = std::fs::read_to_string(regen.path().join("alumet-config.toml")).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            table["plugins"]["perf"]["enable"].as_bool(),
            Some(false),
            "{text}"
        );
        assert!(text.contains("no event can be counted"), "{text}");
    }
}
