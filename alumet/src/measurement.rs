//! Measurement points and what they describe: timestamps, values, resources, consumers and
//! attributes.
//!
//! A [`MeasurementPoint`] is copied and queued millions of times, so it is kept small
//! (at most 128 bytes, checked by a test) and needs no heap allocation for the common
//! case: resources and consumers with numeric ids are inline, and an attribute set is
//! built once and shared between points by reference counting.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::{MetricId, RawMetricId};

/// A point in wall-clock time, stored as nanoseconds since the Unix epoch.
///
/// Use it to date measurements, never to compute rates: rates use the monotonic clock
/// ([`std::time::Instant`]) between two readings.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// A timestamp from nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> u64 {
        self.0
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.0)
    }
}

impl From<SystemTime> for Timestamp {
    /// Times before 1970 become the epoch; times after 2554 saturate.
    fn from(t: SystemTime) -> Self {
        let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Self(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// The type of a metric's values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Unsigned 64-bit integers (counters, bytes, ids).
    U64,
    /// 64-bit floating point numbers (joules, watts, ratios).
    F64,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::U64 => "u64",
            ValueType::F64 => "f64",
        })
    }
}

/// A measured value.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum MeasurementValue {
    /// An unsigned integer.
    U64(u64),
    /// A floating point number.
    F64(f64),
}

impl MeasurementValue {
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            MeasurementValue::U64(_) => ValueType::U64,
            MeasurementValue::F64(_) => ValueType::F64,
        }
    }

    /// The value as a float (integers above 2^53 lose precision).
    pub fn as_f64(&self) -> f64 {
        match *self {
            MeasurementValue::U64(v) => v as f64,
            MeasurementValue::F64(v) => v,
        }
    }
}

impl fmt::Display for MeasurementValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeasurementValue::U64(v) => write!(f, "{v}"),
            MeasurementValue::F64(v) => write!(f, "{v}"),
        }
    }
}

/// A Rust type that can be the value type of a metric: `u64` or `f64`.
pub trait MeasurementType: Copy + Send + Sync + 'static + private::Sealed {
    /// The corresponding [`ValueType`].
    const VALUE_TYPE: ValueType;
    /// Wraps a value of this type.
    fn into_value(self) -> MeasurementValue;
}

impl MeasurementType for u64 {
    const VALUE_TYPE: ValueType = ValueType::U64;
    fn into_value(self) -> MeasurementValue {
        MeasurementValue::U64(self)
    }
}

impl MeasurementType for f64 {
    const VALUE_TYPE: ValueType = ValueType::F64;
    fn into_value(self) -> MeasurementValue {
        MeasurementValue::F64(self)
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for f64 {}
}

/// The kind and id of a custom resource or consumer, shared by reference counting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomLabel {
    /// The kind, for example `wattmeter` (the CSV column `resource_kind`).
    pub kind: Box<str>,
    /// The id within that kind, for example `pdu-3`.
    pub id: Box<str>,
}

/// The id part of a resource or consumer, printed without allocating.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LabelId<'a> {
    /// No id (the local machine).
    None,
    /// A numeric id (a package number, a pid).
    Number(u32),
    /// A textual id (a PCI bus id, a cgroup path).
    Text(&'a str),
}

impl fmt::Display for LabelId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelId::None => Ok(()),
            LabelId::Number(n) => write!(f, "{n}"),
            LabelId::Text(s) => f.write_str(s),
        }
    }
}

/// What is measured.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The whole machine (kind `local_machine`, empty id).
    LocalMachine,
    /// One CPU package, or socket (kind `cpu_package`).
    CpuPackage {
        /// The package id, as in `/sys/devices/system/cpu/cpu*/topology/physical_package_id`.
        id: u32,
    },
    /// One CPU core (kind `cpu_core`).
    CpuCore {
        /// The core id, as the kernel numbers CPUs.
        id: u32,
    },
    /// The memory attached to one package (kind `dram`).
    Dram {
        /// The package id.
        pkg_id: u32,
    },
    /// One GPU (kind `gpu`), identified by its PCI bus id.
    Gpu {
        /// The PCI bus id, for example `00000000:3B:00.0`.
        bus_id: Arc<str>,
    },
    /// Anything else.
    Custom(Arc<CustomLabel>),
}

impl Resource {
    /// A custom resource; build it once and clone it, the clone does not allocate.
    pub fn custom(kind: impl Into<Box<str>>, id: impl Into<Box<str>>) -> Self {
        Resource::Custom(Arc::new(CustomLabel {
            kind: kind.into(),
            id: id.into(),
        }))
    }

    /// The kind, the CSV column `resource_kind`.
    pub fn kind(&self) -> &str {
        match self {
            Resource::LocalMachine => "local_machine",
            Resource::CpuPackage { .. } => "cpu_package",
            Resource::CpuCore { .. } => "cpu_core",
            Resource::Dram { .. } => "dram",
            Resource::Gpu { .. } => "gpu",
            Resource::Custom(label) => &label.kind,
        }
    }

    /// The id, the CSV column `resource_id`.
    pub fn id(&self) -> LabelId<'_> {
        match self {
            Resource::LocalMachine => LabelId::None,
            Resource::CpuPackage { id } | Resource::CpuCore { id } => LabelId::Number(*id),
            Resource::Dram { pkg_id } => LabelId::Number(*pkg_id),
            Resource::Gpu { bus_id } => LabelId::Text(bus_id),
            Resource::Custom(label) => LabelId::Text(&label.id),
        }
    }
}

/// Who consumes the measured resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceConsumer {
    /// The whole machine (kind `local_machine`, empty id).
    LocalMachine,
    /// One process (kind `process`).
    Process {
        /// The process id.
        pid: u32,
    },
    /// One control group (kind `cgroup`), by its path under the cgroup root.
    ControlGroup {
        /// The path, for example `/system.slice/nginx.service`.
        path: Arc<str>,
    },
    /// Anything else.
    Custom(Arc<CustomLabel>),
}

impl ResourceConsumer {
    /// A custom consumer; build it once and clone it, the clone does not allocate.
    pub fn custom(kind: impl Into<Box<str>>, id: impl Into<Box<str>>) -> Self {
        ResourceConsumer::Custom(Arc::new(CustomLabel {
            kind: kind.into(),
            id: id.into(),
        }))
    }

    /// The kind, the CSV column `consumer_kind`.
    pub fn kind(&self) -> &str {
        match self {
            ResourceConsumer::LocalMachine => "local_machine",
            ResourceConsumer::Process { .. } => "process",
            ResourceConsumer::ControlGroup { .. } => "cgroup",
            ResourceConsumer::Custom(label) => &label.kind,
        }
    }

    /// The id, the CSV column `consumer_id`.
    pub fn id(&self) -> LabelId<'_> {
        match self {
            ResourceConsumer::LocalMachine => LabelId::None,
            ResourceConsumer::Process { pid } => LabelId::Number(*pid),
            ResourceConsumer::ControlGroup { path } => LabelId::Text(path),
            ResourceConsumer::Custom(label) => LabelId::Text(&label.id),
        }
    }
}

/// The value of an attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    /// Text.
    Str(Box<str>),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Str(s) => f.write_str(s),
            AttributeValue::U64(v) => write!(f, "{v}"),
            AttributeValue::F64(v) => write!(f, "{v}"),
            AttributeValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl From<&str> for AttributeValue {
    fn from(v: &str) -> Self {
        AttributeValue::Str(v.into())
    }
}
impl From<String> for AttributeValue {
    fn from(v: String) -> Self {
        AttributeValue::Str(v.into())
    }
}
impl From<u64> for AttributeValue {
    fn from(v: u64) -> Self {
        AttributeValue::U64(v)
    }
}
impl From<f64> for AttributeValue {
    fn from(v: f64) -> Self {
        AttributeValue::F64(v)
    }
}
impl From<bool> for AttributeValue {
    fn from(v: bool) -> Self {
        AttributeValue::Bool(v)
    }
}

/// An immutable set of `key = value` attributes, shared between points.
///
/// Build a set once (when the source is created) and clone it into each point: a clone
/// increments a reference count and never allocates. The empty set is not allocated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Option<Arc<[Attribute]>>);

/// One `key = value` pair of an [`Attributes`] set.
pub type Attribute = (Box<str>, AttributeValue);

impl Attributes {
    /// The empty set.
    pub const fn none() -> Self {
        Attributes(None)
    }

    /// A set from `(key, value)` pairs, in the order given.
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<Box<str>>,
        V: Into<AttributeValue>,
    {
        let pairs: Vec<Attribute> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        if pairs.is_empty() {
            Attributes(None)
        } else {
            Attributes(Some(pairs.into()))
        }
    }

    /// A new set with one more pair (it allocates: do it outside the hot path).
    pub fn with(&self, key: impl Into<Box<str>>, value: impl Into<AttributeValue>) -> Self {
        let mut pairs: Vec<Attribute> = self.0.iter().flat_map(|a| a.iter().cloned()).collect();
        pairs.push((key.into(), value.into()));
        Attributes(Some(pairs.into()))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&AttributeValue> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttributeValue)> {
        self.0.iter().flat_map(|a| a.iter().map(|(k, v)| (&**k, v)))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |a| a.len())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One measured value of one metric, at one time, for one resource and consumer.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementPoint {
    /// The metric.
    pub metric: RawMetricId,
    /// When the value was measured.
    pub timestamp: Timestamp,
    /// The value; its type is the metric's value type.
    pub value: MeasurementValue,
    /// What was measured.
    pub resource: Resource,
    /// Who consumed it.
    pub consumer: ResourceConsumer,
    /// Extra dimensions, for example `domain = package`.
    pub attributes: Attributes,
}

impl MeasurementPoint {
    /// A point without attributes. The typed metric id guarantees that the value has the
    /// metric's type.
    pub fn new<T: MeasurementType>(
        timestamp: Timestamp,
        metric: MetricId<T>,
        resource: Resource,
        consumer: ResourceConsumer,
        value: T,
    ) -> Self {
        MeasurementPoint {
            metric: metric.raw(),
            timestamp,
            value: value.into_value(),
            resource,
            consumer,
            attributes: Attributes::none(),
        }
    }

    /// Sets the attributes (pass a clone of a shared set: it does not allocate).
    pub fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }
}

/// A batch of points, as transforms and outputs see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeasurementBuffer {
    points: Vec<MeasurementPoint>,
}

impl MeasurementBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty buffer with room for `n` points.
    pub fn with_capacity(n: usize) -> Self {
        MeasurementBuffer {
            points: Vec::with_capacity(n),
        }
    }

    /// Adds a point.
    pub fn push(&mut self, point: MeasurementPoint) {
        self.points.push(point);
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there is no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Makes room for at least `n` points in all, without growing if there is room.
    pub fn reserve(&mut self, n: usize) {
        self.points.reserve(n.saturating_sub(self.points.len()));
    }

    /// Removes every point, keeping the memory for reuse.
    pub fn clear(&mut self) {
        self.points.clear();
    }

    /// The points.
    pub fn iter(&self) -> std::slice::Iter<'_, MeasurementPoint> {
        self.points.iter()
    }

    /// The points, mutable (transforms use it to change values in place).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, MeasurementPoint> {
        self.points.iter_mut()
    }

    /// Keeps only the points for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&MeasurementPoint) -> bool) {
        self.points.retain(keep);
    }

    /// The points as a slice.
    pub fn as_slice(&self) -> &[MeasurementPoint] {
        &self.points
    }

    /// The points as a mutable vector (to reorder, drain or extend them).
    pub fn as_mut_vec(&mut self) -> &mut Vec<MeasurementPoint> {
        &mut self.points
    }

    /// A view on this buffer that only accepts new points, as sources see it.
    pub fn as_accumulator(&mut self) -> &mut MeasurementAccumulator {
        // SAFETY: MeasurementAccumulator is a repr(transparent) wrapper around
        // MeasurementBuffer, so the two references have the same layout and validity.
        unsafe { &mut *(self as *mut MeasurementBuffer as *mut MeasurementAccumulator) }
    }
}

impl<'a> IntoIterator for &'a MeasurementBuffer {
    type Item = &'a MeasurementPoint;
    type IntoIter = std::slice::Iter<'a, MeasurementPoint>;
    fn into_iter(self) -> Self::IntoIter {
        self.points.iter()
    }
}

impl FromIterator<MeasurementPoint> for MeasurementBuffer {
    fn from_iter<I: IntoIterator<Item = MeasurementPoint>>(iter: I) -> Self {
        MeasurementBuffer {
            points: iter.into_iter().collect(),
        }
    }
}

impl From<Vec<MeasurementPoint>> for MeasurementBuffer {
    fn from(points: Vec<MeasurementPoint>) -> Self {
        MeasurementBuffer { points }
    }
}

/// Where a source puts the points it measures: it can only add points.
#[repr(transparent)]
#[derive(Debug)]
pub struct MeasurementAccumulator(MeasurementBuffer);

impl MeasurementAccumulator {
    /// Adds a point.
    pub fn push(&mut self, point: MeasurementPoint) {
        self.0.push(point);
    }

    /// Number of points added since the last flush.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no point was added since the last flush.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_is_at_most_128_bytes() {
        assert!(
            std::mem::size_of::<MeasurementPoint>() <= 128,
            "{}",
            std::mem::size_of::<MeasurementPoint>()
        );
    }

    #[test]
    fn attribute_sets_are_shared_not_copied() {
        let attrs = Attributes::new([("domain", "package")]);
        let copy = attrs.clone();
        let (Some(a), Some(b)) = (&attrs.0, &copy.0) else {
            panic!("attributes are empty")
        };
        assert!(Arc::ptr_eq(a, b));
        assert_eq!(
            copy.get("domain"),
            Some(&AttributeValue::Str("package".into()))
        );
        assert_eq!(copy.get("other"), None);
        assert!(Attributes::new(Vec::<(&str, u64)>::new()).0.is_none());
        let more = attrs.with("cpu_state", 3u64);
        assert_eq!(more.len(), 2);
        assert_eq!(attrs.len(), 1);
    }

    #[test]
    fn kinds_and_ids_are_the_csv_columns() {
        let cases = [
            (
                Resource::LocalMachine.kind().to_owned(),
                Resource::LocalMachine.id().to_string(),
                "local_machine",
                "",
            ),
            (
                Resource::CpuPackage { id: 1 }.kind().into(),
                Resource::CpuPackage { id: 1 }.id().to_string(),
                "cpu_package",
                "1",
            ),
            (
                Resource::Dram { pkg_id: 0 }.kind().into(),
                Resource::Dram { pkg_id: 0 }.id().to_string(),
                "dram",
                "0",
            ),
            (
                Resource::custom("pdu", "a").kind().into(),
                Resource::custom("pdu", "a").id().to_string(),
                "pdu",
                "a",
            ),
            (
                ResourceConsumer::Process { pid: 42 }.kind().into(),
                ResourceConsumer::Process { pid: 42 }.id().to_string(),
                "process",
                "42",
            ),
        ];
        for (kind, id, want_kind, want_id) in cases {
            assert_eq!((kind.as_str(), id.as_str()), (want_kind, want_id));
        }
        let cg = ResourceConsumer::ControlGroup {
            path: "/a/b".into(),
        };
        assert_eq!(
            (cg.kind(), cg.id().to_string().as_str()),
            ("cgroup", "/a/b")
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let t = Timestamp::from_unix_nanos(1_700_000_000_123_456_789);
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        assert!(Timestamp::now() > t);
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(1)).unix_nanos(),
            0
        );
    }
}
