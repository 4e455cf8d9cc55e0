//! The `[plugins.aggregation]` table.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a window's points become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    /// Their sum (for quantities per interval: energy, CPU time).
    Sum,
    /// Their arithmetic mean.
    Mean,
    /// The smallest.
    Min,
    /// The largest.
    Max,
    /// The latest (by timestamp).
    Last,
    /// How many points.
    Count,
}

impl Function {
    /// Its name, the suffix of the metric it writes.
    pub fn name(self) -> &'static str {
        match self {
            Function::Sum => "sum",
            Function::Mean => "mean",
            Function::Min => "min",
            Function::Max => "max",
            Function::Last => "last",
            Function::Count => "count",
        }
    }
}

/// Config of the `aggregation` plugin. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The windows' length; they are aligned to the wall clock (windows of "1m" start at each minute).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// The metrics to aggregate, by name (`*` wildcards); empty: every metric.
    pub metrics: Vec<String>,
    /// What each window becomes, as metrics NAME_FUNCTION: "sum", "mean", "min", "max", "last", "count"; empty: "sum" for quantities per interval (energy, time, carbon, names ending in _delta) and "mean" for the others.
    pub functions: Vec<Function>,
    /// The public Alumet agent's single function (added to `functions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<Function>,
    /// Also let the aggregated metrics' own points through to the outputs.
    pub keep_raw: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(60),
            metrics: Vec::new(),
            functions: Vec::new(),
            function: None,
            keep_raw: false,
        }
    }
}

impl Config {
    /// Checks the values.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.interval >= Duration::from_millis(1),
            "interval is {:?}: give a window of at least 1ms, such as \"1m\"",
            self.interval
        );
        Ok(())
    }

    /// The functions asked for (`function` included), without repeats; empty: by kind.
    pub fn functions(&self) -> Vec<Function> {
        let mut all = self.functions.clone();
        all.extend(self.function);
        let mut seen = Vec::new();
        all.retain(|f| {
            let new = !seen.contains(f);
            seen.push(*f);
            new
        });
        all
    }
}
