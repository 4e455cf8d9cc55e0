//! From the series read to what the page shows: power per interval, CPU and memory over
//! time, energy per consumer, and the run's figures.

use std::collections::{BTreeMap, HashMap};

use crate::read::{Data, Group, Key, Series};

/// The RAPL domains that add up to the machine's CPU energy (`pp0` and `pp1` are parts of
/// `package`; `platform` holds the others).
const TOTAL_DOMAINS: [&str; 2] = ["package", "dram"];

/// The states of `kernel_cpu_time` in which the CPU works (the attribution's default).
const BUSY_STATES: [&str; 5] = ["user", "nice", "system", "irq", "softirq"];

const NS_PER_S: f64 = 1e9;
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// One line of a chart: x in seconds since the start of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Its legend.
    pub label: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
}

/// What a bar of the consumers' chart is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// One consumer.
    Consumer,
    /// The consumers after the top N, together.
    Rest,
    /// The idle part (attribution).
    Idle,
    /// A part that could not be attributed, with its reason.
    Unattributed,
}

/// One bar of the consumers' chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Its label.
    pub label: String,
    /// Its energy.
    pub joules: f64,
    /// What it is.
    pub kind: BarKind,
}

/// One figure of the run, computed from the CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What it is.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
}

/// A metric that no chart shows: listed with its sum, so that nothing is silently left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Other {
    /// The metric (and unit suffix).
    pub metric: String,
    /// How many series (resources, consumers, attributes).
    pub series: usize,
    /// Sum of its values (a count over the window for a counter).
    pub sum: f64,
}

/// What the page shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Analysis {
    /// First and last timestamp, nanoseconds since the epoch.
    pub window: (i64, i64),
    /// Power in W per energy series, then the total.
    pub power: Vec<Line>,
    /// Whether the power is estimated (no measured energy in the file).
    pub estimated: bool,
    /// CPU in % of one CPU.
    pub cpu: Vec<Line>,
    /// Memory in MiB.
    pub memory: Vec<Line>,
    /// Energy per consumer (top N, rest), then idle and unattributed.
    pub consumers: Vec<Bar>,
    /// The run's figures.
    pub figures: Vec<Figure>,
    /// The metrics no chart shows.
    pub other: Vec<Other>,
}

/// How an energy series of the machine is shown.
#[derive(Clone, Copy, PartialEq)]
enum Energy {
    /// Measured, part of the total.
    Total,
    /// Measured, part of another series (`pp0`) or of another kind: not in the total.
    Apart,
    /// Estimated from CPU time.
    Estimated,
}

fn energy_kind(key: &Key) -> Option<Energy> {
    let attribution = [
        "idle_energy",
        "unattributed_energy",
        "attribution_imbalance",
    ];
    if key.unit != "J" || attribution.contains(&key.metric.as_str()) {
        return None;
    }
    Some(match key.metric.as_str() {
        "rapl_consumed_energy" => match key.attr("domain") {
            Some(d) if !TOTAL_DOMAINS.contains(&d) => Energy::Apart,
            _ => Energy::Total,
        },
        "nvml_energy_consumption" => Energy::Total,
        m if m.starts_with("estimated") => Energy::Estimated,
        _ => Energy::Apart,
    })
}

/// The legend of an energy series.
pub fn energy_label(key: &Key) -> String {
    let (kind, id) = (&key.resource.0, &key.resource.1);
    match key.metric.as_str() {
        "rapl_consumed_energy" => {
            let domain = key.attr("domain").unwrap_or("?");
            match kind.as_str() {
                "local_machine" => format!("RAPL {domain}"),
                _ => format!("RAPL {domain} {id}"),
            }
        }
        "nvml_energy_consumption" => format!("GPU {id}"),
        metric => {
            let mut label = format!("{metric} {kind}");
            if !id.is_empty() {
                label.push_str(&format!(" {id}"));
            }
            for (k, v) in &key.attrs {
                label.push_str(&format!(" {k}={v}"));
            }
            label
        }
    }
}

/// Analyses what was read; `top` is how many consumers get a bar of their own.
pub fn analyse(data: &Data, top: usize) -> Analysis {
    let window = data.window().unwrap_or((0, 0));
    let mut a = Analysis {
        window,
        ..Analysis::default()
    };
    power(data, &mut a);
    cpu(data, &mut a);
    memory(data, &mut a);
    consumers(data, top, &mut a);
    carbon(data, &mut a);
    others(data, &mut a);
    a
}

/// The x of a timestamp: seconds since the start of the window.
fn x(window: (i64, i64), t: i64) -> f64 {
    (t - window.0) as f64 / NS_PER_S
}

/// Values per second over each interval between two points (the first point has no
/// known interval: it gives none), times `scale`.
pub fn rate(points: &[(i64, f64)], scale: f64) -> Vec<(i64, f64)> {
    let pairs = points.windows(2).filter(|w| w[1].0 > w[0].0);
    let per_second = pairs.map(|w| (w[1].0, w[1].1 / ((w[1].0 - w[0].0) as f64 / NS_PER_S)));
    per_second.map(|(t, v)| (t, v * scale)).collect()
}

/// The sum of several series at each timestamp.
fn sum_by_time<'a>(series: impl IntoIterator<Item = &'a [(i64, f64)]>) -> Vec<(i64, f64)> {
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for points in series {
        for (t, v) in points {
            *sums.entry(*t).or_insert(0.0) += v;
        }
    }
    sums.into_iter().collect()
}

fn line(window: (i64, i64), label: String, points: &[(i64, f64)]) -> Line {
    let points = points.iter().map(|(t, v)| (x(window, *t), *v)).collect();
    Line { label, points }
}

/// Average power of an energy series: the energy of its known intervals over their span.
pub fn average_power(points: &[(i64, f64)]) -> f64 {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return 0.0;
    };
    let span = (last.0 - first.0) as f64 / NS_PER_S;
    if span <= 0.0 {
        return 0.0;
    }
    points[1..].iter().map(|p| p.1).sum::<f64>() / span
}

fn power(data: &Data, a: &mut Analysis) {
    let energy: Vec<(&Series, Energy)> = (data.machine.iter())
        .filter_map(|s| Some((s, energy_kind(&s.key)?)))
        .collect();
    let measured = energy.iter().any(|(_, e)| *e != Energy::Estimated);
    a.estimated = !energy.is_empty() && !measured;
    let in_total = |e: Energy| e == Energy::Total || (!measured && e == Energy::Estimated);
    let mut total_rates = Vec::new();
    let (mut total_j, mut total_w) = (0.0, 0.0);
    for (s, kind) in &energy {
        let mut label = energy_label(&s.key);
        if *kind == Energy::Estimated {
            label.push_str(" (estimated)");
        }
        let rates = rate(&s.points, 1.0);
        let joules: f64 = s.points.iter().map(|p| p.1).sum();
        let watts = average_power(&s.points);
        a.figures
            .push(figure(format!("energy, {label}"), joules, "J"));
        a.figures
            .push(figure(format!("average power, {label}"), watts, "W"));
        a.power.push(line(a.window, label, &rates));
        if in_total(*kind) {
            total_rates.push(rates);
            total_j += joules;
            total_w += watts;
        }
    }
    if total_rates.len() > 1 || (a.estimated && !total_rates.is_empty()) {
        let label = if a.estimated {
            "total (estimated)"
        } else {
            "total"
        };
        let total = sum_by_time(total_rates.iter().map(Vec::as_slice));
        a.power.push(line(a.window, label.to_owned(), &total));
        a.figures
            .push(figure(format!("energy, {label}"), total_j, "J"));
        a.figures
            .push(figure(format!("average power, {label}"), total_w, "W"));
    }
}

fn figure(name: String, value: f64, unit: &'static str) -> Figure {
    Figure { name, value, unit }
}

fn is_machine_cpu(key: &Key) -> bool {
    key.metric == "kernel_cpu_time"
        && key.resource.0 == "local_machine"
        && key
            .attr("cpu_state")
            .is_some_and(|s| BUSY_STATES.contains(&s))
}

fn is_process_cpu(key: &Key) -> bool {
    key.metric == "cpu_time_delta"
        && key
            .attr("kind")
            .is_none_or(|k| k == "user" || k == "system")
}

fn is_process_memory(key: &Key) -> bool {
    key.metric == "memory_usage" && key.attr("kind").is_none_or(|k| k == "resident")
}

fn cpu(data: &Data, a: &mut Analysis) {
    let machine = (data.machine.iter()).filter(|s| is_machine_cpu(&s.key));
    let busy = sum_by_time(machine.map(|s| s.points.as_slice()));
    if !busy.is_empty() {
        // ms of CPU per second: / 1000 CPUs, * 100 %.
        a.cpu.push(line(
            a.window,
            "machine (busy states)".into(),
            &rate(&busy, 0.1),
        ));
        let seconds = busy.iter().map(|p| p.1).sum::<f64>() / 1000.0;
        a.figures.push(figure(
            "CPU time, machine (busy states)".into(),
            seconds,
            "s",
        ));
    }
    let groups = (data.groups.iter()).filter(|g| is_process_cpu(&g.key));
    let processes = sum_by_time(groups.map(|g| g.over_time.as_slice()));
    if !processes.is_empty() {
        a.cpu
            .push(line(a.window, "processes".into(), &rate(&processes, 0.1)));
        let seconds = processes.iter().map(|p| p.1).sum::<f64>() / 1000.0;
        a.figures.push(figure(
            "CPU time, processes (user + system)".into(),
            seconds,
            "s",
        ));
    }
}

fn memory(data: &Data, a: &mut Analysis) {
    let find = |metric: &str| (data.machine.iter()).find(|s| s.key.metric == metric);
    if let (Some(total), Some(available)) = (find("mem_total"), find("mem_available")) {
        let totals: HashMap<i64, f64> = total.points.iter().copied().collect();
        let used: Vec<(i64, f64)> = (available.points.iter())
            .filter_map(|(t, v)| Some((*t, (totals.get(t)? - v) / BYTES_PER_MIB)))
            .collect();
        let peak = used.iter().map(|p| p.1).fold(0.0, f64::max);
        a.memory
            .push(line(a.window, "machine (total - available)".into(), &used));
        a.figures
            .push(figure("peak memory used, machine".into(), peak, "MiB"));
    }
    let groups = (data.groups.iter()).filter(|g| is_process_memory(&g.key));
    let resident = sum_by_time(groups.map(|g| g.over_time.as_slice()));
    if !resident.is_empty() {
        let mib: Vec<(i64, f64)> = resident
            .iter()
            .map(|(t, v)| (*t, v / BYTES_PER_MIB))
            .collect();
        let peak = mib.iter().map(|p| p.1).fold(0.0, f64::max);
        a.memory
            .push(line(a.window, "processes (resident)".into(), &mib));
        a.figures.push(figure(
            "peak resident memory, processes".into(),
            peak,
            "MiB",
        ));
    }
}

fn consumers(data: &Data, top: usize, a: &mut Analysis) {
    let mut per_consumer: HashMap<&str, f64> = HashMap::new();
    let attributed = (data.groups.iter()).filter(|g| g.key.metric == "attributed_energy");
    for g in attributed {
        for (consumer, joules) in &g.totals {
            *per_consumer.entry(consumer.as_str()).or_insert(0.0) += joules;
        }
    }
    let mut ranked: Vec<(&str, f64)> = per_consumer.into_iter().collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
    let total: f64 = ranked.iter().map(|c| c.1).sum();
    let bar = |label: String, joules, kind| Bar {
        label,
        joules,
        kind,
    };
    for (consumer, joules) in ranked.iter().take(top) {
        a.consumers
            .push(bar((*consumer).to_owned(), *joules, BarKind::Consumer));
    }
    if ranked.len() > top {
        let rest: f64 = ranked[top..].iter().map(|c| c.1).sum();
        let label = format!("{} other consumers", ranked.len() - top);
        a.consumers.push(bar(label, rest, BarKind::Rest));
    }
    let sum_of = |metric: &str, reason: Option<&str>| -> f64 {
        let series = (data.machine.iter()).filter(|s| s.key.metric == metric);
        let series = series.filter(|s| reason.is_none_or(|r| s.key.attr("reason") == Some(r)));
        series.flat_map(|s| &s.points).map(|p| p.1).sum()
    };
    let idle = sum_of("idle_energy", None);
    if !ranked.is_empty() || idle > 0.0 {
        a.consumers.push(bar("idle".into(), idle, BarKind::Idle));
        a.figures.push(figure(
            "attributed energy, all consumers".into(),
            total,
            "J",
        ));
        a.figures.push(figure("idle energy".into(), idle, "J"));
    }
    let mut reasons: Vec<&str> = (data.machine.iter())
        .filter(|s| s.key.metric == "unattributed_energy")
        .map(|s| s.key.attr("reason").unwrap_or("unknown"))
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    for reason in reasons {
        let joules = sum_of("unattributed_energy", Some(reason));
        let name = format!("unattributed ({reason})");
        a.consumers
            .push(bar(name.clone(), joules, BarKind::Unattributed));
        a.figures
            .push(figure(format!("{name} energy"), joules, "J"));
    }
}

fn carbon(data: &Data, a: &mut Analysis) {
    let mut per_metric: BTreeMap<String, f64> = BTreeMap::new();
    let machine = (data.machine.iter()).filter(|s| s.key.metric == "carbon_emissions");
    for s in machine {
        let of = s.key.attr("energy_metric").unwrap_or("energy").to_owned();
        *per_metric.entry(of).or_insert(0.0) += s.points.iter().map(|p| p.1).sum::<f64>();
    }
    for (of, grams) in per_metric {
        a.figures
            .push(figure(format!("carbon, {of}"), grams, "g CO2e"));
    }
}

/// Whether a chart or a figure uses the machine's series.
fn machine_used(key: &Key) -> bool {
    let parts = [
        "idle_energy",
        "unattributed_energy",
        "carbon_emissions",
        "mem_total",
        "mem_available",
    ];
    energy_kind(key).is_some() || is_machine_cpu(key) || parts.contains(&key.metric.as_str())
}

fn group_used(g: &Group) -> bool {
    let key = &g.key;
    key.metric == "attributed_energy" || is_process_cpu(key) || is_process_memory(key)
}

fn others(data: &Data, a: &mut Analysis) {
    let mut other: BTreeMap<String, Other> = BTreeMap::new();
    let mut add = |key: &Key, series: usize, sum: f64| {
        let metric = match key.unit.as_str() {
            "" => key.metric.clone(),
            unit => format!("{}_{unit}", key.metric),
        };
        let entry = other.entry(metric.clone()).or_insert(Other {
            metric,
            series: 0,
            sum: 0.0,
        });
        entry.series += series;
        entry.sum += sum;
    };
    for s in data.machine.iter().filter(|s| !machine_used(&s.key)) {
        add(&s.key, 1, s.points.iter().map(|p| p.1).sum());
    }
    for g in data.groups.iter().filter(|g| !group_used(g)) {
        add(&g.key, g.totals.len(), g.totals.iter().map(|c| c.1).sum());
    }
    a.other = other.into_values().collect();
}

#[cfg(test)]
mod tests;
