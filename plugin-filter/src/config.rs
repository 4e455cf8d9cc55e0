//! The `[plugins.filter]` table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a point must be to match a rule: every field given must match (`*` is a wildcard
/// in each); a rule with no field matches every point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// The metric's name, such as "rapl_*".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The resource's kind, such as "cpu_package" or "gpu".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_kind: Option<String>,
    /// The consumer's kind, such as "process" or "cgroup".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_kind: Option<String>,
    /// The consumer's id, such as a cgroup's path "/kubepods/*".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_id: Option<String>,
    /// Attribute values, such as { namespace = "prod" }: the point must have each attribute, with a matching value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// Config of the `filter` plugin. Missing keys take their default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Keep only the points that match one of these rules; empty: every point (before `exclude`).
    pub include: Vec<Rule>,
    /// Then drop the points that match one of these rules.
    pub exclude: Vec<Rule>,
    /// The output plugin instances the filter stands before (such as ["influxdb"]); empty: before every output, as a transform after the others.
    pub outputs: Vec<String>,
}

impl Config {
    /// A filter that keeps everything is a mistake worth saying.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !(self.include.is_empty() && self.exclude.is_empty()),
            "give `include` or `exclude` rules, such as include = [{{ metric = \"rapl_*\" }}]: without them the filter keeps every point"
        );
        for (i, o) in self.outputs.iter().enumerate() {
            anyhow::ensure!(
                !o.is_empty(),
                "outputs[{i}] is empty: give an output plugin instance's name, such as \"csv\""
            );
        }
        Ok(())
    }
}
