//! The transform: per series (metric, resource, consumer, attributes), the points of each
//! window aligned to the wall clock become one point per function when the window closes:
//! when a later point of the series comes, when the pipeline's watermark passes its end,
//! or at shutdown (the partial window).

use std::collections::HashMap;

use alumet::metrics::{Metric, MetricRegistry, RawMetricId};
use alumet::pipeline::glob_match;
use alumet::prelude::*;

use crate::config::{Config, Function};

/// What a metric is to the transform.
#[derive(Clone)]
enum Plan {
    Unknown,
    /// Passed through untouched.
    Skip,
    /// Aggregated into these (function, metric written).
    Aggregate(Vec<(Function, RawMetricId)>),
}

/// One window's running figures.
#[derive(Debug, Clone, Copy)]
struct Acc {
    sum: f64,
    min: f64,
    max: f64,
    last: (u64, f64),
    count: u64,
}

impl Acc {
    fn new() -> Self {
        Acc {
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: (0, 0.0),
            count: 0,
        }
    }

    fn add(&mut self, t: u64, v: f64) {
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.count == 0 || t >= self.last.0 {
            self.last = (t, v);
        }
        self.count += 1;
    }

    fn value(&self, f: Function) -> f64 {
        match f {
            Function::Sum => self.sum,
            Function::Mean => self.sum / self.count as f64,
            Function::Min => self.min,
            Function::Max => self.max,
            Function::Last => self.last.1,
            Function::Count => self.count as f64,
        }
    }
}

/// A series and its open window.
struct Series {
    /// A point of the series (its resource, consumer and attributes).
    template: MeasurementPoint,
    /// The open window's index (`None`: none open), and its figures.
    open: Option<(u64, Acc)>,
    /// Windows up to this index (excluded) are closed: a point for them is late.
    closed_before: u64,
}

/// The aggregation.
pub struct Aggregation {
    interval: u64,
    patterns: Vec<String>,
    functions: Vec<Function>,
    keep_raw: bool,
    plans: Vec<Plan>,
    /// The metrics it writes (never aggregated again).
    written: Vec<RawMetricId>,
    series: HashMap<String, Series>,
    /// Points that came after their window was closed: passed through as they are.
    late: u64,
    late_logged: bool,
    out: Vec<MeasurementPoint>,
}

/// The series key: metric, resource, consumer and attributes, as text.
fn key(p: &MeasurementPoint) -> String {
    use std::fmt::Write as _;
    let mut k = format!(
        "{}|{}|{}|{}|{}",
        p.metric.index(),
        p.resource.kind(),
        p.resource.id(),
        p.consumer.kind(),
        p.consumer.id()
    );
    for (name, value) in p.attributes.iter() {
        let _ = write!(k, "|{name}={value}");
    }
    k
}

/// Quantities per interval, which add up over a window.
fn is_per_interval(m: &Metric) -> bool {
    m.unit.joules().is_some()
        || m.unit.seconds().is_some()
        || m.unit.code() == "g"
        || m.name.ends_with("_delta")
}

impl Aggregation {
    /// An aggregation as `config` says.
    pub fn new(config: &Config) -> Self {
        Aggregation {
            interval: u64::try_from(config.interval.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            patterns: config.metrics.clone(),
            functions: config.functions(),
            keep_raw: config.keep_raw,
            plans: Vec::new(),
            written: Vec::new(),
            series: HashMap::new(),
            late: 0,
            late_logged: false,
            out: Vec::new(),
        }
    }

    /// Points that came after their window had closed (passed through unaggregated).
    pub fn late_points(&self) -> u64 {
        self.late
    }

    fn plan(&mut self, id: RawMetricId, metrics: &MetricRegistry) -> Plan {
        let i = id.index();
        if self.plans.len() <= i {
            self.plans.resize(i + 1, Plan::Unknown);
        }
        if let Plan::Unknown = self.plans[i] {
            self.plans[i] = self.make_plan(id, metrics);
        }
        self.plans[i].clone()
    }

    fn make_plan(&mut self, id: RawMetricId, metrics: &MetricRegistry) -> Plan {
        let Some(metric) = metrics.get(id).cloned() else {
            return Plan::Skip;
        };
        let chosen =
            self.patterns.is_empty() || self.patterns.iter().any(|g| glob_match(g, &metric.name));
        // Its own metrics are not aggregated again.
        if !chosen || self.written.contains(&id) {
            return Plan::Skip;
        }
        let functions = if self.functions.is_empty() {
            vec![if is_per_interval(&metric) {
                Function::Sum
            } else {
                Function::Mean
            }]
        } else {
            self.functions.clone()
        };
        let mut plan = Vec::new();
        for f in functions {
            let name = format!("{}_{}", metric.name, f.name());
            let (unit, value_type) = match f {
                Function::Count => (Unit::Unity, alumet::measurement::ValueType::F64),
                _ => (metric.unit.clone(), alumet::measurement::ValueType::F64),
            };
            let written = Metric {
                name: name.clone(),
                unit,
                value_type,
                description: format!(
                    "{} of {} over each window of the aggregation",
                    f.name(),
                    metric.name
                ),
            };
            match metrics.register_raw(written) {
                Ok(written) => plan.push((f, written)),
                Err(e) => log::error!("aggregation: cannot write {name}: {e}; it is left out"),
            }
        }
        for (_, written) in &plan {
            self.written.push(*written);
            let i = written.index();
            if self.plans.len() <= i {
                self.plans.resize(i + 1, Plan::Unknown);
            }
            self.plans[i] = Plan::Skip;
        }
        Plan::Aggregate(plan)
    }

    /// Takes the buffer's points of aggregated metrics (unless `keep_raw`) into their
    /// windows, and appends the windows that closed.
    pub fn apply(&mut self, buffer: &mut MeasurementBuffer, metrics: &MetricRegistry) {
        let points = std::mem::take(buffer.as_mut_vec());
        let mut passed = Vec::with_capacity(points.len());
        for p in points {
            let Plan::Aggregate(plan) = self.plan(p.metric, metrics) else {
                passed.push(p);
                continue;
            };
            if self.add(&p, &plan) {
                if self.keep_raw {
                    passed.push(p);
                }
            } else {
                passed.push(p);
            }
        }
        *buffer.as_mut_vec() = passed;
        buffer.as_mut_vec().append(&mut self.out);
    }

    /// Adds `p` to its series' window; `false` for a late point (its window closed).
    fn add(&mut self, p: &MeasurementPoint, plan: &[(Function, RawMetricId)]) -> bool {
        let t = p.timestamp.unix_nanos();
        let window = t / self.interval;
        let interval = self.interval;
        let series = self.series.entry(key(p)).or_insert_with(|| Series {
            template: p.clone(),
            open: None,
            closed_before: 0,
        });
        if window < series.closed_before {
            self.late += 1;
            if !self.late_logged {
                self.late_logged = true;
                log::warn!(
                    "aggregation: a point came after its window had closed: passed through unaggregated (logged once; late_points counts them)"
                );
            }
            return false;
        }
        match &mut series.open {
            Some((open, acc)) if *open == window => acc.add(t, p.value.as_f64()),
            Some((open, _)) if *open > window => {
                // Older than the open window, yet not closed: cannot happen (windows
                // close in order), treated as late.
                self.late += 1;
                return false;
            }
            _ => {
                if let Some((open, acc)) = series.open.take() {
                    emit(&mut self.out, &series.template, plan, open, acc, interval);
                }
                series.closed_before = window;
                let mut acc = Acc::new();
                acc.add(t, p.value.as_f64());
                series.open = Some((window, acc));
                series.template = p.clone();
            }
        }
        true
    }

    /// Closes every window that ends at or before `until` (Unix ns; `u64::MAX`: all).
    pub fn close_until(&mut self, until: u64, metrics: &MetricRegistry) -> Vec<MeasurementPoint> {
        let interval = self.interval;
        let mut out = Vec::new();
        let keys: Vec<String> = self.series.keys().cloned().collect();
        for k in keys {
            let Some(series) = self.series.get_mut(&k) else {
                continue;
            };
            let Some((open, acc)) = series.open else {
                continue;
            };
            let end = (open + 1).saturating_mul(interval);
            if end > until {
                continue;
            }
            series.open = None;
            series.closed_before = open + 1;
            let metric = series.template.metric;
            let template = series.template.clone();
            if let Plan::Aggregate(plan) = self.plan(metric, metrics) {
                emit(&mut out, &template, &plan, open, acc, interval);
            }
        }
        // Series with nothing open, closed long ago: forgotten (a process that ended).
        self.series.retain(|_, s| {
            s.open.is_some() || s.closed_before.saturating_add(2).saturating_mul(interval) > until
        });
        out
    }
}

/// One point per function for a window, at its end.
fn emit(
    out: &mut Vec<MeasurementPoint>,
    template: &MeasurementPoint,
    plan: &[(Function, RawMetricId)],
    window: u64,
    acc: Acc,
    interval: u64,
) {
    let end = Timestamp::from_unix_nanos((window + 1).saturating_mul(interval));
    for (f, metric) in plan {
        let mut p = template.clone();
        p.timestamp = end;
        p.metric = *metric;
        p.value = MeasurementValue::F64(acc.value(*f));
        out.push(p);
    }
}

impl Transform for Aggregation {
    fn apply(
        &mut self,
        buffer: &mut MeasurementBuffer,
        ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        Aggregation::apply(self, buffer, ctx.metrics());
        Ok(())
    }

    fn on_tick(
        &mut self,
        buffer: &mut MeasurementBuffer,
        clock: &Clock,
        ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        if let Some(w) = clock.watermark() {
            for p in self.close_until(w.unix_nanos(), ctx.metrics()) {
                buffer.push(p);
            }
        }
        Ok(())
    }

    fn finish(
        &mut self,
        buffer: &mut MeasurementBuffer,
        ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        for p in self.close_until(u64::MAX, ctx.metrics()) {
            buffer.push(p);
        }
        if self.late > 0 {
            log::info!(
                "aggregation: {} points came after their window had closed and were passed through",
                self.late
            );
        }
        Ok(())
    }
}
