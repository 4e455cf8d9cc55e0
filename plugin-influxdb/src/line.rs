//! Pure line-protocol formatting: one point into one line, no I/O, no allocation per point.
//!
//! ```text
//! rapl_consumed_energy_J,resource_kind=cpu_package,resource_id=0,consumer_kind=local_machine value=12.5 1700000000000000000
//! ```
//!
//! Escaping (the README has the table): the measurement escapes `,` and space; tag keys, tag
//! values and field keys escape `,`, `=` and space; string field values escape `"` and `\`
//! and keep newlines. A line break inside a name or a tag cannot be carried by any version
//! of the protocol: it is written as the two characters `\n` (`\r` likewise).
//!
//! Backslashes in names and tags depend on the server: InfluxDB 2 and 3 read `\\` as one
//! backslash, so [`Dialect::Modern`] doubles every backslash. InfluxDB 1.x keeps every
//! backslash but reads `\X` as an escaped `X`: [`Dialect::V1`] writes backslashes as they
//! are, except an odd run of them before an escaped character or at the end of the name,
//! which gets one more (1.x then stores that run one backslash longer, but the line stays
//! valid; no 1.x line can carry it exactly).

use alumet::measurement::{AttributeValue, LabelId, MeasurementPoint, MeasurementValue};
use alumet::metrics::Unit;

/// The flavour of line protocol the server reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// InfluxDB 1.x: no `u` integers (unsigned values go as `i`, or as a string field when
    /// above `i64::MAX`), backslashes mostly literal.
    V1,
    /// InfluxDB 2 and 3: unsigned integers with `u`, `\\` for a backslash.
    Modern,
}

/// The field (and suffix of attribute fields) used for `u64` values above `i64::MAX` in
/// [`Dialect::V1`]: a string holding the exact decimal value.
pub const LARGE_U64_SUFFIX: &str = "_u64";

/// Names of tags and fields that the line itself uses: an attribute with one of these
/// names gets the suffix `_attr`.
const RESERVED: [&str; 7] = [
    "time",
    "resource_kind",
    "resource_id",
    "consumer_kind",
    "consumer_id",
    "value",
    "value_u64",
];

/// What happened to one point.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// One line was appended; `large_u64` values above `i64::MAX` went as strings (V1).
    Line {
        /// How many `u64` values were written as string fields.
        large_u64: u32,
        /// Length in bytes of the line's series key (measurement and tags), which starts it.
        key_len: usize,
    },
    /// The value is NaN or infinite: nothing was appended.
    NonFinite,
}

/// Where a name or a value appears: each place escapes a different set of characters.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Place {
    Measurement,
    /// Tag keys, tag values and field keys.
    Key,
}

impl Place {
    fn is_special(self, c: char) -> bool {
        match self {
            Place::Measurement => matches!(c, ',' | ' '),
            Place::Key => matches!(c, ',' | ' ' | '='),
        }
    }
}

/// The characters of `s`, with line breaks turned into `\n` and `\r`.
fn visible(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(|c| {
        let pair = match c {
            '\n' => ['\\', 'n'],
            '\r' => ['\\', 'r'],
            other => [other, '\0'],
        };
        let n = if pair[1] == '\0' { 1 } else { 2 };
        pair.into_iter().take(n)
    })
}

fn push_char(out: &mut Vec<u8>, c: char) {
    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

fn escape(out: &mut Vec<u8>, s: &str, place: Place, dialect: Dialect) {
    let mut chars = visible(s).peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let mut run = 1;
            while chars.peek() == Some(&'\\') {
                chars.next();
                run += 1;
            }
            let n = match dialect {
                Dialect::Modern => 2 * run,
                Dialect::V1 => {
                    let exposed = chars.peek().is_none_or(|&next| place.is_special(next));
                    run + usize::from(exposed && run % 2 == 1)
                }
            };
            out.resize(out.len() + n, b'\\');
            continue;
        }
        if place.is_special(c) {
            out.push(b'\\');
        }
        push_char(out, c);
    }
}

/// Appends an escaped measurement name.
pub fn write_measurement(out: &mut Vec<u8>, s: &str, dialect: Dialect) {
    escape(out, s, Place::Measurement, dialect);
}

/// Appends an escaped tag key, tag value or field key.
pub fn write_key(out: &mut Vec<u8>, s: &str, dialect: Dialect) {
    escape(out, s, Place::Key, dialect);
}

/// Appends a quoted string field value.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push(b'\\');
        }
        push_char(out, c);
    }
    out.push(b'"');
}

/// The measurement of a metric: its name, `_` and its UCUM unit code (as the CSV output's
/// `metric` column), escaped; computed once per metric.
pub fn measurement(name: &str, unit: &Unit, dialect: Dialect) -> Box<[u8]> {
    let code = unit.code();
    let mut text = String::with_capacity(name.len() + 1 + code.len());
    text.push_str(name);
    if !code.is_empty() {
        text.push('_');
        text.push_str(code);
    }
    let mut out = Vec::with_capacity(text.len() + 4);
    write_measurement(&mut out, &text, dialect);
    out.into_boxed_slice()
}

/// Formats points into lines, deciding for each attribute whether it is a tag or a field.
pub struct LineFormat<F> {
    /// The flavour of the server.
    pub dialect: Dialect,
    /// Whether an attribute (by key) is written as a tag.
    pub is_tag: F,
}

fn attribute_key(out: &mut Vec<u8>, key: &str, dialect: Dialect) {
    write_key(out, key, dialect);
    if RESERVED.contains(&key) {
        out.extend_from_slice(b"_attr");
    }
}

fn push_label(out: &mut Vec<u8>, key: &str, id: LabelId<'_>, dialect: Dialect) {
    let mut num = itoa::Buffer::new();
    let text = match id {
        LabelId::None => return,
        LabelId::Number(n) => num.format(n),
        LabelId::Text(t) => t,
    };
    push_tag(out, key, text, dialect);
}

fn push_tag(out: &mut Vec<u8>, key: &str, value: &str, dialect: Dialect) {
    if value.is_empty() {
        return; // InfluxDB rejects empty tag values: an absent tag reads back the same.
    }
    out.push(b',');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    write_key(out, value, dialect);
}

/// Appends `,key=value` for an attribute written as a tag (nothing for an empty value);
/// a number or a boolean is written as the CSV shows it, without allocating.
fn push_attribute_tag(out: &mut Vec<u8>, key: &str, value: &AttributeValue, dialect: Dialect) {
    if matches!(value, AttributeValue::Str(s) if s.is_empty()) {
        return; // as for the fixed tags
    }
    out.push(b',');
    attribute_key(out, key, dialect);
    out.push(b'=');
    match value {
        AttributeValue::Str(s) => write_key(out, s, dialect),
        // Digits, `.`, `-`, `e`, `NaN`, `inf`, `true`, `false`: nothing to escape.
        other => {
            use std::io::Write as _;
            let _ = write!(out, "{other}"); // writing to a Vec cannot fail
        }
    }
}

/// Appends `=value` for an unsigned integer; returns whether it went as a string (V1, above `i64::MAX`).
fn push_u64(out: &mut Vec<u8>, v: u64, dialect: Dialect) -> bool {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v).as_bytes();
    match dialect {
        Dialect::Modern => {
            out.extend_from_slice(digits);
            out.push(b'u');
            false
        }
        Dialect::V1 if v <= i64::MAX as u64 => {
            out.extend_from_slice(digits);
            out.push(b'i');
            false
        }
        Dialect::V1 => {
            out.push(b'"');
            out.extend_from_slice(digits);
            out.push(b'"');
            true
        }
    }
}

impl<F: Fn(&str) -> bool> LineFormat<F> {
    /// Appends the line of `point` (with its `\n`) whose escaped measurement is `measurement`.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        point: &MeasurementPoint,
        measurement: &[u8],
    ) -> Written {
        let d = self.dialect;
        if let MeasurementValue::F64(v) = point.value {
            if !v.is_finite() {
                return Written::NonFinite;
            }
        }
        let start = out.len();
        out.extend_from_slice(measurement);
        push_tag(out, "resource_kind", point.resource.kind(), d);
        push_label(out, "resource_id", point.resource.id(), d);
        push_tag(out, "consumer_kind", point.consumer.kind(), d);
        push_label(out, "consumer_id", point.consumer.id(), d);
        let attrs = || point.attributes.iter().filter(|(k, _)| !k.is_empty());
        for (key, value) in attrs().filter(|(k, _)| (self.is_tag)(k)) {
            push_attribute_tag(out, key, value, d);
        }
        let key_len = out.len() - start;
        let mut large = 0;
        out.extend_from_slice(b" value");
        large += u32::from(self.push_value(out, point.value));
        for (key, value) in attrs().filter(|(k, _)| !(self.is_tag)(k)) {
            large += u32::from(self.push_field(out, key, value));
        }
        out.push(b' ');
        out.extend_from_slice(
            itoa::Buffer::new()
                .format(point.timestamp.unix_nanos())
                .as_bytes(),
        );
        out.push(b'\n');
        Written::Line {
            large_u64: large,
            key_len,
        }
    }

    /// Appends `=V` after the key `value` (or `_u64="V"` for a large u64 in V1).
    fn push_value(&self, out: &mut Vec<u8>, value: MeasurementValue) -> bool {
        match value {
            MeasurementValue::F64(v) => {
                out.push(b'=');
                out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
                false
            }
            MeasurementValue::U64(v) => self.push_int(out, v),
        }
    }

    fn push_int(&self, out: &mut Vec<u8>, v: u64) -> bool {
        let large = self.dialect == Dialect::V1 && v > i64::MAX as u64;
        if large {
            out.extend_from_slice(LARGE_U64_SUFFIX.as_bytes());
        }
        out.push(b'=');
        push_u64(out, v, self.dialect);
        large
    }

    /// Appends `,key=value` for an attribute written as a field (a non-finite float is left out).
    fn push_field(&self, out: &mut Vec<u8>, key: &str, value: &AttributeValue) -> bool {
        if matches!(value, AttributeValue::F64(v) if !v.is_finite()) {
            return false;
        }
        out.push(b',');
        attribute_key(out, key, self.dialect);
        match value {
            AttributeValue::Str(s) => {
                out.push(b'=');
                write_string(out, s);
            }
            AttributeValue::U64(v) => return self.push_int(out, *v),
            AttributeValue::F64(v) => {
                out.push(b'=');
                out.extend_from_slice(ryu::Buffer::new().format_finite(*v).as_bytes());
            }
            AttributeValue::Bool(b) => {
                out.extend_from_slice(if *b { b"=true" } else { b"=false" });
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;
