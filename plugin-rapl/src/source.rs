//! The source: reads every counter at each poll and pushes the energy of each (package,
//! domain) since the previous poll. Counters are reached through [`EnergyReader`] (a
//! powercap file or a perf_event file descriptor), so the arithmetic and the error handling
//! are the same, and testable, whatever the interface.

use std::io;
use std::time::{Duration, Instant};

use alumet::pipeline::ElementError;
use alumet::prelude::*;

use crate::domains::{Domain, Key};

/// A (package, domain) whose counters have not moved for this long does not count: real
/// counters are updated about every millisecond, in units of 15 to 61 µJ, so even an idle
/// core's few milliwatts move them many times in this span. A hypervisor may expose RAPL
/// without counting (a KVM guest's `power` PMU whose `energy-psys` always reads 0), and
/// firmware may leave a domain unmeasured. Short enough that `exec` of a command of a
/// tenth of a second gets the warning.
pub const STILL_AFTER: Duration = Duration::from_millis(100);

/// Reads the raw value of one energy counter. Implementations keep their file open and
/// read into a buffer they own: no allocation per read.
pub trait EnergyReader: Send {
    /// The current raw value: µJ for powercap, counts for perf_event.
    fn read(&mut self) -> io::Result<u64>;

    /// How messages name the counter: its file, or its perf event and CPU.
    fn label(&self) -> &str;
}

/// How raw differences become joules.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Scale {
    /// Microjoules (powercap `energy_uj`): divided by 10^6, exact to the µJ.
    MicroJoules,
    /// Counts times the event's `.scale`, in joules per count (perf_event).
    JoulesPerCount(f64),
}

impl Scale {
    /// `raw` units in joules.
    pub fn joules(self, raw: u64) -> f64 {
        match self {
            // A division by the exactly representable 1e6 is correctly rounded; a
            // multiplication by the inexact 1e-6 is not.
            Scale::MicroJoules => raw as f64 / 1e6,
            Scale::JoulesPerCount(scale) => raw as f64 * scale,
        }
    }
}

/// One hardware counter and its previous reading.
pub struct Counter {
    reader: Box<dyn EnergyReader>,
    diff: CounterDiff,
    failing: bool,
    out_of_range: bool,
}

impl Counter {
    /// A counter read by `reader`; `diff` knows its maximum (powercap's
    /// `max_energy_range_uj`) or that it does not wrap (perf_event's 64-bit counts).
    pub fn new(reader: Box<dyn EnergyReader>, diff: CounterDiff) -> Self {
        Counter {
            reader,
            diff,
            failing: false,
            out_of_range: false,
        }
    }

    /// How messages name it.
    pub fn label(&self) -> &str {
        self.reader.label()
    }

    /// Reads the counter; returns the raw increase since the previous reading, or `None`
    /// when there is none (first reading, failed read, value out of range, reset). Each
    /// problem is logged once, when it starts, and once more when it ends.
    pub fn update(&mut self) -> Option<u64> {
        let value = match self.reader.read() {
            Ok(value) => value,
            Err(e) => {
                if !self.failing {
                    log::warn!(
                        "reading {}: {e}; its energy is not reported until it can be read again",
                        self.reader.label()
                    );
                    self.failing = true;
                }
                // What it reads next (a zone that came back, say) is a new baseline.
                self.diff.forget();
                return None;
            }
        };
        if self.failing {
            log::info!("{} can be read again", self.reader.label());
            self.failing = false;
        }
        let update = self.diff.update(value);
        self.check(update)
    }

    fn check(&mut self, update: CounterUpdate) -> Option<u64> {
        let label = self.reader.label();
        match update {
            CounterUpdate::OutOfRange { value, max } => {
                if !self.out_of_range {
                    log::warn!(
                        "{label} read {value}, above its maximum {max} (max_energy_range_uj): \
                         skipped, the previous reading stays the baseline (reported once)"
                    );
                    self.out_of_range = true;
                }
                return None;
            }
            _ if self.out_of_range => {
                log::info!("{label} is back within its range");
                self.out_of_range = false;
            }
            _ => {}
        }
        match update {
            CounterUpdate::Difference(d) => Some(d),
            CounterUpdate::Reset { previous, current } => {
                log::warn!(
                    "{label} went back from {previous} to {current}: the counter was reset, \
                     the energy of this interval is not reported"
                );
                None
            }
            CounterUpdate::First | CounterUpdate::OutOfRange { .. } => None,
        }
    }
}

/// The counters of one (package, domain): one, or one per die where a package has several
/// dies with their own counters. Their energies are summed into one point.
pub struct Group {
    key: Key,
    scale: Scale,
    counters: Vec<Counter>,
    resource: Resource,
    attributes: Attributes,
    still: Still,
}

/// Whether a group's counters have been seen to move.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Still {
    /// Not read yet.
    Unread,
    /// Not moved since this instant: its first reading, or the last one that gave no
    /// difference (a failed read, a reset, a new baseline).
    Since(Instant),
    /// Moved, or warned about: nothing more to watch.
    Done,
}

impl Group {
    /// The counters of `key`, whose raw units are `scale`.
    pub fn new(key: Key, scale: Scale, counters: Vec<Counter>) -> Self {
        Group {
            key,
            scale,
            counters,
            resource: key.resource(),
            attributes: key.attributes(),
            still: Still::Unread,
        }
    }

    /// What it measures.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Its counters.
    pub fn counters(&self) -> &[Counter] {
        &self.counters
    }

    /// Reads every counter; returns the joules since the previous reading, or `None` when
    /// one of the counters has no difference this time (a partial sum would be wrong).
    pub fn update(&mut self) -> Option<f64> {
        self.update_at(Instant::now())
    }

    /// [`Group::update`], at `now`: warns once when the counters have not moved in
    /// [`STILL_AFTER`] of readings without a gap (see there): a failed read, a reset or a
    /// new baseline starts the span again. `pp1`, an integrated GPU's domain, may rightly
    /// stay at 0 while the GPU sleeps, and is not watched. Several dies are judged by their
    /// sum: one stuck die beside a moving one is not told.
    pub(crate) fn update_at(&mut self, now: Instant) -> Option<f64> {
        let mut total = Some(0u64);
        for counter in &mut self.counters {
            // Every counter is read, even after a failure, to keep its baseline current.
            let diff = counter.update();
            total = total.zip(diff).map(|(t, d)| t.saturating_add(d));
        }
        match (self.still, total) {
            (Still::Unread, _) if self.key.domain == Domain::Pp1 => self.still = Still::Done,
            (Still::Unread, _) => self.still = Still::Since(now),
            (Still::Since(_), Some(raw)) if raw > 0 => self.still = Still::Done,
            (Still::Since(_), None) => self.still = Still::Since(now),
            (Still::Since(first), Some(_)) if now.duration_since(first) >= STILL_AFTER => {
                self.still = Still::Done;
                let label = self.counters.first().map_or("", |c| c.label());
                log::warn!(
                    "rapl: {} ({label}) has not moved in {:.1?}: this machine exposes the \
                     counter without updating it (a virtual machine's stub, or a domain its \
                     firmware does not measure), so its energy reads 0 J (logged once); on a \
                     virtual machine, disable the plugin (`enable = false` in \
                     [plugins.rapl]); on bare metal, `no_perf_events = true` reads powercap \
                     instead, which leaves out the domains that do not count",
                    self.key,
                    now.duration_since(first)
                );
            }
            _ => {}
        }
        total.map(|raw| self.scale.joules(raw))
    }
}

/// The source `rapl/energy`: one point of `rapl_consumed_energy` per (package, domain) and
/// poll, from the second poll on.
pub struct RaplSource {
    metric: MetricId<f64>,
    groups: Vec<Group>,
}

impl RaplSource {
    /// A source that reads `groups` and pushes their energy as `metric`.
    pub fn new(metric: MetricId<f64>, groups: Vec<Group>) -> Self {
        RaplSource { metric, groups }
    }
}

impl Source for RaplSource {
    fn poll(
        &mut self,
        acc: &mut MeasurementAccumulator,
        timestamp: Timestamp,
    ) -> Result<(), ElementError> {
        for group in &mut self.groups {
            if let Some(joules) = group.update() {
                let point = MeasurementPoint::new(
                    timestamp,
                    self.metric,
                    group.resource.clone(),
                    ResourceConsumer::LocalMachine,
                    joules,
                );
                acc.push(point.with_attributes(group.attributes.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
