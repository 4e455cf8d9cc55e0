//! Sensors and chips that misbehave, through the plugin in a real pipeline: a counter
//! that resets, a chip that disappears, files that cannot be read or hold garbage, no
//! hwmon at all. Each problem costs only its own sensor's points (or its chip's source),
//! is logged once when it starts, and never panics.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::plugin::{probe_start, Plugin, Unavailable};
use alumet::test_util::{logs, TempDir};
use common::*;
use plugin_hwmon::{Config, HwmonPlugin};

fn count(lines: &[String], text: &str) -> usize {
    lines.iter().filter(|l| l.contains(text)).count()
}

#[test]
fn an_energy_counter_that_resets_skips_one_interval_then_counts_again() {
    logs::capture();
    let f = Fixture::copy("amd-gpu-server", "reset");
    let run = start(&f.config("include = [\"amdgpu\"]"));
    f.set("hwmon1/energy1_input", "5000000");
    poll(&run);
    f.set("hwmon1/energy1_input", "7000000");
    poll(&run);
    // The driver is reloaded: the counter starts again near 0.
    f.set("hwmon1/energy1_input", "1000");
    poll(&run);
    f.set("hwmon1/energy1_input", "501000");
    poll(&run);
    let names = names(&run);
    let (_, points) = run.shutdown();
    let energy = key("hwmon_energy", "amdgpu", "energy1/counter");
    let got: Vec<Option<f64>> = per_poll(&names, &points)
        .iter()
        .map(|p| p.get(&energy).copied())
        .collect();
    assert_eq!(got, [None, Some(2.0), None, Some(0.5)]);
    let path = f.hwmon("hwmon1/energy1_input").display().to_string();
    let lines = logs::lines_with(&path);
    assert_eq!(
        count(&lines, "went back from 7000000 to 1000"),
        1,
        "{lines:?}"
    );
}

#[test]
fn a_chip_that_disappears_ends_its_source_and_the_others_go_on() {
    logs::capture();
    let f = Fixture::copy("intel-desktop", "gone");
    let run = start(&f.config(""));
    assert_eq!(poll(&run), 4);
    // The nvme controller is removed. sysfs then fails the reads of its open files
    // (ENODEV); a removed regular file would still read, so the test empties the files
    // first, then removes the directory.
    let nvme = std::fs::canonicalize(f.hwmon("hwmon2")).unwrap();
    for file in ["temp1_input", "temp2_input"] {
        std::fs::write(nvme.join(file), "").unwrap();
    }
    std::fs::remove_dir_all(&nvme).unwrap();
    assert_eq!(
        poll(&run),
        4,
        "the nvme source is polled once more and ends"
    );
    assert_eq!(poll(&run), 3);
    f.set("hwmon1/temp1_input", "50000");
    assert_eq!(poll(&run), 3);
    let names = names(&run);
    let (_, points) = run.shutdown();
    let polls = per_poll(&names, &points);
    assert_eq!(polls.len(), 4);
    let nvme_points: Vec<usize> = polls
        .iter()
        .map(|p| p.keys().filter(|k| k.1 == "nvme").count())
        .collect();
    assert_eq!(nvme_points, [2, 0, 0, 0]);
    for p in &polls[1..] {
        assert!(
            p.contains_key(&key("hwmon_temperature", "coretemp", "Core 0")),
            "{p:?}"
        );
    }
    assert_eq!(
        polls[3][&key("hwmon_temperature", "coretemp", "Package id 0")],
        50.0
    );
    let lines = logs::lines_with(&f.hwmon("hwmon2").display().to_string());
    assert_eq!(count(&lines, "nvme (hwmon2) disappeared"), 1, "{lines:?}");
    assert_eq!(
        count(&lines, "reading"),
        0,
        "no warning per sensor: {lines:?}"
    );
}

#[test]
fn unreadable_and_garbage_files_are_logged_once_and_cost_only_their_sensor() {
    logs::capture();
    let f = Fixture::copy("intel-desktop", "unreadable");
    // A file that cannot be read: root reads any file whatever its mode, so the test uses
    // a directory in its place (read fails with EISDIR, as a refused read fails with EACCES).
    let core0 = f.hwmon("hwmon1/temp2_input");
    std::fs::remove_file(&core0).unwrap();
    std::fs::create_dir(&core0).unwrap();
    f.set("hwmon1/temp3_input", "garbage");
    f.set(
        "hwmon3/fan1_input",
        "99999999999999999999999999999999999999",
    );
    let run = start(&f.config("include = [\"coretemp\", \"nct6798\"]"));
    for _ in 0..3 {
        assert_eq!(poll(&run), 2);
    }
    // Fixed: read again.
    f.set("hwmon1/temp3_input", "44000");
    poll(&run);
    let names = names(&run);
    let (_, points) = run.shutdown();
    let polls = per_poll(&names, &points);
    assert_eq!(polls.len(), 4);
    for p in &polls[..3] {
        assert_eq!(
            p[&key("hwmon_temperature", "coretemp", "Package id 0")],
            45.0
        );
        assert!(!p.contains_key(&key("hwmon_temperature", "coretemp", "Core 0")));
        assert!(!p.contains_key(&key("hwmon_temperature", "coretemp", "Core 1")));
        assert!(!p.contains_key(&key("hwmon_fan_speed", "nct6798", "fan1")));
        assert_eq!(p[&key("hwmon_fan_speed", "nct6798", "fan2")], 0.0);
    }
    assert_eq!(
        polls[3][&key("hwmon_temperature", "coretemp", "Core 1")],
        44.0
    );
    let lines = logs::lines_with(&f.root().display().to_string());
    let directory = logs::lines_with(&core0.display().to_string());
    assert_eq!(count(&directory, "Is a directory"), 1, "{lines:?}");
    assert_eq!(count(&lines, "not an integer: \"garbage\""), 1, "{lines:?}");
    assert_eq!(count(&lines, "value too long"), 1, "{lines:?}");
    assert_eq!(
        count(&lines, "temp3_input can be read again"),
        1,
        "{lines:?}"
    );
}

#[test]
fn without_hwmon_the_plugin_is_unavailable_with_the_reason_and_the_fix() {
    let empty = TempDir::new("hwmon-none");
    let config = Config {
        sysfs_root: empty.path().to_owned(),
        ..Config::default()
    };
    let mut plugin = HwmonPlugin::init(config).unwrap();
    let err = probe_start(&mut plugin).unwrap_err();
    let u = Unavailable::find(&err).unwrap();
    assert!(
        u.reason.contains("class/hwmon cannot be read"),
        "{}",
        u.reason
    );
    assert!(
        u.fix.contains("sys_root") && u.fix.contains("enable = false"),
        "{}",
        u.fix
    );
}

#[test]
fn no_matching_chip_is_unavailable_and_include_exclude_select_by_name() {
    let f = Fixture::copy("intel-desktop", "select");
    let config = |include: &[&str], exclude: &[&str]| Config {
        sysfs_root: f.root().to_owned(),
        include: include.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        ..Config::default()
    };
    let mut plugin = HwmonPlugin::init(config(&["amdgpu"], &[])).unwrap();
    let err = probe_start(&mut plugin).unwrap_err();
    let u = Unavailable::find(&err).unwrap();
    assert!(u.reason.contains("no hwmon chip"), "{}", u.reason);
    assert!(u.reason.contains("coretemp not selected"), "{}", u.reason);
    assert!(u.fix.contains("include"), "{}", u.fix);

    let run = start(&f.config("include = [\"coretemp\", \"nvme\"]\nexclude = [\"nvme\"]"));
    assert_eq!(poll(&run), 1);
    let (_, points) = run.shutdown();
    assert!(points.iter().all(|p| text(p, "chip") == "coretemp"));
    assert_eq!(points.len(), 3);
}

#[test]
fn under_the_public_alumet_names_only_their_chips_are_read() {
    use alumet::plugin::PluginMetadata;
    let meta = PluginMetadata::of::<HwmonPlugin>();
    let f = Fixture::copy("intel-desktop", "flavors");
    let table: toml::Table = toml::from_str(&f.config("")).unwrap();
    for (name, why) in [("grace-hopper", "power1_oem_info"), ("jetson", "INA3221")] {
        let mut plugin = meta.init_instance(name, table.clone()).unwrap();
        let err = probe_start(plugin.as_mut()).unwrap_err();
        let u = Unavailable::find(&err).unwrap();
        assert!(u.reason.contains(why), "{name}: {}", u.reason);
        assert!(u.reason.contains("coretemp"), "{name}: {}", u.reason);
    }
    // The public Alumet's jetson table on a Jetson.
    let f = Fixture::copy("jetson-orin", "jetson-table");
    let table: toml::Table = toml::from_str(&f.config("")).unwrap();
    let mut tester = alumet::test_util::PipelineTester::new();
    tester.any_plugin(Boxed(meta.init_instance("jetson", table).unwrap()));
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("jetson/*"), 1);
    assert!(run.metrics().by_name("hwmon_power").is_none());
    let (_, points) = run.shutdown();
    assert_eq!(points.len(), 9, "3 channels: voltage, current, power");
}

/// A boxed plugin (an instance) as the tester takes it.
struct Boxed(Box<dyn alumet::plugin::AnyPlugin>);

impl alumet::plugin::AnyPlugin for Boxed {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn plugin_name(&self) -> &str {
        self.0.plugin_name()
    }
    fn start(&mut self, alumet: &mut alumet::plugin::Registrar<'_>) -> anyhow::Result<()> {
        self.0.start(alumet)
    }
    fn post_start(&mut self, control: &alumet::pipeline::PluginControl) -> anyhow::Result<()> {
        self.0.post_start(control)
    }
    fn stop(&mut self) -> anyhow::Result<()> {
        self.0.stop()
    }
}
