//! The shared state of the exporter and the output that updates it once per buffer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alumet::metrics::MetricRegistry;
use alumet::prelude::*;

use crate::format::{self, FamilyDef, Sample};

struct Series {
    value: f64,
    timestamp_ms: u64,
    seen: Instant,
}

struct Family {
    help: Arc<str>,
    counter: bool,
    series: BTreeMap<Arc<str>, Series>,
}

/// Every series, by family name then label set; what a scrape renders.
pub struct State {
    families: BTreeMap<Arc<str>, Family>,
    stale_after: Duration,
    points_received: u64,
    last_prune: Option<Instant>,
}

/// A family's definition with its name and help shared (cloned into the state cheaply).
type Def = Option<(FamilyDef, Arc<str>, Arc<str>)>;
/// A family in a snapshot: name, help, counter, and (labels, value, timestamp in ms).
type FamilySnapshot = (Arc<str>, Arc<str>, bool, Vec<(Arc<str>, f64, u64)>);

/// A copy of the values, taken under the lock and rendered without it.
pub struct Snapshot {
    families: Vec<FamilySnapshot>,
    /// Points the output received since the start.
    pub points_received: u64,
}

/// One point, ready to apply: computed outside the lock.
struct Update {
    family: usize,
    labels: String,
    value: f64,
    timestamp_ms: u64,
}

/// Locks, recovering from a poisoned lock (a panicking scrape must not stop the output).
pub fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// An empty state whose series are removed after `stale_after` without a point.
    pub fn new(stale_after: Duration) -> Self {
        State {
            families: BTreeMap::new(),
            stale_after,
            points_received: 0,
            last_prune: None,
        }
    }

    fn apply(&mut self, defs: &[Def], updates: &[Update], now: Instant) {
        self.points_received += updates.len() as u64;
        for u in updates {
            let Some(Some((def, name, help))) = defs.get(u.family) else {
                continue;
            };
            let family = self
                .families
                .entry(Arc::clone(name))
                .or_insert_with(|| Family {
                    help: Arc::clone(help),
                    counter: def.counter,
                    series: BTreeMap::new(),
                });
            let value = u.value * def.factor;
            let series = match family.series.get_mut(u.labels.as_str()) {
                Some(s) => s,
                None => {
                    let initial = if family.counter { 0.0 } else { value };
                    let s = Series {
                        value: initial,
                        timestamp_ms: 0,
                        seen: now,
                    };
                    family
                        .series
                        .entry(Arc::from(u.labels.as_str()))
                        .or_insert(s)
                }
            };
            if family.counter {
                // An energy point is the energy used since the previous one: add it up.
                // A negative or non-finite delta would break monotonicity: ignore it.
                if value.is_finite() && value >= 0.0 {
                    series.value += value;
                }
            } else {
                series.value = value;
            }
            series.timestamp_ms = series.timestamp_ms.max(u.timestamp_ms);
            series.seen = now;
        }
        // Without scrapes, vanished series must not pile up either.
        let second = Duration::from_secs(1);
        if self
            .last_prune
            .is_none_or(|t| now.saturating_duration_since(t) >= second)
        {
            self.prune(now);
            self.last_prune = Some(now);
        }
    }

    /// Removes the series not updated for `stale_after` before `now`, and empty families.
    pub fn prune(&mut self, now: Instant) {
        let stale_after = self.stale_after;
        for family in self.families.values_mut() {
            family
                .series
                .retain(|_, s| now.saturating_duration_since(s.seen) < stale_after);
        }
        self.families.retain(|_, f| !f.series.is_empty());
    }

    /// Prunes, then copies every series (label sets are shared, not copied).
    pub fn snapshot(&mut self, now: Instant) -> Snapshot {
        self.prune(now);
        let families = self
            .families
            .iter()
            .map(|(name, f)| {
                let series = f
                    .series
                    .iter()
                    .map(|(l, s)| (Arc::clone(l), s.value, s.timestamp_ms));
                (
                    Arc::clone(name),
                    Arc::clone(&f.help),
                    f.counter,
                    series.collect(),
                )
            })
            .collect();
        Snapshot {
            families,
            points_received: self.points_received,
        }
    }
}

impl Snapshot {
    /// How many series it holds.
    pub fn series(&self) -> usize {
        self.families.iter().map(|f| f.3.len()).sum()
    }

    /// Appends the families in the text format, sorted by name then label set.
    pub fn render(&self, out: &mut String, add_timestamps: bool) {
        for (name, help, counter, series) in &self.families {
            format::write_header(out, name, help, *counter);
            for (labels, value, ms) in series {
                let timestamp_ms = add_timestamps.then_some(*ms);
                format::write_sample(
                    out,
                    name,
                    &Sample {
                        labels,
                        value: *value,
                        timestamp_ms,
                    },
                );
            }
        }
    }
}

/// The output: turns each buffer into updates (names, labels) without the lock, then
/// applies them under one short lock.
pub struct PrometheusOutput {
    state: Arc<Mutex<State>>,
    prefix: String,
    /// The family of each metric (by index), with its name and help shared.
    defs: Vec<Def>,
    updates: Vec<Update>,
}

impl PrometheusOutput {
    /// An output updating `state`, with `prefix` before every metric name.
    pub fn new(state: Arc<Mutex<State>>, prefix: &str) -> Self {
        PrometheusOutput {
            state,
            prefix: prefix.to_owned(),
            defs: Vec::new(),
            updates: Vec::new(),
        }
    }

    fn prepare(&mut self, buffer: &MeasurementBuffer, metrics: &MetricRegistry) {
        self.updates.clear();
        for p in buffer {
            let index = p.metric.index();
            if self.defs.len() <= index {
                self.defs.resize(index + 1, None);
            }
            if self.defs[index].is_none() {
                self.defs[index] = metrics.get(p.metric).map(|m| {
                    let def = format::family(&self.prefix, &m.name, &m.unit, &m.description);
                    let (name, help) = (Arc::from(def.name.as_str()), Arc::from(def.help.as_str()));
                    (def, name, help)
                });
            }
            self.updates.push(Update {
                family: index,
                labels: format::labels(p),
                value: p.value.as_f64(),
                timestamp_ms: p.timestamp.unix_nanos() / 1_000_000,
            });
        }
    }
}

impl Output for PrometheusOutput {
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        self.prepare(buffer, ctx.metrics());
        lock(&self.state).apply(&self.defs, &self.updates, Instant::now());
        Ok(())
    }
}
