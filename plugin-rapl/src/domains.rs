//! RAPL domains, and the rules that make each (package, domain) counted exactly once
//! whatever the layout: which counters are duplicates or mirrors to skip, which are parts
//! to sum. The rules are the same for powercap zones and perf_event counters.

use std::fmt;
use std::time::Duration;

use alumet::humantime_serde::re::humantime;
use alumet::prelude::{Attributes, Resource};

/// A RAPL domain: the value of the `domain` attribute.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    /// The whole package (socket): cores, caches, uncore, integrated GPU, controllers.
    Package,
    /// Power plane 0: the cores (powercap `core`, perf `energy-cores`).
    Pp0,
    /// Power plane 1: the uncore, usually the integrated GPU (powercap `uncore`, perf `energy-gpu`).
    Pp1,
    /// The memory attached to the package.
    Dram,
    /// The whole platform (powercap `psys`, perf `energy-psys`): never part of a package.
    Platform,
}

impl Domain {
    /// The attribute value: `package`, `pp0`, `pp1`, `dram` or `platform`.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Package => "package",
            Domain::Pp0 => "pp0",
            Domain::Pp1 => "pp1",
            Domain::Dram => "dram",
            Domain::Platform => "platform",
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one point of `rapl_consumed_energy` describes: a domain of a package.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The package id (`package-N`, or the CPU's `physical_package_id`); 0 for `platform`.
    pub package: u32,
    /// The domain.
    pub domain: Domain,
}

impl Key {
    /// The key of `domain` in `package`.
    pub fn new(package: u32, domain: Domain) -> Self {
        Key { package, domain }
    }

    /// The resource of its points: the package, or the local machine for `platform`.
    pub fn resource(self) -> Resource {
        match self.domain {
            Domain::Platform => Resource::LocalMachine,
            _ => Resource::CpuPackage { id: self.package },
        }
    }

    /// The attribute set of its points (`domain = ...`).
    pub fn attributes(self) -> Attributes {
        Attributes::new([("domain", self.domain.as_str())])
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.domain {
            Domain::Platform => f.write_str("platform"),
            d => write!(f, "package {} {d}", self.package),
        }
    }
}

/// The CPU vendor, which tells whether counters of several dies are parts or mirrors.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// Intel: each die of a multi-die package has its own counters.
    Intel,
    /// AMD (and Hygon): every die mirrors the package's counter.
    Amd,
    /// Not known (no `devices/system/cpu/modalias`, or not x86).
    Unknown,
}

/// A counter found by discovery, before the rules choose which to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// What it measures.
    pub key: Key,
    /// The die within the package (0 when the package has one die).
    pub die: u32,
    /// Whether it is read through MMIO (`intel-rapl-mmio`).
    pub mmio: bool,
    /// How messages name it: the zone directory, or the perf event and CPU.
    pub label: String,
}

/// Which candidates to read, and why the others are not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Indices of the candidates to read. Several kept candidates with the same key are the
    /// dies of one package: their energies are summed into one point.
    pub kept: Vec<usize>,
    /// One line per skipped candidate, saying what it duplicates.
    pub skipped: Vec<String>,
}

/// Chooses the counters to read so that nothing is counted twice:
///
/// - an `intel-rapl-mmio` zone is skipped when an MSR zone has the same key (the MMIO
///   interface reads the same package counter);
/// - only one `platform` (psys) counter is read, and it is never part of a package;
/// - counters with the same key from several dies: on AMD, or when the vendor is unknown
///   and the layout has only package and core domains (AMD's), the dies mirror one
///   socket-wide counter: the first is read, the others skipped. On Intel each die has its
///   own counter: all are read and summed. Two counters of the same die are duplicates.
///
/// Candidates are considered in the given order: the first of duplicates wins.
pub fn select(candidates: &[Candidate], vendor: Vendor) -> Selection {
    let amd_like = is_amd_like(candidates, vendor);
    let mut selection = Selection::default();
    for (i, c) in candidates.iter().enumerate() {
        match duplicate_of(candidates, &selection.kept, c, amd_like) {
            Some(reason) => selection.skipped.push(format!("{}: {reason}", c.label)),
            None => selection.kept.push(i),
        }
    }
    selection
}

fn is_amd_like(candidates: &[Candidate], vendor: Vendor) -> bool {
    match vendor {
        Vendor::Amd => true,
        Vendor::Intel => false,
        Vendor::Unknown => candidates
            .iter()
            .all(|c| matches!(c.key.domain, Domain::Package | Domain::Pp0)),
    }
}

/// Why `c` duplicates a counter already kept or a better one, if it does.
fn duplicate_of(
    all: &[Candidate],
    kept: &[usize],
    c: &Candidate,
    amd_like: bool,
) -> Option<String> {
    if c.mmio && all.iter().any(|o| !o.mmio && o.key == c.key) {
        return Some(format!(
            "skipped, {} is read through the MSR zone already (intel-rapl-mmio duplicate)",
            c.key
        ));
    }
    let kept = kept.iter().map(|&k| &all[k]);
    if c.key.domain == Domain::Platform {
        return kept
            .filter(|k| k.key.domain == Domain::Platform)
            .map(|k| format!("skipped, a second platform counter ({} is read)", k.label))
            .next();
    }
    let same = kept.filter(|k| k.key == c.key).collect::<Vec<_>>();
    let first = same.first()?;
    if amd_like {
        Some(format!(
            "skipped, mirrors {} (the dies of an AMD package share one counter)",
            first.label
        ))
    } else if same.iter().any(|k| k.die == c.die) {
        Some(format!("skipped, duplicate of {}", first.label))
    } else {
        None
    }
}

/// The default power assumed for a package whose zone does not give its TDP
/// (`constraint_0_max_power_uw`): 500 W, above the TDP of current server CPUs, so that the
/// wrap-around warning errs on the side of warning.
pub const DEFAULT_TDP_UW: u64 = 500_000_000;

/// How long a counter of range `max_energy_range_uj` takes to wrap at `power_uw`
/// ([`Duration::MAX`] when that does not fit a `Duration`).
pub fn wrap_time(max_energy_range_uj: u64, power_uw: u64) -> Duration {
    let power_uw = power_uw.max(1);
    // µJ / µW = seconds; in f64 to keep the fraction. u64::MAX µJ at 1 µW is just above
    // what a Duration holds.
    Duration::try_from_secs_f64(max_energy_range_uj as f64 / power_uw as f64)
        .unwrap_or(Duration::MAX)
}

/// A counter that wraps, as the wrap-around check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapInfo {
    /// How messages name it.
    pub label: String,
    /// Its `max_energy_range_uj`.
    pub max_energy_range_uj: u64,
    /// The TDP of its package (`constraint_0_max_power_uw`), if known.
    pub tdp_uw: Option<u64>,
}

/// A warning if `poll_interval` is longer than the time the fastest-wrapping counter takes
/// to wrap at its package's TDP ([`DEFAULT_TDP_UW`] when unknown): a counter that wraps
/// twice between two readings loses a whole range of energy, undetectably.
pub fn wrap_warning(poll_interval: Duration, counters: &[WrapInfo]) -> Option<String> {
    let (info, tdp, time) = counters
        .iter()
        .map(|c| {
            let tdp = c.tdp_uw.filter(|&p| p > 0).unwrap_or(DEFAULT_TDP_UW);
            (c, tdp, wrap_time(c.max_energy_range_uj, tdp))
        })
        .min_by_key(|(_, _, time)| *time)?;
    (poll_interval > time).then(|| {
        let known = if info.tdp_uw.is_some_and(|p| p > 0) {
            "its TDP"
        } else {
            "an assumed"
        };
        format!(
            "poll_interval ({}) is longer than the {} that {} takes to wrap around at {known} {} W: \
             energy is lost when it wraps twice between two readings; set poll_interval below {}",
            humantime::format_duration(poll_interval),
            humantime::format_duration(round_secs(time)),
            info.label,
            tdp / 1_000_000,
            humantime::format_duration(round_secs(time / 2)),
        )
    })
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}

#[cfg(test)]
mod tests;
