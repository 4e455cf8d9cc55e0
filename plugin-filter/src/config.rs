//! The `[plugins.filter]` table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a point must be to match a rule: every field given must match (`*` is a wildcard
/// in each); a rule with no field matches every point. A string is a rule on the metric's
/// name alone (`include = ["cpu_time_delta"]`, the public Alumet agent's form).
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

/// A rule as written: a table, or a metric name.
enum RuleInput {
    Metric(String),
    Fields(RuleFields),
}

/// By hand rather than `untagged`, so that a table with a wrong key gets serde's message
/// naming it.
impl<'de> Deserialize<'de> for RuleInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RuleInput;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a metric name or a table of metric, resource_kind, consumer_kind, consumer_id and attributes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RuleInput, E> {
                Ok(RuleInput::Metric(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RuleInput, A::Error> {
                RuleFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RuleInput::Fields)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The fields of a rule written as a table (the same as [`Rule`]'s).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RuleFields {
    metric: Option<String>,
    resource_kind: Option<String>,
    consumer_kind: Option<String>,
    consumer_id: Option<String>,
    attributes: BTreeMap<String, String>,
}

impl From<RuleInput> for Rule {
    fn from(input: RuleInput) -> Rule {
        match input {
            RuleInput::Metric(name) => Rule {
                metric: Some(name),
                ..Rule::default()
            },
            RuleInput::Fields(f) => Rule {
                metric: f.metric,
                resource_kind: f.resource_kind,
                consumer_kind: f.consumer_kind,
                consumer_id: f.consumer_id,
                attributes: f.attributes,
            },
        }
    }
}

/// Rules as written: tables, or metric names.
fn rules<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
    Ok(Vec::<RuleInput>::deserialize(d)?
        .into_iter()
        .map(Rule::from)
        .collect())
}

/// Config of the `filter` plugin. Missing keys take their default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Keep only the points that match one of these rules; empty: every point (before `exclude`).
    #[serde(deserialize_with = "rules")]
    pub include: Vec<Rule>,
    /// Then drop the points that match one of these rules.
    #[serde(deserialize_with = "rules")]
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
