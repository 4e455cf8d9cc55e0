//! `alumet-agent report` and `exec --report` / `watch --report`: a picture of a run, one
//! self-contained HTML page drawn by the `alumet-report` crate from the CSV output (and
//! the exec summary). Nothing here runs unless a report is asked for.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::ReportArgs;
use crate::config::Loaded;
use crate::exec::summary::Summary;

/// The csv plugin's default `output_path`.
const CSV_DEFAULT_PATH: &str = "alumet-output.csv";

/// `alumet-agent report INPUT... [-o PAGE]`.
pub fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    let output = match &args.output {
        Some(path) => path.clone(),
        None => args.inputs[0].with_extension("html"),
    };
    for input in &args.inputs {
        anyhow::ensure!(
            !same_file(input, &output),
            "the report {} would replace its input: give another path with -o",
            output.display()
        );
    }
    check_output(&output)?;
    let input = alumet_report::load(&args.inputs, None)?;
    let meta = alumet_report::Meta {
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        inputs: args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        csv_note: Some("no CSV file was given (only the summary's JSON)".into()),
        ..alumet_report::Meta::default()
    };
    let html = alumet_report::render(&input, &meta)?;
    alumet_report::write_page(&output, &html)?;
    log::info!("wrote the report to {}", output.display());
    Ok(0)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The page can be written at `path`: checked before a run, so that a long command is
/// not measured for a report that cannot be written.
pub fn check_output(path: &Path) -> anyhow::Result<()> {
    let fix = "give a file in an existing, writable directory";
    if path.is_dir() {
        anyhow::bail!("the report {} is a directory: {fix}", path.display());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    anyhow::ensure!(
        dir.is_dir(),
        "the report {}: its directory {} does not exist: {fix}",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// What exec and watch know of the run for its report, taken from the config before the
/// pipeline consumes it.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Where to write the page.
    pub path: PathBuf,
    /// The CSV output's file, if the csv plugin runs.
    csv: Option<PathBuf>,
    host: Option<String>,
    digest: String,
    /// When the run started, in ns since the epoch: the CSV file may hold earlier runs.
    since: i64,
}

impl RunReport {
    /// Prepares the report of a run configured by `loaded`, to be written at `path`.
    pub fn new(path: PathBuf, loaded: &Loaded) -> anyhow::Result<Self> {
        check_output(&path)?;
        let csv = (loaded.instances.iter())
            .find(|i| i.origin == "csv")
            .map(|i| {
                let path = i.table.get("output_path").and_then(|v| v.as_str());
                PathBuf::from(path.unwrap_or(CSV_DEFAULT_PATH))
            });
        if csv.is_none() {
            log::warn!(
                "--report: the csv plugin is not enabled, so the report has the summary but no chart over time (add --output-file FILE.csv)"
            );
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Ok(RunReport {
            path,
            csv,
            host: loaded.general.host_identity().hostname().map(str::to_owned),
            digest: config_digest(loaded),
            since,
        })
    }

    /// Draws and writes the page, once the outputs have written everything.
    pub fn write(&self, summary: &Summary) -> anyhow::Result<()> {
        let json = serde_json::to_value(summary).context("the summary as JSON")?;
        let summary: alumet_report::ExecSummary =
            serde_json::from_value(json).context("the summary for the report")?;
        let mut input = alumet_report::Input {
            data: None,
            summary: Some(summary),
        };
        let mut meta = alumet_report::Meta {
            command: input.summary.as_ref().map(|s| s.command.clone()),
            host: self.host.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            config_digest: Some(self.digest.clone()),
            csv_note: Some("the csv plugin was not enabled (add --output-file FILE.csv)".into()),
            inputs: Vec::new(),
        };
        if let Some(csv) = &self.csv {
            meta.inputs.push(csv.display().to_string());
            match alumet_report::read_csv(csv, Some(self.since)) {
                Ok(data) => input.data = Some(data),
                // A run too short for any row after its baseline: the summary only.
                Err(e) => meta.csv_note = Some(format!("{e}")),
            }
        }
        let html = alumet_report::render(&input, &meta)?;
        alumet_report::write_page(&self.path, &html)?;
        Ok(())
    }
}

/// FNV-1a (64 bits) of the plugins' effective config (each instance's name, origin and
/// table, in start order): two runs with the same digest ran the same plugins with the
/// same settings. Not a security digest.
fn config_digest(loaded: &Loaded) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for instance in &loaded.instances {
        eat(instance.name.as_bytes());
        eat(&[0]);
        eat(instance.origin.as_bytes());
        eat(&[0]);
        eat(instance.table.to_string().as_bytes());
        eat(&[0]);
    }
    format!("fnv1a64:{hash:016x}")
}
