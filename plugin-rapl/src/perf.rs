//! The perf_event interface: the `power` PMU under
//! `<sysfs_root>/bus/event_source/devices/power/` describes its events (`events/energy-*`,
//! with `.scale` in joules per count and `.unit`) and the CPUs to open them on (`cpumask`,
//! one CPU per package). A counter is one file descriptor per (CPU, event); the kernel
//! extends the hardware counter to 64 bits, so it does not wrap.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::domains::{Candidate, Domain, Key};
use crate::parse;
use crate::source::EnergyReader;
use crate::topology::Cpu;

/// Where the PMU is described.
pub fn pmu_dir(sysfs_root: &Path) -> PathBuf {
    sysfs_root.join("bus/event_source/devices/power")
}

/// One energy event of the PMU.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfEvent {
    /// Its file name: `energy-pkg`.
    pub name: String,
    /// Its domain.
    pub domain: Domain,
    /// The `config` of `perf_event_attr` (from `event=0x02` and the PMU's `format/`).
    pub config: u64,
    /// Joules per count, from `<name>.scale`.
    pub scale: f64,
}

/// The `power` PMU.
#[derive(Clone, Debug, PartialEq)]
pub struct Pmu {
    /// Its dynamic type number, the `type` of `perf_event_attr`.
    pub pmu_type: u32,
    /// Its energy events, by domain.
    pub events: Vec<PerfEvent>,
    /// The CPUs to open events on, one per package (or die).
    pub cpus: Vec<u32>,
    /// One line per event that could not be used, and why.
    pub ignored: Vec<String>,
}

/// Reads the PMU's description; `Ok(None)` when there is no `power` PMU.
pub fn discover(sysfs_root: &Path) -> anyhow::Result<Option<Pmu>> {
    let dir = pmu_dir(sysfs_root);
    if !dir.is_dir() {
        return Ok(None);
    }
    let type_text = read(&dir.join("type"))?;
    let pmu_type = type_text.trim().parse().with_context(|| {
        format!(
            "{}: not a PMU type: {type_text:?}",
            dir.join("type").display()
        )
    })?;
    let mask_path = dir.join("cpumask");
    let cpus = parse::parse_cpu_list(&read(&mask_path)?)
        .with_context(|| format!("{}: not a CPU list", mask_path.display()))?;
    let mut pmu = Pmu {
        pmu_type,
        events: Vec::new(),
        cpus,
        ignored: Vec::new(),
    };
    let events_dir = dir.join("events");
    let entries = std::fs::read_dir(&events_dir)
        .with_context(|| format!("listing {}", events_dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(domain) = parse::perf_event_domain(&name) else {
            continue;
        };
        match read_event(&dir, &name, domain) {
            Ok(event) => pmu.events.push(event),
            Err(e) => pmu.ignored.push(format!("perf event {name}: {e:#}")),
        }
    }
    pmu.events.sort_by_key(|e| e.domain);
    Ok(Some(pmu))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads `events/<name>`, its `.scale` and `.unit`, and turns its terms into a config
/// through the PMU's `format/<term>` files (`event` alone is `config:0-7` for RAPL; a term
/// without a format file fills the low bits).
fn read_event(pmu_dir: &Path, name: &str, domain: Domain) -> anyhow::Result<PerfEvent> {
    let events = pmu_dir.join("events");
    let text = read(&events.join(name))?;
    let terms = parse::parse_event_terms(&text)
        .with_context(|| format!("not an event description: {:?}", text.trim()))?;
    let mut config = 0u64;
    for (term, value) in terms {
        let format_path = pmu_dir.join("format").join(term);
        let bits = match std::fs::read_to_string(&format_path) {
            Ok(f) => parse::parse_format(&f)
                .with_context(|| format!("{}: unsupported format {f:?}", format_path.display()))?,
            Err(_) => (0, 63),
        };
        config |= parse::place_bits(value, bits)
            .with_context(|| format!("{term}={value:#x} does not fit its format"))?;
    }
    let unit = read(&events.join(format!("{name}.unit")))?;
    anyhow::ensure!(
        parse::is_joules(&unit),
        "unit {:?}, not Joules",
        unit.trim()
    );
    let scale_text = read(&events.join(format!("{name}.scale")))?;
    let scale = parse::parse_scale(&scale_text)
        .with_context(|| format!("not a scale: {:?}", scale_text.trim()))?;
    Ok(PerfEvent {
        name: name.to_owned(),
        domain,
        config,
        scale,
    })
}

impl Pmu {
    /// One candidate counter per (CPU of the cpumask, event), in that order, with the
    /// package and die of each CPU.
    pub fn candidates(&self, cpus: &[Cpu]) -> Vec<(Candidate, u32, &PerfEvent)> {
        let mut out = Vec::new();
        for cpu in cpus {
            for event in &self.events {
                let package = match event.domain {
                    Domain::Platform => 0,
                    _ => cpu.package,
                };
                let candidate = Candidate {
                    key: Key::new(package, event.domain),
                    die: cpu.die,
                    mmio: false,
                    label: format!("perf_event power/{}/ on cpu {}", event.name, cpu.id),
                };
                out.push((candidate, cpu.id, event));
            }
        }
        out
    }
}

/// One open perf_event counter; [`EnergyReader::read`] gives its 64-bit count.
pub struct PerfReader {
    counter: perf_counter::Counter,
    label: String,
}

impl PerfReader {
    /// Opens the event `config` of PMU `pmu_type`, counting on `cpu` for the whole system.
    pub fn open(pmu_type: u32, config: u64, cpu: u32, label: String) -> io::Result<Self> {
        let event = perf_counter::EventSpec {
            type_: pmu_type,
            config,
            user_only: false,
            kernel_only: false,
        };
        let counter = perf_counter::Counter::open_bare_on_cpu(&event, cpu)?;
        Ok(PerfReader { counter, label })
    }
}

impl EnergyReader for PerfReader {
    fn read(&mut self) -> io::Result<u64> {
        self.counter.read_count()
    }

    fn label(&self) -> &str {
        &self.label
    }
}
