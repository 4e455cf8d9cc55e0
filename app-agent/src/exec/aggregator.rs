//! The summary's aggregator: sums the points of each run's time window (energy per
//! metric and resource, per-process CPU time, peak memory).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use alumet::measurement::{MeasurementBuffer, MeasurementPoint, ResourceConsumer, Timestamp};
use alumet::metrics::MetricRegistry;
use alumet::pipeline::{ElementError, TransformContext};

/// Energy, CPU and memory seen in the points of one window (one run).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Window {
    /// Joules per `metric resource consumer attributes` label.
    pub energy: BTreeMap<String, f64>,
    /// Grams of CO2e per label of the energy they were computed from.
    pub carbon: BTreeMap<String, f64>,
    /// perf_event counts per event name (` (machine)` for the whole machine's), with the
    /// smallest share of time the counter ran (multiplexing).
    pub perf: BTreeMap<String, (f64, f64)>,
    /// Per-process CPU time from procfs (`cpu_time_delta`), in ms, by `kind`.
    pub cpu_ms: BTreeMap<String, f64>,
    /// Largest per-process resident memory from procfs (or memory of the watched cgroup),
    /// in bytes.
    pub max_resident: f64,
    /// The CPU time and memory are a cgroup's (`watch --cgroup`), not processes'.
    pub of_cgroup: bool,
}

/// One run's time range and what fell in it.
struct Slot {
    since: Timestamp,
    /// `None` while the run goes on.
    until: Option<Timestamp>,
    window: Window,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
}

/// Watches every flushed buffer (as the last transform) and sums each point into the run
/// whose time range holds its timestamp: points that arrive late (a transform that waits
/// for a slower source, the pipeline's final flush) still count for their run, so read
/// the windows after the pipeline has shut down. Cheap to clone: clones share the state.
#[derive(Clone, Default)]
pub struct Aggregator(Arc<Mutex<State>>);

impl Aggregator {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a run: points measured after `since` count for it.
    pub fn open(&self, since: Timestamp) {
        self.lock().slots.push(Slot {
            since,
            until: None,
            window: Window::default(),
        });
    }

    /// Ends the current run: points measured after `until` do not count for it.
    pub fn close(&self, until: Timestamp) {
        if let Some(slot) = self.lock().slots.last_mut() {
            slot.until.get_or_insert(until);
        }
    }

    /// What each run saw, in order; call it once the pipeline is shut down.
    pub fn windows(&self) -> Vec<Window> {
        let mut state = self.lock();
        std::mem::take(&mut state.slots)
            .into_iter()
            .map(|s| s.window)
            .collect()
    }

    /// The transform: it only reads.
    pub fn transform(
        &self,
    ) -> impl FnMut(&mut MeasurementBuffer, &TransformContext) -> Result<(), ElementError> + Send + 'static
    {
        let this = self.clone();
        move |buffer, ctx| {
            let mut state = this.lock();
            for p in buffer.iter() {
                let t = p.timestamp;
                let slot = state
                    .slots
                    .iter_mut()
                    .rev()
                    .find(|s| s.since < t && s.until.is_none_or(|u| t <= u));
                if let Some(slot) = slot {
                    add(&mut slot.window, p, ctx.metrics());
                }
            }
            Ok(())
        }
    }
}

fn add(w: &mut Window, p: &MeasurementPoint, metrics: &MetricRegistry) {
    let Some(metric) = metrics.get(p.metric) else {
        return;
    };
    let value = p.value.as_f64();
    if metric.name == "attribution_imbalance" {
        // A check of the attribution (0 up to rounding), not energy used.
    } else if let Some(event) = metric
        .description
        .strip_prefix("perf_event ")
        .and_then(|d| d.split_once(" since"))
        .map(|(name, _)| name)
        .filter(|_| metric.name.starts_with("perf_"))
    {
        let name = match p.resource {
            alumet::measurement::Resource::CpuCore { .. } => format!("{event} (machine)"),
            _ => event.to_owned(),
        };
        let ratio = match p.attributes.get("running_ratio") {
            Some(alumet::measurement::AttributeValue::F64(r)) => *r,
            _ => 1.0,
        };
        let entry = w.perf.entry(name).or_insert((0.0, 1.0));
        entry.0 += value;
        entry.1 = entry.1.min(ratio);
    } else if metric.name == "carbon_emissions" {
        // `carbon_emissions of METRIC RESOURCE [k=v ...] (SOURCE)`.
        let text = |k: &str| p.attributes.get(k).map(|v| v.to_string());
        let energy = text("energy_metric").unwrap_or_else(|| "?".into());
        let mut label = label_of(p, &format!("carbon_emissions of {energy}"), true);
        for key in ["energy_metric", "intensity_source"] {
            if let Some(v) = text(key) {
                label = label.replace(&format!(" {key}={v}"), "");
            }
        }
        if let Some(source) = text("intensity_source") {
            let _ = write!(label, " ({source})");
        }
        *w.carbon.entry(label).or_default() += value;
    } else if let Some(factor) = metric.unit.joules() {
        // In exec and watch modes only the measured process tree (or the watched cgroup)
        // has per-consumer figures, so the energy attributed to consumers is the command's
        // (or the cgroup's): one line, whatever the pids.
        let label = if metric.name == "attributed_energy" {
            let whose = match p.consumer {
                ResourceConsumer::ControlGroup { .. } => "attributed_energy (the cgroup)",
                _ => "attributed_energy (the command)",
            };
            label_of(p, whose, false)
        } else if metric.name == "estimated_energy" {
            // A model's figure, on a line of its own that says so.
            let model = p.attributes.get("model").map(|m| m.to_string());
            let model = model.as_deref().unwrap_or("?");
            format!("estimated_energy, estimated (model {model}) CPU")
        } else {
            label_of(p, &metric.name, true)
        };
        *w.energy.entry(label).or_default() += value * factor;
    } else if metric.name == "cpu_time_delta" {
        w.of_cgroup |= matches!(p.consumer, ResourceConsumer::ControlGroup { .. });
        let kind = p
            .attributes
            .get("kind")
            .map_or_else(|| "total".to_owned(), |k| k.to_string());
        *w.cpu_ms.entry(kind).or_default() += value;
    } else if metric.name == "memory_usage"
        && (matches!(p.consumer, ResourceConsumer::ControlGroup { .. })
            || p.attributes
                .get("kind")
                .is_some_and(|k| k.to_string() == "resident"))
    {
        w.max_resident = w.max_resident.max(value);
    }
}

/// `metric resource_kind[/id] [consumer] [k=v ...]`.
fn label_of(p: &MeasurementPoint, name: &str, with_consumer: bool) -> String {
    let mut s = format!("{name} {}", p.resource.kind());
    let id = p.resource.id().to_string();
    if !id.is_empty() {
        let _ = write!(s, "/{id}");
    }
    if with_consumer && p.consumer.kind() != "local_machine" {
        let _ = write!(s, " {}/{}", p.consumer.kind(), p.consumer.id());
    }
    for (k, v) in p.attributes.iter() {
        let _ = write!(s, " {k}={v}");
    }
    s
}
