//! Pure formatting of the text exposition format 0.0.4: names, labels, escaping, values.
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>

use std::fmt::Write;

use alumet::measurement::LabelId;
use alumet::prelude::*;

/// How an alumet metric is exposed.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyDef {
    /// The full name, `alumet_rapl_consumed_energy_joules_total`.
    pub name: String,
    /// The escaped `# HELP` text.
    pub help: String,
    /// A counter (energy: the points are added up) rather than a gauge (last value).
    pub counter: bool,
    /// What a value is multiplied by to get the base unit of the suffix (0.001 for mJ).
    pub factor: f64,
}

/// The Prometheus base-unit suffix of an alumet unit, and the factor to that base unit;
/// no suffix for a dimensionless metric.
pub fn unit_suffix(unit: &Unit) -> (Option<String>, f64) {
    let (suffix, factor) = match unit {
        Unit::Unity => return (None, 1.0),
        Unit::Second => ("seconds", 1.0),
        Unit::Millisecond => ("seconds", 1e-3),
        Unit::Microsecond => ("seconds", 1e-6),
        Unit::Nanosecond => ("seconds", 1e-9),
        Unit::Joule => ("joules", 1.0),
        Unit::MilliJoule => ("joules", 1e-3),
        Unit::MicroJoule => ("joules", 1e-6),
        Unit::Watt => ("watts", 1.0),
        Unit::MilliWatt => ("watts", 1e-3),
        Unit::Byte => ("bytes", 1.0),
        Unit::Percent => ("percent", 1.0),
        Unit::DegreeCelsius => ("celsius", 1.0),
        Unit::Hertz => ("hertz", 1.0),
        Unit::MegaHertz => ("hertz", 1e6),
        Unit::Custom(code) => {
            let mut s = String::new();
            sanitize_into(&mut s, &code.to_lowercase(), false);
            let s = s.trim_matches('_').to_owned();
            return (if s.is_empty() { None } else { Some(s) }, 1.0);
        }
    };
    (Some(suffix.to_owned()), factor)
}

/// Appends `s` with every character outside `[a-zA-Z0-9_]` (and `:` in metric names)
/// replaced by `_`, and `_` before a leading digit.
fn sanitize_into(out: &mut String, s: &str, colon: bool) {
    for (i, c) in s.chars().enumerate() {
        if i == 0 && out.is_empty() && c.is_ascii_digit() {
            out.push('_');
        }
        let ok = c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
        out.push(if ok { c } else { '_' });
    }
}

/// The family of an alumet metric: prefix, sanitised name, base-unit suffix (unless the
/// name already ends with it), and `_total` for energy, which becomes a counter.
pub fn family(prefix: &str, name: &str, unit: &Unit, description: &str) -> FamilyDef {
    let (suffix, factor) = unit_suffix(unit);
    let counter = suffix.as_deref() == Some("joules");
    let mut full = prefix.to_owned();
    sanitize_into(&mut full, name, true);
    if let Some(suffix) = suffix {
        if !full.ends_with(&format!("_{suffix}")) && !full.ends_with(&format!("_{suffix}_total")) {
            full.push('_');
            full.push_str(&suffix);
        }
    }
    if counter && !full.ends_with("_total") {
        full.push_str("_total");
    }
    FamilyDef {
        name: full,
        help: escape_help(description),
        counter,
        factor,
    }
}

/// `# HELP` text: `\` and line feeds escaped.
pub fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

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

/// The label name of an attribute key: sanitised; `attr_` before a name that would clash
/// with the resource and consumer labels or that starts with the reserved `__`.
pub fn label_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    sanitize_into(&mut name, key, false);
    let reserved = [
        "resource_kind",
        "resource_id",
        "consumer_kind",
        "consumer_id",
    ];
    if name.is_empty() || name.starts_with("__") || reserved.contains(&name.as_str()) {
        name.insert_str(0, "attr_");
    }
    name
}

fn push_label(out: &mut String, names: &mut Vec<String>, name: String, value: &str) {
    if value.is_empty() || names.contains(&name) {
        return; // an empty label is the same as no label; a duplicate would be invalid
    }
    out.push(if names.is_empty() { '{' } else { ',' });
    out.push_str(&name);
    out.push_str("=\"");
    escape_label_value(out, value);
    out.push('"');
    names.push(name);
}

fn id_text(id: LabelId<'_>) -> String {
    id.to_string()
}

/// The label set of a point, `{resource_kind="cpu_package",resource_id="0",domain="package"}`,
/// or an empty string; it identifies the series within its family.
pub fn labels(p: &MeasurementPoint) -> String {
    let mut out = String::new();
    let mut names = Vec::new();
    push_label(
        &mut out,
        &mut names,
        "resource_kind".into(),
        p.resource.kind(),
    );
    push_label(
        &mut out,
        &mut names,
        "resource_id".into(),
        &id_text(p.resource.id()),
    );
    push_label(
        &mut out,
        &mut names,
        "consumer_kind".into(),
        p.consumer.kind(),
    );
    push_label(
        &mut out,
        &mut names,
        "consumer_id".into(),
        &id_text(p.consumer.id()),
    );
    for (key, value) in p.attributes.iter() {
        push_label(&mut out, &mut names, label_name(key), &value.to_string());
    }
    if !names.is_empty() {
        out.push('}');
    }
    out
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
