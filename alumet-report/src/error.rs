//! What can go wrong, each naming the file and the fix.

use std::path::PathBuf;

/// An error of the report: the input is not what it should be, or a file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file cannot be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a CSV file written by the agent's csv plugin.
    #[error(
        "{} is not a CSV file of the agent: {reason}; the csv plugin's files start with the \
         line `metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id...` \
         (write one with `alumet-agent --output-file FILE.csv exec -- COMMAND`)",
        path.display()
    )]
    NotAgentCsv {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file has the agent's header but no row that could be used.
    #[error("{} holds no measurement: {detail}", path.display())]
    NoData {
        /// The file.
        path: PathBuf,
        /// Why (the rows left out, and their reasons).
        detail: String,
    },
    /// The file is not the JSON summary of exec or watch.
    #[error(
        "{} is not a summary of exec or watch ({source}): write one with \
         `alumet-agent exec --summary-json FILE.json -- COMMAND`",
        path.display()
    )]
    NotSummary {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// Two files of the same kind were given: one CSV file and one summary at most.
    #[error(
        "{} and {} are both {kind}: give one CSV file of the agent and at most one JSON summary",
        first.display(),
        second.display()
    )]
    TwoOfAKind {
        /// The first file.
        first: PathBuf,
        /// The second.
        second: PathBuf,
        /// What they both are.
        kind: &'static str,
    },
    /// A chart could not be drawn (a bug: the data is checked first).
    #[error("drawing the chart {chart}: {message}")]
    Chart {
        /// Which chart.
        chart: &'static str,
        /// The plotting crate's message.
        message: String,
    },
    /// The page cannot be written.
    #[error("writing the report {}: {source}", path.display())]
    Write {
        /// The page's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
