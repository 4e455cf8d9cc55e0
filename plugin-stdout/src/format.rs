//! Pure formatting of one point as a text line or a JSON line, into a byte buffer.

use std::io::Write;

use alumet::measurement::LabelId;
use alumet::prelude::*;

/// The name and unit code of the metric of a point.
pub struct MetricLabel<'a> {
    /// The metric's name, `rapl_consumed_energy`.
    pub name: &'a str,
    /// The unit's UCUM code, `J`.
    pub unit: &'a str,
}

/// `2026-11-26T06:25:59.123456789Z` (UTC, always 9 digits of nanoseconds).
pub fn rfc3339(t: Timestamp) -> impl std::fmt::Display {
    humantime::format_rfc3339_nanos(t.to_system_time())
}

/// Whether a text field can be written as it is: not empty, no space, quote, backslash,
/// `=`, or control or invisible character.
fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\\' | '='))
}

/// Appends `s`, or `"s"` with `"`, `\` and control characters escaped (`\n`, `\t`,
/// `\u{1b}`) when it is not plain, so that every line is one line and every field visible.
fn text_field(out: &mut Vec<u8>, s: &str) {
    if is_plain(s) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn value_text(out: &mut Vec<u8>, v: &MeasurementValue) {
    // `{:?}` of a float is its shortest round-trip form: `12.5`, `3.0`, `1e-7`, `NaN`, `inf`.
    let _ = match v {
        MeasurementValue::U64(v) => write!(out, "{v}"),
        MeasurementValue::F64(v) => write!(out, "{v:?}"),
    };
}

fn kind_id(out: &mut Vec<u8>, kind: &str, id: LabelId<'_>) {
    text_field(out, kind);
    if id != LabelId::None {
        out.push(b':');
        text_field(out, &id.to_string());
    }
}

/// Appends one human-readable line:
/// `2026-11-26T06:25:59.123456789Z rapl_consumed_energy = 12.5 J resource=cpu_package:0 consumer=local_machine domain=package`.
pub fn write_text(out: &mut Vec<u8>, metric: &MetricLabel<'_>, p: &MeasurementPoint) {
    let _ = write!(out, "{} ", rfc3339(p.timestamp));
    text_field(out, metric.name);
    out.extend_from_slice(b" = ");
    value_text(out, &p.value);
    if !metric.unit.is_empty() && metric.unit != "1" {
        out.push(b' ');
        text_field(out, metric.unit);
    }
    out.extend_from_slice(b" resource=");
    kind_id(out, p.resource.kind(), p.resource.id());
    out.extend_from_slice(b" consumer=");
    kind_id(out, p.consumer.kind(), p.consumer.id());
    for (key, value) in p.attributes.iter() {
        out.push(b' ');
        text_field(out, key);
        out.push(b'=');
        match value {
            AttributeValue::Str(s) => text_field(out, s),
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
    out.push(b'\n');
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A float as JSON: its shortest round-trip form, `null` for NaN and the infinities.
fn json_f64(out: &mut Vec<u8>, v: f64) {
    let _ = if v.is_finite() {
        write!(out, "{v:?}")
    } else {
        write!(out, "null")
    };
}

fn json_id(out: &mut Vec<u8>, id: LabelId<'_>) {
    match id {
        LabelId::None => json_str(out, ""),
        LabelId::Number(n) => {
            let _ = write!(out, "\"{n}\"");
        }
        LabelId::Text(s) => json_str(out, s),
    }
}

/// Appends one JSON object and a line feed (see the README for the fields).
pub fn write_json(out: &mut Vec<u8>, metric: &MetricLabel<'_>, p: &MeasurementPoint) {
    out.extend_from_slice(b"{\"metric\":");
    json_str(out, metric.name);
    out.extend_from_slice(b",\"unit\":");
    json_str(out, metric.unit);
    let _ = write!(
        out,
        ",\"timestamp\":\"{}\",\"timestamp_ns\":{},\"value\":",
        rfc3339(p.timestamp),
        p.timestamp.unix_nanos()
    );
    match p.value {
        MeasurementValue::U64(v) => {
            let _ = write!(out, "{v}");
        }
        MeasurementValue::F64(v) => json_f64(out, v),
    }
    out.extend_from_slice(b",\"resource_kind\":");
    json_str(out, p.resource.kind());
    out.extend_from_slice(b",\"resource_id\":");
    json_id(out, p.resource.id());
    out.extend_from_slice(b",\"consumer_kind\":");
    json_str(out, p.consumer.kind());
    out.extend_from_slice(b",\"consumer_id\":");
    json_id(out, p.consumer.id());
    out.extend_from_slice(b",\"attributes\":{");
    for (i, (key, value)) in p.attributes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, key);
        out.push(b':');
        match value {
            AttributeValue::Str(s) => json_str(out, s),
            AttributeValue::U64(v) => {
                let _ = write!(out, "{v}");
            }
            AttributeValue::F64(v) => json_f64(out, *v),
            AttributeValue::Bool(v) => {
                let _ = write!(out, "{v}");
            }
        }
    }
    out.extend_from_slice(b"}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: MetricLabel<'static> = MetricLabel {
        name: "energy",
        unit: "J",
    };

    fn point(attrs: Attributes) -> MeasurementPoint {
        let t = Timestamp::from_unix_nanos(1_709_251_199_000_000_001);
        let id = alumet::metrics::MetricRegistry::new()
            .register::<f64>("energy", Unit::Joule, "d")
            .ok();
        let id = id.expect("registered");
        let r = Resource::custom("pdu", "rack 1");
        MeasurementPoint::new(t, id, r, ResourceConsumer::LocalMachine, 1e-7).with_attributes(attrs)
    }

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn text_fields_quote_only_when_needed() {
        assert_eq!(s(|o| text_field(o, "package")), "package");
        assert_eq!(s(|o| text_field(o, "")), "\"\"");
        assert_eq!(s(|o| text_field(o, "a b")), "\"a b\"");
        assert_eq!(
            s(|o| text_field(o, "x=\"y\"\n\\\u{1b}")),
            r#""x=\"y\"\n\\\u{1b}""#
        );
        assert_eq!(s(|o| text_field(o, "°C")), "°C");
    }

    #[test]
    fn one_line_per_point_in_both_formats() {
        let attrs = Attributes::new([
            ("note", AttributeValue::from("a\nb")),
            ("n", f64::NAN.into()),
        ]);
        let p = point(attrs);
        assert_eq!(
            s(|o| write_text(o, &M, &p)),
            "2024-02-29T23:59:59.000000001Z energy = 1e-7 J resource=pdu:\"rack 1\" consumer=local_machine note=\"a\\nb\" n=NaN\n"
        );
        let json = s(|o| write_json(o, &M, &p));
        assert_eq!(json.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(v["attributes"]["note"], "a\nb");
        assert!(v["attributes"]["n"].is_null());
        assert_eq!(v["value"], 1e-7);
        assert_eq!(v["resource_id"], "rack 1");
        assert_eq!(v["consumer_id"], "");
    }
}
