//! Reading the agent's CSV file (the format of plugin-csv) into series: the machine's
//! series point by point, the consumers' (processes, cgroups, jobs) summed as they are
//! read, so that a file of a thousand processes takes the memory of a few series.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::ReportError;

/// The columns that every row of the agent's CSV has, first and in this order, and the
/// last column (the attributes that have no column of their own): the csv plugin's own.
pub use plugin_csv::format::{FIXED_COLUMNS, LATE_COLUMN};

/// The unit suffixes that the csv plugin appends to metric names (UCUM codes and display
/// symbols), longest first where one ends another.
const UNITS: [&str; 17] = [
    "J", "W", "mJ", "μJ", "uJ", "ms", "μs", "us", "s", "By", "B", "%", "Cel", "°C", "Hz", "1", "g",
];

/// What a series is: its metric and unit, resource, consumer and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The metric's name, without the unit suffix.
    pub metric: String,
    /// The unit suffix of the `metric` column (`J`, `By`...), empty when there was none.
    pub unit: String,
    /// `resource_kind` and `resource_id`.
    pub resource: (String, String),
    /// `consumer_kind` and `consumer_id`.
    pub consumer: (String, String),
    /// The attributes with a value, by name.
    pub attrs: Vec<(String, String)>,
}

impl Key {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        let found = self.attrs.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// One series of the machine (consumer `local_machine`): its points in time order, as
/// (nanoseconds since the Unix epoch, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// What it is.
    pub key: Key,
    /// Its points.
    pub points: Vec<(i64, f64)>,
}

/// One metric over consumers: the same key but for the consumer, summed.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The key, with an empty consumer.
    pub key: Key,
    /// Each consumer (`kind id`) and the sum of its values.
    pub totals: Vec<(String, f64)>,
    /// The sum over consumers at each timestamp, in time order.
    pub over_time: Vec<(i64, f64)>,
}

/// Everything read from one CSV file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    /// The series of the machine, in the order they first appear.
    pub machine: Vec<Series>,
    /// The metrics of consumers, in the order they first appear.
    pub groups: Vec<Group>,
    /// Rows read as measurements.
    pub rows: u64,
    /// Rows before the time given to [`read_csv`], not counted.
    pub older_rows: u64,
    /// Rows left out, by reason: how many, and the first one's line.
    pub left_out: BTreeMap<&'static str, (u64, u64)>,
}

impl Data {
    /// The first and last timestamp of the rows read.
    pub fn window(&self) -> Option<(i64, i64)> {
        let machine = self.machine.iter().flat_map(|s| &s.points);
        let groups = self.groups.iter().flat_map(|g| &g.over_time);
        machine.chain(groups).fold(None, |w, &(t, _)| match w {
            None => Some((t, t)),
            Some((a, b)) => Some((a.min(t), b.max(t))),
        })
    }
}

/// Where a row's value goes.
#[derive(Clone, Copy)]
enum Slot {
    Machine(usize),
    Consumer { group: usize, consumer: usize },
}

/// Reads the CSV file at `path`, keeping the rows at or after `since` (nanoseconds since
/// the epoch) when given: the csv plugin appends to its file, so the file of an exec may
/// hold earlier runs.
pub fn read_csv(path: &Path, since: Option<i64>) -> Result<Data, ReportError> {
    let file = std::fs::File::open(path).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let delimiter = sniff_delimiter(&mut input, path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let mut record = csv::ByteRecord::new();
    let header = match reader.read_byte_record(&mut record) {
        Ok(true) => Header::parse(&record, path)?,
        Ok(false) => return Err(not_agent(path, "it has no header")),
        Err(e) => {
            return Err(not_agent(
                path,
                &format!("its first line cannot be read ({e})"),
            ))
        }
    };
    let mut reader_state = Reader::new(header, since);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => reader_state.row(&record),
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let reason = match e.kind() {
                    csv::ErrorKind::Io(err) => {
                        return Err(ReportError::Io {
                            path: path.to_owned(),
                            source: std::io::Error::new(err.kind(), err.to_string()),
                        })
                    }
                    _ => "rows that are not CSV (a quote left open?)",
                };
                reader_state.leave_out(reason, line);
                break;
            }
        }
    }
    let data = reader_state.finish();
    if data.rows == 0 {
        return Err(ReportError::NoData {
            path: path.to_owned(),
            detail: describe_empty(&data),
        });
    }
    Ok(data)
}

fn describe_empty(data: &Data) -> String {
    let mut detail = String::from("no row could be read as a measurement");
    if data.older_rows > 0 {
        detail = format!("its {} rows are all older than the run", data.older_rows);
    }
    for (reason, (n, line)) in &data.left_out {
        detail.push_str(&format!("; {n} left out: {reason} (first at line {line})"));
    }
    detail
}

fn not_agent(path: &Path, reason: &str) -> ReportError {
    ReportError::NotAgentCsv {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The delimiter is the character after `metric` on the first line (the csv plugin
/// writes `metric` first, whatever its `csv_delimiter`).
fn sniff_delimiter(input: &mut impl std::io::BufRead, path: &Path) -> Result<u8, ReportError> {
    let head = input.fill_buf().map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if head.is_empty() {
        return Err(not_agent(path, "it is empty"));
    }
    match head.strip_prefix(b"metric") {
        Some([d, ..]) if d.is_ascii() && !d.is_ascii_alphanumeric() && *d != b'_' => Ok(*d),
        _ => {
            let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
            let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned();
            Err(not_agent(
                path,
                &format!("its first line does not start with `metric` and a delimiter: `{shown}`"),
            ))
        }
    }
}

/// The columns of the file.
struct Header {
    /// Attribute columns: (index, name).
    attrs: Vec<(usize, String)>,
    /// The `__late_attributes` column.
    late: Option<usize>,
}

impl Header {
    fn parse(record: &csv::ByteRecord, path: &Path) -> Result<Header, ReportError> {
        for (i, expected) in FIXED_COLUMNS.iter().enumerate() {
            let found = record.get(i).map(String::from_utf8_lossy);
            if found.as_deref() != Some(*expected) {
                let found = found.map_or("nothing".into(), |f| format!("`{f}`"));
                return Err(not_agent(
                    path,
                    &format!(
                        "column {} of its header is {found}, not `{expected}`",
                        i + 1
                    ),
                ));
            }
        }
        let mut attrs = Vec::new();
        let mut late = None;
        for (i, name) in record.iter().enumerate().skip(FIXED_COLUMNS.len()) {
            let name = String::from_utf8_lossy(name).into_owned();
            if name == LATE_COLUMN {
                late = Some(i);
            } else {
                attrs.push((i, name));
            }
        }
        Ok(Header { attrs, late })
    }
}

/// The state of one read: interned series and the timestamp last parsed.
struct Reader {
    header: Header,
    since: Option<i64>,
    slots: HashMap<Box<[u8]>, Slot>,
    /// Groups by their key without the consumer.
    group_ids: HashMap<Box<[u8]>, usize>,
    key: Vec<u8>,
    last_time: (Vec<u8>, i64),
    data: Data,
}

impl Reader {
    fn new(header: Header, since: Option<i64>) -> Self {
        Reader {
            header,
            since,
            slots: HashMap::new(),
            group_ids: HashMap::new(),
            key: Vec::with_capacity(256),
            last_time: (Vec::new(), 0),
            data: Data::default(),
        }
    }

    fn leave_out(&mut self, reason: &'static str, line: u64) {
        let entry = self.data.left_out.entry(reason).or_insert((0, line));
        entry.0 += 1;
    }

    fn row(&mut self, record: &csv::ByteRecord) {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() < FIXED_COLUMNS.len() + self.header.attrs.len() {
            return self.leave_out("rows with missing columns (a file cut short?)", line);
        }
        let Some(time) = self.timestamp(&record[1]) else {
            return self.leave_out("rows whose timestamp is not RFC 3339", line);
        };
        let value = std::str::from_utf8(&record[2])
            .ok()
            .and_then(|v| v.parse::<f64>().ok());
        let Some(value) = value else {
            return self.leave_out("rows whose value is not a number", line);
        };
        if !value.is_finite() {
            return self.leave_out("values that are not finite (NaN, inf)", line);
        }
        if self.since.is_some_and(|since| time < since) {
            self.data.older_rows += 1;
            return;
        }
        self.data.rows += 1;
        let slot = self.slot(record);
        match slot {
            Slot::Machine(i) => self.data.machine[i].points.push((time, value)),
            Slot::Consumer { group, consumer } => {
                let g = &mut self.data.groups[group];
                g.totals[consumer].1 += value;
                add_at(&mut g.over_time, time, value);
            }
        }
    }

    /// Nanoseconds since the epoch; the rows of one poll share their timestamp, so the
    /// last one is kept.
    fn timestamp(&mut self, field: &[u8]) -> Option<i64> {
        if self.last_time.0 == field {
            return Some(self.last_time.1);
        }
        let text = std::str::from_utf8(field).ok()?;
        let time = humantime::parse_rfc3339(text).ok()?;
        let since_epoch = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        let ns = i64::try_from(since_epoch.as_nanos()).ok()?;
        self.last_time = (field.to_vec(), ns);
        Some(ns)
    }

    /// The slot of the row's series, created at its first row.
    fn slot(&mut self, record: &csv::ByteRecord) -> Slot {
        self.key.clear();
        for i in [0, 3, 4, 5, 6] {
            self.key.extend_from_slice(&record[i]);
            self.key.push(0);
        }
        for (i, _) in &self.header.attrs {
            self.key.extend_from_slice(&record[*i]);
            self.key.push(0);
        }
        if let Some(late) = self.header.late.and_then(|i| record.get(i)) {
            self.key.extend_from_slice(late);
        }
        if let Some(slot) = self.slots.get(self.key.as_slice()) {
            return *slot;
        }
        let key = self.decode(record);
        let slot = if is_machine(&key.consumer.0) {
            self.data.machine.push(Series {
                key,
                points: Vec::new(),
            });
            Slot::Machine(self.data.machine.len() - 1)
        } else {
            let consumer = format!("{} {}", key.consumer.0, key.consumer.1);
            let group_key = Key {
                consumer: (String::new(), String::new()),
                ..key
            };
            let id = format!("{group_key:?}").into_bytes().into_boxed_slice();
            let groups = &mut self.data.groups;
            let group = *self.group_ids.entry(id).or_insert_with(|| {
                groups.push(Group {
                    key: group_key,
                    totals: Vec::new(),
                    over_time: Vec::new(),
                });
                groups.len() - 1
            });
            let totals = &mut self.data.groups[group].totals;
            totals.push((consumer, 0.0));
            Slot::Consumer {
                group,
                consumer: totals.len() - 1,
            }
        };
        self.slots.insert(self.key.clone().into_boxed_slice(), slot);
        slot
    }

    fn decode(&self, record: &csv::ByteRecord) -> Key {
        let text = |i: usize| String::from_utf8_lossy(&record[i]).into_owned();
        let (metric, unit) = split_unit(&text(0));
        let mut attrs: Vec<(String, String)> = (self.header.attrs.iter())
            .filter(|(i, _)| !record[*i].is_empty())
            .map(|(i, name)| (name.clone(), text(*i)))
            .collect();
        if let Some(late) = self.header.late.and_then(|i| record.get(i)) {
            attrs.extend(split_late(&String::from_utf8_lossy(late)));
        }
        Key {
            metric,
            unit,
            resource: (text(3), text(4)),
            consumer: (text(5), text(6)),
            attrs,
        }
    }

    fn finish(mut self) -> Data {
        for s in &mut self.data.machine {
            if !s.points.is_sorted_by_key(|p| p.0) {
                s.points.sort_by_key(|p| p.0);
            }
        }
        self.data
    }
}

/// Whether a consumer kind is the machine (the csv plugin writes `local_machine`; an empty
/// kind is read the same).
fn is_machine(kind: &str) -> bool {
    kind.is_empty() || kind == "local_machine"
}

/// Adds `value` at `time` to a sum kept in time order (rows mostly come in time order).
fn add_at(sums: &mut Vec<(i64, f64)>, time: i64, value: f64) {
    match sums.last_mut() {
        Some(last) if last.0 == time => last.1 += value,
        Some(last) if last.0 > time => match sums.binary_search_by_key(&time, |p| p.0) {
            Ok(i) => sums[i].1 += value,
            Err(i) => sums.insert(i, (time, value)),
        },
        _ => sums.push((time, value)),
    }
}

/// Splits `rapl_consumed_energy_J` into the metric name and its unit.
pub fn split_unit(column: &str) -> (String, String) {
    if let Some((name, unit)) = column.rsplit_once('_') {
        if !name.is_empty() && UNITS.contains(&unit) {
            return (name.to_owned(), unit.to_owned());
        }
    }
    (column.to_owned(), String::new())
}

/// The `key=value` pairs of `__late_attributes` (written with the default `,`; `\`
/// escapes `\`, `=` and the separator).
fn split_late(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let (mut key, mut current, mut in_value) = (String::new(), String::new(), false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            '=' if !in_value => {
                key = std::mem::take(&mut current);
                in_value = true;
            }
            ',' => {
                if in_value {
                    pairs.push((std::mem::take(&mut key), std::mem::take(&mut current)));
                }
                current.clear();
                in_value = false;
            }
            c => current.push(c),
        }
    }
    if in_value {
        pairs.push((key, current));
    }
    pairs
}

#[cfg(test)]
mod tests;
