//! The HTML page: the charts' SVG inline, a style sheet inline, no script and nothing
//! fetched from the network, so that it opens from a mail attachment or an artifact store.

use std::fmt::Write as _;

use crate::analysis::{Analysis, Figure};
use crate::chart;
use crate::error::ReportError;
use crate::read::Data;
use crate::summary::ExecSummary;
use crate::Meta;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em auto;max-width:1000px;color:#222}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}\
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}\
dd{margin:0;font-family:monospace;word-break:break-all}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}\
td.value{text-align:right;font-family:monospace}p.none{color:#a33}p.note{color:#555;font-size:.9em}\
svg{display:block;max-width:100%;height:auto}";

/// Text made safe for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a figure's value is written in the tables (3 decimals).
pub fn format_value(value: f64) -> String {
    format!("{value:.3}")
}

fn rfc3339(ns: i64) -> String {
    let Ok(ns) = u64::try_from(ns) else {
        return ns.to_string();
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
    humantime::format_rfc3339_millis(time).to_string()
}

/// The whole page.
pub fn page(
    meta: &Meta,
    data: Option<(&Data, &Analysis)>,
    summary: Option<&ExecSummary>,
) -> Result<String, ReportError> {
    let command = meta
        .command
        .as_deref()
        .or(summary.map(|s| s.command.as_str()));
    let title = command.map_or("a run".to_owned(), |c| format!("'{c}'"));
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>alumet-agent report: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>alumet-agent report: {}</h1>\n",
        escape(&title),
        escape(&title)
    );
    header(&mut html, meta, command, data.map(|d| d.1.window));
    match data {
        Some((data, analysis)) => {
            charts(&mut html, analysis)?;
            figures(&mut html, &analysis.figures, data);
        }
        None => {
            let why = meta.csv_note.as_deref().unwrap_or("no CSV file was given");
            let _ = writeln!(
                html,
                "<p class=\"none\" id=\"no-csv\">No chart: {}.</p>",
                escape(why)
            );
        }
    }
    if let Some(summary) = summary {
        exec_summary(&mut html, summary);
    }
    if let Some((data, analysis)) = data {
        left_out(&mut html, data, analysis);
    }
    html.push_str(
        "<p class=\"note\" id=\"how\">Drawn by alumet-agent from the agent's CSV: power is the \
         energy of each interval over its length (the first reading of a series has no \
         interval and gives no point); the total adds the RAPL package and dram domains and \
         the GPUs at each reading. Series longer than twice a chart's width in pixels are \
         downsampled to the lowest and the highest point of each pixel column, so peaks and \
         dips keep their height.</p>\n</body></html>\n",
    );
    Ok(html)
}

fn header(html: &mut String, meta: &Meta, command: Option<&str>, window: Option<(i64, i64)>) {
    html.push_str("<dl class=\"meta\" id=\"meta\">\n");
    let mut item = |name: &str, value: &str| {
        let _ = writeln!(html, "<dt>{name}</dt><dd>{}</dd>", escape(value));
    };
    item(
        "command",
        command.unwrap_or("(not known: give the summary's JSON file too)"),
    );
    item(
        "host",
        meta.host.as_deref().unwrap_or("(not recorded in the CSV)"),
    );
    if let Some((from, to)) = window {
        let seconds = (to - from) as f64 / 1e9;
        let text = format!("{} to {} ({seconds:.3} s)", rfc3339(from), rfc3339(to));
        item("time window", &text);
    }
    item("agent version", &meta.agent_version);
    item(
        "config digest",
        meta.config_digest.as_deref().unwrap_or("(not known)"),
    );
    item("input", &meta.inputs.join(", "));
    html.push_str("</dl>\n");
}

/// The four charts, each in its section (or a line saying why it is missing).
fn charts(html: &mut String, a: &Analysis) -> Result<(), ReportError> {
    let x_max = (a.window.1 - a.window.0) as f64 / 1e9;
    let power_title = if a.estimated {
        "Power (estimated)"
    } else {
        "Power"
    };
    section(html, "power", power_title, || {
        if a.power.iter().all(|l| l.points.is_empty()) {
            return Ok(None);
        }
        let total = a.power.last().is_some_and(|l| l.label.starts_with("total"));
        chart::lines("power", "power (W)", &a.power, x_max, total).map(Some)
    }, "no energy series with two readings or more: a command shorter than the sources' poll interval has only its readings at the start and the end (its energy is in the figures), or no energy source ran (rapl, nvidia; energy-estimation where neither is present)")?;
    section(html, "consumers", "Energy per consumer", || {
        if a.consumers.is_empty() {
            return Ok(None);
        }
        chart::bars("consumers", &a.consumers).map(Some)
    }, "no attributed_energy in the file (enable the attribution plugin, with procfs processes or cgroups)")?;
    section(
        html,
        "cpu",
        "CPU",
        || {
            if a.cpu.iter().all(|l| l.points.is_empty()) {
                return Ok(None);
            }
            chart::lines("cpu", "CPU (%, 100 = one CPU)", &a.cpu, x_max, false).map(Some)
        },
        "no kernel_cpu_time or cpu_time_delta (enable procfs)",
    )?;
    section(
        html,
        "memory",
        "Memory",
        || {
            if a.memory.iter().all(|l| l.points.is_empty()) {
                return Ok(None);
            }
            chart::lines("memory", "memory (MiB)", &a.memory, x_max, false).map(Some)
        },
        "no mem_total and mem_available, nor memory_usage (enable procfs)",
    )?;
    Ok(())
}

fn figures(html: &mut String, figures: &[Figure], data: &Data) {
    html.push_str("<section id=\"figures\"><h2>Figures from the CSV</h2>\n<table>\n");
    html.push_str("<tr><th>figure</th><th>value</th><th>unit</th></tr>\n");
    for f in figures {
        row(html, &f.name, f.value, f.unit);
    }
    row(html, "rows read", data.rows as f64, "");
    html.push_str("</table></section>\n");
}

fn row(html: &mut String, name: &str, value: f64, unit: &str) {
    let _ = writeln!(
        html,
        "<tr><td>{}</td><td class=\"value\">{}</td><td>{}</td></tr>",
        escape(name),
        format_value(value),
        escape(unit)
    );
}

fn section(
    html: &mut String,
    id: &str,
    title: &str,
    draw: impl FnOnce() -> Result<Option<String>, ReportError>,
    none: &str,
) -> Result<(), ReportError> {
    let _ = writeln!(
        html,
        "<section class=\"chart\" id=\"{id}\"><h2>{title}</h2>"
    );
    match draw()? {
        Some(svg) => html.push_str(&svg),
        None => {
            let _ = write!(html, "<p class=\"none\">No chart: {}.</p>", escape(none));
        }
    }
    html.push_str("\n</section>\n");
    Ok(())
}

fn exec_summary(html: &mut String, s: &ExecSummary) {
    let runs = if s.runs == 1 {
        "1 run".to_owned()
    } else {
        format!("{} runs", s.runs)
    };
    let _ = writeln!(
        html,
        "<section id=\"exec-summary\"><h2>Summary of the command ({runs}, exit code {})</h2>\n<table>\n\
         <tr><th>figure</th><th>mean</th><th>unit</th><th>std. dev.</th></tr>",
        s.exit_code
    );
    for f in &s.figures {
        let name = match &f.note {
            Some(note) => format!("{} ({note})", f.name),
            None => f.name.clone(),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"value\">{}</td><td>{}</td><td class=\"value\">{}</td></tr>",
            escape(&name),
            format_value(f.mean),
            escape(&f.unit),
            format_value(f.stddev)
        );
    }
    for (output, n) in &s.points_written {
        let failure = s.output_failures.get(output);
        let failure = failure.map_or(String::new(), |f| format!(" (incomplete: {f})"));
        let name = format!("points written by output {output}{failure}");
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"value\">{n}</td><td></td><td></td></tr>",
            escape(&name)
        );
    }
    html.push_str("</table></section>\n");
}

fn left_out(html: &mut String, data: &Data, a: &Analysis) {
    if data.left_out.is_empty() && a.other.is_empty() {
        return;
    }
    html.push_str("<section id=\"left-out\"><h2>Not drawn</h2>\n");
    if !data.left_out.is_empty() {
        html.push_str("<p>Rows of the file that were left out:</p><ul>\n");
        for (reason, (n, line)) in &data.left_out {
            let _ = writeln!(
                html,
                "<li>{n} {} (the first at line {line})</li>",
                escape(reason)
            );
        }
        html.push_str("</ul>\n");
    }
    if !a.other.is_empty() {
        html.push_str(
            "<p>Metrics that no chart shows (counters, or metrics this report does not know), \
             with the sum of their values over the window:</p>\n<table>\n\
             <tr><th>metric</th><th>series</th><th>sum</th></tr>\n",
        );
        for o in &a.other {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"value\">{}</td><td class=\"value\">{}</td></tr>",
                escape(&o.metric),
                o.series,
                format_value(o.sum)
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</section>\n");
}
