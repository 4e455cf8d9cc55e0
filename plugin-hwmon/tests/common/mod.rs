//! Helpers of the integration tests: a writable copy of a fixture sysfs tree, the plugin
//! in a real pipeline polled on demand, and its points as (metric, chip, label) -> value.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses part of it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alumet::measurement::AttributeValue;
use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TempDir, TestRun};
use plugin_hwmon::HwmonPlugin;

/// A copy of `tests/fixtures/<case>` (removed on drop), to change files in.
pub struct Fixture {
    dir: TempDir,
}

impl Fixture {
    pub fn copy(case: &str, test: &str) -> Fixture {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(case);
        Fixture {
            dir: TempDir::copy_of(&src, &format!("hwmon-{test}")),
        }
    }

    /// The sysfs root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A file under `class/hwmon/`: `hwmon("hwmon1/temp1_input")`.
    pub fn hwmon(&self, rel: &str) -> PathBuf {
        self.root().join("class/hwmon").join(rel)
    }

    /// Writes `text` (and a newline) to a file under `class/hwmon/`, in place: the plugin
    /// keeps its files open.
    pub fn set(&self, rel: &str, text: &str) {
        std::fs::write(self.hwmon(rel), format!("{text}\n")).unwrap();
    }

    /// The `[plugins.hwmon]` table for this tree, polled only on demand, with `extra` keys.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "poll_interval = \"1h\"\nflush_interval = \"1h\"\nsysfs_root = {:?}\n{extra}",
            self.root().display().to_string()
        )
    }
}

/// The plugin on `config`, started.
pub fn start(config: &str) -> TestRun {
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<HwmonPlugin>(config).unwrap();
    tester.start().unwrap()
}

/// Polls every chip once; returns how many sources were polled.
pub fn poll(run: &TestRun) -> usize {
    run.trigger("hwmon/*")
}

pub fn text(p: &MeasurementPoint, key: &str) -> String {
    match p.attributes.get(key) {
        Some(AttributeValue::Str(s)) => s.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Metric names by id (taken before the run is shut down).
pub type Names = std::collections::HashMap<alumet::metrics::RawMetricId, String>;

pub fn names(run: &TestRun) -> Names {
    run.metrics()
        .iter()
        .map(|(id, m)| (id, m.name.clone()))
        .collect()
}

/// The unit of a metric.
pub fn unit(run: &TestRun, name: &str) -> String {
    run.metrics().by_name(name).unwrap().1.unit.to_string()
}

/// A point's key: metric name, chip, label, and `method` for energy.
pub type Key = (String, String, String);

/// The points of each poll, keyed by (metric, chip, label[/method]): the n-th poll of
/// every source (one per chip) is the n-th distinct timestamp of its points.
pub fn per_poll(names: &Names, points: &[MeasurementPoint]) -> Vec<BTreeMap<Key, f64>> {
    let source = |p: &MeasurementPoint| (text(p, "chip"), p.resource.id().to_string());
    let mut stamps: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for p in points {
        let v = stamps.entry(source(p)).or_default();
        v.push(p.timestamp.unix_nanos());
        v.sort();
        v.dedup();
    }
    let mut polls: Vec<BTreeMap<Key, f64>> = Vec::new();
    for p in points {
        let n = stamps[&source(p)]
            .binary_search(&p.timestamp.unix_nanos())
            .unwrap();
        if polls.len() <= n {
            polls.resize(n + 1, BTreeMap::new());
        }
        let name = names[&p.metric].clone();
        let mut label = text(p, "label");
        if let Some(AttributeValue::Str(m)) = p.attributes.get("method") {
            label = format!("{label}/{m}");
        }
        let key = (name, text(p, "chip"), label);
        let previous = polls[n].insert(key.clone(), p.value.as_f64());
        assert!(previous.is_none(), "{key:?} twice in one poll");
    }
    polls
}

pub fn key(metric: &str, chip: &str, label: &str) -> Key {
    (metric.into(), chip.into(), label.into())
}

/// The resource of the first point of `chip`.
pub fn resource_of(points: &[MeasurementPoint], chip: &str) -> (String, String) {
    let p = points.iter().find(|p| text(p, "chip") == chip).unwrap();
    (p.resource.kind().to_string(), p.resource.id().to_string())
}
