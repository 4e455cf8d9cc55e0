//! What exec and watch report: energy per metric and resource over the run, CPU time,
//! memory, wall time; over `-r N` runs, mean ± standard deviation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::aggregator::Window;
use super::child::Ended;

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
    /// A caveat on the values, shown after the name (the name stays a stable key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
            note: None,
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
    /// What went wrong with an output, per output (points that failed, a final write
    /// that failed): its data is incomplete.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub output_failures: BTreeMap<String, String>,
}

/// The `--summary-json` file, opened before the run (as `perf stat -o` does, so that a
/// path that cannot be written fails before a long command, not after it), and replaced
/// with the summary at the end. A file that was already there is left untouched until
/// then, and kept when the agent ends without a summary; one it created is removed (no
/// empty or cut JSON file is left), and so is one it cut short. Only a regular file is
/// ever removed, never what the path names otherwise (a device such as `/dev/full`, a
/// link such as `/dev/stdout`). A file that grew during the run has another writer (the
/// same file as `--output-file`, say): the summary is not written over it.
pub struct SummaryFile<'a> {
    path: &'a std::path::Path,
    file: std::fs::File,
    /// The file's length when opened: another writer changes it.
    len_at_open: u64,
    /// Created by us: removed when not written in full, unless another writer used it.
    created: bool,
    /// Cut by us (then only we wrote to it since): removed when not written in full.
    cut: bool,
    written: bool,
}

impl<'a> SummaryFile<'a> {
    /// Opens the file, creating it if needed (without cutting an existing one).
    pub fn create(path: &'a std::path::Path) -> std::io::Result<Self> {
        let (file, created) = match std::fs::File::create_new(path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !holds_json_or_nothing(path) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "it exists and holds something else than a JSON summary (a CSV \
                         output?): not overwritten; give another path, or remove it first",
                    ));
                }
                // A link to a missing file: its target is created (and never removed).
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)?;
                (file, false)
            }
            Err(e) => return Err(e),
        };
        Ok(SummaryFile {
            path,
            len_at_open: file.metadata()?.len(),
            file,
            created,
            cut: false,
            written: false,
        })
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        self.path
    }

    /// Writes `summary` as JSON, in place of what the file held.
    pub fn write(mut self, summary: &Summary) -> std::io::Result<()> {
        use std::io::Write;
        let meta = self.file.metadata()?;
        if meta.is_file() {
            if meta.len() != self.len_at_open {
                // Not ours to cut (nor to remove: see Drop).
                return Err(std::io::Error::other(
                    "the file was written by someone else during the run (is it also an \
                     output's file, such as --output-file?): the summary is not written over \
                     it; give --summary-json another path",
                ));
            }
            self.cut = true;
            self.file.set_len(0)?;
        }
        serde_json::to_writer_pretty(&mut self.file, summary).map_err(std::io::Error::from)?;
        self.file.write_all(b"\n")?;
        self.written = true;
        Ok(())
    }
}

/// Whether the file at `path` is empty, starts with a JSON object, or is not a regular
/// file (a device, a pipe: written, never cut nor removed).
fn holds_json_or_nothing(path: &std::path::Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return true;
    }
    let mut head = Vec::new();
    let _ = std::fs::File::open(path).and_then(|f| f.take(64).read_to_end(&mut head));
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        // Empty, or unreadable (then the check of its length at the end still holds).
        None => true,
        Some(&first) => first == b'{',
    }
}

impl Drop for SummaryFile<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if self.written || !(self.created || self.cut) {
            return;
        }
        let (Ok(named), Ok(opened)) = (std::fs::symlink_metadata(self.path), self.file.metadata())
        else {
            return;
        };
        // A file that grew without us has another writer (an output on the same path,
        // the run cut short): its data stays.
        let only_ours = self.cut || opened.len() == self.len_at_open;
        if only_ours
            && named.is_file()
            && (named.dev(), named.ino()) == (opened.dev(), opened.ino())
        {
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
                "{:>16} {:<3} {}{}{spread}",
                format_value(f.mean),
                f.unit,
                f.name,
                f.note
                    .as_ref()
                    .map_or_else(String::new, |n| format!(" ({n})"))
            );
        }
        if !self.points_written.is_empty() {
            out.push('\n');
            for (output, n) in &self.points_written {
                let _ = write!(out, "{n:>16} points written by output {output}");
                match self.output_failures.get(output) {
                    Some(failure) => {
                        let _ = writeln!(out, " (incomplete: {failure})");
                    }
                    None => out.push('\n'),
                }
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

/// What one run measured.
pub(super) struct Run {
    pub(super) wall: Duration,
    pub(super) ended: Option<Ended>,
    /// Filled from the aggregator once the pipeline is shut down.
    pub(super) window: Window,
}

const KIB_PER_MIB: f64 = 1024.0;

/// The summary's figures, each with one value per run.
pub(super) fn figures(runs: &[Run]) -> Vec<Figure> {
    let per_run = |f: &dyn Fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let mut figures = vec![Figure::new(
        "wall time",
        "s",
        per_run(&|r| r.wall.as_secs_f64()),
    )];
    if runs.iter().all(|r| r.ended.is_some()) {
        let ended = |r: &Run| {
            r.ended.unwrap_or(Ended {
                code: 0,
                user: Duration::ZERO,
                system: Duration::ZERO,
                max_rss_kb: 0,
            })
        };
        figures.push(Figure::new(
            "user CPU time",
            "s",
            per_run(&|r| ended(r).user.as_secs_f64()),
        ));
        figures.push(Figure::new(
            "system CPU time",
            "s",
            per_run(&|r| ended(r).system.as_secs_f64()),
        ));
        // The kernel charges the agent's own pages to a child that was forked from it and
        // has not grown past them: below that level the figure is only an upper bound.
        let own = own_max_rss_kb();
        let mut memory = Figure::new(
            "peak resident memory",
            "MiB",
            // ru_maxrss counts KiB.
            per_run(&|r| ended(r).max_rss_kb as f64 / KIB_PER_MIB),
        );
        if runs.iter().any(|r| ended(r).max_rss_kb <= own) {
            memory.note = Some(format!(
                "at most: the agent's own {:.1} MiB is charged to the child",
                own as f64 / KIB_PER_MIB
            ));
        }
        figures.push(memory);
    } else {
        // Watched: the process's figures from procfs, or the cgroup's from the cgroups plugin.
        let of_cgroup = runs.iter().any(|r| r.window.of_cgroup);
        let from = if of_cgroup { "cgroup" } else { "procfs" };
        for kind in ["user", "system"] {
            figures.push(Figure::new(
                format!("{kind} CPU time ({from})"),
                "s",
                per_run(&|r| r.window.cpu_ms.get(kind).copied().unwrap_or(0.0) / 1000.0),
            ));
        }
        let memory = if of_cgroup {
            "peak memory (cgroup)"
        } else {
            "peak resident memory (procfs)"
        };
        figures.push(Figure::new(
            memory,
            "MiB",
            per_run(&|r| r.window.max_resident / (KIB_PER_MIB * 1024.0)),
        ));
    }
    let mut labels: BTreeMap<&str, ()> = BTreeMap::new();
    for r in runs {
        labels.extend(r.window.energy.keys().map(|k| (k.as_str(), ())));
    }
    for label in labels.keys() {
        let joules = per_run(&|r| r.window.energy.get(*label).copied().unwrap_or(0.0));
        // The attribution's parts of a counter that measured nothing, or that the command
        // had no share of, would be lines of zeros (three per counter and domain).
        let attribution = ["attributed_energy", "idle_energy", "unattributed_energy"];
        if attribution.iter().any(|a| label.starts_with(a)) && joules.iter().all(|j| *j == 0.0) {
            continue;
        }
        let watts = runs
            .iter()
            .zip(&joules)
            .map(|(r, j)| j / r.wall.as_secs_f64().max(1e-9))
            .collect();
        figures.push(Figure::new(*label, "J", joules));
        figures.push(Figure::new(format!("{label} (average power)"), "W", watts));
    }
    figures.extend(perf_figures(runs));
    let mut carbon: BTreeMap<&str, ()> = BTreeMap::new();
    for r in runs {
        carbon.extend(r.window.carbon.keys().map(|k| (k.as_str(), ())));
    }
    for label in carbon.keys() {
        let grams = per_run(&|r| r.window.carbon.get(*label).copied().unwrap_or(0.0));
        if grams.iter().all(|g| *g == 0.0) && label.contains("source=") {
            continue; // as for the attribution's parts: lines of zeros
        }
        figures.push(Figure::new(*label, "g CO2e", grams));
    }
    figures
}

/// The perf counters, as `perf stat` shows them (task-clock in ms, the share of time a
/// multiplexed counter ran), then what it derives from them: instructions per cycle, miss
/// ratios, GHz.
fn perf_figures(runs: &[Run]) -> Vec<Figure> {
    // What is derived from two counters: name, unit, numerator, denominator, scale.
    const DERIVED: [(&str, &str, &str, &str, f64); 4] = [
        ("insn per cycle", "", "instructions", "cycles", 1.0),
        (
            "branch-misses of all branches",
            "%",
            "branch-misses",
            "branches",
            100.0,
        ),
        (
            "cache-misses of all cache refs",
            "%",
            "cache-misses",
            "cache-references",
            100.0,
        ),
        (
            "GHz (cycles per task-clock ns)",
            "GHz",
            "cycles",
            "task-clock",
            1.0,
        ),
    ];
    let per_run = |f: &dyn Fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let mut names: BTreeMap<&str, f64> = BTreeMap::new();
    for r in runs {
        for (name, (_, ratio)) in &r.window.perf {
            let seen = names.entry(name.as_str()).or_insert(1.0);
            *seen = seen.min(*ratio);
        }
    }
    fn count(name: &str) -> impl Fn(&Run) -> f64 + '_ {
        move |r: &Run| r.window.perf.get(name).map_or(0.0, |c| c.0)
    }
    let mut figures = Vec::new();
    for (name, ratio) in &names {
        let shown = if *ratio < 1.0 {
            format!("{name} ({:.1}%)", ratio * 100.0)
        } else {
            (*name).to_owned()
        };
        if name.starts_with("task-clock") || name.starts_with("cpu-clock") {
            let ms = per_run(&|r| count(name)(r) / 1e6);
            figures.push(Figure::new(format!("{shown} (msec)"), "ms", ms));
        } else {
            figures.push(Figure::new(shown, "", per_run(&count(name))));
        }
    }
    let has = |n: &str| names.contains_key(n);
    let ratio = |a: &'static str, b: &'static str, scale: f64| {
        move |r: &Run| {
            let d = count(b)(r);
            if d > 0.0 {
                count(a)(r) / d * scale
            } else {
                0.0
            }
        }
    };
    for (name, unit, a, b, scale) in DERIVED {
        if has(a) && has(b) {
            figures.push(Figure::new(name, unit, per_run(&ratio(a, b, scale))));
        }
    }
    figures
}

fn own_max_rss_kb() -> u64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as u64
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
            output_failures: BTreeMap::new(),
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
    fn memory_is_in_mib_from_the_kib_of_rusage_and_the_bytes_of_procfs() {
        let ended = Ended {
            code: 0,
            user: Duration::ZERO,
            system: Duration::ZERO,
            // 200 MiB, above the agent's own size.
            max_rss_kb: 204_800,
        };
        let run = |ended, max_resident| Run {
            wall: Duration::from_secs(1),
            ended,
            window: Window {
                max_resident,
                ..Window::default()
            },
        };
        let memory = |figures: Vec<Figure>| {
            let f = figures
                .into_iter()
                .find(|f| f.name.starts_with("peak resident"));
            f.map(|f| (f.unit, f.mean)).expect("a memory figure")
        };
        let command = memory(figures(&[run(Some(ended), 0.0)]));
        assert_eq!(command, ("MiB".to_owned(), 200.0));
        let watched = memory(figures(&[run(None, 3.0 * 1024.0 * 1024.0)]));
        assert_eq!(watched, ("MiB".to_owned(), 3.0));
        // Below the agent's own size, a caveat: in the note, the name stays a stable key.
        let small = Ended {
            max_rss_kb: 1,
            ..ended
        };
        let figures = figures(&[run(Some(small), 0.0)]);
        let f = figures.iter().find(|f| f.unit == "MiB").expect("memory");
        assert_eq!(f.name, "peak resident memory");
        assert!(
            f.note.as_ref().is_some_and(|n| n.starts_with("at most")),
            "{f:?}"
        );
    }

    #[test]
    fn perf_counts_are_shown_with_their_multiplexing_and_what_derives_from_them() {
        let perf: BTreeMap<String, (f64, f64)> = [
            ("instructions", (3000.0, 1.0)),
            ("cycles", (1500.0, 0.625)),
            ("branches", (200.0, 1.0)),
            ("branch-misses", (5.0, 1.0)),
            ("task-clock", (500_000.0, 1.0)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let run = Run {
            wall: Duration::from_secs(1),
            ended: None,
            window: Window {
                perf,
                ..Window::default()
            },
        };
        let got: Vec<(String, String, f64)> = perf_figures(&[run])
            .into_iter()
            .map(|f| (f.name, f.unit, f.mean))
            .collect();
        let want = [
            ("branch-misses", "", 5.0),
            ("branches", "", 200.0),
            ("cycles (62.5%)", "", 1500.0),
            ("instructions", "", 3000.0),
            ("task-clock (msec)", "ms", 0.5),
            ("insn per cycle", "", 2.0),
            ("branch-misses of all branches", "%", 2.5),
            ("GHz (cycles per task-clock ns)", "GHz", 0.003),
        ];
        let want: Vec<(String, String, f64)> = want
            .iter()
            .map(|(n, u, v)| (n.to_string(), u.to_string(), *v))
            .collect();
        assert_eq!(got, want);
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
            points_written: BTreeMap::from([("csv/csv".to_owned(), 12), ("x/y".to_owned(), 3)]),
            output_failures: BTreeMap::from([("x/y".to_owned(), "2 points failed".to_owned())]),
        };
        let text = s.render();
        assert!(text.contains("'true' (2 runs)"), "{text}");
        assert!(
            text.contains("2.000 s   wall time  ( +- 70.71% )"),
            "{text}"
        );
        assert!(
            text.contains("12 points written by output csv/csv\n"),
            "{text}"
        );
        assert!(
            text.contains("3 points written by output x/y (incomplete: 2 points failed)\n"),
            "{text}"
        );
    }
}
