//! Hardware sensors through the Linux hwmon interface: the plugin `hwmon` reads every chip
//! under `{sysfs_root}/class/hwmon` (CPU, GPU and NVMe temperatures, fans, power meters,
//! amdgpu's power and energy, Grace's power telemetry, Jetson's INA3221 rails), one
//! source per chip, with no vendor library (see `README.md`).
//!
//! ```toml
//! [plugins.hwmon]
//! poll_interval = "1s"
//! flush_interval = "5s"
//! sysfs_root = "/sys"
//! include = []
//! exclude = []
//! ```
//!
//! Under the table names of the public Alumet's plugins, `[plugins.grace-hopper]` and
//! `[plugins.jetson]`, it reads only those chips, under those plugins' metric names.

mod config;
pub mod discover;
pub mod metrics;
pub mod parse;
pub mod processes;
pub mod reader;
pub mod source;

use alumet::prelude::*;

pub use config::Config;
use discover::{Chip, Discovery};
pub use metrics::{Flavor, Metrics};
pub use processes::ProcessList;
pub use source::ChipSource;

/// The `hwmon` plugin: one source per chip, `hwmon/NAME-hwmonN`.
pub struct HwmonPlugin {
    config: Config,
}

impl Plugin for HwmonPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "hwmon"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(HwmonPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let c = &self.config;
        let flavor = Flavor::of(alumet.plugin_name());
        let sysfs_root = alumet.host_paths().sys_root_or(&c.sysfs_root);
        let class_dir = c.class_dir(&sysfs_root);
        let chips = find_chips(c, &class_dir, flavor)?;
        let proc_root = alumet.host_paths().proc_root_or(&c.procfs_root);
        let amdgpu = chips.iter().any(|chip| chip.name == "amdgpu");
        let per_process = c.amdgpu_processes && amdgpu && engine_times_told(&proc_root);
        let metrics = Metrics::create(alumet, flavor, per_process)?;
        let trigger = Trigger::from_config("", c.poll_interval, c.flush_interval)?;
        // A listing a quarter of a poll old is as good as a new one.
        let max_age = c.poll_interval / 4;
        let processes =
            per_process.then(|| ProcessList::new(alumet.consumers(), &proc_root, max_age));
        let mut added = Vec::new();
        for chip in &chips {
            if let Some(source) = ChipSource::new(chip, &metrics, flavor, processes.as_ref()) {
                alumet.add_source(
                    &format!("{}-{}", chip.name, chip.hwmon),
                    source,
                    trigger.clone(),
                )?;
                added.push(format!(
                    "{} ({}, {} sensors)",
                    chip.name,
                    chip.hwmon,
                    chip.sensors.len()
                ));
            }
        }
        if added.is_empty() {
            return Err(Unavailable::new(
                format!(
                    "no chip under {} has a sensor that {} reports",
                    class_dir.display(),
                    alumet.plugin_name()
                ),
                "check `include` and `exclude`, or disable the plugin",
            )
            .into());
        }
        log::info!("{}: reading {}", alumet.plugin_name(), added.join(", "));
        Ok(())
    }
}

/// Whether the kernel under `proc_root` tells each DRM client's engine time in its fdinfo
/// (Linux 5.19 and later): read from `sys/kernel/osrelease`; assumed when unreadable.
fn engine_times_told(proc_root: &std::path::Path) -> bool {
    let Ok(release) = std::fs::read_to_string(proc_root.join("sys/kernel/osrelease")) else {
        return true;
    };
    let mut parts = release.trim().split(['.', '-']);
    let mut number = || parts.next().and_then(|p| p.parse::<u32>().ok());
    let told = match (number(), number()) {
        (Some(major), Some(minor)) => (major, minor) >= (5, 19),
        _ => true,
    };
    if !told {
        log::info!(
            "hwmon: kernel {} does not tell the processes' amdgpu engine time (Linux 5.19 and later do): the AMD GPUs' energy is not split over processes, the attribution reports it as unattributed (no_usage_data)",
            release.trim()
        );
    }
    told
}

/// The chips that `config` and `flavor` select under `class_dir`, or why there are none.
fn find_chips(
    config: &Config,
    class_dir: &std::path::Path,
    flavor: Flavor,
) -> anyhow::Result<Vec<Chip>> {
    let Discovery {
        mut chips,
        mut ignored,
    } = match discover::discover(class_dir, |n| config.wants(n)) {
        Ok(found) => found,
        Err(e) => {
            return Err(Unavailable::new(
                format!("{} cannot be read ({e}): this kernel exposes no hwmon sensors here (a virtual machine, or a container without the host's /sys)", class_dir.display()),
                "run on a machine with hardware sensors (load their drivers: `sensors-detect`), mount the host's /sys and set sys_root (or sysfs_root), or disable the plugin (`enable = false`)",
            )
            .into());
        }
    };
    for line in &ignored {
        log::debug!("hwmon: {line}");
    }
    chips.retain(|chip| {
        let keep = match flavor {
            Flavor::Hwmon => true,
            Flavor::GraceHopper => chip.socket.is_some(),
            Flavor::Jetson => chip.name == "ina3221",
        };
        if !keep {
            ignored.push(format!("{}: {}", chip.dir.display(), chip.name));
        }
        keep
    });
    if chips.is_empty() {
        let what = match flavor {
            Flavor::Hwmon => "no hwmon chip with a sensor matches `include` and `exclude`",
            Flavor::GraceHopper => "no hwmon chip has Grace's `power1_oem_info` (not a Grace machine, or its power telemetry is off)",
            Flavor::Jetson => "no INA3221 hwmon chip (not a Jetson board, or an old kernel whose ina3221x driver is not hwmon)",
        };
        let found = if ignored.is_empty() {
            "nothing".to_owned()
        } else {
            ignored.join("; ")
        };
        return Err(Unavailable::new(
            format!("{what} under {} (found: {found})", class_dir.display()),
            "load the sensors' drivers (`sensors-detect`), check `include` and `exclude`, or disable the plugin (`enable = false`)",
        )
        .into());
    }
    Ok(chips)
}
