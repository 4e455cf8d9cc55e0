//! Prometheus names, shared by the exporter (`plugin-prometheus`) and remote write
//! (`plugin-prometheus-remote-write`) so that a series has the same name and labels
//! whichever way it reaches Prometheus: prefix, sanitised name, base-unit suffix, `_total`
//! for energy (a counter), and the label set of a point.

use alumet::measurement::MeasurementPoint;
use alumet::metrics::Unit;
use alumet::plugin::HostIdentity;

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
pub fn sanitize_into(out: &mut String, s: &str, colon: bool) {
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

/// The labels every point has, from its resource and consumer.
pub const RESERVED: [&str; 4] = [
    "resource_kind",
    "resource_id",
    "consumer_kind",
    "consumer_id",
];

/// The label name of an attribute key: sanitised; `attr_` before a name that would clash
/// with the resource and consumer labels or that starts with the reserved `__`.
pub fn label_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    sanitize_into(&mut name, key, false);
    if name.is_empty() || name.starts_with("__") || RESERVED.contains(&name.as_str()) {
        name.insert_str(0, "attr_");
    }
    name
}

/// The labels of a point, in this order: the host identity's, then `resource_kind`,
/// `resource_id`, `consumer_kind`, `consumer_id`, then the attributes (named by
/// [`label_name`]). An empty value is left out (Prometheus treats it as no label); a name
/// already present is left out (the first one wins: the identity's over an attribute's).
pub fn label_pairs(identity: &HostIdentity, p: &MeasurementPoint) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(4 + identity.labels().len());
    let mut push = |name: String, value: String| {
        if !value.is_empty() && out.iter().all(|(n, _)| *n != name) {
            out.push((name, value));
        }
    };
    for (k, v) in identity.labels() {
        push(k.clone(), v.clone());
    }
    push(RESERVED[0].into(), p.resource.kind().to_owned());
    push(RESERVED[1].into(), p.resource.id().to_string());
    push(RESERVED[2].into(), p.consumer.kind().to_owned());
    push(RESERVED[3].into(), p.consumer.id().to_string());
    for (key, value) in p.attributes.iter() {
        push(label_name(key), value.to_string());
    }
    out
}
