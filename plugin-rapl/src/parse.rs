//! Pure parsing of the kernel's RAPL files: powercap zone ids and names, perf_event PMU
//! event descriptions, CPU lists and the CPU vendor. No I/O here: everything is unit-tested
//! on strings.

use crate::domains::{Domain, Vendor};

/// Parses a decimal counter as sysfs prints it (`"123456\n"`), without allocating.
/// Surrounding ASCII whitespace is ignored; anything else that is not a digit, an empty
/// value or a value above `u64::MAX` gives `None`.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// The powercap control types that hold RAPL zones.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Control {
    /// `intel-rapl`: the MSR interface (Intel and AMD).
    Msr,
    /// `intel-rapl-mmio`: the same package domains read through MMIO on recent Intel
    /// clients; a duplicate when the MSR zone exists.
    Mmio,
}

/// A powercap zone id, the name of its directory: `intel-rapl:0:1` is the second sub-zone
/// of the first zone of control type `intel-rapl`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneId {
    /// The control type.
    pub control: Control,
    /// The zone's index, then the sub-zone's index if it is one.
    pub indices: Vec<u32>,
}

impl ZoneId {
    /// The id of the parent zone, for a sub-zone.
    pub fn parent(&self) -> Option<ZoneId> {
        (self.indices.len() > 1).then(|| ZoneId {
            control: self.control,
            indices: self.indices[..self.indices.len() - 1].to_vec(),
        })
    }
}

/// Parses a zone directory name (`intel-rapl:0`, `intel-rapl:0:1`, `intel-rapl-mmio:0`);
/// anything else (the control type's own directory, another control type) gives `None`.
pub fn parse_zone_id(dir_name: &str) -> Option<ZoneId> {
    let (control, rest) = dir_name.split_once(':')?;
    let control = match control {
        "intel-rapl" => Control::Msr,
        "intel-rapl-mmio" => Control::Mmio,
        _ => return None,
    };
    let indices = rest
        .split(':')
        .map(|i| i.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    (1..=2)
        .contains(&indices.len())
        .then_some(ZoneId { control, indices })
}

/// What the `name` file of a zone says.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ZoneName {
    /// `package-N`, or `package-N-die-M` on CPUs with several dies per package.
    Package {
        /// The package id N.
        package: u32,
        /// The die M, when the name has one.
        die: Option<u32>,
    },
    /// `psys` (or `psys-N`): the whole platform (SoC and more), Intel clients since Skylake.
    Platform,
    /// `core`, `uncore` or `dram`: a sub-zone of a package.
    Sub(Domain),
}

/// Parses the `name` of a zone; unknown names give `None`.
pub fn parse_zone_name(name: &str) -> Option<ZoneName> {
    let name = name.trim();
    match name {
        "core" => return Some(ZoneName::Sub(Domain::Pp0)),
        "uncore" => return Some(ZoneName::Sub(Domain::Pp1)),
        "dram" => return Some(ZoneName::Sub(Domain::Dram)),
        "psys" => return Some(ZoneName::Platform),
        _ => {}
    }
    if let Some(n) = name.strip_prefix("psys-") {
        return n.parse::<u32>().ok().map(|_| ZoneName::Platform);
    }
    let rest = name.strip_prefix("package-")?;
    let (package, die) = match rest.split_once("-die-") {
        Some((p, d)) => (p.parse().ok()?, Some(d.parse().ok()?)),
        None => (rest.parse().ok()?, None),
    };
    Some(ZoneName::Package { package, die })
}

/// The domain of a perf_event event of the `power` PMU, by its file name under `events/`.
pub fn perf_event_domain(event: &str) -> Option<Domain> {
    Some(match event {
        "energy-pkg" => Domain::Package,
        "energy-cores" => Domain::Pp0,
        "energy-gpu" => Domain::Pp1,
        "energy-ram" => Domain::Dram,
        "energy-psys" => Domain::Platform,
        _ => return None,
    })
}

/// Parses an event description such as `event=0x02` or `event=0x02,umask=1` into
/// `(term, value)` pairs; values are hexadecimal with `0x`, else decimal. A term without a
/// value (a flag) is `1`.
pub fn parse_event_terms(text: &str) -> Option<Vec<(&str, u64)>> {
    text.trim()
        .split(',')
        .map(|term| match term.split_once('=') {
            Some((name, value)) => Some((name.trim(), parse_number(value.trim())?)),
            None if !term.trim().is_empty() => Some((term.trim(), 1)),
            None => None,
        })
        .collect()
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses a PMU `format/<term>` file (`config:0-7`, `config:12`) into the bit range
/// `(low, high)` of `perf_event_attr.config`; other fields (`config1`, ...) give `None`.
pub fn parse_format(text: &str) -> Option<(u32, u32)> {
    let bits = text.trim().strip_prefix("config:")?;
    let (low, high) = match bits.split_once('-') {
        Some((l, h)) => (l.parse().ok()?, h.parse().ok()?),
        None => {
            let bit = bits.parse().ok()?;
            (bit, bit)
        }
    };
    (low <= high && high < 64).then_some((low, high))
}

/// Puts `value` into bits `low..=high` of a config word; `None` if it does not fit, or if
/// the range is not one of a 64-bit word (`low > high`, `high > 63`).
pub fn place_bits(value: u64, (low, high): (u32, u32)) -> Option<u64> {
    if low > high || high >= 64 {
        return None;
    }
    let width = high - low + 1;
    if width < 64 && value >> width != 0 {
        return None;
    }
    Some(value << low)
}

/// Parses an event's `.scale` file: a positive, finite number (joules per count).
pub fn parse_scale(text: &str) -> Option<f64> {
    let scale: f64 = text.trim().parse().ok()?;
    (scale.is_finite() && scale > 0.0).then_some(scale)
}

/// Whether an event's `.unit` file says `Joules`.
pub fn is_joules(text: &str) -> bool {
    text.trim() == "Joules"
}

/// The most CPUs a CPU list may name: far above any kernel's `NR_CPUS` (8192 at most on
/// x86), low enough that a corrupt list (`0-4294967295`) cannot exhaust memory.
pub const MAX_CPU_LIST_LEN: usize = 1 << 16;

/// Parses a kernel CPU list (`0`, `0,36`, `0-3,8`), as in a PMU's `cpumask`; a list of more
/// than [`MAX_CPU_LIST_LEN`] CPUs gives `None`.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || (b - a) as usize >= MAX_CPU_LIST_LEN - cpus.len() {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
        if cpus.len() > MAX_CPU_LIST_LEN {
            return None;
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// The CPU vendor from `/sys/devices/system/cpu/modalias`
/// (`cpu:type:x86,ven0002fam0017mod0031:feature:...`): the kernel's x86 vendor number.
pub fn parse_vendor(modalias: &str) -> Vendor {
    let Some(start) = modalias.find(",ven") else {
        return Vendor::Unknown;
    };
    let digits = modalias.get(start + 4..start + 8).unwrap_or("");
    match u16::from_str_radix(digits, 16) {
        Ok(0) => Vendor::Intel,
        // 2: AMD; 9: Hygon, whose CPUs are AMD Zen.
        Ok(2 | 9) => Vendor::Amd,
        _ => Vendor::Unknown,
    }
}

#[cfg(test)]
mod tests;
