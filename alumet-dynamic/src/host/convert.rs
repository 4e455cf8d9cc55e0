//! Points across the boundary: `AlumetPoint` to `MeasurementPoint` (push), and back
//! (buffer_get). Resources, consumers and attribute sets repeat from poll to poll, so a
//! source keeps the ones it built and reuses them: no allocation per point once warm.

use std::fmt::Write as _;

use alumet::measurement::{
    AttributeValue, Attributes, LabelId, MeasurementPoint, MeasurementValue, Resource,
    ResourceConsumer, Timestamp, ValueType,
};
use alumet::metrics::RawMetricId;

use crate::abi::{AlumetAttribute, AlumetPoint, AlumetStr, ALUMET_F64, ALUMET_U64};

/// How many distinct resources, consumers and attribute sets a source keeps for reuse.
const CACHE_MAX: usize = 256;

/// The metrics a plugin created, by the id the plugin was given (the metric's index).
#[derive(Debug, Default)]
pub(crate) struct MetricTable(Vec<Option<(RawMetricId, ValueType)>>);

impl MetricTable {
    pub(crate) fn insert(&mut self, id: RawMetricId, value_type: ValueType) {
        let index = id.index();
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some((id, value_type));
    }

    fn get(&self, metric: u32) -> Option<(RawMetricId, ValueType)> {
        self.0.get(metric as usize).copied().flatten()
    }
}

/// Attribute pairs as pushed, with the set built from them.
type CachedAttributes = (Vec<(Box<str>, Box<str>)>, Attributes);

/// Resources, consumers and attribute sets already built by one source.
#[derive(Default)]
pub(crate) struct LabelCache {
    resources: Vec<(Box<str>, Box<str>, Resource)>,
    consumers: Vec<(Box<str>, Box<str>, ResourceConsumer)>,
    attributes: Vec<CachedAttributes>,
}

/// Reads a string of a pushed point.
///
/// # Safety
/// `s` must be valid as alumet.h says, for the duration of the call that gave it.
unsafe fn text<'a>(s: AlumetStr, what: &str) -> Result<&'a str, String> {
    // SAFETY: forwarded from the caller.
    unsafe { s.as_str() }.map_err(|e| format!("the {what} is not UTF-8: {e}"))
}

/// Converts a pushed point; the error says what is wrong with it.
///
/// # Safety
/// The strings and the attribute array of `p` must be valid as alumet.h says.
pub(crate) unsafe fn point_from_abi(
    p: &AlumetPoint,
    metrics: &MetricTable,
    labels: &mut LabelCache,
) -> Result<MeasurementPoint, String> {
    let (metric, value_type) = metrics.get(p.metric).ok_or_else(|| {
        format!(
            "unknown metric id {}: use an id returned by create_metric",
            p.metric
        )
    })?;
    let value = match (p.value_type, value_type) {
        (ALUMET_U64, ValueType::U64) => MeasurementValue::U64(p.value_u64),
        (ALUMET_F64, ValueType::F64) => MeasurementValue::F64(p.value_f64),
        (other, expected) => {
            return Err(format!(
                "metric id {} has values of type {expected}, but the point's value_type is {other} ({} is ALUMET_{})",
                p.metric,
                if expected == ValueType::U64 { ALUMET_U64 } else { ALUMET_F64 },
                if expected == ValueType::U64 { "U64" } else { "F64" },
            ))
        }
    };
    // SAFETY (all four): the caller guarantees the strings of `p`.
    let resource = labels.resource(unsafe { text(p.resource_kind, "resource kind") }?, unsafe {
        text(p.resource_id, "resource id")
    }?)?;
    let consumer = labels.consumer(unsafe { text(p.consumer_kind, "consumer kind") }?, unsafe {
        text(p.consumer_id, "consumer id")
    }?)?;
    let pairs: &[AlumetAttribute] = if p.attributes_len == 0 || p.attributes.is_null() {
        &[]
    } else {
        // SAFETY: the caller guarantees `attributes_len` attributes at `attributes`.
        unsafe { std::slice::from_raw_parts(p.attributes, p.attributes_len) }
    };
    // SAFETY: forwarded from the caller.
    let attributes = unsafe { labels.attributes(pairs) }?;
    Ok(MeasurementPoint {
        metric,
        timestamp: Timestamp::from_unix_nanos(p.timestamp_ns),
        value,
        resource,
        consumer,
        attributes,
    })
}

fn number(kind: &str, id: &str) -> Result<u32, String> {
    id.parse()
        .map_err(|_| format!("a `{kind}` needs a numeric id, not {id:?}"))
}

impl LabelCache {
    fn resource(&mut self, kind: &str, id: &str) -> Result<Resource, String> {
        Ok(match kind {
            "" | "local_machine" => Resource::LocalMachine,
            "cpu_package" => Resource::CpuPackage {
                id: number(kind, id)?,
            },
            "cpu_core" => Resource::CpuCore {
                id: number(kind, id)?,
            },
            "dram" => Resource::Dram {
                pkg_id: number(kind, id)?,
            },
            _ => {
                if let Some((_, _, r)) =
                    self.resources.iter().find(|r| &*r.0 == kind && &*r.1 == id)
                {
                    return Ok(r.clone());
                }
                let r = match kind {
                    "gpu" => Resource::Gpu { bus_id: id.into() },
                    _ => Resource::custom(kind, id),
                };
                if self.resources.len() < CACHE_MAX {
                    self.resources.push((kind.into(), id.into(), r.clone()));
                }
                r
            }
        })
    }

    fn consumer(&mut self, kind: &str, id: &str) -> Result<ResourceConsumer, String> {
        Ok(match kind {
            "" | "local_machine" => ResourceConsumer::LocalMachine,
            "process" => ResourceConsumer::Process {
                pid: number(kind, id)?,
            },
            _ => {
                if let Some((_, _, c)) =
                    self.consumers.iter().find(|c| &*c.0 == kind && &*c.1 == id)
                {
                    return Ok(c.clone());
                }
                let c = match kind {
                    "cgroup" => ResourceConsumer::ControlGroup { path: id.into() },
                    _ => ResourceConsumer::custom(kind, id),
                };
                if self.consumers.len() < CACHE_MAX {
                    self.consumers.push((kind.into(), id.into(), c.clone()));
                }
                c
            }
        })
    }

    /// # Safety
    /// The strings of `pairs` must be valid as alumet.h says.
    unsafe fn attributes(&mut self, pairs: &[AlumetAttribute]) -> Result<Attributes, String> {
        if pairs.is_empty() {
            return Ok(Attributes::none());
        }
        let mut texts = Vec::with_capacity(pairs.len());
        for a in pairs {
            // SAFETY: forwarded from the caller.
            let key = unsafe { text(a.key, "attribute key") }?;
            // SAFETY: forwarded from the caller.
            let value = unsafe { text(a.value, "attribute value") }?;
            texts.push((key, value));
        }
        let same = |cached: &[(Box<str>, Box<str>)]| {
            cached.len() == texts.len()
                && cached
                    .iter()
                    .zip(&texts)
                    .all(|((k, v), (k2, v2))| &**k == *k2 && &**v == *v2)
        };
        if let Some((_, set)) = self.attributes.iter().find(|(c, _)| same(c)) {
            return Ok(set.clone());
        }
        let set = Attributes::new(texts.iter().map(|(k, v)| (*k, *v)));
        if self.attributes.len() < CACHE_MAX {
            let owned = texts
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
            self.attributes.push((owned, set.clone()));
        }
        Ok(set)
    }
}

/// A string of a point read from a buffer: borrowed from the point, or rendered into the
/// scratch string (numbers).
enum Part<'p> {
    Borrowed(&'p str),
    Scratch(usize, usize),
}

fn label<'p>(id: LabelId<'p>, scratch: &mut String) -> Part<'p> {
    match id {
        LabelId::None => Part::Borrowed(""),
        LabelId::Text(s) => Part::Borrowed(s),
        LabelId::Number(n) => {
            let start = scratch.len();
            let _ = write!(scratch, "{n}");
            Part::Scratch(start, scratch.len())
        }
    }
}

fn attribute_value<'p>(v: &'p AttributeValue, scratch: &mut String) -> Part<'p> {
    if let AttributeValue::Str(s) = v {
        return Part::Borrowed(s);
    }
    let start = scratch.len();
    let _ = write!(scratch, "{v}");
    Part::Scratch(start, scratch.len())
}

fn resolve(part: &Part<'_>, scratch: &str) -> AlumetStr {
    match part {
        Part::Borrowed(s) => AlumetStr::new(s),
        Part::Scratch(start, end) => AlumetStr::new(&scratch[*start..*end]),
    }
}

/// Fills an `AlumetPoint` that borrows from `p`, `scratch` and `attributes`: valid while
/// the three are neither changed nor dropped.
pub(crate) fn point_to_abi(
    p: &MeasurementPoint,
    scratch: &mut String,
    attributes: &mut Vec<AlumetAttribute>,
) -> AlumetPoint {
    scratch.clear();
    attributes.clear();
    let resource_id = label(p.resource.id(), scratch);
    let consumer_id = label(p.consumer.id(), scratch);
    let attrs: Vec<(&str, Part<'_>)> = p
        .attributes
        .iter()
        .map(|(k, v)| (k, attribute_value(v, scratch)))
        .collect();
    // The scratch string is complete: pointers into it stay valid from here on.
    for (key, value) in &attrs {
        attributes.push(AlumetAttribute {
            key: AlumetStr::new(key),
            value: resolve(value, scratch),
        });
    }
    let (value_type, value_u64, value_f64) = match p.value {
        MeasurementValue::U64(v) => (ALUMET_U64, v, v as f64),
        MeasurementValue::F64(v) => (ALUMET_F64, 0, v),
    };
    AlumetPoint {
        metric: p.metric.index() as u32,
        value_type,
        timestamp_ns: p.timestamp.unix_nanos(),
        value_u64,
        value_f64,
        resource_kind: AlumetStr::new(p.resource.kind()),
        resource_id: resolve(&resource_id, scratch),
        consumer_kind: AlumetStr::new(p.consumer.kind()),
        consumer_id: resolve(&consumer_id, scratch),
        attributes: if attributes.is_empty() {
            std::ptr::null()
        } else {
            attributes.as_ptr()
        },
        attributes_len: attributes.len(),
    }
}

#[cfg(test)]
mod fuzz;
