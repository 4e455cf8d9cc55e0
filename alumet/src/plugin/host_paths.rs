//! [`HostPaths`]: where the kernel's trees of the measured host are mounted, set once in
//! the agent's general config and read by every plugin that reaches them.

use std::path::{Path, PathBuf};

/// Where the measured host's `/proc`, `/sys` and cgroup tree are: the usual places, or
/// where a container mounts the host's (`/host/proc`, `/host/sys`).
///
/// The pipeline hands them to every plugin through
/// [`Registrar::host_paths`](super::Registrar::host_paths). A plugin whose config has
/// its own root key (`procfs_root`, `sysfs_root`) uses that key when it differs from the
/// usual place, and these paths otherwise ([`HostPaths::proc_root_or`],
/// [`HostPaths::sys_root_or`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPaths {
    /// Where procfs is mounted (`/proc`).
    pub proc_root: PathBuf,
    /// Where sysfs is mounted (`/sys`).
    pub sys_root: PathBuf,
    /// Where the cgroup tree is mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
}

/// The usual mount point of procfs.
pub const PROC_ROOT: &str = "/proc";
/// The usual mount point of sysfs.
pub const SYS_ROOT: &str = "/sys";
/// The usual mount point of the cgroup tree.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            proc_root: PathBuf::from(PROC_ROOT),
            sys_root: PathBuf::from(SYS_ROOT),
            cgroup_root: PathBuf::from(CGROUP_ROOT),
        }
    }
}

impl HostPaths {
    /// `own` (a plugin's `procfs_root`) when it is not the usual `/proc`, else
    /// [`HostPaths::proc_root`].
    pub fn proc_root_or(&self, own: &Path) -> PathBuf {
        chosen(own, PROC_ROOT, &self.proc_root)
    }

    /// `own` (a plugin's `sysfs_root`) when it is not the usual `/sys`, else
    /// [`HostPaths::sys_root`].
    pub fn sys_root_or(&self, own: &Path) -> PathBuf {
        chosen(own, SYS_ROOT, &self.sys_root)
    }

    /// `own` (a plugin's cgroup root) when it is not the usual `/sys/fs/cgroup`, else
    /// [`HostPaths::cgroup_root`].
    pub fn cgroup_root_or(&self, own: &Path) -> PathBuf {
        chosen(own, CGROUP_ROOT, &self.cgroup_root)
    }
}

/// Checks a plugin's root key (`procfs_root`, `sysfs_root`, `cgroup_root`): an empty path
/// is an error that names the key, what is mounted there and its usual place (`usual`:
/// [`PROC_ROOT`], [`SYS_ROOT`] or [`CGROUP_ROOT`]).
pub fn ensure_root(key: &str, path: &Path, usual: &str) -> anyhow::Result<()> {
    let what = match usual {
        PROC_ROOT => "procfs",
        SYS_ROOT => "sysfs",
        CGROUP_ROOT => "the cgroup tree",
        _ => "it",
    };
    anyhow::ensure!(
        !path.as_os_str().is_empty(),
        "{key} is empty: give the directory where {what} is mounted (`{usual}`)"
    );
    Ok(())
}

fn chosen(own: &Path, usual: &str, host: &Path) -> PathBuf {
    if own == Path::new(usual) {
        host.to_owned()
    } else {
        own.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_root_is_an_error_naming_the_key_and_the_usual_place() {
        assert!(ensure_root("sysfs_root", Path::new("/host/sys"), SYS_ROOT).is_ok());
        let e = ensure_root("sysfs_root", Path::new(""), SYS_ROOT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sysfs_root is empty: give the directory where sysfs is mounted (`/sys`)"
        );
        let e = ensure_root("cgroup_root", Path::new(""), CGROUP_ROOT).unwrap_err();
        assert!(e
            .to_string()
            .contains("the cgroup tree is mounted (`/sys/fs/cgroup`)"));
    }

    #[test]
    fn a_plugin_key_left_at_the_usual_place_takes_the_host_path() {
        let host = HostPaths {
            proc_root: "/host/proc".into(),
            sys_root: "/host/sys".into(),
            cgroup_root: "/host/sys/fs/cgroup".into(),
        };
        assert_eq!(
            host.proc_root_or(Path::new("/proc")),
            Path::new("/host/proc")
        );
        assert_eq!(host.sys_root_or(Path::new("/sys")), Path::new("/host/sys"));
        assert_eq!(
            host.cgroup_root_or(Path::new("/sys/fs/cgroup")),
            Path::new("/host/sys/fs/cgroup")
        );
    }

    #[test]
    fn a_plugin_key_set_elsewhere_wins() {
        let host = HostPaths {
            proc_root: "/host/proc".into(),
            ..HostPaths::default()
        };
        assert_eq!(
            host.proc_root_or(Path::new("/fixture")),
            Path::new("/fixture")
        );
        assert_eq!(
            HostPaths::default().sys_root_or(Path::new("/sys")),
            Path::new("/sys")
        );
    }
}
