//! The `[plugins.hwmon]` table.

use alumet::plugin::host_paths;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alumet::pipeline::Trigger;
use serde::{Deserialize, Serialize};

/// Config of the `hwmon` plugin: the `[plugins.hwmon]` table (also `[plugins.grace-hopper]`
/// and `[plugins.jetson]`, the public Alumet agent's names). Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How often to read the sensors.
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the measurements to the outputs.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Where sysfs is mounted: `/sys` takes the general `sys_root` (itself `/sys` by default); another path (a container's `/host/sys`) overrides it for this plugin.
    pub sysfs_root: PathBuf,
    /// The hwmon class directory itself (the key of the public Alumet's grace-hopper plugin, `/sys/class/hwmon`); empty: `class/hwmon` under `sysfs_root`.
    pub root_path: PathBuf,
    /// Chips to read, by the name the kernel gives them (`coretemp`, `k10temp`, `amdgpu`, `nvme`, `ina3221`, `power_meter`...); empty: every chip.
    pub include: Vec<String>,
    /// Chips not to read, by name (applied after `include`).
    pub exclude: Vec<String>,
    /// Report each process's use of amdgpu GPUs (`amdgpu_process_utilization`, from `/proc/PID/fdinfo`), which the attribution plugin splits their energy by; scanning every process's file descriptors at each poll costs more than the sensors.
    pub amdgpu_processes: bool,
    /// Where procfs is mounted, for amdgpu's per-process figures: `/proc` takes the general `proc_root`; another path overrides it for this plugin.
    pub procfs_root: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(5),
            sysfs_root: PathBuf::from(host_paths::SYS_ROOT),
            root_path: PathBuf::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            amdgpu_processes: true,
            procfs_root: PathBuf::from(host_paths::PROC_ROOT),
        }
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        Trigger::from_config("", self.poll_interval, self.flush_interval)?;
        host_paths::ensure_root("sysfs_root", &self.sysfs_root, host_paths::SYS_ROOT)?;
        for (key, names) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Some(bad) = names
                .iter()
                .find(|n| n.trim().is_empty() || n.contains('/'))
            {
                anyhow::bail!("{key} holds {bad:?}: give chip names, such as \"coretemp\"");
            }
        }
        Ok(())
    }

    /// The hwmon class directory, `sysfs_root` being the one to use.
    pub fn class_dir(&self, sysfs_root: &Path) -> PathBuf {
        if self.root_path.as_os_str().is_empty() {
            sysfs_root.join("class/hwmon")
        } else {
            self.root_path.clone()
        }
    }

    /// Whether the chip `name` is read.
    pub fn wants(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|i| i == name))
            && !self.exclude.iter().any(|e| e == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_alumet_keys_parse() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), Config::default());
        // The public Alumet's grace-hopper table.
        let c: Config =
            toml::from_str("poll_interval = \"1s\"\nroot_path = \"/sys/class/hwmon\"").unwrap();
        assert_eq!(c.class_dir(Path::new("/x")), Path::new("/sys/class/hwmon"));
        assert_eq!(
            Config::default().class_dir(Path::new("/x")),
            Path::new("/x/class/hwmon")
        );
        assert!(toml::from_str::<Config>("inclde = []").is_err());
    }

    #[test]
    fn include_and_exclude_select_chips_and_bad_names_are_errors() {
        let c: Config =
            toml::from_str("include = [\"coretemp\", \"nvme\"]\nexclude = [\"nvme\"]").unwrap();
        assert!(c.wants("coretemp") && !c.wants("nvme") && !c.wants("amdgpu"));
        let c: Config = toml::from_str("exclude = [\"nvme\"]").unwrap();
        assert!(c.wants("amdgpu") && !c.wants("nvme"));
        let c: Config = toml::from_str("include = [\"\"]").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("include"));
    }
}
