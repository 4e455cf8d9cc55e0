//! The `[plugins.stdout]` table.

use serde::{Deserialize, Serialize};

/// How each point is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One human-readable line per point.
    Text,
    /// One JSON object per line (JSON lines).
    Json,
}

/// Config of the `stdout` plugin: the `[plugins.stdout]` table. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `text`: one human-readable line per point; `json`: one JSON object per line (JSON lines).
    pub format: Format,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            format: Format::Text,
        }
    }
}
