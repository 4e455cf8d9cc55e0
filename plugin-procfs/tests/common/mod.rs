//! Helpers shared by the integration tests: temporary procfs trees that change between
//! polls, and points printed as one line each.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alumet::measurement::{MeasurementPoint, Timestamp};
use alumet::metrics::MetricRegistry;

pub use alumet::test_util::TempDir;

/// A fixture tree, `tests/fixtures/tree/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tree")
        .join(name)
}

/// Makes `dst` hold exactly the files of `src`. Existing files are rewritten in place
/// (same inode, as procfs files that stay open see new content); files and directories
/// absent from `src` are removed (a process that exited).
pub fn sync_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            sync_tree(&entry.path(), &target);
        } else {
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
    for entry in std::fs::read_dir(dst).unwrap() {
        let entry = entry.unwrap();
        if !src.join(entry.file_name()).exists() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
}

/// One line per point: `metric resource consumer attrs = value`.
pub fn line(p: &MeasurementPoint, metrics: &MetricRegistry) -> String {
    let name = &metrics.get(p.metric).unwrap().name;
    format!(
        "{name} {}:{} {}:{} [{}] = {}",
        p.resource.kind(),
        p.resource.id(),
        p.consumer.kind(),
        p.consumer.id(),
        alumet::test_util::attributes_text(p),
        p.value
    )
}

/// The points of each poll (points that share a timestamp), sorted, polls in time order.
/// The points as lines, one sorted list per trigger: `bounds` are times taken between
/// two triggers (each source of a trigger is stamped with the time of its own reading).
pub fn by_trigger(
    points: &[MeasurementPoint],
    metrics: &MetricRegistry,
    bounds: &[Timestamp],
) -> Vec<Vec<String>> {
    let mut polls = vec![Vec::new(); bounds.len() + 1];
    for p in points {
        let i = bounds.iter().filter(|b| **b <= p.timestamp).count();
        polls[i].push(line(p, metrics));
    }
    for lines in &mut polls {
        lines.sort();
    }
    polls
}

pub fn by_poll(points: &[MeasurementPoint], metrics: &MetricRegistry) -> Vec<Vec<String>> {
    let mut polls: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for p in points {
        polls
            .entry(p.timestamp.unix_nanos())
            .or_default()
            .push(line(p, metrics));
    }
    polls
        .into_values()
        .map(|mut lines| {
            lines.sort();
            lines
        })
        .collect()
}

/// Clock ticks to milliseconds on this machine (the fixtures are in ticks).
pub fn ms(ticks: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1000 / hz
}

/// Pages to bytes on this machine.
pub fn pages(n: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    n * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}
