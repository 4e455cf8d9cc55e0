//! Outputs that receive the points of some plugins only: an output's `inputs`
//! ([`PipelineBuilder::output_inputs`](super::PipelineBuilder::output_inputs)), and the
//! points that a plugin's filter lets through to some outputs only
//! ([`Registrar::add_output_filter`](crate::plugin::Registrar::add_output_filter)).
//!
//! A point carries its metric, and each metric is known by the plugins that created it,
//! so an output's inputs become the set of their metrics: one indexed load per point, on
//! the output's own thread (a source thread never filters).

use std::collections::HashMap;
use std::sync::Arc;

use crate::measurement::{MeasurementBuffer, MeasurementPoint};
use crate::metrics::{MetricRegistry, RawMetricId};

/// Whether an output receives a point (a plugin's filter before some outputs).
pub type PointPredicate = Arc<dyn Fn(&MeasurementPoint, &MetricRegistry) -> bool + Send + Sync>;

/// The points an output receives.
pub(crate) struct MetricFilter {
    /// By metric index; `None`: every metric.
    keep: Option<Vec<bool>>,
    /// Each must hold.
    predicates: Vec<PointPredicate>,
}

impl std::fmt::Debug for MetricFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricFilter")
            .field("keep", &self.keep)
            .field("predicates", &self.predicates.len())
            .finish()
    }
}

impl MetricFilter {
    /// The metrics created by the plugin instances in `inputs`.
    fn of(inputs: &[String], owners: &[(String, RawMetricId)]) -> Self {
        let mut keep = Vec::new();
        for (plugin, metric) in owners {
            if inputs.contains(plugin) {
                let i = metric.index();
                if keep.len() <= i {
                    keep.resize(i + 1, false);
                }
                keep[i] = true;
            }
        }
        MetricFilter {
            keep: Some(keep),
            predicates: Vec::new(),
        }
    }

    pub(crate) fn keeps(&self, point: &MeasurementPoint, metrics: &MetricRegistry) -> bool {
        let metric = match &self.keep {
            Some(keep) => keep.get(point.metric.index()).copied().unwrap_or(false),
            None => true,
        };
        metric && self.predicates.iter().all(|p| p(point, metrics))
    }

    /// How many points of `buffer` the output receives.
    pub(crate) fn count(&self, buffer: &MeasurementBuffer, metrics: &MetricRegistry) -> usize {
        buffer.iter().filter(|p| self.keeps(p, metrics)).count()
    }

    /// Copies into `into` (emptied first) the points of `buffer` the output receives.
    pub(crate) fn copy(
        &self,
        buffer: &MeasurementBuffer,
        into: &mut MeasurementBuffer,
        metrics: &MetricRegistry,
    ) {
        into.clear();
        for p in buffer.iter().filter(|p| self.keeps(p, metrics)) {
            into.push(p.clone());
        }
    }
}

/// The filter of each output plugin instance that names its inputs, or that a plugin's
/// filter stands before.
pub(crate) fn filters(
    inputs: &[(String, Vec<String>)],
    owners: &[(String, RawMetricId)],
    predicates: &[(String, PointPredicate)],
) -> HashMap<String, Arc<MetricFilter>> {
    let mut filters: HashMap<String, MetricFilter> = HashMap::new();
    for (output, from) in inputs {
        filters.insert(output.clone(), MetricFilter::of(from, owners));
    }
    for (output, predicate) in predicates {
        let filter = filters
            .entry(output.clone())
            .or_insert_with(|| MetricFilter {
                keep: None,
                predicates: Vec::new(),
            });
        filter.predicates.push(Arc::clone(predicate));
    }
    filters
        .into_iter()
        .map(|(output, filter)| (output, Arc::new(filter)))
        .collect()
}
