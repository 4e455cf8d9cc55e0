//! OpenMetrics 1.0 text, for scrapers that ask for it (`Accept:
//! application/openmetrics-text`), derived from the 0.0.4 text: the two differ, for what
//! this exporter writes, in counter family names (no `_total` in `# HELP`/`# TYPE`),
//! timestamps (seconds instead of milliseconds) and the final `# EOF`.

use std::collections::HashSet;
use std::fmt::Write as _;

/// The OpenMetrics content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Converts a 0.0.4 exposition written by this exporter to OpenMetrics 1.0.
pub fn convert(text: &str) -> String {
    let counters: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let family = match counters.contains(name) {
                true => name.strip_suffix("_total").unwrap_or(name),
                false => name,
            };
            let _ = writeln!(out, "{} {family} {tail}", &line[..6]);
        } else {
            write_sample(&mut out, line);
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A sample line; a third field (after the labels and the value) is a timestamp in ms,
/// which OpenMetrics writes in seconds.
fn write_sample(out: &mut String, line: &str) {
    let labels_end = line.rfind('}').map_or(0, |i| i + 1);
    let (head, rest) = line.split_at(labels_end);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    match (head.is_empty(), fields.as_slice()) {
        (true, [name, value, ms]) => write_with_seconds(out, &format!("{name} {value}"), ms),
        (false, [value, ms]) => write_with_seconds(out, &format!("{head} {value}"), ms),
        _ => {
            out.push_str(line);
            out.push('\n');
        }
    }
}

fn write_with_seconds(out: &mut String, sample: &str, ms: &str) {
    match ms.parse::<i64>() {
        Ok(ms) => {
            let _ = writeln!(
                out,
                "{sample} {}.{:03}",
                ms.div_euclid(1000),
                ms.rem_euclid(1000)
            );
        }
        Err(_) => {
            let _ = writeln!(out, "{sample} {ms}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_lose_total_in_metadata_and_timestamps_become_seconds() {
        let text = "# HELP a_joules_total Energy.\n# TYPE a_joules_total counter\n\
                    a_joules_total{x=\"1 2}\"} 3.5 1700000000123\n\
                    # HELP g Gauge.\n# TYPE g gauge\ng 1\n";
        assert_eq!(
            convert(text),
            "# HELP a_joules Energy.\n# TYPE a_joules counter\n\
             a_joules_total{x=\"1 2}\"} 3.5 1700000000.123\n\
             # HELP g Gauge.\n# TYPE g gauge\ng 1\n# EOF\n"
        );
    }
}
