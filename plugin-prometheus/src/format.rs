//! Pure formatting of the text exposition format 0.0.4: names, labels, escaping, values.
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>

use std::fmt::Write;

use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet_delivery::prometheus::label_pairs;

pub use alumet_delivery::prometheus::{family, FamilyDef};

/// Appends a label value with `\`, `"` and line feeds escaped.
pub fn escape_label_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The label set of a point, `{host="a",resource_kind="cpu_package",resource_id="0",domain="package"}`,
/// or an empty string; it identifies the series within its family (names and order:
/// [`alumet_delivery::prometheus::label_pairs`]).
/// Without `attributes`, the attributes' labels are left out.
pub fn labels(identity: &HostIdentity, p: &MeasurementPoint, attributes: bool) -> String {
    let mut out = String::new();
    let mut pairs = label_pairs(identity, p);
    if !attributes {
        pairs.retain(|(name, _)| {
            identity.labels().iter().any(|(k, _)| k == name)
                || alumet_delivery::prometheus::RESERVED.contains(&name.as_str())
        });
    }
    for (i, (name, value)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(&mut out, value);
        out.push('"');
    }
    if !out.is_empty() {
        out.push('}');
    }
    out
}

/// `name` with `suffix` before its `_total` (a counter's name ends with `_total`).
pub fn with_suffix(name: &str, suffix: &str, counter: bool) -> String {
    if suffix.is_empty() {
        return name.to_owned();
    }
    match name.strip_suffix("_total").filter(|_| counter) {
        Some(stem) => format!("{stem}{suffix}_total"),
        None => format!("{name}{suffix}"),
    }
}

/// Appends a sample value: Go's float syntax (`NaN`, `+Inf`, `-Inf`, `1e-07` or `1e-7`).
pub fn write_value(out: &mut String, v: f64) {
    let _ = if v.is_nan() {
        out.write_str("NaN")
    } else if v.is_infinite() {
        out.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        write!(out, "{v:?}")
    };
}

/// One sample of a family.
pub struct Sample<'a> {
    /// The label set as returned by [`labels`].
    pub labels: &'a str,
    /// The value, in the base unit.
    pub value: f64,
    /// Milliseconds since the epoch, written when `Some`.
    pub timestamp_ms: Option<u64>,
}

/// Appends the `# HELP` and `# TYPE` lines of a family.
pub fn write_header(out: &mut String, name: &str, help: &str, counter: bool) {
    let kind = if counter { "counter" } else { "gauge" };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends one sample line.
pub fn write_sample(out: &mut String, name: &str, s: &Sample<'_>) {
    out.push_str(name);
    out.push_str(s.labels);
    out.push(' ');
    write_value(out, s.value);
    if let Some(ms) = s.timestamp_ms {
        let _ = write!(out, " {ms}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests;
