//! The JSON summary of exec and watch (`--summary-json`), as the report reads it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::ReportError;

/// The summary of exec or watch: the figures it printed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecSummary {
    /// The measured command (`pid N`, `cgroup PATH` for watch).
    pub command: String,
    /// How many runs (`-r N`).
    #[serde(default)]
    pub runs: usize,
    /// The command's exit code.
    #[serde(default)]
    pub exit_code: i32,
    /// The figures, in the order printed.
    pub figures: Vec<SummaryFigure>,
    /// Points written per output.
    #[serde(default)]
    pub points_written: BTreeMap<String, u64>,
    /// What went wrong with an output.
    #[serde(default)]
    pub output_failures: BTreeMap<String, String>,
}

/// One figure of the summary.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SummaryFigure {
    /// What it is.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// The mean over the runs.
    pub mean: f64,
    /// The sample standard deviation over the runs.
    #[serde(default)]
    pub stddev: f64,
    /// A caveat.
    #[serde(default)]
    pub note: Option<String>,
}

/// Reads a `--summary-json` file.
pub fn read_summary(path: &Path) -> Result<ExecSummary, ReportError> {
    let text = std::fs::read(path).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| ReportError::NotSummary {
        path: path.to_owned(),
        source,
    })
}
