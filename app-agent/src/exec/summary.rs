//! What exec and watch report: energy per metric and resource over the run, CPU time,
//! memory, wall time; over `-r N` runs, mean ± standard deviation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use alumet::measurement::{MeasurementBuffer, MeasurementPoint, Timestamp};
use alumet::metrics::MetricRegistry;
use alumet::pipeline::{ElementError, TransformContext};
use serde::Serialize;

/// Energy, CPU and memory seen in the points of one window (one run).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Window {
    /// Joules per `metric resource consumer attributes` label.
    pub energy: BTreeMap<String, f64>,
    /// Per-process CPU time from procfs (`cpu_time_delta`), in ms, by `kind`.
    pub cpu_ms: BTreeMap<String, f64>,
    /// Largest per-process resident memory from procfs, in bytes.
    pub max_resident: f64,
}

/// One run's time range and what fell in it.
struct Slot {
    since: Timestamp,
    /// `None` while the run goes on.
    until: Option<Timestamp>,
    window: Window,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
}

/// Watches every flushed buffer (as the last transform) and sums each point into the run
/// whose time range holds its timestamp: points that arrive late (a transform that waits
/// for a slower source, the pipeline's final flush) still count for their run, so read
/// the windows after the pipeline has shut down. Cheap to clone: clones share the state.
#[derive(Clone, Default)]
pub struct Aggregator(Arc<Mutex<State>>);

impl Aggregator {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a run: points measured after `since` count for it.
    pub fn open(&self, since: Timestamp) {
        self.lock().slots.push(Slot {
            since,
            until: None,
            window: Window::default(),
        });
    }

    /// Ends the current run: points measured after `until` do not count for it.
    pub fn close(&self, until: Timestamp) {
        if let Some(slot) = self.lock().slots.last_mut() {
            slot.until.get_or_insert(until);
        }
    }

    /// What each run saw, in order; call it once the pipeline is shut down.
    pub fn windows(&self) -> Vec<Window> {
        let mut state = self.lock();
        std::mem::take(&mut state.slots)
            .into_iter()
            .map(|s| s.window)
            .collect()
    }

    /// The transform: it only reads.
    pub fn transform(
        &self,
    ) -> impl FnMut(&mut MeasurementBuffer, &TransformContext) -> Result<(), ElementError> + Send + 'static
    {
        let this = self.clone();
        move |buffer, ctx| {
            let mut state = this.lock();
            for p in buffer.iter() {
                let t = p.timestamp;
                let slot = state
                    .slots
                    .iter_mut()
                    .rev()
                    .find(|s| s.since < t && s.until.is_none_or(|u| t <= u));
                if let Some(slot) = slot {
                    add(&mut slot.window, p, ctx.metrics());
                }
            }
            Ok(())
        }
    }
}

fn add(w: &mut Window, p: &MeasurementPoint, metrics: &MetricRegistry) {
    let Some(metric) = metrics.get(p.metric) else {
        return;
    };
    let value = p.value.as_f64();
    if metric.name == "attribution_imbalance" {
        // A check of the attribution (0 up to rounding), not energy used.
    } else if let Some(factor) = metric.unit.joules() {
        // In exec and watch modes only the measured process tree has per-process figures,
        // so the energy attributed to processes is the command's: one line, whatever the
        // pids.
        let label = if metric.name == "attributed_energy" {
            label_of(p, "attributed_energy (the command)", false)
        } else {
            label_of(p, &metric.name, true)
        };
        *w.energy.entry(label).or_default() += value * factor;
    } else if metric.name == "cpu_time_delta" {
        let kind = p
            .attributes
            .get("kind")
            .map_or_else(|| "total".to_owned(), |k| k.to_string());
        *w.cpu_ms.entry(kind).or_default() += value;
    } else if metric.name == "memory_usage"
        && p.attributes
            .get("kind")
            .is_some_and(|k| k.to_string() == "resident")
    {
        w.max_resident = w.max_resident.max(value);
    }
}

/// `metric resource_kind[/id] [consumer] [k=v ...]`.
fn label_of(p: &MeasurementPoint, name: &str, with_consumer: bool) -> String {
    let mut s = format!("{name} {}", p.resource.kind());
    let id = p.resource.id().to_string();
    if !id.is_empty() {
        let _ = write!(s, "/{id}");
    }
    if with_consumer && p.consumer.kind() != "local_machine" {
        let _ = write!(s, " {}/{}", p.consumer.kind(), p.consumer.id());
    }
    for (k, v) in p.attributes.iter() {
        let _ = write!(s, " {k}={v}");
    }
    s
}

/// One figure over the runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figure {
    /// What it is.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// One value per run.
    pub values: Vec<f64>,
    /// Mean over the runs.
    pub mean: f64,
    /// Sample standard deviation over the runs (0 for one run).
    pub stddev: f64,
}

impl Figure {
    /// A figure from its values.
    pub fn new(name: impl Into<String>, unit: &str, values: Vec<f64>) -> Self {
        let n = values.len() as f64;
        let mean = if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / n
        };
        let stddev = if values.len() < 2 {
            0.0
        } else {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        };
        Figure {
            name: name.into(),
            unit: unit.to_owned(),
            values,
            mean,
            stddev,
        }
    }
}

/// The whole summary, printed on stderr and optionally written as JSON.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// The measured command (or `pid N` for watch).
    pub command: String,
    /// How many runs.
    pub runs: usize,
    /// The command's exit code: the first failed run's, else 0.
    pub exit_code: i32,
    /// Each run's exit code, in order (none for watch).
    pub run_exit_codes: Vec<i32>,
    /// Wall time, CPU, memory, then energy and power per metric and resource.
    pub figures: Vec<Figure>,
    /// Points written per output.
    pub points_written: BTreeMap<String, u64>,
}

/// The `--summary-json` file, created before the run (as `perf stat -o` does, so that a
/// path that cannot be written fails before a long command, not after it). Removed if
/// the agent ends without writing it in full: no empty or cut JSON file is left. Only the
/// regular file it created is removed, never what the path names otherwise (a device such
/// as `/dev/full`, a link such as `/dev/stdout`).
pub struct SummaryFile<'a> {
    path: &'a std::path::Path,
    file: std::fs::File,
    written: bool,
}

impl<'a> SummaryFile<'a> {
    /// Creates (or truncates) the file.
    pub fn create(path: &'a std::path::Path) -> std::io::Result<Self> {
        Ok(SummaryFile {
            path,
            file: std::fs::File::create(path)?,
            written: false,
        })
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        self.path
    }

    /// Writes `summary` as JSON.
    pub fn write(mut self, summary: &Summary) -> std::io::Result<()> {
        use std::io::Write;
        serde_json::to_writer_pretty(&mut self.file, summary).map_err(std::io::Error::from)?;
        self.file.write_all(b"\n")?;
        self.written = true;
        Ok(())
    }
}

impl Drop for SummaryFile<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if self.written {
            return;
        }
        let (Ok(named), Ok(ours)) = (std::fs::symlink_metadata(self.path), self.file.metadata())
        else {
            return;
        };
        if named.is_file() && (named.dev(), named.ino()) == (ours.dev(), ours.ino()) {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

impl Summary {
    /// The text shown after the command's own output.
    pub fn render(&self) -> String {
        let runs = if self.runs == 1 {
            "1 run".to_owned()
        } else {
            format!("{} runs", self.runs)
        };
        let mut out = format!(
            "\n alumet-agent measurements for '{}' ({runs}):\n\n",
            self.command
        );
        for f in &self.figures {
            let spread = if self.runs > 1 && f.mean != 0.0 {
                format!("  ( +- {:.2}% )", 100.0 * f.stddev / f.mean.abs())
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:>16} {:<3} {}{spread}",
                format_value(f.mean),
                f.unit,
                f.name
            );
        }
        if !self.points_written.is_empty() {
            out.push('\n');
            for (output, n) in &self.points_written {
                let _ = writeln!(out, "{n:>16} points written by output {output}");
            }
        }
        out
    }
}

fn format_value(v: f64) -> String {
    if v == 0.0 || v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.6}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_file_not_written_in_full_is_removed_but_never_what_a_link_names() {
        let dir = alumet::test_util::TempDir::new("summary-file");
        let summary = Summary {
            command: "true".into(),
            runs: 1,
            exit_code: 0,
            run_exit_codes: vec![0],
            figures: vec![],
            points_written: BTreeMap::new(),
        };
        let written = dir.join("written.json");
        SummaryFile::create(&written)
            .and_then(|f| f.write(&summary))
            .expect("writes");
        assert!(std::fs::read_to_string(&written).is_ok_and(|t| t.ends_with("}\n")));
        let dropped = dir.join("dropped.json");
        drop(SummaryFile::create(&dropped).expect("creates"));
        assert!(!dropped.exists());
        let (target, link) = (dir.join("target.json"), dir.join("link.json"));
        std::os::unix::fs::symlink(&target, &link).expect("links");
        drop(SummaryFile::create(&link).expect("creates through the link"));
        assert!(link.is_symlink() && target.exists());
    }

    #[test]
    fn mean_and_sample_stddev() {
        let f = Figure::new("x", "s", vec![1.0, 2.0, 3.0]);
        assert_eq!(f.mean, 2.0);
        assert!((f.stddev - 1.0).abs() < 1e-12);
        assert_eq!(Figure::new("x", "s", vec![5.0]).stddev, 0.0);
    }

    #[test]
    fn render_shows_each_figure_and_spread_for_several_runs() {
        let s = Summary {
            command: "true".into(),
            runs: 2,
            exit_code: 0,
            run_exit_codes: vec![0, 0],
            figures: vec![Figure::new("wall time", "s", vec![1.0, 3.0])],
            points_written: BTreeMap::from([("csv/csv".to_owned(), 12)]),
        };
        let text = s.render();
        assert!(text.contains("'true' (2 runs)"), "{text}");
        assert!(
            text.contains("2.000 s   wall time  ( +- 70.71% )"),
            "{text}"
        );
        assert!(
            text.contains("12 points written by output csv/csv"),
            "{text}"
        );
    }
}
