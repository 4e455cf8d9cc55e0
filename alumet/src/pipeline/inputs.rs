//! Outputs that receive the points of some plugins only: an output's `inputs`
//! ([`PipelineBuilder::output_inputs`](super::PipelineBuilder::output_inputs)).
//!
//! A point carries its metric, and each metric is known by the plugins that created it,
//! so an output's inputs become the set of their metrics: one indexed load per point, on
//! the output's own thread (a source thread never filters).

use std::collections::HashMap;
use std::sync::Arc;

use crate::measurement::{MeasurementBuffer, MeasurementPoint};
use crate::metrics::RawMetricId;

/// The metrics an output receives.
#[derive(Debug)]
pub(crate) struct MetricFilter {
    keep: Vec<bool>,
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
        MetricFilter { keep }
    }

    pub(crate) fn keeps(&self, point: &MeasurementPoint) -> bool {
        self.keep
            .get(point.metric.index())
            .copied()
            .unwrap_or(false)
    }

    /// How many points of `buffer` the output receives.
    pub(crate) fn count(&self, buffer: &MeasurementBuffer) -> usize {
        buffer.iter().filter(|p| self.keeps(p)).count()
    }

    /// Copies into `into` (emptied first) the points of `buffer` the output receives.
    pub(crate) fn copy(&self, buffer: &MeasurementBuffer, into: &mut MeasurementBuffer) {
        into.clear();
        for p in buffer.iter().filter(|p| self.keeps(p)) {
            into.push(p.clone());
        }
    }
}

/// The filter of each output plugin instance that names its inputs.
pub(crate) fn filters(
    inputs: &[(String, Vec<String>)],
    owners: &[(String, RawMetricId)],
) -> HashMap<String, Arc<MetricFilter>> {
    let mut filters = HashMap::new();
    for (output, from) in inputs {
        filters.insert(output.clone(), Arc::new(MetricFilter::of(from, owners)));
    }
    filters
}
