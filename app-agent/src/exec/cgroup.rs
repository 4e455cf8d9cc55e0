//! `watch --cgroup PATH`: the cgroup to measure, identified before anything starts, and
//! the wait for its end (its removal).
//!
//! A cgroup's path is the same in every hierarchy of the host (v2; or the v1 ones and
//! hybrid's `unified`). The watch ends when its directory is gone from every hierarchy
//! where it was found. On v2 (and `unified`), `cgroup.events` says when its last process
//! exits: its counters are final then, and the watch takes a reading at once, before the
//! cgroup can be removed (once removed, its files answer nothing). On v1, which has no such
//! file, the last reading is the last poll before the removal.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use alumet::measurement::ResourceConsumer;
use alumet::pipeline::RunningPipeline;
use plugin_cgroups::hierarchy::{self, Hierarchy};

use crate::cli::UsageError;
use crate::config::ConfigError;

use super::{poll_all, signals, RunError};

/// How often the cgroup's directories and `cgroup.events` are checked.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// A cgroup being watched.
#[derive(Debug, Clone)]
pub struct WatchedCgroup {
    /// Its path from the hierarchies' root (`/system.slice/docker-ID.scope`): the consumer
    /// id of its points.
    pub path: String,
    /// Its directory in each hierarchy that has it.
    dirs: Vec<PathBuf>,
    /// v2 `cgroup.events`, where there is one.
    events: Option<PathBuf>,
}

impl WatchedCgroup {
    /// Finds the cgroup `arg` (a path from the cgroup root, or an absolute path under
    /// `root`, in any of its hierarchies) under `root`.
    pub fn open(arg: &Path, root: &Path) -> anyhow::Result<WatchedCgroup> {
        let hierarchies = match hierarchy::detect(root) {
            Ok(h) if !h.is_empty() => h,
            Ok(_) | Err(_) => {
                return Err(ConfigError(format!(
                    "watch --cgroup: no cgroup hierarchy under {}: set the general cgroup_root to where the cgroup tree is mounted",
                    root.display()
                ))
                .into())
            }
        };
        let path = cgroup_path(arg, root, &hierarchies)?;
        let rel = path.trim_start_matches('/');
        let dirs: Vec<PathBuf> = (hierarchies.iter())
            .map(|h| h.dir.join(rel))
            .filter(|d| d.is_dir())
            .collect();
        if dirs.is_empty() {
            return Err(UsageError(format!(
                "watch --cgroup {}: there is no cgroup {path} under {}: give the path of an existing cgroup from the cgroup root (list them with `systemd-cgls`, or `find {} -name cgroup.procs`)",
                arg.display(),
                root.display(),
                root.display()
            ))
            .into());
        }
        let events = hierarchy::locate(&hierarchies, &path).events;
        Ok(WatchedCgroup { path, dirs, events })
    }

    /// The consumer of its points.
    pub fn consumer(&self) -> ResourceConsumer {
        ResourceConsumer::ControlGroup {
            path: self.path.as_str().into(),
        }
    }

    /// Waits until the cgroup is removed (returns `true`), or until `stop` says so
    /// (`false`). Each time `cgroup.events` says that no process is left, calls `emptied`
    /// (to read the final counters before the cgroup can be removed).
    pub fn wait(&self, stop: impl Fn() -> bool, emptied: impl Fn()) -> io::Result<bool> {
        let mut was_populated = true;
        loop {
            if self.dirs.iter().all(|d| !d.exists()) {
                return Ok(true);
            }
            if let Some(events) = &self.events {
                match std::fs::read(events) {
                    Ok(text) => {
                        let populated = plugin_cgroups::parse::parse_populated(&text);
                        if populated == Some(false) && was_populated {
                            emptied();
                        }
                        was_populated = populated != Some(false);
                    }
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            if stop() {
                return Ok(false);
            }
            std::thread::sleep(CHECK_EVERY);
        }
    }
}

fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}

/// Waits for the removal of the watched cgroup (or a signal), taking a reading whenever
/// its last process exits, then the final readings; returns the wall time.
pub(super) fn wait(
    pipeline: &RunningPipeline,
    cg: &WatchedCgroup,
    start: Instant,
) -> Result<Duration, RunError> {
    let control = pipeline.control();
    let release = crate::memory::ReleaseOnce::after(start);
    let removed = cg
        .wait(
            || {
                release.check();
                signals::received().is_some()
            },
            || {
                poll_all(&control);
                log::info!(
                    "no process left in cgroup {}: its final counters are read; the watch ends when it is removed",
                    cg.path
                );
            },
        )
        .map_err(|e| RunError::Other(anyhow::anyhow!("watching cgroup {}: {e}", cg.path)))?;
    let wall = start.elapsed();
    poll_all(&control);
    match (removed, signals::received()) {
        (true, _) => log::info!("cgroup {} was removed: end of the watch", cg.path),
        (false, Some(signal)) => log::info!(
            "signal {signal} received: stopped watching cgroup {}, which is still there",
            cg.path
        ),
        (false, None) => {}
    }
    Ok(wall)
}

/// The cgroup path (`/a/b`) that `arg` names: under `root` (and then under one of its
/// hierarchies, when it names one), or from the root.
fn cgroup_path(arg: &Path, root: &Path, hierarchies: &[Hierarchy]) -> anyhow::Result<String> {
    let bad = |why: &str| {
        UsageError(format!(
            "watch --cgroup {}: {why}: give the cgroup's path from the cgroup root (`system.slice/nginx.service`), or its directory under {}",
            arg.display(),
            root.display()
        ))
    };
    let rel = match arg.strip_prefix(root) {
        Ok(under_root) => (hierarchies.iter())
            .filter(|h| h.dir != root)
            .find_map(|h| arg.strip_prefix(&h.dir).ok())
            .unwrap_or(under_root),
        Err(_) => arg,
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| bad("the path is not valid UTF-8"))?,
            ),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad("`..` is not allowed").into())
            }
        }
    }
    if parts.is_empty() {
        return Err(bad(
            "the root cgroup is never removed (measure the whole machine with `alumet-agent run`)",
        )
        .into());
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_cgroups::hierarchy::Version;

    fn hybrid(root: &Path) -> Vec<Hierarchy> {
        ["cpuacct", "memory", "unified"]
            .iter()
            .map(|d| Hierarchy {
                dir: root.join(d),
                version: if *d == "unified" {
                    Version::V2
                } else {
                    Version::V1
                },
            })
            .collect()
    }

    #[test]
    fn paths_from_the_root_or_under_it_name_the_same_cgroup() {
        let root = Path::new("/sys/fs/cgroup");
        let h = hybrid(root);
        let path = |arg: &str| cgroup_path(Path::new(arg), root, &h).map_err(|e| e.to_string());
        for arg in [
            "system.slice/a.service",
            "/system.slice/a.service/",
            "/sys/fs/cgroup/system.slice/a.service",
            "/sys/fs/cgroup/unified/system.slice/a.service",
            "/sys/fs/cgroup/cpuacct/./system.slice/a.service",
        ] {
            assert_eq!(path(arg).as_deref(), Ok("/system.slice/a.service"), "{arg}");
        }
        let v2 = [Hierarchy {
            dir: root.to_owned(),
            version: Version::V2,
        }];
        let p = cgroup_path(Path::new("/sys/fs/cgroup/x/y"), root, &v2).unwrap();
        assert_eq!(p, "/x/y");
    }

    #[test]
    fn the_root_and_parent_components_are_usage_errors() {
        let root = Path::new("/sys/fs/cgroup");
        let h = hybrid(root);
        for arg in ["/", "/sys/fs/cgroup", "/sys/fs/cgroup/unified", "a/../../b"] {
            let e = cgroup_path(Path::new(arg), root, &h).expect_err(arg);
            assert!(e.downcast_ref::<UsageError>().is_some(), "{arg}: {e}");
        }
    }

    #[test]
    fn a_missing_cgroup_names_the_path_and_how_to_list_them() {
        let root = alumet::test_util::TempDir::new("watch-cgroup-missing");
        std::fs::write(root.path().join("cgroup.controllers"), "cpu\n").unwrap();
        std::fs::create_dir(root.path().join("present")).unwrap();
        let e = WatchedCgroup::open(Path::new("absent/x"), root.path()).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("no cgroup /absent/x under") && text.contains("systemd-cgls"),
            "{text}"
        );
        let found = WatchedCgroup::open(Path::new("present"), root.path()).unwrap();
        assert_eq!(found.path, "/present");
    }
}
