//! Pure formatting: CSV rows and the header into byte buffers, and the header of an
//! existing file parsed back. No I/O, no allocation per point.

use alumet::measurement::{
    AttributeValue, Attributes, LabelId, MeasurementPoint, MeasurementValue,
};
use alumet::metrics::Unit;

use cache::{Labels, TailCache, TimestampCache};

mod cache;

/// The columns that every row has, before the attribute columns.
pub const FIXED_COLUMNS: [&str; 7] = [
    "metric",
    "timestamp",
    "value",
    "resource_kind",
    "resource_id",
    "consumer_kind",
    "consumer_id",
];

/// The last column: `key=value` pairs of the attributes that have no column of their own.
pub const LATE_COLUMN: &str = "__late_attributes";

/// Length of `2026-11-26T06:25:59.123456789Z`.
pub const TIMESTAMP_LEN: usize = 30;

/// How much of an existing file is read to find its header.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// What follows the metric name in the `metric` column.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnitSuffix {
    /// The bare metric name.
    None,
    /// `_` and the UCUM code: `_J`, `_By`, `_Cel`, `_1`.
    Code,
    /// `_` and the display symbol: `_J`, `_B`, `_°C`, nothing for a dimensionless unit.
    Display,
}

/// The `metric` field of a metric, escaped, computed once per metric.
pub fn metric_field(name: &str, unit: &Unit, suffix: UnitSuffix, delim: char) -> Box<[u8]> {
    let unit = match suffix {
        UnitSuffix::None => "",
        UnitSuffix::Code => unit.code(),
        UnitSuffix::Display => unit.display_name(),
    };
    let mut text = String::with_capacity(name.len() + 1 + unit.len());
    text.push_str(name);
    if !unit.is_empty() {
        text.push('_');
        text.push_str(unit);
    }
    let mut out = Vec::with_capacity(text.len() + 2);
    write_field(&mut out, text.as_bytes(), delim);
    out.into_boxed_slice()
}

/// Appends a character (the delimiter) as UTF-8.
#[inline]
pub fn push_char(out: &mut Vec<u8>, c: char) {
    if c.is_ascii() {
        out.push(c as u8);
    } else {
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// Whether one of the 8 bytes of `word` is `byte` (the "has zero byte" bit trick on
/// `word ^ byte…`: exact as a yes/no answer).
#[inline]
fn has_byte(word: u64, byte: u8) -> bool {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & (ONES << 7) != 0
}

/// Whether a field with an ASCII delimiter `d` needs quotes: 8 bytes at a time, the last
/// 8 bytes overlapping the word before them.
#[inline]
fn needs_quotes_ascii(field: &[u8], d: u8) -> bool {
    if field.len() < 8 {
        return field
            .iter()
            .any(|&b| matches!(b, b'"' | b'\n' | b'\r') || b == d);
    }
    let special = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&field[at..at + 8]);
        let w = u64::from_le_bytes(word);
        has_byte(w, b'"') | has_byte(w, b'\n') | has_byte(w, b'\r') | has_byte(w, d)
    };
    let last = field.len() - 8;
    (0..last).step_by(8).any(special) || special(last)
}

#[inline]
fn needs_quotes(field: &[u8], delim: char) -> bool {
    if delim.is_ascii() {
        return needs_quotes_ascii(field, delim as u8);
    }
    let mut buf = [0; 4];
    let d = delim.encode_utf8(&mut buf).as_bytes();
    field.iter().any(|&b| matches!(b, b'"' | b'\n' | b'\r'))
        || field.windows(d.len()).any(|w| w == d)
}

/// Appends a field, quoted when it holds the delimiter, a quote, CR or LF, with its quotes
/// doubled (RFC 4180).
#[inline]
pub fn write_field(out: &mut Vec<u8>, field: &[u8], delim: char) {
    if !needs_quotes(field, delim) {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    for (i, part) in field.split(|&b| b == b'"').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part);
    }
    out.push(b'"');
}

/// Appends an integer in decimal.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a float in its shortest form that parses back to the same value (`12.5`, `1.0`,
/// `1e-7`, `-0.0`); `NaN`, `inf` and `-inf` for the others (Rust, Python and pandas parse
/// them).
#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(ryu::Buffer::new().format(v).as_bytes());
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, for days that are not negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of the 400-year era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

/// Writes `v` in decimal into the whole of `slot`, with leading zeros.
fn put_digits(slot: &mut [u8], mut v: u64) {
    for b in slot.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// RFC 3339 in UTC with nanoseconds: `2026-11-26T06:25:59.123456789Z` (always 9 digits, so
/// that the column has a fixed width and sorts as text).
pub fn format_timestamp(unix_nanos: u64) -> [u8; TIMESTAMP_LEN] {
    let secs = unix_nanos / 1_000_000_000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    let mut t = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut t[0..4], year);
    put_digits(&mut t[5..7], month);
    put_digits(&mut t[8..10], day);
    put_digits(&mut t[11..13], sod / 3600);
    put_digits(&mut t[14..16], sod / 60 % 60);
    put_digits(&mut t[17..19], sod % 60);
    put_digits(&mut t[20..29], unix_nanos % 1_000_000_000);
    t
}

fn write_label(out: &mut Vec<u8>, id: LabelId<'_>, delim: char) {
    match id {
        LabelId::None => {}
        LabelId::Number(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        LabelId::Text(s) => write_field(out, s.as_bytes(), delim),
    }
}

/// Appends an attribute value; text is escaped with `text`, the others never need it
/// (delimiters cannot be letters, digits, `.`, `-` or `+`).
fn write_attribute(out: &mut Vec<u8>, v: &AttributeValue, text: impl FnOnce(&mut Vec<u8>, &str)) {
    match v {
        AttributeValue::Str(s) => text(out, s),
        AttributeValue::U64(n) => write_u64(out, *n),
        AttributeValue::F64(x) => write_f64(out, *x),
        AttributeValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
    }
}

/// Appends a key or a text value of `__late_attributes`, with `\` before `\`, `=` and the
/// late delimiter, so that the pairs can be split back.
pub fn write_late_part(out: &mut Vec<u8>, s: &str, late: char) {
    for c in s.chars() {
        if c == '\\' || c == '=' || c == late {
            out.push(b'\\');
        }
        push_char(out, c);
    }
}

/// The layout of the rows of one file: delimiters and attribute columns.
#[derive(Debug)]
struct Layout {
    delimiter: char,
    late_delimiter: char,
    columns: Vec<Box<str>>,
}

impl Layout {
    /// Appends what follows `consumer_id` in the rows of points with these attributes:
    /// the attribute columns, `__late_attributes` and the line break.
    fn write_tail(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>, attributes: &Attributes) {
        let d = self.delimiter;
        for column in &self.columns {
            push_char(out, d);
            if let Some(v) = attributes.get(column) {
                write_attribute(out, v, |out, s| write_field(out, s.as_bytes(), d));
            }
        }
        push_char(out, d);
        scratch.clear();
        let late = self.late_delimiter;
        for (key, v) in attributes.iter() {
            if self.columns.iter().any(|c| **c == *key) {
                continue;
            }
            if !scratch.is_empty() {
                push_char(scratch, late);
            }
            write_late_part(scratch, key, late);
            scratch.push(b'=');
            write_attribute(scratch, v, |out, s| write_late_part(out, s, late));
        }
        write_field(out, scratch, d);
        out.push(b'\n');
    }
}

/// The rows of one file: their layout, and what consecutive rows repeat, formatted once.
#[derive(Debug)]
pub struct RowFormat {
    layout: Layout,
    labels: Labels,
    timestamps: TimestampCache,
    tails: TailCache,
}

impl RowFormat {
    /// A layout with these attribute columns, in order.
    pub fn new(delimiter: char, late_delimiter: char, columns: Vec<Box<str>>) -> Self {
        RowFormat {
            layout: Layout {
                delimiter,
                late_delimiter,
                columns,
            },
            labels: Labels::new(delimiter),
            timestamps: TimestampCache::default(),
            tails: TailCache::default(),
        }
    }

    /// Appends the header line.
    pub fn write_header(&self, out: &mut Vec<u8>) {
        let Layout {
            delimiter, columns, ..
        } = &self.layout;
        let names = FIXED_COLUMNS.iter().copied();
        let names = names.chain(columns.iter().map(|c| &**c));
        for (i, name) in names.chain([LATE_COLUMN]).enumerate() {
            if i > 0 {
                push_char(out, *delimiter);
            }
            write_field(out, name.as_bytes(), *delimiter);
        }
        out.push(b'\n');
    }

    /// Appends the row of one point; `metric` is its escaped `metric` field.
    #[inline]
    pub fn write_row(&mut self, out: &mut Vec<u8>, metric: &[u8], p: &MeasurementPoint) {
        let d = self.layout.delimiter;
        out.extend_from_slice(metric);
        push_char(out, d);
        out.extend_from_slice(self.timestamps.format(p.timestamp.unix_nanos()));
        push_char(out, d);
        match p.value {
            MeasurementValue::U64(v) => write_u64(out, v),
            MeasurementValue::F64(v) => write_f64(out, v),
        }
        out.extend_from_slice(self.labels.get(&p.resource, &p.consumer, d));
        let layout = &self.layout;
        let tail = self.tails.get(&p.attributes, &|out, scratch, attributes| {
            layout.write_tail(out, scratch, attributes)
        });
        out.extend_from_slice(tail);
    }
}

/// Splits the first record of `text` (up to an unquoted LF) into unquoted fields; `None`
/// when there is no complete record.
pub fn first_record(text: &str, delim: char) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    // Whether the last character was an unquoted CR (of a CRLF line end; a quoted one is
    // part of the field).
    let mut cr = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let unquoted_cr = !quoted && c == '\r';
        if quoted {
            if c != '"' {
                field.push(c);
            } else if chars.next_if_eq(&'"').is_some() {
                field.push('"');
            } else {
                quoted = false;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == delim {
            fields.push(std::mem::take(&mut field));
        } else if c == '\n' {
            if cr {
                field.pop();
            }
            fields.push(field);
            return Some(fields);
        } else {
            field.push(c);
        }
        cr = unquoted_cr;
    }
    None
}

/// The attribute columns of a header written by this output with delimiter `delim`; an
/// error says what differs.
pub fn attribute_columns(header: &[String], delim: char) -> anyhow::Result<Vec<Box<str>>> {
    let n = header.len();
    let fixed_ok = n > FIXED_COLUMNS.len() && header[..FIXED_COLUMNS.len()] == FIXED_COLUMNS;
    anyhow::ensure!(
        fixed_ok && header[n - 1] == LATE_COLUMN,
        "its first line is not a header of this output with csv_delimiter {delim:?}: expected `{}{delim}...{LATE_COLUMN}`, found `{}`; \
         choose another output_path or move the file away",
        FIXED_COLUMNS.join(&delim.to_string()),
        header.join(&delim.to_string())
    );
    let attributes = &header[FIXED_COLUMNS.len()..n - 1];
    Ok(attributes.iter().map(|c| c.as_str().into()).collect())
}

#[cfg(test)]
mod tests;
