//! The transform: a `carbon_emissions` point for each point of an energy metric.

use alumet::metrics::{MetricRegistry, RawMetricId};
use alumet::prelude::*;

use crate::intensity::Intensity;

/// Joules in one kWh.
const JOULES_PER_KWH: f64 = 3.6e6;

/// What is known of a metric: not looked at yet, not converted, or converted with the
/// factor to joules and the `energy_metric` attribute's value.
#[derive(Clone)]
enum Seen {
    Unknown,
    Skip,
    Energy(f64, Box<str>),
}

/// Grams of CO2e for the energy points of the chosen metrics.
pub struct CarbonTransform {
    intensity: Intensity,
    source: Box<str>,
    metric: MetricId<f64>,
    /// Chosen metrics by name; empty: every energy metric.
    chosen: Vec<String>,
    /// By metric index (metrics registered later, by a plugin added on reload, too).
    seen: Vec<Seen>,
    outside_logged: bool,
    added: Vec<MeasurementPoint>,
}

impl CarbonTransform {
    /// A transform writing `metric`.
    pub fn new(intensity: Intensity, chosen: Vec<String>, metric: MetricId<f64>) -> Self {
        CarbonTransform {
            source: intensity.source().into(),
            intensity,
            metric,
            chosen,
            seen: Vec::new(),
            outside_logged: false,
            added: Vec::new(),
        }
    }

    fn seen(&mut self, id: RawMetricId, metrics: &MetricRegistry) -> Seen {
        let i = id.index();
        if self.seen.len() <= i {
            self.seen.resize(i + 1, Seen::Unknown);
        }
        if let Seen::Unknown = self.seen[i] {
            self.seen[i] = match metrics.get(id) {
                Some(m) if m.name == "carbon_emissions" || m.name == "attribution_imbalance" => {
                    Seen::Skip
                }
                Some(m) if self.chosen.is_empty() || self.chosen.contains(&m.name) => {
                    match m.unit.joules() {
                        Some(factor) => Seen::Energy(factor, m.name.as_str().into()),
                        None => Seen::Skip,
                    }
                }
                _ => Seen::Skip,
            };
        }
        self.seen[i].clone()
    }

    /// Appends to `buffer` the carbon of its energy points.
    pub fn apply(&mut self, buffer: &mut MeasurementBuffer, metrics: &MetricRegistry) {
        let mut added = std::mem::take(&mut self.added);
        for p in buffer.iter() {
            let Seen::Energy(factor, name) = self.seen(p.metric, metrics) else {
                continue;
            };
            let Some(g_per_kwh) = self.intensity.at(p.timestamp) else {
                if !self.outside_logged {
                    self.outside_logged = true;
                    log::warn!(
                        "energy-to-carbon: energy measured at {} ns after the Unix epoch is outside the times of {}: no carbon for it (logged once)",
                        p.timestamp.unix_nanos(),
                        self.source
                    );
                }
                continue;
            };
            let grams = p.value.as_f64() * factor / JOULES_PER_KWH * g_per_kwh;
            let attributes = p
                .attributes
                .with("energy_metric", AttributeValue::Str(name.clone()))
                .with("intensity_source", AttributeValue::Str(self.source.clone()));
            added.push(
                MeasurementPoint::new(
                    p.timestamp,
                    self.metric,
                    p.resource.clone(),
                    p.consumer.clone(),
                    grams,
                )
                .with_attributes(attributes),
            );
        }
        for p in added.drain(..) {
            buffer.push(p);
        }
        self.added = added;
    }
}

impl Transform for CarbonTransform {
    fn apply(
        &mut self,
        buffer: &mut MeasurementBuffer,
        ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        CarbonTransform::apply(self, buffer, ctx.metrics());
        Ok(())
    }
}
