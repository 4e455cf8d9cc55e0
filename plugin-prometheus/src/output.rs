//! The output that updates the shared state once per buffer, and the snapshot a scrape
//! renders.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use alumet::metrics::MetricRegistry;
use alumet::plugin::HostIdentity;
use alumet::prelude::*;

use crate::format::{self, Sample};
use crate::state::{lock, Def, State, Update};

/// A family in a snapshot: name, help, counter, and (labels, value, timestamp in ms).
type FamilySnapshot = (Arc<str>, Arc<str>, bool, Vec<(Arc<str>, f64, u64)>);

/// A copy of the values, taken under the lock and rendered without it.
pub struct Snapshot {
    families: Vec<FamilySnapshot>,
    /// Points the output received since the start.
    pub points_received: u64,
    /// Points of new series refused because `max_series` series existed.
    pub series_dropped: u64,
}

impl State {
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
            series_dropped: self.series_dropped,
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
    /// Labels added to every series (hostname, the agent's `[labels]`).
    identity: HostIdentity,
    /// Appended to each metric name (before `_total`).
    suffix: String,
    /// Whether attributes become labels.
    attributes: bool,
    /// The family of each metric (by index), with its name and help shared.
    defs: Vec<Def>,
    updates: Vec<Update>,
}

impl PrometheusOutput {
    /// An output updating `state`, with `prefix` before every metric name and the labels
    /// of `identity` on every series.
    pub fn new(state: Arc<Mutex<State>>, prefix: &str, identity: &HostIdentity) -> Self {
        PrometheusOutput {
            state,
            prefix: prefix.to_owned(),
            identity: identity.clone(),
            suffix: String::new(),
            attributes: true,
            defs: Vec::new(),
            updates: Vec::new(),
        }
    }

    /// Appends `suffix` to each metric name (before `_total`), and makes attributes labels
    /// or not.
    pub fn with_naming(mut self, suffix: &str, attributes: bool) -> Self {
        self.suffix = suffix.to_owned();
        self.attributes = attributes;
        self
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
                    let mut def = format::family(&self.prefix, &m.name, &m.unit, &m.description);
                    def.name = format::with_suffix(&def.name, &self.suffix, def.counter);
                    let (name, help) = (Arc::from(def.name.as_str()), Arc::from(def.help.as_str()));
                    (def, name, help)
                });
            }
            self.updates.push(Update {
                family: index,
                labels: format::labels(&self.identity, p, self.attributes),
                consumer: p.consumer.clone(),
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
        let mut state = lock(&self.state);
        if let Some(why) = &state.endpoint_failure {
            // Serving nothing is a failure of the run: these points and the later ones
            // are counted as lost, and the agent exits 1.
            return Err(ElementError::fatal(anyhow::anyhow!(
                "the HTTP endpoint stopped: {why}"
            )));
        }
        state.apply(&self.defs, &mut self.updates, Instant::now());
        Ok(())
    }
}
