//! A picture of a run: one self-contained HTML page drawn from the agent's CSV file (the
//! format of plugin-csv) and, when given, the JSON summary of exec or watch.
//!
//! The page holds, as inline SVG drawn by `plotters`: the power over time per RAPL domain
//! and GPU (the energy of each interval over its length) with the total; the energy per
//! consumer (top N, the rest, idle and unattributed parts when the attribution ran); the
//! CPU and memory of the machine and of the measured processes; then the figures of the
//! run and what was left out. No script, no font or style from the network.
//!
//! Start with [`load`] (which files), [`render`] (the page) and [`write_page`]. The agent
//! calls them for `alumet-agent report FILE.csv` and for `exec --report` / `watch
//! --report`; nothing here runs unless a report is asked for.

pub mod analysis;
pub mod chart;
pub mod downsample;
mod error;
pub mod page;
pub mod read;
pub mod summary;

use std::path::{Path, PathBuf};

pub use error::ReportError;
pub use read::{read_csv, Data};
pub use summary::{read_summary, ExecSummary};

/// How many consumers get a bar of their own; the others share one.
pub const TOP_CONSUMERS: usize = 10;

/// What the page says about the run besides the data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// The measured command (else the summary's, if any).
    pub command: Option<String>,
    /// The measured machine's hostname, when known (the CSV does not hold it).
    pub host: Option<String>,
    /// The agent's version.
    pub agent_version: String,
    /// A digest of the agent's config, when known.
    pub config_digest: Option<String>,
    /// Why there is no CSV data, when there is none.
    pub csv_note: Option<String>,
    /// The files the page was drawn from.
    pub inputs: Vec<String>,
}

/// What a page is drawn from: the CSV's data and the exec summary, either or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    /// The CSV file's data.
    pub data: Option<Data>,
    /// The exec or watch summary.
    pub summary: Option<ExecSummary>,
}

/// Reads the given files: CSV files of the agent and at most one JSON summary (told apart
/// by their first character), the CSV rows at or after `since` (nanoseconds since the
/// epoch) when given.
pub fn load(paths: &[PathBuf], since: Option<i64>) -> Result<Input, ReportError> {
    let mut input = Input::default();
    let (mut csv, mut json): (Option<&PathBuf>, Option<&PathBuf>) = (None, None);
    for path in paths {
        let (seen, kind) = match is_json(path)? {
            true => (&mut json, "JSON summaries"),
            false => (&mut csv, "CSV files"),
        };
        if let Some(first) = seen.replace(path) {
            return Err(ReportError::TwoOfAKind {
                first: first.clone(),
                second: path.clone(),
                kind,
            });
        }
    }
    if let Some(path) = json {
        input.summary = Some(read_summary(path)?);
    }
    if let Some(path) = csv {
        input.data = Some(read_csv(path, since)?);
    }
    Ok(input)
}

fn is_json(path: &Path) -> Result<bool, ReportError> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| ReportError::Io {
            path: path.to_owned(),
            source,
        })?;
    Ok(head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
}

/// The page, as HTML text.
pub fn render(input: &Input, meta: &Meta) -> Result<String, ReportError> {
    let analysis = input
        .data
        .as_ref()
        .map(|d| (d, analysis::analyse(d, TOP_CONSUMERS)));
    let data = analysis.as_ref().map(|(d, a)| (*d, a));
    page::page(meta, data, input.summary.as_ref())
}

/// Writes the page to `path` (through a temporary file in the same directory, renamed
/// over it: a reader never sees half a page).
pub fn write_page(path: &Path, html: &str) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, html).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}
