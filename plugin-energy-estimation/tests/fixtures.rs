//! The models' arithmetic, exactly, on fixture `/proc/stat` sequences read through the
//! plugin's source in a real pipeline: idle, busy, partly busy, a reset.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use alumet::plugin::PluginInitError;
use alumet::prelude::*;
use alumet::test_util::PipelineTester;
use plugin_energy_estimation::EnergyEstimationPlugin;

/// A `/proc/stat` of 4 CPUs whose total line has these counters
/// (user nice system idle iowait irq softirq steal).
fn stat(c: [u64; 8]) -> String {
    let line = |name: &str, c: [u64; 8]| {
        let cols: Vec<String> = c.iter().map(u64::to_string).collect();
        format!("{name} {} 0 0\n", cols.join(" "))
    };
    let mut text = line("cpu", c);
    for i in 0..4 {
        text.push_str(&line(&format!("cpu{i}"), c.map(|v| v / 4)));
    }
    text.push_str("ctxt 100\nprocesses 10\nprocs_running 1\nprocs_blocked 0\n");
    text
}

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("alumet-estimation-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Fixture { dir }
    }

    fn write(&self, c: [u64; 8]) {
        std::fs::write(self.dir.join("stat"), stat(c)).unwrap();
    }

    fn root(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the plugin with `config` over the readings, one poll each; returns the joules of
/// every estimate, with its `model` attribute.
fn estimates(name: &str, config: &str, readings: &[[u64; 8]]) -> Vec<(f64, String)> {
    let fixture = Fixture::new(name);
    fixture.write(readings[0]);
    let text = format!(
        "{config}\nprocfs_root = {:?}\npoll_interval = '1h'\nflush_interval = '1h'\n",
        fixture.root().display().to_string()
    );
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<EnergyEstimationPlugin>(&text).unwrap();
    let run = tester.start().unwrap();
    for r in readings {
        fixture.write(*r);
        assert_eq!(run.trigger("energy-estimation/cpu"), 1);
    }
    let (_, points) = run.shutdown();
    points
        .iter()
        .map(|p| {
            let MeasurementValue::F64(j) = p.value else {
                panic!("not f64: {p:?}")
            };
            let model = match p.attributes.get("model") {
                Some(AttributeValue::Str(m)) => m.to_string(),
                other => panic!("model: {other:?}"),
            };
            (j, model)
        })
        .collect()
}

// 4 CPUs at 100 Hz: one second is 400 ticks in all.
const START: [u64; 8] = [1000, 0, 500, 8000, 100, 0, 0, 0];
/// One idle second.
const IDLE: [u64; 8] = [1000, 0, 500, 8400, 100, 0, 0, 0];
/// Then one busy second (every CPU: 300 user, 100 system).
const BUSY: [u64; 8] = [1300, 0, 600, 8400, 100, 0, 0, 0];
/// Then a second a quarter busy (50 user, 30 nice, 20 irq; 250 idle, 50 iowait).
const QUARTER: [u64; 8] = [1350, 30, 600, 8650, 150, 20, 0, 0];

#[test]
fn tdp_model_is_busy_cpu_seconds_times_tdp_over_nb_cpu() {
    let joules = estimates(
        "tdp",
        "model = 'tdp'\ntdp = 80.0\nnb_cpu = 8",
        &[START, IDLE, BUSY, QUARTER],
    );
    // The first reading is the reference; then 0, 4 and 1 busy CPU-seconds at 10 W.
    let expected = [0.0, 40.0, 10.0];
    assert_eq!(joules.len(), 3, "{joules:?}");
    for ((j, model), e) in joules.iter().zip(expected) {
        assert!((j - e).abs() < 1e-9, "{j} != {e}");
        assert_eq!(model, "tdp");
    }
}

#[test]
fn tdp_model_counts_this_machine_s_cpus_when_nb_cpu_is_0() {
    let joules = estimates("tdp-auto", "tdp = 40.0", &[START, BUSY]);
    // BUSY after START: 400 busy ticks = 4 CPU-seconds, at 40 W / 4 CPUs.
    assert_eq!(joules.len(), 1);
    assert!((joules[0].0 - 40.0).abs() < 1e-9, "{joules:?}");
}

#[test]
fn curve_model_is_the_interpolated_watts_times_the_share_and_the_seconds() {
    let config =
        "model = 'curve'\ncurve = [[0, 20], [50, 60], [100, 100]]\nnb_cpu = 8\nnb_vcpu = 4";
    let joules = estimates("curve", config, &[START, IDLE, BUSY, QUARTER]);
    // Half the host's watts (4 of 8 CPUs), each over one second: idle 20 W, busy 100 W,
    // 25 % busy 40 W.
    let expected = [10.0, 50.0, 20.0];
    assert_eq!(joules.len(), 3, "{joules:?}");
    for ((j, model), e) in joules.iter().zip(expected) {
        assert!((j - e).abs() < 1e-9, "{j} != {e}");
        assert_eq!(model, "curve");
    }
}

#[test]
fn the_default_curve_is_teads_scaled_to_the_tdp() {
    let joules = estimates(
        "teads",
        "model = 'curve'\ntdp = 100.0",
        &[START, IDLE, BUSY],
    );
    // This machine alone (nb_cpu = nb_vcpu = 4): 12 W idle, 102 W busy, one second each.
    assert!((joules[0].0 - 12.0).abs() < 1e-9, "{joules:?}");
    assert!((joules[1].0 - 102.0).abs() < 1e-9, "{joules:?}");
}

#[test]
fn a_counter_that_goes_down_skips_one_interval_then_estimates_again() {
    // After BUSY, a reset (a restored snapshot of a VM): no estimate; then one busy second.
    let reset = [10, 0, 5, 80, 1, 0, 0, 0];
    let after = [310, 0, 105, 80, 1, 0, 0, 0];
    let joules = estimates(
        "reset",
        "tdp = 40.0\nnb_cpu = 4",
        &[START, BUSY, reset, after],
    );
    let values: Vec<f64> = joules.iter().map(|(j, _)| *j).collect();
    assert_eq!(values.len(), 2, "{values:?}");
    assert!(
        (values[0] - 40.0).abs() < 1e-9 && (values[1] - 40.0).abs() < 1e-9,
        "{values:?}"
    );
}

#[test]
fn steal_time_is_time_but_not_this_machine_s_work() {
    // One second where half the time was stolen by the hypervisor, a quarter busy.
    let stolen = [1100, 0, 500, 8500, 100, 0, 0, 200];
    let joules = estimates(
        "steal",
        "model = 'curve'\ncurve = [[0, 0], [100, 100]]",
        &[START, stolen],
    );
    // 100 busy ticks of 400: 25 % utilisation, 25 W over one second.
    assert!((joules[0].0 - 25.0).abs() < 1e-9, "{joules:?}");
}

fn init_error(text: &str) -> String {
    let mut tester = PipelineTester::new();
    match tester.plugin_toml::<EnergyEstimationPlugin>(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(PluginInitError::Config(c)) => format!("{}: {}", c.key, c.message),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_values_are_errors_that_name_the_key() {
    assert!(init_error("tdp = 0.0").contains("tdp is 0"));
    assert!(init_error("nb_cpu = -2.0").contains("nb_cpu is -2"));
    let e = init_error("model = 'curve'\ncurve = [[50, 10], [10, 5]]");
    assert!(
        e.contains("curve[1]") && e.contains("increasing utilisation"),
        "{e}"
    );
    assert!(init_error("curve = [[120, 10]]").contains("curve[0]"));
    assert!(
        init_error("model = 'linear'").contains("model"),
        "{}",
        init_error("model = 'linear'")
    );
    assert!(init_error("tdpp = 3").contains("tdpp"));
    assert!(init_error("poll_interval = '0s'").contains("poll_interval"));
}

#[test]
fn with_rapl_measuring_no_rapl_leaves_it_out_and_always_keeps_it() {
    use alumet::test_util::TestPlugin;
    let fixture = Fixture::new("rapl");
    fixture.write(START);
    let root = format!("procfs_root = {:?}\n", fixture.root().display().to_string());
    for (when, runs) in [("no-rapl", false), ("always", true)] {
        let mut tester = PipelineTester::new();
        tester.any_plugin(TestPlugin::new("rapl", |alumet| {
            alumet.create_metric::<f64>("rapl_consumed_energy", Unit::Joule, "energy")?;
            Ok(())
        }));
        tester
            .plugin_toml::<EnergyEstimationPlugin>(&format!("{root}when = '{when}'"))
            .unwrap();
        let run = tester.start().unwrap();
        let running = run
            .pipeline()
            .plugin_names()
            .contains(&"energy-estimation".to_owned());
        assert_eq!(running, runs, "when = {when}");
        let _ = run.shutdown();
    }
}
