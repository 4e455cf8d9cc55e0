//! Helpers shared by the integration tests: a writable copy of a fixture sysfs tree, the
//! plugin in a real pipeline polled on demand, its points per poll, and captured logs.
#![allow(dead_code)] // each test file uses part of it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestRun};
use plugin_rapl::RaplPlugin;

/// The max_energy_range_uj of the Intel fixtures' package zones.
pub const INTEL_MAX: u64 = 262_143_328_850;
/// The max_energy_range_uj of the Intel server fixture's dram zones.
pub const DRAM_MAX: u64 = 65_712_999_613;
/// The max_energy_range_uj of the AMD fixture's zones.
pub const AMD_MAX: u64 = 65_532_610_987;

/// A copy of `tests/fixtures/<case>` in a temporary directory (removed on drop), to change
/// counters in.
pub struct Fixture {
    root: PathBuf,
}

impl Fixture {
    pub fn copy(case: &str, test: &str) -> Fixture {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(case);
        let nanos = Timestamp::now().unix_nanos();
        let root =
            std::env::temp_dir().join(format!("plugin-rapl-{test}-{}-{nanos}", std::process::id()));
        alumet::test_util::copy_tree(&src, &root);
        Fixture { root }
    }

    /// The sysfs root to configure.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a zone: `zone("intel-rapl:0/intel-rapl:0:0")`.
    pub fn zone(&self, rel: &str) -> PathBuf {
        self.root
            .join("devices/virtual/powercap/intel-rapl")
            .join(rel)
    }

    /// Sets a zone's `energy_uj`, in place: the plugin keeps the file open.
    pub fn set(&self, rel: &str, uj: u64) {
        std::fs::write(self.zone(rel).join("energy_uj"), format!("{uj}\n")).unwrap();
    }

    /// Writes `text` to a file of the tree.
    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.root.join(rel), text).unwrap();
    }

    /// The `[plugins.rapl]` table for this tree, polled only on demand, powercap only.
    pub fn config(&self) -> String {
        format!(
            "sysfs_root = '{}'\npoll_interval = '1h'\nno_perf_events = true\n",
            self.root.display()
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The plugin with `config` (TOML) in a running pipeline.
pub fn start(config: &str) -> TestRun {
    capture_logs();
    let mut tester = PipelineTester::new();
    tester.plugin_toml::<RaplPlugin>(config).unwrap();
    tester.start().unwrap()
}

/// Polls the plugin once and waits until its points are queued.
pub fn poll(run: &TestRun) {
    assert_eq!(run.trigger("rapl/*"), 1);
}

/// `(resource_kind, resource_id, domain)` of a point.
pub type PointKey = (String, String, String);

/// The points of each poll (grouped by timestamp, in order), by key.
pub fn per_poll(points: &[MeasurementPoint]) -> Vec<BTreeMap<PointKey, f64>> {
    let mut polls: Vec<(Timestamp, BTreeMap<PointKey, f64>)> = Vec::new();
    for p in points {
        let domain = p.attributes.get("domain").unwrap().to_string();
        let key = (
            p.resource.kind().to_owned(),
            p.resource.id().to_string(),
            domain,
        );
        if polls.last().is_none_or(|(t, _)| *t != p.timestamp) {
            polls.push((p.timestamp, BTreeMap::new()));
        }
        let poll = &mut polls.last_mut().unwrap().1;
        assert!(
            poll.insert(key.clone(), p.value.as_f64()).is_none(),
            "{key:?} twice in one poll"
        );
    }
    polls.into_iter().map(|(_, p)| p).collect()
}

/// A key for [`per_poll`]'s maps.
pub fn key(kind: &str, id: &str, domain: &str) -> PointKey {
    (kind.to_owned(), id.to_owned(), domain.to_owned())
}

/// One expected poll: `(kind, id, domain, joules)`.
pub fn expect(entries: &[(&str, &str, &str, f64)]) -> BTreeMap<PointKey, f64> {
    entries
        .iter()
        .map(|&(k, i, d, j)| (key(k, i, d), j))
        .collect()
}

/// Installs the capturing logger (once per test binary).
pub fn capture_logs() {
    alumet::test_util::logs::capture();
}

/// The captured lines (`LEVEL message`) that contain `needle`; tests pass their own
/// fixture path, so that tests running in parallel do not see each other's lines.
pub fn logs_with(needle: &str) -> Vec<String> {
    alumet::test_util::logs::lines_with(needle)
}
