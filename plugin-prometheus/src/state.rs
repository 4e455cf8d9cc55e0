//! The shared state of the exporter: every series, when it was last updated and how often
//! it usually is, so that the series of ended processes go away quickly and their number
//! stays bounded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alumet::prelude::*;

use crate::format::FamilyDef;

/// A series is removed after this many of its usual update intervals without a point.
pub const MISSED_INTERVALS: u32 = 3;
/// ... but never sooner than this after its last point (a pipeline that hiccups for a
/// moment must not reset every counter).
pub const MIN_EXPIRY: Duration = Duration::from_secs(1);
/// At most one warning about `max_series` in this span.
const WARN_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct Series {
    pub(crate) value: f64,
    pub(crate) timestamp_ms: u64,
    consumer: ResourceConsumer,
    seen: Instant,
    /// The usual time between two updates (`None` before the second one).
    gap: Option<Duration>,
}

pub(crate) struct Family {
    pub(crate) help: Arc<str>,
    pub(crate) counter: bool,
    pub(crate) series: BTreeMap<Arc<str>, Series>,
    /// When the family last received a point, and its usual gap: the expiry of a series
    /// seen only once (a process that lived less than two polls).
    seen: Instant,
    gap: Option<Duration>,
}

/// A family's definition with its name and help shared (cloned into the state cheaply).
pub(crate) type Def = Option<(FamilyDef, Arc<str>, Arc<str>)>;

/// One point, ready to apply: computed outside the lock.
pub(crate) struct Update {
    pub(crate) family: usize,
    pub(crate) labels: String,
    pub(crate) consumer: ResourceConsumer,
    pub(crate) value: f64,
    pub(crate) timestamp_ms: u64,
}

/// Every series, by family name then label set; what a scrape renders.
pub struct State {
    pub(crate) families: BTreeMap<Arc<str>, Family>,
    stale_after: Duration,
    max_series: usize,
    series: usize,
    pub(crate) points_received: u64,
    /// Points of new series refused because `max_series` series existed.
    pub(crate) series_dropped: u64,
    dropped_since_warning: u64,
    last_warning: Option<Instant>,
    last_prune: Option<Instant>,
    /// Why the HTTP endpoint stopped, once it did: the output then fails.
    pub(crate) endpoint_failure: Option<String>,
}

/// Locks, recovering from a poisoned lock (a panicking scrape must not stop the output).
pub fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The new usual gap after a gap of `g`: a longer gap counts at once, a shorter one only
/// halves the usual gap at most (a single early poll, `trigger now`, must not make a
/// series expire before its next regular point).
fn next_gap(usual: Option<Duration>, g: Duration) -> Option<Duration> {
    if g.is_zero() {
        return usual; // the same buffer, or the same apply
    }
    Some(usual.map_or(g, |u| g.max(u / 2)))
}

impl State {
    /// An empty state: a series is removed after `stale_after` without a point at most,
    /// and at most `max_series` series are kept.
    pub fn new(stale_after: Duration, max_series: usize) -> Self {
        State {
            families: BTreeMap::new(),
            stale_after,
            max_series,
            series: 0,
            points_received: 0,
            series_dropped: 0,
            dropped_since_warning: 0,
            last_warning: None,
            last_prune: None,
            endpoint_failure: None,
        }
    }

    /// How many series it holds.
    pub fn series(&self) -> usize {
        self.series
    }

    pub(crate) fn apply(&mut self, defs: &[Def], updates: &mut [Update], now: Instant) {
        self.points_received += updates.len() as u64;
        for u in updates.iter_mut() {
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
                    seen: now,
                    gap: None,
                });
            family.gap = next_gap(family.gap, now.saturating_duration_since(family.seen));
            family.seen = now;
            let value = u.value * def.factor;
            let series = match family.series.get_mut(u.labels.as_str()) {
                Some(s) => {
                    s.gap = next_gap(s.gap, now.saturating_duration_since(s.seen));
                    s
                }
                None if self.series >= self.max_series => {
                    self.series_dropped += 1;
                    self.dropped_since_warning += 1;
                    continue;
                }
                None => {
                    self.series += 1;
                    let s = Series {
                        value: if family.counter { 0.0 } else { value },
                        timestamp_ms: 0,
                        consumer: u.consumer.clone(),
                        seen: now,
                        gap: None,
                    };
                    let labels = Arc::from(std::mem::take(&mut u.labels));
                    family.series.entry(labels).or_insert(s)
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
        self.warn_dropped(now);
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

    fn warn_dropped(&mut self, now: Instant) {
        if self.dropped_since_warning == 0
            || self
                .last_warning
                .is_some_and(|t| now.saturating_duration_since(t) < WARN_EVERY)
        {
            return;
        }
        log::warn!(
            "prometheus exporter: {} points of new series refused: max_series = {} series exist already (raise max_series, or measure fewer consumers)",
            self.dropped_since_warning,
            self.max_series
        );
        self.dropped_since_warning = 0;
        self.last_warning = Some(now);
    }

    /// Removes the series not updated for `MISSED_INTERVALS` of their usual gap (their
    /// family's for a series seen once), nor for `stale_after`; then empty families.
    pub fn prune(&mut self, now: Instant) {
        let stale_after = self.stale_after;
        let limit = |gap: Option<Duration>| {
            gap.map_or(stale_after, |g| {
                (g * MISSED_INTERVALS).clamp(MIN_EXPIRY, stale_after)
            })
        };
        let mut removed = 0;
        for family in self.families.values_mut() {
            let family_gap = family.gap;
            let before = family.series.len();
            family
                .series
                .retain(|_, s| now.saturating_duration_since(s.seen) < limit(s.gap.or(family_gap)));
            removed += before - family.series.len();
        }
        self.forget(removed);
    }

    /// Removes every series of `consumer` (it ended: no point will come).
    pub fn consumer_ended(&mut self, consumer: &ResourceConsumer) {
        let mut removed = 0;
        for family in self.families.values_mut() {
            let before = family.series.len();
            family.series.retain(|_, s| s.consumer != *consumer);
            removed += before - family.series.len();
        }
        self.forget(removed);
    }

    fn forget(&mut self, removed: usize) {
        self.series -= removed;
        if removed > 0 {
            self.families.retain(|_, f| !f.series.is_empty());
        }
    }
}

#[cfg(test)]
mod tests;
