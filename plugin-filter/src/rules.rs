//! Whether a point passes: `include` then `exclude`.

use alumet::measurement::MeasurementPoint;
use alumet::metrics::MetricRegistry;
use alumet::pipeline::glob_match;

use crate::config::{Config, Rule};

/// The rules of one filter.
#[derive(Debug, Clone)]
pub struct Rules {
    include: Vec<Rule>,
    exclude: Vec<Rule>,
}

impl Rules {
    /// The rules of `config`.
    pub fn of(config: &Config) -> Self {
        Rules {
            include: config.include.clone(),
            exclude: config.exclude.clone(),
        }
    }

    /// Whether `point` passes.
    pub fn keeps(&self, point: &MeasurementPoint, metrics: &MetricRegistry) -> bool {
        let name = metrics.get(point.metric).map_or("", |m| m.name.as_str());
        let included =
            self.include.is_empty() || self.include.iter().any(|r| matches(r, point, name));
        included && !self.exclude.iter().any(|r| matches(r, point, name))
    }
}

fn matches(rule: &Rule, p: &MeasurementPoint, metric: &str) -> bool {
    let field = |pattern: &Option<String>, value: &str| {
        pattern.as_deref().is_none_or(|g| glob_match(g, value))
    };
    field(&rule.metric, metric)
        && field(&rule.resource_kind, p.resource.kind())
        && field(&rule.consumer_kind, p.consumer.kind())
        && (rule.consumer_id.is_none() || field(&rule.consumer_id, &p.consumer.id().to_string()))
        && rule.attributes.iter().all(|(key, pattern)| {
            p.attributes
                .get(key)
                .is_some_and(|v| glob_match(pattern, &v.to_string()))
        })
}
