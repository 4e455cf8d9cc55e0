//! Chooses the interface at start: perf_event when it works (cheaper, no wrap-around),
//! else powercap; compares their domains when both work; says why when neither does.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use alumet::prelude::{CounterDiff, Unavailable};

use crate::config::Config;
use crate::domains::{self, Candidate, Key, Vendor, WrapInfo};
use crate::perf::{self, PerfReader};
use crate::powercap::{self, PowercapReader};
use crate::source::{Counter, EnergyReader, Group, Scale};
use crate::{advice, topology};

/// The interface the source reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Interface {
    /// perf_event, the `power` PMU.
    PerfEvent,
    /// powercap sysfs files.
    Powercap,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interface::PerfEvent => "perf_event",
            Interface::Powercap => "powercap",
        })
    }
}

/// The counters to read, open and checked once.
pub struct Opened {
    /// Which interface.
    pub interface: Interface,
    /// One group per (package, domain), in key order.
    pub groups: Vec<Group>,
}

/// What stops an interface: refusals the operator can lift, and everything else.
#[derive(Debug, Default)]
struct Failures {
    denied: Vec<String>,
    other: Vec<String>,
}

impl Failures {
    fn absent(reason: String) -> Self {
        Failures {
            denied: Vec::new(),
            other: vec![reason],
        }
    }

    fn messages(&self) -> impl Iterator<Item = &String> {
        self.denied.iter().chain(&self.other)
    }
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&str> = self.messages().map(String::as_str).collect();
        f.write_str(&all.join("; "))
    }
}

/// An interface whose counters could be read.
struct Found {
    groups: Vec<Group>,
    /// Counters that were discovered but could not be read (the others are used).
    failed: Failures,
    /// Counters skipped as duplicates or mirrors.
    skipped: Vec<String>,
    wrap: Vec<WrapInfo>,
}

impl Found {
    fn keys(&self) -> BTreeSet<Key> {
        self.groups.iter().map(Group::key).collect()
    }
}

/// Opens the counters of the interface to use, reading each once.
///
/// Errors: [`Unavailable`] when the machine has no RAPL interface at all; a plain error
/// listing the refusals and their fixes when RAPL is there but nothing may be read.
pub fn open(config: &Config) -> anyhow::Result<Opened> {
    let root = config.sysfs_root.as_path();
    let vendor = topology::vendor(root);
    let perf = (!config.no_perf_events).then(|| open_perf(root, vendor));
    let powercap = open_powercap(root, vendor);
    match (perf, powercap) {
        (Some(Ok(perf)), powercap) => {
            compare(&perf, &powercap);
            Ok(announce(Interface::PerfEvent, perf))
        }
        (perf, Ok(powercap)) => {
            if let Some(Err(f)) = perf {
                log::info!("perf_event is not used: {f}; reading powercap instead");
            }
            if let Some(warning) = domains::wrap_warning(config.poll_interval, &powercap.wrap) {
                log::warn!("{warning}");
            }
            Ok(announce(Interface::Powercap, powercap))
        }
        (perf, Err(powercap)) => Err(neither(perf.and_then(Result::err), powercap)),
    }
}

fn announce(interface: Interface, found: Found) -> Opened {
    for line in &found.skipped {
        log::info!("{line}");
    }
    for line in found.failed.messages() {
        log::warn!("{line}; this counter is not measured");
    }
    let keys: Vec<String> = found.groups.iter().map(|g| g.key().to_string()).collect();
    log::info!("measuring with {interface}: {}", keys.join(", "));
    Opened {
        interface,
        groups: found.groups,
    }
}

fn compare(perf: &Found, powercap: &Result<Found, Failures>) {
    match powercap {
        Ok(powercap) => log::info!("{}", comparison(&perf.keys(), &powercap.keys())),
        Err(f) => log::info!("powercap is not compared with perf_event: {f}"),
    }
}

/// What differs between the domains of the two interfaces. A difference is normal on some
/// CPUs (AMD's perf_event has no core event), hence logged as information.
fn comparison(perf: &BTreeSet<Key>, powercap: &BTreeSet<Key>) -> String {
    if perf == powercap {
        return "perf_event and powercap report the same domains".into();
    }
    let list = |keys: Vec<&Key>| -> String {
        let names: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        if names.is_empty() {
            "nothing".into()
        } else {
            names.join(", ")
        }
    };
    format!(
        "perf_event and powercap report different domains: only perf_event has {}; only \
         powercap has {}; measuring with perf_event (no_perf_events = true reads powercap)",
        list(perf.difference(powercap).collect()),
        list(powercap.difference(perf).collect())
    )
}

/// The error when no interface works: a refusal is the operator's to fix (an error that
/// stops the agent); anything else means no usable RAPL here ([`Unavailable`]).
fn neither(perf: Option<Failures>, powercap: Failures) -> anyhow::Error {
    let mut all = powercap;
    if let Some(perf) = perf {
        all.denied.extend(perf.denied);
        all.other.extend(perf.other);
    }
    if all.denied.is_empty() {
        Unavailable::new(
            format!("no RAPL interface: {all}"),
            advice::NO_INTERFACE_FIX,
        )
        .into()
    } else {
        anyhow::anyhow!("no RAPL counter may be read: {all}")
    }
}

fn open_perf(root: &Path, vendor: Vendor) -> Result<Found, Failures> {
    let dir = perf::pmu_dir(root);
    let pmu = match perf::discover(root) {
        Ok(Some(pmu)) if !pmu.events.is_empty() => pmu,
        Ok(Some(_)) => {
            return Err(Failures::absent(format!(
                "{}: no energy event",
                dir.display()
            )))
        }
        Ok(None) => {
            return Err(Failures::absent(format!(
                "no perf_event power PMU at {}",
                dir.display()
            )))
        }
        Err(e) => return Err(Failures::absent(format!("{e:#}"))),
    };
    let cpus = topology::cpus(root, &pmu.cpus);
    let all = pmu.candidates(&cpus);
    let candidates: Vec<Candidate> = all.iter().map(|c| c.0.clone()).collect();
    let selection = domains::select(&candidates, vendor);
    let mut counters = Vec::new();
    let (mut failed, mut denied) = (Failures::default(), Denied::default());
    for &i in &selection.kept {
        let (candidate, cpu, event) = &all[i];
        let label = candidate.label.clone();
        match PerfReader::open(pmu.pmu_type, event.config, *cpu, label).and_then(checked) {
            Ok(reader) => {
                let counter = Counter::new(Box::new(reader), CounterDiff::without_wrap());
                counters.push((candidate.key, Scale::JoulesPerCount(event.scale), counter));
            }
            Err(e) if advice::is_denied(&e) => denied.push(candidate.label.clone(), e),
            Err(e) => failed.other.push(advice::perf(&candidate.label, &e)),
        }
    }
    if let Some((labels, e)) = denied.take() {
        let paranoid = advice::perf_event_paranoid();
        failed
            .denied
            .push(advice::perf_denied(&labels, &e, paranoid));
    }
    let mut skipped = pmu.ignored;
    skipped.extend(selection.skipped);
    found(counters, failed, skipped, Vec::new())
}

fn open_powercap(root: &Path, vendor: Vendor) -> Result<Found, Failures> {
    let discovery = powercap::discover(root);
    if discovery.zones.is_empty() {
        let mut reason = format!(
            "no powercap RAPL zone under {} or {}",
            root.join("devices/virtual/powercap").display(),
            root.join("class/powercap").display()
        );
        for line in &discovery.ignored {
            reason.push_str(&format!("; {line}"));
        }
        return Err(Failures::absent(reason));
    }
    let candidates: Vec<Candidate> = discovery.zones.iter().map(|z| z.candidate()).collect();
    let selection = domains::select(&candidates, vendor);
    let mut counters = Vec::new();
    let (mut failed, mut denied, mut wrap) = (Failures::default(), Denied::default(), Vec::new());
    for &i in &selection.kept {
        let zone = &discovery.zones[i];
        let path = zone.energy_path();
        match PowercapReader::open(path.clone()).and_then(checked) {
            Ok(reader) => {
                let diff = CounterDiff::with_max(zone.max_energy_range_uj);
                counters.push((
                    zone.key,
                    Scale::MicroJoules,
                    Counter::new(Box::new(reader), diff),
                ));
                wrap.push(zone.wrap_info());
            }
            Err(e) if advice::is_denied(&e) => denied.push(path.display().to_string(), e),
            Err(e) => failed.other.push(advice::powercap(&path, &e)),
        }
    }
    if let Some((paths, _)) = denied.take() {
        failed.denied.push(advice::powercap_denied(&paths));
    }
    let mut skipped = discovery.ignored;
    skipped.extend(selection.skipped);
    found(counters, failed, skipped, wrap)
}

/// The counters refused for lack of permission, gathered into one message.
#[derive(Default)]
struct Denied {
    subjects: Vec<String>,
    first: Option<std::io::Error>,
}

impl Denied {
    fn push(&mut self, subject: String, e: std::io::Error) {
        self.subjects.push(subject);
        self.first.get_or_insert(e);
    }

    fn take(self) -> Option<(Vec<String>, std::io::Error)> {
        self.first.map(|e| (self.subjects, e))
    }
}

/// Reads a counter once, so that a refusal shows at start, not at the first poll. The
/// value is not kept: the first poll sets the baseline.
fn checked<R: EnergyReader>(mut reader: R) -> std::io::Result<R> {
    reader.read().map(|_| reader)
}

/// Groups the counters by key (the dies of a package together).
fn found(
    mut counters: Vec<(Key, Scale, Counter)>,
    failed: Failures,
    skipped: Vec<String>,
    wrap: Vec<WrapInfo>,
) -> Result<Found, Failures> {
    if counters.is_empty() {
        return Err(failed);
    }
    counters.sort_by_key(|c| c.0);
    let mut groups: Vec<Group> = Vec::new();
    let mut pending: Vec<Counter> = Vec::new();
    let mut iter = counters.into_iter().peekable();
    while let Some((key, scale, counter)) = iter.next() {
        pending.push(counter);
        if iter.peek().is_none_or(|next| next.0 != key) {
            groups.push(Group::new(key, scale, std::mem::take(&mut pending)));
        }
    }
    Ok(Found {
        groups,
        failed,
        skipped,
        wrap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::Domain;

    #[test]
    fn domain_lists_are_compared() {
        let keys = |list: &[(u32, Domain)]| -> BTreeSet<Key> {
            list.iter().map(|&(p, d)| Key::new(p, d)).collect()
        };
        let perf = keys(&[(0, Domain::Package), (1, Domain::Package)]);
        assert_eq!(
            comparison(&perf, &perf.clone()),
            "perf_event and powercap report the same domains"
        );
        let powercap = keys(&[(0, Domain::Package), (0, Domain::Pp0), (1, Domain::Package)]);
        let m = comparison(&perf, &powercap);
        assert!(
            m.contains("only perf_event has nothing; only powercap has package 0 pp0;"),
            "{m}"
        );
    }

    #[test]
    fn a_refusal_stops_the_agent_absent_hardware_does_not() {
        let absent = || Failures::absent("no powercap RAPL zone under /x".into());
        let e = neither(Some(absent()), absent());
        let u = Unavailable::find(&e).expect("unavailable");
        assert!(
            u.reason.starts_with("no RAPL interface: no powercap"),
            "{u:?}"
        );
        assert!(u.fix.contains("sysfs_root"), "{u:?}");

        let denied = Failures {
            denied: vec!["/x/energy_uj: Permission denied (os error 13): ...".into()],
            other: Vec::new(),
        };
        let e = neither(Some(absent()), denied);
        assert!(Unavailable::find(&e).is_none());
        let text = format!("{e:#}");
        assert!(
            text.starts_with("no RAPL counter may be read: /x/energy_uj: Permission denied"),
            "{text}"
        );
    }
}
