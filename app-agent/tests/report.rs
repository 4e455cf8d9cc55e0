//! `alumet-agent report` and `exec --report` through the binary: the page is written, holds
//! the run's summary and charts, and only the run's rows; bad inputs are named errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

/// procfs (machine CPU and memory, the command's processes) every 100 ms, the CPU energy
/// estimate, and the CSV output.
const CONFIG: &str = "\
[plugins.procfs.kernel]
poll_interval = '100ms'
flush_interval = '100ms'
[plugins.procfs.memory]
poll_interval = '100ms'
flush_interval = '100ms'
metrics = ['MemTotal', 'MemAvailable']
[plugins.energy-estimation]
[plugins.csv]
output_path = 'run.csv'
";

/// About half a second of a busy shell loop.
const BUSY: &str = "i=0; while [ $i -lt 250000 ]; do i=$((i+1)); done";

fn exec_report(dir: &Path, page: &str) -> (i32, String) {
    let args = [
        "exec",
        "--report",
        page,
        "--summary-json",
        "s.json",
        "--",
        "sh",
        "-c",
        BUSY,
    ];
    run_config(dir, CONFIG, &args)
}

/// The `value` cell of the row named `name` of a page's tables.
fn cell<'a>(html: &'a str, name: &str) -> &'a str {
    let row = format!("<tr><td>{name}</td><td class=\"value\">");
    let start = html.find(&row).unwrap_or_else(|| panic!("no row {name}")) + row.len();
    let len = html[start..].find('<').unwrap();
    &html[start..start + len]
}

/// The section of chart `id`.
fn chart<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section class=\"chart\" id=\"{id}\">"))
        .unwrap();
    let end = start + html[start..].find("</section>").unwrap();
    &html[start..end]
}

fn csv_rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("run.csv"))
        .unwrap()
        .lines()
        .count()
        - 1
}

#[test]
fn exec_report_writes_the_page_of_this_run_only_with_its_summary_and_charts() {
    let dir = temp_dir("report-exec");
    let (code, stderr) = exec_report(&dir, "first.html");
    assert_eq!(code, 0, "{stderr}");
    let rows_before = csv_rows(&dir);
    // A second run appends to the same CSV file: its page counts its own rows only.
    let (code, stderr) = exec_report(&dir, "run.html");
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(dir.join("run.html")).unwrap();
    let rows = cell(&html, "rows read").parse::<f64>().unwrap();
    assert_eq!(rows as usize, csv_rows(&dir) - rows_before);
    // The summary table holds the JSON summary's figures.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("s.json")).unwrap()).unwrap();
    let figures = summary["figures"].as_array().unwrap();
    let wall = figures.iter().find(|f| f["name"] == "wall time").unwrap();
    let expected = format!("{:.3}", wall["mean"].as_f64().unwrap());
    assert_eq!(cell(&html, "wall time"), expected);
    let command = format!(
        "<dt>command</dt><dd>sh -c {}</dd>",
        BUSY.replace('<', "&lt;")
    );
    assert!(html.contains(&command), "{html}");
    // The machine's CPU and memory over the run, each an inline SVG chart.
    for chart in ["cpu", "memory"] {
        let start = html
            .find(&format!("<section class=\"chart\" id=\"{chart}\">"))
            .unwrap();
        let end = start + html[start..].find("</section>").unwrap();
        assert!(
            html[start..end].contains("<svg"),
            "no {chart} chart: {}",
            &html[start..end]
        );
    }
    assert!(
        html.contains("<dt>config digest</dt><dd>fnv1a64:"),
        "{html}"
    );
    let host = alumet::plugin::host_identity::local_hostname().unwrap_or_default();
    assert!(
        html.contains(&format!("<dt>host</dt><dd>{host}</dd>")),
        "{html}"
    );
}

#[test]
fn report_draws_a_csv_file_and_names_what_is_wrong_with_other_files() {
    let dir = temp_dir("report-cli");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../alumet-report/tests/fixtures/run/agent.csv");
    std::fs::copy(&fixture, dir.join("agent.csv")).unwrap();
    let (code, stderr) = run_config(&dir, "", &["report", "agent.csv"]);
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(dir.join("agent.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(html.contains("<dt>agent version</dt><dd>"), "{html}");
    // Not the agent's CSV: exit 1, the file and the fix named, no page.
    std::fs::write(dir.join("other.csv"), "time,watts\n1,2\n").unwrap();
    let (code, stderr) = run_config(&dir, "", &["report", "other.csv", "-o", "o.html"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("other.csv is not a CSV file of the agent"),
        "{stderr}"
    );
    assert!(stderr.contains("--output-file"), "{stderr}");
    assert!(!dir.join("o.html").exists());
    // Two CSV files: which one to draw is not guessed.
    let (code, stderr) = run_config(&dir, "", &["report", "agent.csv", "other.csv"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("agent.csv and other.csv are both CSV files"),
        "{stderr}"
    );
    // The page never replaces its input.
    let (code, stderr) = run_config(&dir, "", &["report", "agent.csv", "-o", "agent.csv"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("would replace its input"), "{stderr}");
    // A summary alone gives the summary's page; a broken one is named.
    std::fs::write(
        dir.join("s.json"),
        r#"{"command": "make", "runs": 1, "exit_code": 0, "figures": [{"name": "wall time", "unit": "s", "mean": 2.5}]}"#,
    )
    .unwrap();
    let (code, stderr) = run_config(&dir, "", &["report", "s.json"]);
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(dir.join("s.html")).unwrap();
    assert_eq!(cell(&html, "wall time"), "2.500");
    std::fs::write(dir.join("bad.json"), "{\"figures\": 3}").unwrap();
    let (code, stderr) = run_config(&dir, "", &["report", "bad.json"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("bad.json is not a summary of exec or watch"),
        "{stderr}"
    );
}

#[test]
fn watch_report_writes_the_page_of_the_watched_process() {
    let dir = temp_dir("report-watch");
    std::fs::write(dir.join("alumet-config.toml"), CONFIG).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config", "watch", "--report", "w.html", &pid]);
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    std::thread::sleep(std::time::Duration::from_millis(300));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let html = std::fs::read_to_string(dir.join("w.html")).unwrap();
    assert!(
        html.contains(&format!("<dt>command</dt><dd>pid {pid}</dd>")),
        "{html}"
    );
    assert!(html.contains("<section id=\"exec-summary\">"), "{html}");
    assert!(chart(&html, "memory").contains("<svg"), "{html}");
}
