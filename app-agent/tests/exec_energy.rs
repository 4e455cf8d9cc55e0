//! exec's summary, in process: a test energy source with a known counter gives exactly
//! the known joules, a manual-only source is polled exactly twice per run, and with the
//! attribution plugin the command's attributed joules appear next to the machine's.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alumet::plugin::AnyPlugin;
use alumet::prelude::*;
use alumet::test_util::{TempDir, TestPlugin};
use alumet_agent::config::{GeneralConfig, Loaded};
use alumet_agent::exec::{exec, ExecOptions, Target};

const MAX_UJ: u64 = 262_143_328_850;
const STEP_UJ: u64 = 2_500_000;

/// A RAPL-like counter in µJ that grows by 2.5 J per poll and wraps on the second poll.
fn energy_plugin(polls: Arc<AtomicU64>) -> TestPlugin {
    TestPlugin::new("fake", move |alumet| {
        let metric =
            alumet.create_metric::<f64>("fake_energy", Unit::Joule, "energy of a fake package")?;
        let mut diff = CounterDiff::with_max(MAX_UJ);
        let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            let n = polls.fetch_add(1, Ordering::SeqCst);
            let counter = (MAX_UJ - 1_000_000 + n * STEP_UJ) % (MAX_UJ + 1);
            if let Some(uj) = diff.update(counter).difference() {
                let p = MeasurementPoint::new(
                    t,
                    metric,
                    Resource::CpuPackage { id: 0 },
                    ResourceConsumer::LocalMachine,
                    uj as f64 / 1e6,
                );
                acc.push(p);
            }
            Ok(())
        };
        alumet.add_source("package", source, Trigger::manual())?;
        Ok(())
    })
}

fn run(repeat: u32, name: &str) -> (u64, serde_json::Value) {
    let polls = Arc::new(AtomicU64::new(0));
    let json = run_with(repeat, name, vec![Box::new(energy_plugin(polls.clone()))]);
    (polls.load(Ordering::SeqCst), json)
}

/// exec of `true` with `plugins`; returns the summary as JSON.
fn run_with(repeat: u32, name: &str, plugins: Vec<Box<dyn AnyPlugin>>) -> serde_json::Value {
    let dir = TempDir::new(&format!("exec-energy-{name}"));
    let json_path = dir.join("summary.json");
    let loaded = Loaded {
        general: GeneralConfig::default(),
        plugins,
        inputs: Vec::new(),
        instances: Vec::new(),
    };
    let opts = ExecOptions {
        target: Target::Command {
            program: "true".into(),
            args: vec![],
        },
        ignore_exit_code: false,
        summary: false,
        summary_json: Some(json_path.clone()),
        report: None,
        repeat,
        proc_root: "/proc".into(),
    };
    assert_eq!(exec(loaded, &opts).unwrap(), 0);
    serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap()
}

fn figure<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {json:#}"))
}

#[test]
fn known_counter_gives_exactly_the_known_joules_across_a_wrap() {
    let (polls, json) = run(1, "one");
    assert_eq!(polls, 2, "polled once before and once after the command");
    let energy = figure(&json, "fake_energy cpu_package/0");
    assert_eq!(energy["values"][0].as_f64(), Some(2.5));
    assert_eq!(energy["unit"], "J");
    let power = figure(&json, "fake_energy cpu_package/0 (average power)");
    assert!(power["mean"].as_f64().unwrap() > 0.0);
}

#[test]
fn each_run_polls_a_manual_source_exactly_twice() {
    let (polls, json) = run(3, "three");
    assert_eq!(polls, 6);
    let energy = figure(&json, "fake_energy cpu_package/0");
    // Between runs the baseline is re-read: each run sees exactly one step.
    assert_eq!(energy["values"], serde_json::json!([2.5, 2.5, 2.5]));
    assert_eq!(energy["stddev"].as_f64(), Some(0.0));
}

/// One source that reads, at the same instant, what RAPL and procfs would. `reading(n)`
/// gives poll n's package joules, busy machine CPU ms and CPU ms of one process of the
/// command; `None` is a poll that gives nothing (counters at their first reading).
fn readings_plugin(
    polls: Arc<AtomicU64>,
    reading: fn(u64) -> Option<(f64, u64, u64)>,
) -> TestPlugin {
    TestPlugin::new("machine", move |alumet| {
        let energy = alumet.create_metric::<f64>("rapl_consumed_energy", Unit::Joule, "e")?;
        let busy = alumet.create_metric::<u64>("kernel_cpu_time", Unit::Millisecond, "b")?;
        let process = alumet.create_metric::<u64>("cpu_time_delta", Unit::Millisecond, "p")?;
        let domain = Attributes::new([("domain", "package")]);
        let user_state = Attributes::new([("cpu_state", "user")]);
        let user_kind = Attributes::new([("kind", "user")]);
        let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            let n = polls.fetch_add(1, Ordering::SeqCst);
            let Some((joules, busy_ms, process_ms)) = reading(n) else {
                return Ok(());
            };
            let machine = ResourceConsumer::LocalMachine;
            let pkg = Resource::CpuPackage { id: 0 };
            acc.push(
                MeasurementPoint::new(t, energy, pkg, machine.clone(), joules)
                    .with_attributes(domain.clone()),
            );
            let local = Resource::LocalMachine;
            acc.push(
                MeasurementPoint::new(t, busy, local.clone(), machine, busy_ms)
                    .with_attributes(user_state.clone()),
            );
            let child = ResourceConsumer::Process { pid: 4242 };
            acc.push(
                MeasurementPoint::new(t, process, local, child, process_ms)
                    .with_attributes(user_kind.clone()),
            );
            Ok(())
        };
        alumet.add_source("readings", source, Trigger::manual())?;
        Ok(())
    })
}

fn attribution() -> Box<dyn AnyPlugin> {
    let config = plugin_attribution::Config::default();
    let plugin = <plugin_attribution::AttributionPlugin as alumet::plugin::Plugin>::init(config);
    Box::new(plugin.unwrap())
}

#[test]
fn the_commands_attributed_joules_are_shown_next_to_the_machines() {
    // 10 J, 100 busy ms and 50 ms of the command's process at every poll.
    let plugin = readings_plugin(Arc::default(), |_| Some((10.0, 100, 50)));
    let json = run_with(2, "attribution", vec![Box::new(plugin), attribution()]);
    let machine = figure(&json, "rapl_consumed_energy cpu_package/0 domain=package");
    assert_eq!(machine["values"], serde_json::json!([10.0, 10.0]));
    // Half of the busy CPU time was the command's: half of the energy (no idle power).
    let command = figure(
        &json,
        "attributed_energy (the command) cpu_package/0 domain=package source=rapl",
    );
    assert_eq!(command["values"], serde_json::json!([5.0, 5.0]));
    let text = json.to_string();
    assert!(!text.contains("attribution_imbalance"), "{json:#}");
    // The other half is busy time of no measured process.
    let untracked = json["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            let name = f["name"].as_str().unwrap();
            name.starts_with("unattributed_energy")
                && name.contains("reason=untracked")
                && !name.contains("average power")
        })
        .unwrap_or_else(|| panic!("no untracked energy in {json:#}"));
    assert_eq!(untracked["values"], serde_json::json!([5.0, 5.0]));
}

#[test]
fn with_attribution_the_command_interval_is_not_a_first_reading() {
    // Like RAPL and procfs: counters and CPU-time deltas give nothing at their first
    // reading; procfs polls an announced process at once, from its start (0 ms so far),
    // here at the second reading; the last poll is the one after the exit.
    let polls = Arc::new(AtomicU64::new(0));
    let plugin = readings_plugin(polls.clone(), |n| match n {
        0 => None,
        1 => Some((8.0, 100, 0)),
        _ => Some((8.0, 100, 25)),
    });
    let json = run_with(1, "first-reading", vec![Box::new(plugin), attribution()]);
    assert_eq!(
        polls.load(Ordering::SeqCst),
        3,
        "two readings before the spawn"
    );
    let machine = figure(&json, "rapl_consumed_energy cpu_package/0 domain=package");
    assert_eq!(machine["values"], serde_json::json!([8.0]));
    let command = figure(
        &json,
        "attributed_energy (the command) cpu_package/0 domain=package source=rapl",
    );
    // 25 of the 100 busy ms: a quarter of 8 J.
    assert_eq!(command["values"], serde_json::json!([2.0]));
    assert!(!json.to_string().contains("first_reading"), "{json:#}");
}
