//! What sysfs says about the CPUs: their vendor, and the package and die of a CPU.

use std::path::Path;

use crate::domains::Vendor;
use crate::parse;

/// The vendor of the CPUs, from `<sysfs_root>/devices/system/cpu/modalias`.
pub fn vendor(sysfs_root: &Path) -> Vendor {
    std::fs::read_to_string(sysfs_root.join("devices/system/cpu/modalias"))
        .map_or(Vendor::Unknown, |m| parse::parse_vendor(&m))
}

/// A CPU, with where it sits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// Its number.
    pub id: u32,
    /// `topology/physical_package_id`.
    pub package: u32,
    /// `topology/die_id` (0 where the kernel has none).
    pub die: u32,
}

/// The package and die of each CPU in `ids`. A CPU whose `physical_package_id` cannot be
/// read takes its position in `ids` (a PMU's `cpumask` lists one CPU per package, in
/// order); a missing `die_id` is 0.
pub fn cpus(sysfs_root: &Path, ids: &[u32]) -> Vec<Cpu> {
    ids.iter()
        .enumerate()
        .map(|(position, &id)| {
            let dir = sysfs_root.join(format!("devices/system/cpu/cpu{id}/topology"));
            let read = |file: &str| {
                std::fs::read_to_string(dir.join(file))
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok())
            };
            Cpu {
                id,
                package: read("physical_package_id").unwrap_or(position as u32),
                die: read("die_id").unwrap_or(0),
            }
        })
        .collect()
}
