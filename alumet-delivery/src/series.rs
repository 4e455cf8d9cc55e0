//! [`SeriesCache`]: what a network output keeps per series (its encoded labels, a
//! counter's running sum), found from a point without allocating: by a hash of the point's
//! metric, resource, consumer and attributes, then compared field by field.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use alumet::measurement::{
    AttributeValue, Attributes, MeasurementPoint, Resource, ResourceConsumer,
};

/// What tells a series apart: the point's metric, resource, consumer and attributes.
#[derive(Debug)]
struct SeriesId {
    metric: usize,
    resource: Resource,
    consumer: ResourceConsumer,
    /// Shared with the points (cloning it only counts a reference).
    attributes: Attributes,
}

impl SeriesId {
    fn matches(&self, p: &MeasurementPoint) -> bool {
        self.metric == p.metric.index()
            && self.resource == p.resource
            && self.consumer == p.consumer
            && same_attributes(&self.attributes, &p.attributes)
    }
}

/// Equal attributes, floats compared by their bits (a NaN attribute is the same series
/// from one point to the next).
fn same_attributes(a: &Attributes, b: &Attributes) -> bool {
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (va, vb) {
                    (AttributeValue::F64(x), AttributeValue::F64(y)) => x.to_bits() == y.to_bits(),
                    _ => va == vb,
                }
        })
}

/// One value per series, by point.
#[derive(Debug)]
pub struct SeriesCache<V> {
    hasher: RandomState,
    map: HashMap<u64, Vec<(SeriesId, V)>>,
    len: usize,
}

impl<V> Default for SeriesCache<V> {
    fn default() -> Self {
        SeriesCache {
            hasher: RandomState::new(),
            map: HashMap::new(),
            len: 0,
        }
    }
}

impl<V> SeriesCache<V> {
    /// Series known.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no series is known.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn hash(&self, p: &MeasurementPoint) -> u64 {
        let mut h = self.hasher.build_hasher();
        p.metric.index().hash(&mut h);
        p.resource.hash(&mut h);
        p.consumer.hash(&mut h);
        for (k, v) in p.attributes.iter() {
            k.hash(&mut h);
            match v {
                AttributeValue::Str(s) => (0u8, &**s).hash(&mut h),
                AttributeValue::U64(x) => (1u8, x).hash(&mut h),
                AttributeValue::F64(x) => (2u8, x.to_bits()).hash(&mut h),
                AttributeValue::Bool(x) => (3u8, x).hash(&mut h),
            }
        }
        h.finish()
    }

    /// The value of `p`'s series, made by `make` the first time.
    pub fn get_or_insert_with(&mut self, p: &MeasurementPoint, make: impl FnOnce() -> V) -> &mut V {
        let hash = self.hash(p);
        let bucket = self.map.entry(hash).or_default();
        let i = match bucket.iter().position(|(id, _)| id.matches(p)) {
            Some(i) => i,
            None => {
                let id = SeriesId {
                    metric: p.metric.index(),
                    resource: p.resource.clone(),
                    consumer: p.consumer.clone(),
                    attributes: p.attributes.clone(),
                };
                bucket.push((id, make()));
                self.len += 1;
                bucket.len() - 1
            }
        };
        &mut bucket[i].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alumet::metrics::MetricRegistry;
    use alumet::prelude::*;

    #[test]
    fn one_value_per_series() {
        let mut registry = MetricRegistry::new();
        let a = registry.register::<f64>("a", Unit::Joule, "a").unwrap();
        let b = registry.register::<f64>("b", Unit::Joule, "b").unwrap();
        let t = Timestamp::from_unix_nanos(1);
        let point = |m, core: u32, attr: f64| {
            MeasurementPoint::new(
                t,
                m,
                Resource::CpuCore { id: core },
                ResourceConsumer::LocalMachine,
                1.0,
            )
            .with_attributes(Attributes::new([("x", AttributeValue::F64(attr))]))
        };
        let mut cache = SeriesCache::default();
        let mut made = 0;
        for p in [
            point(a, 0, 1.0),
            point(a, 0, 1.0),
            point(a, 1, 1.0),
            point(b, 0, 1.0),
            point(a, 0, 2.0),
            point(a, 0, f64::NAN),
            point(a, 0, f64::NAN),
        ] {
            *cache.get_or_insert_with(&p, || {
                made += 1;
                0
            }) += 1;
        }
        assert_eq!((made, cache.len()), (5, 5));
        assert_eq!(*cache.get_or_insert_with(&point(a, 0, 1.0), || 0), 2);
        assert_eq!(*cache.get_or_insert_with(&point(a, 0, f64::NAN), || 0), 2);
    }
}
