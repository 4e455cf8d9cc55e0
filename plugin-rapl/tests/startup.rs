//! Start-up: no interface at all is the core's `Unavailable` (the pipeline runs without the
//! plugin); the config's keys, defaults and errors; the wrap-around warning.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use alumet::plugin::{probe_start, PluginMetadata, Unavailable};
use alumet::prelude::*;
use alumet::test_util::PipelineTester;
use common::*;
use plugin_rapl::{Config, RaplPlugin};

fn probe(config: Config) -> anyhow::Result<()> {
    let mut plugin = RaplPlugin::init(config).unwrap();
    probe_start(&mut plugin)
}

#[test]
fn no_interface_is_unavailable_and_the_pipeline_runs_without_it() {
    let f = Fixture::copy("intel-server-2s", "unavailable");
    std::fs::remove_dir_all(f.root().join("devices/virtual/powercap")).unwrap();
    std::fs::remove_dir_all(f.root().join("bus")).unwrap();
    let config = Config {
        sysfs_root: f.root().to_owned(),
        ..Config::default()
    };
    let error = probe(config.clone()).unwrap_err();
    let u = Unavailable::find(&error).unwrap();
    let root = f.root().display().to_string();
    assert!(
        u.reason
            .starts_with("no RAPL interface: no powercap RAPL zone under "),
        "{u}"
    );
    assert!(
        u.reason.contains(&format!(
            "no perf_event power PMU at {root}/bus/event_source/devices/power"
        )),
        "{u}"
    );
    assert!(u.fix.contains("sysfs_root"), "{u}");
    assert!(!u.to_string().contains('\n'));

    capture_logs();
    let mut tester = PipelineTester::new();
    tester.plugin::<RaplPlugin>(config).unwrap();
    let feeder = tester.feeder("other");
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("rapl/*"), 0);
    let metric = run.metric::<u64>("test_other").unwrap();
    let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
    feeder.push(MeasurementPoint::new(Timestamp::now(), metric, r, c, 1));
    assert_eq!(run.trigger("test/other"), 1);
    let (_, points) = run.shutdown();
    assert_eq!(points.len(), 1);
    let warnings = logs_with(&root);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("WARN plugin rapl is unavailable"),
        "{warnings:?}"
    );
}

#[test]
fn a_pmu_alone_with_no_perf_events_is_unavailable() {
    let f = Fixture::copy("intel-laptop", "pmu-only");
    std::fs::remove_dir_all(f.root().join("devices/virtual/powercap")).unwrap();
    std::fs::remove_dir_all(f.root().join("class")).unwrap();
    let config = Config {
        sysfs_root: f.root().to_owned(),
        no_perf_events: true,
        ..Config::default()
    };
    let error = probe(config).unwrap_err();
    let u = Unavailable::find(&error).unwrap();
    assert!(!u.reason.contains("perf_event"), "{u}");
}

#[test]
fn config_defaults_are_those_documented() {
    let d = Config::default();
    assert_eq!(d.poll_interval, Duration::from_secs(1));
    assert_eq!(d.flush_interval, Duration::from_secs(5));
    assert!(!d.no_perf_events);
    assert_eq!(d.sysfs_root, std::path::Path::new("/sys"));
    let meta = PluginMetadata::of::<RaplPlugin>();
    assert_eq!(meta.name, "rapl");
    let table = meta.default_config().unwrap();
    let text = toml::to_string(&table).unwrap();
    for line in [
        "poll_interval = \"1s\"",
        "flush_interval = \"5s\"",
        "no_perf_events = false",
        "sysfs_root = \"/sys\"",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[test]
fn every_config_key_is_described_and_errors_name_the_key() {
    let schema = PluginMetadata::of::<RaplPlugin>().config_schema();
    for key in [
        "poll_interval",
        "flush_interval",
        "no_perf_events",
        "sysfs_root",
    ] {
        let description = schema["properties"][key]["description"]
            .as_str()
            .unwrap_or("");
        assert!(
            !description.is_empty(),
            "{key} has a description in {schema}"
        );
    }

    let mut tester = PipelineTester::new();
    let e = tester
        .plugin_toml::<RaplPlugin>("pol_interval = '1s'")
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("unknown field `pol_interval`"),
        "{e}"
    );
    let e = tester
        .plugin_toml::<RaplPlugin>("poll_interval = '0s'")
        .err()
        .unwrap();
    assert!(
        format!("{e:#}").contains("key `poll_interval`: the interval \"0s\" is too short"),
        "{e}"
    );
    let e = tester
        .plugin_toml::<RaplPlugin>("flush_interval = 'soon'")
        .err()
        .unwrap();
    assert!(e.to_string().contains("flush_interval"), "{e}");
    // Keys left out take their defaults.
    assert!(tester
        .plugin_toml::<RaplPlugin>("no_perf_events = true")
        .is_ok());
}

#[test]
fn a_poll_interval_longer_than_the_wrap_time_at_tdp_warns() {
    // Server: dram's range, 65.7 kJ, at the package's TDP of 200 W wraps in 5 min 28 s.
    let f = Fixture::copy("intel-server-2s", "wrap-warning");
    let dram = f.zone("intel-rapl:0/intel-rapl:0:0").display().to_string();
    let slow = Config {
        sysfs_root: f.root().to_owned(),
        no_perf_events: true,
        poll_interval: Duration::from_secs(600),
        ..Config::default()
    };
    capture_logs();
    probe(Config {
        poll_interval: Duration::from_secs(300),
        ..slow.clone()
    })
    .unwrap();
    assert!(logs_with(&dram).iter().all(|l| !l.contains("wrap")));
    probe(slow).unwrap();
    let warnings = logs_with(&dram);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.starts_with("WARN poll_interval (10m) is longer than the 5m 28s that"),
        "{w}"
    );
    assert!(w.contains("at its TDP 200 W"), "{w}");
}
