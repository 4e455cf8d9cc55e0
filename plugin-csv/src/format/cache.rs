//! What a row repeats from the row before, formatted once: the resource and consumer
//! columns (consecutive points often share them), the timestamp (the points of a buffer
//! share one, and the seconds change once in a thousand polls at 1 kHz) and the end of the
//! row that depends only on the attribute set (sets are built once by the sources and
//! shared between points, so a few sets make all the rows).

use std::collections::hash_map::Entry::{Occupied, Vacant};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use alumet::measurement::{AttributeValue, Attributes, LabelId, Resource, ResourceConsumer};

use super::{
    format_timestamp, needs_quotes, push_char, put_digits, write_field, write_label, TIMESTAMP_LEN,
};

/// Whether the kind of a resource is one of the core's own, fixed, kinds.
#[inline]
fn fixed_resource_kind(r: &Resource) -> bool {
    use Resource as R;
    matches!(
        r,
        R::LocalMachine | R::CpuPackage { .. } | R::CpuCore { .. } | R::Dram { .. } | R::Gpu { .. }
    )
}

/// Whether the kind of a consumer is one of the core's own, fixed, kinds.
#[inline]
fn fixed_consumer_kind(c: &ResourceConsumer) -> bool {
    use ResourceConsumer as C;
    matches!(
        c,
        C::LocalMachine | C::Process { .. } | C::ControlGroup { .. }
    )
}

/// Whether none of the fixed kinds needs quotes with the delimiter `d` (only an unusual
/// delimiter such as `_` makes one need them).
fn fixed_kinds_are_plain(d: char) -> bool {
    use Resource as R;
    use ResourceConsumer as C;
    let resources = [
        R::LocalMachine,
        R::CpuPackage { id: 0 },
        R::CpuCore { id: 0 },
        R::Dram { pkg_id: 0 },
        R::Gpu { bus_id: "".into() },
    ];
    let consumers = [
        C::LocalMachine,
        C::Process { pid: 0 },
        C::ControlGroup { path: "".into() },
    ];
    debug_assert!(resources.iter().all(fixed_resource_kind));
    debug_assert!(consumers.iter().all(fixed_consumer_kind));
    let kinds = resources.iter().map(R::kind);
    let mut kinds = kinds.chain(consumers.iter().map(C::kind));
    kinds.all(|k| !needs_quotes(k.as_bytes(), d))
}

/// The columns `resource_kind` to `consumer_id` of the last row, with the delimiter
/// before each: consecutive points often share their resource and consumer, and a clone
/// of either never allocates.
#[derive(Debug)]
pub struct Labels {
    resource: Resource,
    consumer: ResourceConsumer,
    text: Vec<u8>,
    /// [`fixed_kinds_are_plain`]: the fixed kinds are copied without looking for quotes.
    plain_kinds: bool,
}

impl Labels {
    pub fn new(d: char) -> Self {
        let mut labels = Labels {
            resource: Resource::LocalMachine,
            consumer: ResourceConsumer::LocalMachine,
            text: Vec::new(),
            plain_kinds: fixed_kinds_are_plain(d),
        };
        labels.format(d);
        labels
    }

    /// The text of `resource` and `consumer`.
    #[inline]
    pub fn get(&mut self, resource: &Resource, consumer: &ResourceConsumer, d: char) -> &[u8] {
        if self.resource != *resource || self.consumer != *consumer {
            self.resource = resource.clone();
            self.consumer = consumer.clone();
            self.format(d);
        }
        &self.text
    }

    fn format(&mut self, d: char) {
        let (r, c, out) = (&self.resource, &self.consumer, &mut self.text);
        out.clear();
        let plain = self.plain_kinds;
        write_kind_and_id(out, r.kind(), plain && fixed_resource_kind(r), r.id(), d);
        write_kind_and_id(out, c.kind(), plain && fixed_consumer_kind(c), c.id(), d);
    }
}

/// Appends a delimiter, a kind (as it is if `plain`, else escaped), a delimiter and an id.
#[inline]
fn write_kind_and_id(out: &mut Vec<u8>, kind: &str, plain: bool, id: LabelId<'_>, d: char) {
    push_char(out, d);
    if plain {
        out.extend_from_slice(kind.as_bytes());
    } else {
        write_field(out, kind.as_bytes(), d);
    }
    push_char(out, d);
    write_label(out, id, d);
}

/// The last timestamp formatted; a new one within the same second rewrites only the
/// nanosecond digits.
#[derive(Debug)]
pub struct TimestampCache {
    nanos: u64,
    secs: u64,
    text: [u8; TIMESTAMP_LEN],
}

impl Default for TimestampCache {
    fn default() -> Self {
        TimestampCache {
            nanos: 0,
            secs: 0,
            text: format_timestamp(0),
        }
    }
}

impl TimestampCache {
    /// The text of `unix_nanos`, as [`format_timestamp`] writes it.
    #[inline]
    pub fn format(&mut self, unix_nanos: u64) -> &[u8; TIMESTAMP_LEN] {
        if unix_nanos != self.nanos {
            let secs = unix_nanos / 1_000_000_000;
            if secs == self.secs {
                put_digits(&mut self.text[20..29], unix_nanos % 1_000_000_000);
            } else {
                self.text = format_timestamp(unix_nanos);
                self.secs = secs;
            }
            self.nanos = unix_nanos;
        }
        &self.text
    }
}

/// Number of attribute sets remembered; when one more comes, the cache starts over (a
/// source that builds a new set for every point costs a formatting per point, as without
/// a cache, and at most this many sets are kept alive).
const MAX_SETS: usize = 1024;

/// The tail of the rows of each attribute set recently seen (the attribute columns, the
/// late attributes and the line break), keyed by the address of the set's shared storage.
///
/// Each entry holds a clone of its set: the storage stays alive, so no other set can have
/// its address while it is in the cache. The key is taken from that clone, so that a set
/// whose storage were not shared between clones would simply never hit.
#[derive(Debug, Default)]
pub struct TailCache {
    /// The index in `entries` of each cached set, by key.
    index: HashMap<usize, usize, BuildHasherDefault<AddressHasher>>,
    entries: Vec<Entry>,
    /// The key and index of the last set looked up (points of a buffer often share one).
    last: Option<(usize, usize)>,
    /// The tail of a point without attributes.
    empty: Option<Box<[u8]>>,
    /// Reused by the formatting of a tail.
    scratch: Vec<u8>,
    /// The last tail of a set that could not be cached.
    uncached: Option<Box<[u8]>>,
}

#[derive(Debug)]
struct Entry {
    /// Keeps the storage at the key alive.
    _attributes: Attributes,
    tail: Box<[u8]>,
}

/// Formats the tail of a set into `out`, with a scratch buffer.
pub type WriteTail<'a> = &'a dyn Fn(&mut Vec<u8>, &mut Vec<u8>, &Attributes);

/// The address of the first value of a set: inside its shared storage, the same for every
/// clone of the set. `None` for the empty set.
#[inline]
fn address(attributes: &Attributes) -> Option<usize> {
    let (_, value) = attributes.iter().next()?;
    Some(value as *const AttributeValue as usize)
}

/// Hashes an address: a multiplication that spreads it over the high bits, rotated so
/// that those are also the low bits that pick the bucket.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_usize(&mut self, address: usize) {
        self.write_u64(address as u64);
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(32)
    }
}

impl TailCache {
    /// The tail of the rows of `attributes`, formatted by `write` the first time.
    #[inline]
    pub fn get(&mut self, attributes: &Attributes, write: WriteTail<'_>) -> &[u8] {
        let TailCache {
            index,
            entries,
            last,
            empty,
            scratch,
            uncached,
        } = self;
        let format = |scratch: &mut Vec<u8>| {
            let mut tail = Vec::new();
            write(&mut tail, scratch, attributes);
            tail.into_boxed_slice()
        };
        let Some(key) = address(attributes) else {
            return empty.get_or_insert_with(|| format(scratch));
        };
        if let Some((k, i)) = *last {
            if k == key {
                return &entries[i].tail;
            }
        }
        if entries.len() >= MAX_SETS {
            index.clear();
            entries.clear();
            *last = None;
        }
        let i = match index.entry(key) {
            Occupied(e) => *e.get(),
            Vacant(v) => {
                let held = attributes.clone();
                let tail = format(scratch);
                if address(&held) != Some(key) {
                    // Not shared storage after all: nothing to key it by.
                    return &uncached.insert(tail)[..];
                }
                entries.push(Entry {
                    _attributes: held,
                    tail,
                });
                *v.insert(entries.len() - 1)
            }
        };
        *last = Some((key, i));
        &entries[i].tail
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const S: u64 = 1_000_000_000;

    fn text(cache: &mut TimestampCache, nanos: u64) -> String {
        String::from_utf8(cache.format(nanos).to_vec()).unwrap()
    }

    #[test]
    fn cached_timestamps_match_the_formatting_from_scratch() {
        let mut cache = TimestampCache::default();
        let t0 = 1_795_674_359 * S + 123_456_789; // 2026-11-26T06:25:59.123456789Z
        let times = [
            0,
            1,
            t0,
            t0,
            t0 + 1_000_123,                  // same second
            1_795_674_360 * S - 1,           // last nanosecond of that second
            1_795_674_360 * S,               // next second, next minute
            1_795_674_360 * S + 5,           // same second again
            t0 + 7,                          // back to an earlier second
            1_795_651_200 * S - 1, // back to the day before: 2026-11-25T23:59:59.999999999Z
            1_795_651_200 * S + 42, // across midnight
            1_795_651_200 * S + 42, // repeated
            1_709_251_199 * S + 1, // a leap day, years earlier
            1_709_251_200 * S + 999_999_999, // the next day (March 1st) in the last nanosecond
            u64::MAX,
            0,
        ];
        for &t in &times {
            let expected = String::from_utf8(format_timestamp(t).to_vec()).unwrap();
            assert_eq!(text(&mut cache, t), expected, "{t}");
        }
        assert_eq!(
            text(&mut cache, 1_795_651_200 * S - 1),
            "2026-11-25T23:59:59.999999999Z"
        );
        assert_eq!(
            text(&mut cache, 1_795_651_200 * S),
            "2026-11-26T00:00:00.000000000Z"
        );
    }

    fn tail_text(cache: &mut TailCache, attributes: &Attributes, calls: &Cell<u64>) -> String {
        let write: WriteTail<'_> = &|out, scratch, a| {
            calls.set(calls.get() + 1);
            scratch.clear();
            for (k, v) in a.iter() {
                scratch.extend_from_slice(format!("{k}={v:?} ").as_bytes());
            }
            out.extend_from_slice(scratch);
            out.push(b'\n');
        };
        String::from_utf8(cache.get(attributes, write).to_vec()).unwrap()
    }

    #[test]
    fn clones_of_a_set_share_the_address_and_other_sets_do_not() {
        let a = Attributes::new([("domain", "package")]);
        let same = Attributes::new([("domain", "package")]);
        assert_eq!(address(&a), address(&a.clone()));
        assert_ne!(address(&a), address(&same));
        assert_eq!(address(&Attributes::none()), None);
    }

    #[test]
    fn alternating_sets_get_their_own_tails_formatted_once() {
        let mut cache = TailCache::default();
        let calls = Cell::new(0);
        let a = Attributes::new([("domain", AttributeValue::from("package"))]);
        let b = Attributes::new([
            ("domain", AttributeValue::from("dram")),
            ("socket", 1.into()),
        ]);
        let none = Attributes::none();
        let (ta, tb) = (
            "domain=Str(\"package\") \n",
            "domain=Str(\"dram\") socket=U64(1) \n",
        );
        for _ in 0..3 {
            assert_eq!(tail_text(&mut cache, &a.clone(), &calls), ta);
            assert_eq!(tail_text(&mut cache, &b.clone(), &calls), tb);
            assert_eq!(tail_text(&mut cache, &none, &calls), "\n");
        }
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_set_dropped_and_replaced_at_the_same_address_is_not_mistaken() {
        let mut cache = TailCache::default();
        let calls = Cell::new(0);
        // Many short-lived sets with different contents (more than the cache keeps, so
        // that it starts over and frees them): the allocator reuses the addresses of freed
        // sets, but the cache holds its own clone, so none is freed while cached.
        let n = MAX_SETS as u64 * 3 + 10;
        for i in 0..n {
            let set = Attributes::new([("n", AttributeValue::from(i))]);
            assert_eq!(
                tail_text(&mut cache, &set, &calls),
                format!("n=U64({i}) \n")
            );
            assert!(cache.entries.len() <= MAX_SETS && cache.index.len() <= MAX_SETS);
        }
        assert_eq!(calls.get(), n);
    }
}
