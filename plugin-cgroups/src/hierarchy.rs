//! The cgroup hierarchies under the root, found from the tree itself (so that a fixture
//! tree goes through the same code as `/sys/fs/cgroup`), and the files of one cgroup.
//!
//! - v2 (unified): the root holds `cgroup.controllers`.
//! - v1: each directory of the root that holds `cgroup.procs` is a hierarchy (`cpuacct`,
//!   `memory`, `blkio`, or `cpu,cpuacct` with its symbolic links, which are skipped).
//! - hybrid: v1 hierarchies beside a v2 one (`unified`, holding `cgroup.controllers`),
//!   empty of controllers or not. A cgroup's path is the same in every hierarchy; it is
//!   measured once, reading each figure where the kernel gives it (v1 first, then v2).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The version of a hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// cgroup v1: one hierarchy per controller (or group of controllers).
    V1,
    /// cgroup v2: one unified hierarchy.
    V2,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its root directory.
    pub dir: PathBuf,
    /// v1 or v2.
    pub version: Version,
}

fn is_file(p: &Path) -> bool {
    p.is_file()
}

/// The hierarchies under `root`, v1 ones first (in name order), then v2.
pub fn detect(root: &Path) -> io::Result<Vec<Hierarchy>> {
    if is_file(&root.join("cgroup.controllers")) {
        return Ok(vec![Hierarchy {
            dir: root.to_owned(),
            version: Version::V2,
        }]);
    }
    if is_file(&root.join("cgroup.procs")) {
        // The root is itself one v1 hierarchy (cgroup_root = /sys/fs/cgroup/cpuacct).
        return Ok(vec![Hierarchy {
            dir: root.to_owned(),
            version: Version::V1,
        }]);
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        // `cpu` and `cpuacct` are often links to `cpu,cpuacct`: each hierarchy once.
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for dir in dirs {
        if is_file(&dir.join("cgroup.controllers")) {
            v2.push(Hierarchy {
                dir,
                version: Version::V2,
            });
        } else if is_file(&dir.join("cgroup.procs"))
            && V1_FILES.iter().any(|f| is_file(&dir.join(f)))
        {
            v1.push(Hierarchy {
                dir,
                version: Version::V1,
            });
        }
    }
    v1.extend(v2);
    Ok(v1)
}

/// The v1 files that make a hierarchy worth walking (the named `systemd` one has none).
const V1_FILES: [&str; 3] = [
    "cpuacct.usage",
    "memory.usage_in_bytes",
    "blkio.throttle.io_service_bytes",
];

/// The cgroups of `hierarchy` down to `max_depth` (the root, `/`, is depth 0), as paths
/// from its root (`/system.slice/nginx.service`), passed to `found` with their directory.
/// A directory that vanishes while it is listed is skipped; names that are not UTF-8 too.
pub fn walk(hierarchy: &Hierarchy, max_depth: usize, found: &mut dyn FnMut(&str, &Path)) {
    walk_from(hierarchy, "", max_depth, found);
}

/// As [`walk`], from the cgroup at `start` (a path from the hierarchy's root, `""` for the
/// root itself) and below: nothing when it is not a directory of this hierarchy.
pub fn walk_from(
    hierarchy: &Hierarchy,
    start: &str,
    max_depth: usize,
    found: &mut dyn FnMut(&str, &Path),
) {
    let start = start.trim_end_matches('/');
    let dir = hierarchy.dir.join(start.trim_start_matches('/'));
    if !dir.is_dir() {
        return;
    }
    let depth = start.split('/').filter(|s| !s.is_empty()).count();
    if depth > max_depth {
        return;
    }
    let mut stack = vec![(start.to_owned(), dir, depth)];
    while let Some((path, dir, depth)) = stack.pop() {
        let shown = if path.is_empty() { "/" } else { &path };
        found(shown, &dir);
        if depth >= max_depth {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                log::debug!("cgroups: skipping {} (not UTF-8)", entry.path().display());
                continue;
            };
            stack.push((format!("{path}/{name}"), entry.path(), depth + 1));
        }
    }
}

/// How a cgroup's CPU time is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuFiles {
    /// v1: `cpuacct.usage` (ns) and, for the user/system split, `cpuacct.stat`.
    V1 {
        /// `cpuacct.usage`.
        usage: PathBuf,
        /// `cpuacct.stat`, when present.
        stat: Option<PathBuf>,
    },
    /// v2: `cpu.stat` (`usage_usec`, `user_usec`, `system_usec`).
    V2(PathBuf),
}

/// How a cgroup's I/O is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoFile {
    /// v1 `blkio.throttle.io_service_bytes_recursive` (or without `_recursive`).
    V1(PathBuf),
    /// v2 `io.stat`.
    V2(PathBuf),
}

/// Where each figure of one cgroup is read; `None` where no hierarchy gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupFiles {
    /// CPU time.
    pub cpu: Option<CpuFiles>,
    /// `memory.usage_in_bytes` or `memory.current`.
    pub memory: Option<PathBuf>,
    /// `memory.limit_in_bytes` or `memory.max`.
    pub memory_max: Option<PathBuf>,
    /// `memory.stat`, and whether it is v1's.
    pub memory_stat: Option<(bool, PathBuf)>,
    /// I/O bytes.
    pub io: Option<IoFile>,
    /// `cpu.pressure`, `memory.pressure`, `io.pressure`, by the first word of their name.
    pub pressure: Vec<(&'static str, PathBuf)>,
    /// v2 `cgroup.events`: says when the last process of the cgroup exits.
    pub events: Option<PathBuf>,
}

impl CgroupFiles {
    /// Whether there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none() && self.io.is_none() && self.pressure.is_empty()
    }
}

/// The files of the cgroup at `path` (`/a/b`, `/` for the root), over every hierarchy.
pub fn locate(hierarchies: &[Hierarchy], path: &str) -> CgroupFiles {
    let mut f = CgroupFiles::default();
    let rel = path.trim_start_matches('/');
    let existing = |dir: &Path, name: &str| Some(dir.join(name)).filter(|p| is_file(p));
    for h in hierarchies {
        let dir = h.dir.join(rel);
        if !dir.is_dir() {
            continue;
        }
        match h.version {
            Version::V1 => {
                if f.cpu.is_none() {
                    f.cpu = existing(&dir, "cpuacct.usage").map(|usage| CpuFiles::V1 {
                        usage,
                        stat: existing(&dir, "cpuacct.stat"),
                    });
                }
                if f.memory.is_none() {
                    f.memory = existing(&dir, "memory.usage_in_bytes");
                    f.memory_max = f
                        .memory
                        .as_ref()
                        .and(existing(&dir, "memory.limit_in_bytes"));
                    let stat = existing(&dir, "memory.stat").map(|p| (true, p));
                    f.memory_stat = f.memory.as_ref().and(stat);
                }
                if f.io.is_none() {
                    f.io = existing(&dir, "blkio.throttle.io_service_bytes_recursive")
                        .or_else(|| existing(&dir, "blkio.throttle.io_service_bytes"))
                        .map(IoFile::V1);
                }
            }
            Version::V2 => {
                if f.events.is_none() {
                    f.events = existing(&dir, "cgroup.events");
                }
                if f.cpu.is_none() {
                    f.cpu = existing(&dir, "cpu.stat").map(CpuFiles::V2);
                }
                if f.memory.is_none() {
                    f.memory = existing(&dir, "memory.current");
                    f.memory_max = f.memory.as_ref().and(existing(&dir, "memory.max"));
                    let stat = existing(&dir, "memory.stat").map(|p| (false, p));
                    f.memory_stat = f.memory.as_ref().and(stat);
                }
                if f.io.is_none() {
                    f.io = existing(&dir, "io.stat").map(IoFile::V2);
                }
            }
        }
        for res in ["cpu", "memory", "io"] {
            if f.pressure.iter().all(|(r, _)| *r != res) {
                if let Some(p) = existing(&dir, &format!("{res}.pressure")) {
                    f.pressure.push((res, p));
                }
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(case: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(case)
    }

    fn names(h: &[Hierarchy]) -> Vec<(String, Version)> {
        let name = |h: &Hierarchy| h.dir.file_name().unwrap().to_string_lossy().into_owned();
        h.iter().map(|h| (name(h), h.version)).collect()
    }

    #[test]
    fn v1_hierarchies_once_each_without_links_nor_the_named_systemd_one() {
        let found = detect(&fixture("v1")).unwrap();
        let expected = [
            ("blkio", Version::V1),
            ("cpu,cpuacct", Version::V1),
            ("memory", Version::V1),
        ];
        assert_eq!(names(&found), expected.map(|(n, v)| (n.to_owned(), v)));
    }

    #[test]
    fn hybrid_lists_v1_first_then_the_unified_tree() {
        let found = detect(&fixture("hybrid")).unwrap();
        let expected = [
            ("cpuacct", Version::V1),
            ("memory", Version::V1),
            ("unified", Version::V2),
        ];
        assert_eq!(names(&found), expected.map(|(n, v)| (n.to_owned(), v)));
    }

    #[test]
    fn v2_is_the_root_itself() {
        let found = detect(&fixture("v2")).unwrap();
        assert_eq!(
            found,
            [Hierarchy {
                dir: fixture("v2"),
                version: Version::V2
            }]
        );
    }

    #[test]
    fn locate_reads_cpu_and_memory_from_v1_and_pressure_and_events_from_v2() {
        let root = fixture("hybrid");
        let found = detect(&root).unwrap();
        let f = locate(&found, "/system.slice/nginx.service");
        let dir = |h: &str| root.join(h).join("system.slice/nginx.service");
        assert_eq!(
            f.cpu,
            Some(CpuFiles::V1 {
                usage: dir("cpuacct").join("cpuacct.usage"),
                stat: Some(dir("cpuacct").join("cpuacct.stat")),
            })
        );
        assert_eq!(f.memory, Some(dir("memory").join("memory.usage_in_bytes")));
        let pressure: Vec<&str> = f.pressure.iter().map(|(r, _)| *r).collect();
        assert_eq!(pressure, ["cpu", "memory", "io"]);
        assert!(f
            .pressure
            .iter()
            .all(|(_, p)| p.starts_with(dir("unified"))));
        assert_eq!(f.events, Some(dir("unified").join("cgroup.events")));
        // Only in the v2 tree: CPU time from its cpu.stat.
        let cron = locate(&found, "/system.slice/cron.service");
        assert_eq!(
            cron.cpu,
            Some(CpuFiles::V2(
                root.join("unified/system.slice/cron.service/cpu.stat")
            ))
        );
        assert!(locate(&found, "/nowhere").is_empty());
    }
}
