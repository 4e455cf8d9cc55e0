//! The powercap interface: zones under `<sysfs_root>/devices/virtual/powercap/intel-rapl`
//! (and `intel-rapl-mmio`), also reached through the links of `<sysfs_root>/class/powercap`.
//! Each zone has a `name`, a wrapping `energy_uj` counter and its `max_energy_range_uj`.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::domains::{Candidate, Key, WrapInfo};
use crate::parse::{self, Control, ZoneId, ZoneName};
use crate::source::EnergyReader;

/// The directories searched for zones, in order: the devices tree, then the class links
/// (which a container may mount alone).
pub fn search_dirs(sysfs_root: &Path) -> [PathBuf; 3] {
    let devices = sysfs_root.join("devices/virtual/powercap");
    [
        devices.join("intel-rapl"),
        devices.join("intel-rapl-mmio"),
        sysfs_root.join("class/powercap"),
    ]
}

/// One RAPL zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// Its directory name, unique on the machine: `intel-rapl:0:1`.
    pub id: String,
    /// Its directory.
    pub dir: PathBuf,
    /// What it measures.
    pub key: Key,
    /// The die, for `package-N-die-M` zones and their sub-zones; 0 otherwise.
    pub die: u32,
    /// Whether it belongs to `intel-rapl-mmio`.
    pub mmio: bool,
    /// The counter's maximum: it wraps to 0 after it.
    pub max_energy_range_uj: u64,
    /// The TDP of its package or platform zone (`constraint_0_max_power_uw`), if readable.
    pub tdp_uw: Option<u64>,
}

impl Zone {
    /// The path of its counter.
    pub fn energy_path(&self) -> PathBuf {
        self.dir.join("energy_uj")
    }

    /// The zone as a counter for [`crate::domains::select`].
    pub fn candidate(&self) -> Candidate {
        Candidate {
            key: self.key,
            die: self.die,
            mmio: self.mmio,
            label: self.dir.display().to_string(),
        }
    }

    /// The zone as the wrap-around check sees it.
    pub fn wrap_info(&self) -> WrapInfo {
        WrapInfo {
            label: self.dir.display().to_string(),
            max_energy_range_uj: self.max_energy_range_uj,
            tdp_uw: self.tdp_uw,
        }
    }
}

/// What discovery found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovery {
    /// The zones, parents before their sub-zones, MSR before MMIO.
    pub zones: Vec<Zone>,
    /// One line per zone that could not be used, and why.
    pub ignored: Vec<String>,
}

/// Finds the RAPL zones under `sysfs_root`. Files other than `energy_uj` are world-readable:
/// a zone whose `name` or `max_energy_range_uj` cannot be read is ignored, with the reason.
pub fn discover(sysfs_root: &Path) -> Discovery {
    let mut found: Vec<(ZoneId, String, PathBuf)> = Vec::new();
    let [msr, mmio, class] = search_dirs(sysfs_root);
    for dir in [msr, mmio] {
        walk(&dir, 2, &mut found);
    }
    walk(&class, 1, &mut found);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    // The class links point into the devices tree: the first of the same id wins.
    found.dedup_by(|a, b| a.0 == b.0);

    let mut discovery = Discovery::default();
    // Package id, die and TDP of each top-level zone, for its sub-zones.
    let mut parents: HashMap<ZoneId, (u32, u32, Option<u64>)> = HashMap::new();
    for (id, name, dir) in found {
        match resolve(&id, &name, &dir, &parents) {
            Ok(zone) => {
                if id.indices.len() == 1 {
                    parents.insert(id, (zone.key.package, zone.die, zone.tdp_uw));
                }
                discovery.zones.push(zone);
            }
            Err(reason) => discovery
                .ignored
                .push(format!("{}: {reason}", dir.display())),
        }
    }
    discovery
}

/// Collects the zone directories under `dir`, `depth` levels deep (sub-zones are nested).
fn walk(dir: &Path, depth: u32, found: &mut Vec<(ZoneId, String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = parse::parse_zone_id(&name) else {
            continue;
        };
        let path = entry.path();
        if depth > 1 {
            walk(&path, depth - 1, found);
        }
        found.push((id, name, path));
    }
}

/// Reads a zone's `name`, counter range and TDP.
fn resolve(
    id: &ZoneId,
    dir_name: &str,
    dir: &Path,
    parents: &HashMap<ZoneId, (u32, u32, Option<u64>)>,
) -> Result<Zone, String> {
    let name = read_text(&dir.join("name"))?;
    let parsed =
        parse::parse_zone_name(&name).ok_or_else(|| format!("unknown zone name {name:?}"))?;
    let (key, die, tdp_uw) = match (parsed, id.parent()) {
        (ZoneName::Package { package, die }, None) => (
            Key::new(package, crate::domains::Domain::Package),
            die.unwrap_or(0),
            read_u64(&dir.join("constraint_0_max_power_uw")).ok(),
        ),
        (ZoneName::Platform, None) => (
            Key::new(0, crate::domains::Domain::Platform),
            0,
            read_u64(&dir.join("constraint_0_max_power_uw")).ok(),
        ),
        (ZoneName::Sub(domain), Some(parent)) => {
            let &(package, die, tdp) = parents
                .get(&parent)
                .ok_or("its parent zone is missing or unusable")?;
            (Key::new(package, domain), die, tdp)
        }
        _ => return Err(format!("zone {name:?} at an unexpected level")),
    };
    let max_energy_range_uj = read_u64(&dir.join("max_energy_range_uj"))?;
    if max_energy_range_uj == 0 {
        return Err("max_energy_range_uj is 0".into());
    }
    Ok(Zone {
        id: dir_name.to_owned(),
        dir: dir.to_owned(),
        key,
        die,
        mmio: id.control == Control::Mmio,
        max_energy_range_uj,
        tdp_uw,
    })
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn read_u64(path: &Path) -> Result<u64, String> {
    let text = read_text(path)?;
    parse::parse_u64(text.as_bytes())
        .ok_or_else(|| format!("{}: not a counter: {:?}", path.display(), text.trim()))
}

/// Reads one `energy_uj`: the file stays open and is read with `pread` into a buffer of the
/// reader's own, so a read allocates nothing. After a failed read the file is closed and
/// opened again at the next read (a zone that the kernel removed and added back, when the
/// RAPL module is reloaded, has new files).
pub struct PowercapReader {
    path: PathBuf,
    label: String,
    file: Option<File>,
    buf: [u8; 32],
}

impl PowercapReader {
    /// Opens `path` (an `energy_uj` file).
    pub fn open(path: PathBuf) -> io::Result<Self> {
        let file = File::open(&path)?;
        Ok(PowercapReader {
            label: path.display().to_string(),
            path,
            file: Some(file),
            buf: [0; 32],
        })
    }

    fn read_open(&mut self) -> io::Result<u64> {
        let file = match &self.file {
            Some(file) => file,
            None => self.file.insert(File::open(&self.path)?),
        };
        let n = file.read_at(&mut self.buf, 0)?;
        if n == self.buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "value too long"));
        }
        parse::parse_u64(&self.buf[..n]).ok_or_else(|| {
            let text = String::from_utf8_lossy(&self.buf[..n]).trim().to_owned();
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a counter: {text:?}"),
            )
        })
    }
}

impl EnergyReader for PowercapReader {
    fn read(&mut self) -> io::Result<u64> {
        let result = self.read_open();
        if result.is_err() {
            self.file = None;
        }
        result
    }

    fn label(&self) -> &str {
        &self.label
    }
}
