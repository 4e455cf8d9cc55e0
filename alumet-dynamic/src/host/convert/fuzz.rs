//! Property tests of the point conversions across the C boundary: any point of the
//! pipeline goes to an `AlumetPoint` and back unchanged (attribute values as text, the
//! only type the ABI has), and any `AlumetPoint` a plugin may push (bytes that are not
//! UTF-8, unknown metric ids and value types, built-in kinds with ids that are not
//! numbers) converts or gives an error with a message, never a panic.
//!
//! Failures are saved by proptest's default persistence, in
//! `src/host/convert/fuzz.proptest-regressions`, and replayed first on the next run.
#![allow(clippy::unwrap_used)]

use alumet::measurement::{
    AttributeValue, Attributes, MeasurementPoint, Resource, ResourceConsumer, Timestamp, ValueType,
};
use alumet::metrics::{MetricId, MetricRegistry, Unit};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{point_from_abi, point_to_abi, LabelCache, MetricTable};
use crate::abi::{AlumetAttribute, AlumetPoint, AlumetStr};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Two metrics, `u64` and `f64`, as a plugin's table knows them.
fn metrics() -> (MetricTable, MetricId<u64>, MetricId<f64>) {
    let mut registry = MetricRegistry::new();
    let u = registry
        .register::<u64>("fuzz_u64", Unit::Unity, "u")
        .unwrap();
    let f = registry
        .register::<f64>("fuzz_f64", Unit::Joule, "f")
        .unwrap();
    let mut table = MetricTable::default();
    table.insert(u.raw(), ValueType::U64);
    table.insert(f.raw(), ValueType::F64);
    (table, u, f)
}

/// Any text: control characters and multi-byte ones included (mapped from bytes: much
/// cheaper to generate than from a regex).
fn text() -> impl Strategy<Value = String> {
    const CHARS: &[char] = &[
        '\0', '\n', '"', '=', '\\', ' ', 'é', '😀', '\u{7f}', '\u{2028}',
    ];
    vec(any::<u8>(), 0..8).prop_map(|v| {
        v.into_iter()
            .map(|b| match b {
                0..=127 => char::from(b),
                _ => CHARS[usize::from(b) % CHARS.len()],
            })
            .collect()
    })
}

/// A custom kind that is not one the host reads as built-in.
fn custom_kind() -> impl Strategy<Value = String> {
    text().prop_map(|t| format!("x_{t}"))
}

fn resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        Just(Resource::LocalMachine),
        any::<u32>().prop_map(|id| Resource::CpuPackage { id }),
        any::<u32>().prop_map(|id| Resource::CpuCore { id }),
        any::<u32>().prop_map(|pkg_id| Resource::Dram { pkg_id }),
        text().prop_map(|bus_id| Resource::Gpu {
            bus_id: bus_id.into()
        }),
        (custom_kind(), text()).prop_map(|(k, i)| Resource::custom(k, i)),
    ]
}

fn consumer() -> impl Strategy<Value = ResourceConsumer> {
    prop_oneof![
        Just(ResourceConsumer::LocalMachine),
        any::<u32>().prop_map(|pid| ResourceConsumer::Process { pid }),
        text().prop_map(|path| ResourceConsumer::ControlGroup { path: path.into() }),
        (custom_kind(), text()).prop_map(|(k, i)| ResourceConsumer::custom(k, i)),
    ]
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        text().prop_map(|s| AttributeValue::Str(s.into())),
        any::<u64>().prop_map(AttributeValue::U64),
        any::<f64>().prop_map(AttributeValue::F64),
        any::<bool>().prop_map(AttributeValue::Bool),
    ]
}

fn point(u: MetricId<u64>, f: MetricId<f64>) -> impl Strategy<Value = MeasurementPoint> {
    let value = prop_oneof![
        any::<u64>().prop_map(|v| (true, v, 0.0)),
        any::<f64>().prop_map(|v| (false, 0, v)),
    ];
    let key = text().prop_map(|k| format!("k{k}"));
    let attributes = vec((key, attribute_value()), 0..4);
    (any::<u64>(), value, resource(), consumer(), attributes).prop_map(
        move |(ts, (is_u64, vu, vf), r, c, attrs)| {
            let ts = Timestamp::from_unix_nanos(ts);
            let p = if is_u64 {
                MeasurementPoint::new(ts, u, r, c, vu)
            } else {
                MeasurementPoint::new(ts, f, r, c, vf)
            };
            p.with_attributes(Attributes::new(attrs))
        },
    )
}

/// What survives the boundary: every label and attribute value as text.
fn as_text(p: &MeasurementPoint) -> impl PartialEq + std::fmt::Debug {
    let attrs: Vec<(String, String)> = p
        .attributes
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_string()))
        .collect();
    (
        p.metric,
        p.timestamp.unix_nanos(),
        format!("{:?}", p.value), // f64 NaN compares by its text
        (p.resource.kind().to_owned(), p.resource.id().to_string()),
        (p.consumer.kind().to_owned(), p.consumer.id().to_string()),
        attrs,
    )
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn points_go_across_and_back_unchanged(points in vec(point_strategy(), 1..6)) {
        let (table, ..) = metrics();
        let mut labels = LabelCache::default();
        let (mut scratch, mut attributes) = (String::new(), Vec::new());
        for p in &points {
            let abi = point_to_abi(p, &mut scratch, &mut attributes);
            // SAFETY: `abi` borrows from `p`, `scratch` and `attributes`, unchanged here.
            let back = unsafe { point_from_abi(&abi, &table, &mut labels) };
            let back = back.map_err(|e| TestCaseError::fail(format!("{e}: {p:?}")))?;
            prop_assert_eq!(as_text(&back), as_text(p));
        }
    }

    /// Whatever a plugin pushes: bytes that are not UTF-8, unknown metric ids and value
    /// types, built-in kinds with any id, many distinct labels (past the cache's size).
    #[test]
    fn any_pushed_point_converts_or_is_refused(
        pushed in vec((
            0..4u32,
            0..3u32,
            vec(prop_oneof![
                prop::sample::select(vec![
                    &b""[..], b"local_machine", b"cpu_package", b"cpu_core", b"dram", b"gpu",
                    b"process", b"cgroup", b"12", b"4294967296", b"-1",
                ]).prop_map(<[u8]>::to_vec),
                vec(any::<u8>(), 0..6),
            ], 4),
            vec((vec(any::<u8>(), 0..5), vec(any::<u8>(), 0..5)), 0..3),
            any::<bool>(),
        ), 1..20),
    ) {
        let (table, ..) = metrics();
        let mut labels = LabelCache::default();
        for (metric, value_type, texts, attrs, null_attrs) in &pushed {
            let str_of = |b: &Vec<u8>| AlumetStr { ptr: b.as_ptr().cast(), len: b.len() };
            let attributes: Vec<AlumetAttribute> = attrs
                .iter()
                .map(|(k, v)| AlumetAttribute { key: str_of(k), value: str_of(v) })
                .collect();
            let p = AlumetPoint {
                metric: *metric,
                value_type: *value_type,
                timestamp_ns: 1,
                value_u64: 2,
                value_f64: f64::NAN,
                resource_kind: str_of(&texts[0]),
                resource_id: str_of(&texts[1]),
                consumer_kind: str_of(&texts[2]),
                consumer_id: str_of(&texts[3]),
                attributes: if *null_attrs { std::ptr::null() } else { attributes.as_ptr() },
                attributes_len: attributes.len(),
            };
            // SAFETY: every string and the attribute array live until the end of the loop
            // body; a null array is allowed for any length.
            match unsafe { point_from_abi(&p, &table, &mut labels) } {
                Ok(point) => {
                    prop_assert!(*value_type < 2 && *metric < 2);
                    let expected = if *null_attrs { 0 } else { attrs.len() };
                    prop_assert!(point.attributes.len() <= expected);
                }
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
    }
}

fn point_strategy() -> impl Strategy<Value = MeasurementPoint> {
    let (_, u, f) = metrics();
    point(u, f)
}
