//! Points as a Rust plugin builds and reads them: thin, borrowing wrappers over
//! [`AlumetPoint`] (no copy, no allocation).

use std::fmt;
use std::marker::PhantomData;

use crate::abi::*;

/// A value type of metrics: `u64` or `f64`.
pub trait MetricValue: Copy + private::Sealed {
    /// `ALUMET_U64` or `ALUMET_F64`.
    const VALUE_TYPE: u32;
    #[doc(hidden)]
    fn store(self, point: &mut AlumetPoint);
}

impl MetricValue for u64 {
    const VALUE_TYPE: u32 = ALUMET_U64;
    fn store(self, point: &mut AlumetPoint) {
        point.value_u64 = self;
    }
}

impl MetricValue for f64 {
    const VALUE_TYPE: u32 = ALUMET_F64;
    fn store(self, point: &mut AlumetPoint) {
        point.value_f64 = self;
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for f64 {}
}

/// The id of a metric created by this plugin, with values of type `T`.
pub struct MetricId<T> {
    id: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> MetricId<T> {
    pub(crate) fn new(id: u32) -> Self {
        MetricId {
            id,
            _type: PhantomData,
        }
    }

    /// The id, as found in the points of a buffer.
    pub fn id(self) -> u32 {
        self.id
    }
}

impl<T> Clone for MetricId<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for MetricId<T> {}
impl<T> fmt::Debug for MetricId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetricId({})", self.id)
    }
}

/// One `key = value` attribute; build a slice of them once and reuse it in every point.
#[repr(transparent)]
#[derive(Copy, Clone, Debug)]
pub struct Attribute<'a>(AlumetAttribute, PhantomData<&'a str>);

impl<'a> Attribute<'a> {
    /// An attribute.
    pub const fn new(key: &'a str, value: &'a str) -> Self {
        Attribute(
            AlumetAttribute {
                key: AlumetStr::new(key),
                value: AlumetStr::new(value),
            },
            PhantomData,
        )
    }
}

// SAFETY: an Attribute only holds shared borrows of strings.
unsafe impl Send for Attribute<'_> {}
// SAFETY: as above.
unsafe impl Sync for Attribute<'_> {}

/// A point to push, borrowing its strings.
#[derive(Clone, Copy, Debug)]
pub struct Point<'a> {
    raw: AlumetPoint,
    _borrows: PhantomData<&'a str>,
}

impl<'a> Point<'a> {
    /// A point of the local machine (resource and consumer), without attributes.
    pub fn new<T: MetricValue>(metric: MetricId<T>, timestamp_ns: u64, value: T) -> Self {
        let mut raw = AlumetPoint::empty();
        raw.metric = metric.id;
        raw.value_type = T::VALUE_TYPE;
        raw.timestamp_ns = timestamp_ns;
        value.store(&mut raw);
        Point {
            raw,
            _borrows: PhantomData,
        }
    }

    /// What was measured: `("cpu_package", "0")`, `("gpu", bus_id)`, or a custom kind.
    pub fn resource(mut self, kind: &'a str, id: &'a str) -> Self {
        self.raw.resource_kind = AlumetStr::new(kind);
        self.raw.resource_id = AlumetStr::new(id);
        self
    }

    /// Who consumed it: `("process", "4242")`, `("cgroup", path)`, or a custom kind.
    pub fn consumer(mut self, kind: &'a str, id: &'a str) -> Self {
        self.raw.consumer_kind = AlumetStr::new(kind);
        self.raw.consumer_id = AlumetStr::new(id);
        self
    }

    /// The attributes.
    pub fn attributes(mut self, attributes: &'a [Attribute<'a>]) -> Self {
        // `Attribute` is a transparent wrapper around `AlumetAttribute`.
        self.raw.attributes = attributes.as_ptr().cast::<AlumetAttribute>();
        self.raw.attributes_len = attributes.len();
        self
    }

    pub(crate) fn as_abi(&self) -> &AlumetPoint {
        &self.raw
    }
}

/// A measured value.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Value {
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

/// A point read from a buffer, borrowing the buffer.
#[derive(Debug)]
pub struct PointView<'b> {
    /// The metric's id.
    pub metric: u32,
    /// The metric's name.
    pub metric_name: &'b str,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The value.
    pub value: Value,
    /// What was measured: kind.
    pub resource_kind: &'b str,
    /// What was measured: id.
    pub resource_id: &'b str,
    /// Who consumed it: kind.
    pub consumer_kind: &'b str,
    /// Who consumed it: id.
    pub consumer_id: &'b str,
    attributes: &'b [AlumetAttribute],
}

impl<'b> PointView<'b> {
    /// # Safety
    /// The strings and attributes of `raw` must stay valid for `'b`.
    pub(crate) unsafe fn from_abi(raw: AlumetPoint, metric_name: &'b str) -> Self {
        // SAFETY (all four): forwarded from the caller.
        let s = |x: AlumetStr| unsafe { x.as_str() }.unwrap_or("");
        let attributes = if raw.attributes.is_null() || raw.attributes_len == 0 {
            &[][..]
        } else {
            // SAFETY: the agent filled `attributes_len` attributes at `attributes`.
            unsafe { std::slice::from_raw_parts(raw.attributes, raw.attributes_len) }
        };
        PointView {
            metric: raw.metric,
            metric_name,
            timestamp_ns: raw.timestamp_ns,
            value: if raw.value_type == ALUMET_F64 {
                Value::F64(raw.value_f64)
            } else {
                Value::U64(raw.value_u64)
            },
            resource_kind: s(raw.resource_kind),
            resource_id: s(raw.resource_id),
            consumer_kind: s(raw.consumer_kind),
            consumer_id: s(raw.consumer_id),
            attributes,
        }
    }

    /// The attributes, as `(key, value)` pairs.
    pub fn attributes(&self) -> impl Iterator<Item = (&'b str, &'b str)> + '_ {
        self.attributes.iter().map(|a| {
            // SAFETY: valid for 'b, as from_abi's caller guaranteed.
            let s = |x: AlumetStr| unsafe { x.as_str() }.unwrap_or("");
            (s(a.key), s(a.value))
        })
    }
}
