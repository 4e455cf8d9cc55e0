//! Finds the chips under the hwmon class directory and their sensor files. A chip's files
//! are in its `hwmonN` directory, or, for drivers that register the old way (the ACPI
//! power meter of Grace machines), in `hwmonN/device`, as lm-sensors also looks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alumet::measurement::Resource;

use crate::parse::{self, Kind};

/// One sensor value file.
#[derive(Clone, Debug, PartialEq)]
pub struct Sensor {
    /// What it measures.
    pub kind: Kind,
    /// Its index (`3` of `temp3_input`).
    pub index: u32,
    /// The value file.
    pub path: PathBuf,
    /// Its `*_label`, if any (Grace's `power1_oem_info` sensor for its power).
    pub label: Option<String>,
}

/// One hwmon chip.
#[derive(Clone, Debug, PartialEq)]
pub struct Chip {
    /// Its class directory entry, `hwmon3`.
    pub hwmon: String,
    /// The directory of its files.
    pub dir: PathBuf,
    /// Its `name`: `coretemp`, `amdgpu`...
    pub name: String,
    /// The name of its device (`coretemp.0`, `0000:03:00.0`, `1-0040`), if it has one.
    pub device: Option<String>,
    /// Grace's socket, from `power1_oem_info`.
    pub socket: Option<u32>,
    /// Its sensors, by kind and index.
    pub sensors: Vec<Sensor>,
}

impl Chip {
    /// What it measures: the GPU for amdgpu, the CPU package for coretemp and k10temp
    /// where known, else the chip itself (`hwmon_chip`, `name/device`).
    pub fn resource(&self) -> Resource {
        let device = self.device.as_deref().unwrap_or(&self.hwmon);
        if self.name == "amdgpu" && parse::is_pci_address(device) {
            return Resource::Gpu {
                bus_id: device.into(),
            };
        }
        if let Some(id) = parse::cpu_package(&self.name, device) {
            return Resource::CpuPackage { id };
        }
        Resource::custom("hwmon_chip", format!("{}/{device}", self.name))
    }

    /// The sensor of `kind` and `index`, if the chip has it.
    pub fn sensor(&self, kind: Kind, index: u32) -> Option<&Sensor> {
        self.sensors
            .iter()
            .find(|s| s.kind == kind && s.index == index)
    }
}

/// What discovery found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovery {
    /// The chips with at least one sensor, in hwmon order.
    pub chips: Vec<Chip>,
    /// One line per chip left out, and why.
    pub ignored: Vec<String>,
}

/// Finds the chips under `class_dir` whose name `wanted` accepts.
pub fn discover(class_dir: &Path, wanted: impl Fn(&str) -> bool) -> std::io::Result<Discovery> {
    let mut entries: Vec<(u32, String)> = std::fs::read_dir(class_dir)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            Some((name.strip_prefix("hwmon")?.parse().ok()?, name))
        })
        .collect();
    entries.sort();
    let mut found = Discovery::default();
    for (_, hwmon) in entries {
        let path = class_dir.join(&hwmon);
        match chip(&path, hwmon) {
            Ok(chip) if !wanted(&chip.name) => {
                found
                    .ignored
                    .push(format!("{}: {} not selected", path.display(), chip.name))
            }
            Ok(chip) if chip.sensors.is_empty() => found.ignored.push(format!(
                "{}: {} has no sensor this plugin reads",
                path.display(),
                chip.name
            )),
            Ok(chip) => found.chips.push(chip),
            Err(why) => found.ignored.push(format!("{}: {why}", path.display())),
        }
    }
    Ok(found)
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Reads one chip: its name, device, and sensor files.
fn chip(path: &Path, hwmon: String) -> Result<Chip, String> {
    let device_dir = path.join("device");
    let name = read_trimmed(&path.join("name"))
        .or_else(|| read_trimmed(&device_dir.join("name")))
        .ok_or("no readable `name`")?;
    let device = std::fs::canonicalize(&device_dir)
        .ok()
        .and_then(|dir| Some(dir.file_name()?.to_str()?.to_owned()));
    // The chip's own directory wins over its device's for a file in both.
    let mut files: BTreeMap<(Kind, u32), (bool, PathBuf)> = BTreeMap::new();
    for dir in [&device_dir, &path.to_path_buf()] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some((kind, index, average)) = parse::classify(&file) else {
                continue;
            };
            // `power*_input` wins over `power*_average` (amdgpu has either, or both).
            let keep = files
                .get(&(kind, index))
                .is_none_or(|(avg, _)| *avg || !average);
            if keep {
                files.insert((kind, index), (average, entry.path()));
            }
        }
    }
    let socket_info = read_trimmed(&device_dir.join("power1_oem_info"))
        .or_else(|| read_trimmed(&path.join("power1_oem_info")))
        .and_then(|t| parse::parse_oem_info(&t));
    let mut sensors = Vec::new();
    for ((kind, index), (_, file)) in files {
        if !applies(&name, kind, index) || disabled(&file, kind, index) {
            continue;
        }
        let label = match (&socket_info, kind, index) {
            (Some((sensor, _)), Kind::Power, 1) => Some(sensor.clone()),
            _ => {
                let dir = file.parent().unwrap_or(path);
                let label =
                    |prefix: &str| read_trimmed(&dir.join(format!("{prefix}{index}_label")));
                // A current without a label of its own is its channel's (INA3221).
                label(kind.prefix()).or_else(|| (kind == Kind::Curr).then(|| label("in")).flatten())
            }
        };
        sensors.push(Sensor {
            kind,
            index,
            path: file,
            label,
        });
    }
    Ok(Chip {
        hwmon,
        dir: path.to_owned(),
        name,
        device,
        socket: socket_info.map(|(_, s)| s),
        sensors,
    })
}

/// Whether a sensor means what the ABI says: INA3221's `in4..in7` are shunt voltages in
/// µV and `curr4` a sum of the channels, left out.
fn applies(chip: &str, kind: Kind, index: u32) -> bool {
    !(chip == "ina3221" && matches!(kind, Kind::In | Kind::Curr) && index > 3)
}

/// Whether `{prefix}{index}_enable` says 0 (INA3221: a channel's `in*_enable` covers its
/// current too).
fn disabled(file: &Path, kind: Kind, index: u32) -> bool {
    let Some(dir) = file.parent() else {
        return false;
    };
    let prefix = if kind == Kind::Curr && dir.join(format!("in{index}_enable")).exists() {
        "in"
    } else {
        kind.prefix()
    };
    read_trimmed(&dir.join(format!("{prefix}{index}_enable"))).as_deref() == Some("0")
}
