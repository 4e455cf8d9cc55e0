//! Points of one buffer that InfluxDB would store as one: it keeps a single point per
//! series (measurement and tags) and timestamp, and merges the fields of the others into
//! it. With every attribute a tag (the default), two such points differ in nothing but
//! their value; once some attribute is a field, points that differ only by it collide.
//! The output looks for collisions only then, keeps the first point of each series and
//! timestamp, and counts the others as lost.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use alumet::measurement::MeasurementPoint;
use alumet::metrics::MetricRegistry;

use crate::queue::{Batch, Chunk};

/// Where the first point of one series and timestamp is.
#[derive(Copy, Clone)]
struct First {
    /// Its line in the chunk.
    line: u32,
    /// Its index in the buffer.
    point: u32,
    /// Length of its series key.
    key_len: u32,
}

/// Finds the points of one buffer that share series and timestamp; reused from buffer to
/// buffer, so that it allocates only while a buffer is larger than every one before.
#[derive(Default)]
pub struct Collisions {
    /// By a hash of (series key, timestamp); a hash shared by two different keys (odds of
    /// 2^-64 per pair) only hides a collision of the second one.
    seen: HashMap<u64, First, BuildHasherDefault<PassThrough>>,
    /// Metrics already warned about, by [`alumet::metrics::RawMetricId::index`].
    warned: Vec<bool>,
}

/// The keys are hashes already.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Collisions {
    /// Starts a new buffer.
    pub fn clear(&mut self) {
        self.seen.clear();
    }

    /// Whether the line being formatted in `chunk` (point `i` of `points`, series key of
    /// `key_len` bytes) has the series and timestamp of an earlier line of the chunk;
    /// `Some(j)`: point `j` has them. Otherwise it is remembered.
    pub fn check(
        &mut self,
        chunk: &Chunk,
        key_len: usize,
        points: &[MeasurementPoint],
        i: usize,
    ) -> Option<usize> {
        let key = &chunk.unended()[..key_len];
        let timestamp = points[i].timestamp.unix_nanos();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        timestamp.hash(&mut hasher);
        let hash = hasher.finish();
        let Some(first) = self.seen.get(&hash).copied() else {
            let first = First {
                line: chunk.len() as u32,
                point: i as u32,
                key_len: key_len as u32,
            };
            self.seen.insert(hash, first);
            return None;
        };
        let j = first.point as usize;
        let same_key = chunk
            .line(first.line as usize)
            .is_some_and(|line| line.get(..first.key_len as usize) == Some(key));
        let same = same_key && points[j].timestamp.unix_nanos() == timestamp;
        same.then_some(j)
    }

    /// Warns, once per metric, that `lost` collided with `kept`: it names the attributes
    /// written as fields that tell them apart.
    pub fn warn_once(
        &mut self,
        name: &str,
        metrics: &MetricRegistry,
        kept: &MeasurementPoint,
        lost: &MeasurementPoint,
        is_tag: impl Fn(&str) -> bool,
    ) {
        let i = lost.metric.index();
        if self.warned.len() <= i {
            self.warned.resize(i + 1, false);
        }
        if std::mem::replace(&mut self.warned[i], true) {
            return;
        }
        let differing = differing_fields(kept, lost, is_tag);
        let metric = metrics
            .get(lost.metric)
            .map_or_else(|| format!("metric_{i}"), |m| m.name.clone());
        log::warn!(
            "{name}: points of metric {metric} differ only by attributes written as fields ({}): InfluxDB would keep one per series and timestamp, so the others are not sent and are counted as lost; make them tags (attributes_as_tags = [{}]) to keep every point",
            differing.join(", "),
            differing
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// The keys of the attributes written as fields whose values differ between `a` and `b`
/// (present in only one of them included).
fn differing_fields(
    a: &MeasurementPoint,
    b: &MeasurementPoint,
    is_tag: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let pairs = [(a, b), (b, a)];
    for (x, y) in pairs {
        for (key, value) in x.attributes.iter() {
            let differs = y.attributes.get(key) != Some(value);
            if differs && !is_tag(key) && !keys.iter().any(|k| k == key) {
                keys.push(key.to_owned());
            }
        }
    }
    keys
}
