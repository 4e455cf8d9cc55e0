//! OTLP export requests from points, with the generated types of `opentelemetry-proto`:
//! one `ResourceMetrics` (the agent and its host), one `ScopeMetrics` (alumet), one
//! `Metric` per alumet metric present in the batch (a `Sum` for energy, a `Gauge` for the
//! rest), one `NumberDataPoint` per point; then protobuf or JSON, gzip or not. Pure: no I/O.

use std::io::Write;
use std::sync::Arc;

use alumet::measurement::{AttributeValue, MeasurementPoint};
use alumet::plugin::HostIdentity;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

use crate::config::{Compression, Encoding};

/// The value `service.name` of every agent.
pub const SERVICE_NAME: &str = "alumet-agent";

/// An alumet metric as OTLP describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDef {
    /// The metric's name, as registered.
    pub name: String,
    /// Its UCUM unit code (`J`, `ms`, `By`, `1`).
    pub unit: String,
    /// Its description.
    pub description: String,
    /// Energy: a monotonic cumulative `Sum`; anything else: a `Gauge`.
    pub counter: bool,
    /// `Metric`'s fields `name`, `description` and `unit`, encoded once.
    header: Vec<u8>,
}

impl MetricDef {
    /// A metric's description for OTLP.
    pub fn new(name: String, unit: String, description: String, counter: bool) -> Self {
        let mut header = Vec::new();
        for (tag, text) in [(1, &name), (2, &description), (3, &unit)] {
            if !text.is_empty() {
                prost::encoding::string::encode(tag, text, &mut header);
            }
        }
        MetricDef {
            name,
            unit,
            description,
            counter,
            header,
        }
    }
}

/// The attributes of a series, and the same encoded once as `NumberDataPoint.attributes`
/// fields (with the generated `KeyValue`).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesAttributes {
    /// The attributes.
    pub attributes: Vec<KeyValue>,
    encoded: Vec<u8>,
}

impl SeriesAttributes {
    /// These attributes, encoded once.
    pub fn new(attributes: Vec<KeyValue>) -> Arc<Self> {
        let mut encoded = Vec::new();
        for kv in &attributes {
            prost::encoding::message::encode(7, kv, &mut encoded);
        }
        Arc::new(SeriesAttributes {
            attributes,
            encoded,
        })
    }
}

/// One data point waiting to be sent.
#[derive(Debug, Clone)]
pub struct Point {
    /// Its metric.
    pub metric: Arc<MetricDef>,
    /// Its attributes (those of its series).
    pub attributes: Arc<SeriesAttributes>,
    /// When it was measured, ns since the epoch.
    pub time_ns: u64,
    /// For a counter: when its series started (its first point); 0 for a gauge.
    pub start_ns: u64,
    /// The value (for a counter, the running sum).
    pub value: number_data_point::Value,
}

/// The labels of every point, from its resource and consumer.
const RESERVED: [&str; 4] = [
    "resource_kind",
    "resource_id",
    "consumer_kind",
    "consumer_id",
];

fn kv(key: impl Into<String>, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string(s: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

/// The data-point attributes of a point: `resource_kind`, `resource_id`, `consumer_kind`,
/// `consumer_id` (empty ones left out), then its attributes, typed (an attribute named
/// like one of those four gets `attr_` before its name).
pub fn attributes(p: &MeasurementPoint) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(4 + p.attributes.len());
    let fixed = [
        p.resource.kind().to_owned(),
        p.resource.id().to_string(),
        p.consumer.kind().to_owned(),
        p.consumer.id().to_string(),
    ];
    for (key, value) in RESERVED.iter().zip(fixed) {
        if !value.is_empty() {
            out.push(kv(*key, string(value)));
        }
    }
    for (key, value) in p.attributes.iter() {
        let key = if RESERVED.contains(&key) {
            format!("attr_{key}")
        } else {
            key.to_owned()
        };
        let value = match value {
            AttributeValue::Str(s) => string(&**s),
            AttributeValue::U64(v) => match i64::try_from(*v) {
                Ok(i) => any_value::Value::IntValue(i),
                Err(_) => string(v.to_string()),
            },
            AttributeValue::F64(v) => any_value::Value::DoubleValue(*v),
            AttributeValue::Bool(v) => any_value::Value::BoolValue(*v),
        };
        out.push(kv(key, value));
    }
    out
}

/// The resource of every request: `host.name` (the identity's `host`), `service.name`,
/// `service.version`, then the identity's other labels as they are.
pub fn resource(identity: &HostIdentity, version: &str) -> Resource {
    let mut attributes = Vec::new();
    if let Some(host) = identity.hostname() {
        attributes.push(kv("host.name", string(host)));
    }
    attributes.push(kv("service.name", string(SERVICE_NAME)));
    attributes.push(kv("service.version", string(version)));
    for (k, v) in identity.labels() {
        if k != alumet::plugin::host_identity::HOST_LABEL {
            attributes.push(kv(k.clone(), string(v.clone())));
        }
    }
    Resource {
        attributes,
        ..Resource::default()
    }
}

/// Builds and encodes requests, reusing its buffers.
pub struct Encoder {
    resource: Resource,
    scope: InstrumentationScope,
    /// `ResourceMetrics.resource` and `ScopeMetrics.scope`, encoded once.
    resource_field: Vec<u8>,
    scope_field: Vec<u8>,
    encoding: Encoding,
    compression: Compression,
    /// The points of the request by metric, in the order of their first point.
    by_metric: Vec<(Arc<MetricDef>, Vec<usize>)>,
    spare: Vec<Vec<usize>>,
    raw: Vec<u8>,
    body: Vec<u8>,
}

impl Encoder {
    /// An encoder for this resource, encoding and compression.
    pub fn new(resource: Resource, encoding: Encoding, compression: Compression) -> Self {
        let scope = InstrumentationScope {
            name: "alumet".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        let mut resource_field = Vec::new();
        prost::encoding::message::encode(1, &resource, &mut resource_field);
        let mut scope_field = Vec::new();
        prost::encoding::message::encode(1, &scope, &mut scope_field);
        Encoder {
            resource,
            scope,
            resource_field,
            scope_field,
            encoding,
            compression,
            by_metric: Vec::new(),
            spare: Vec::new(),
            raw: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Groups the points by metric, in the order of each metric's first point.
    fn group(&mut self, points: &[Point]) {
        for (_, mut v) in self.by_metric.drain(..) {
            v.clear();
            self.spare.push(v);
        }
        let mut last = usize::MAX;
        for (i, p) in points.iter().enumerate() {
            let hit = self
                .by_metric
                .get(last)
                .is_some_and(|(m, _)| Arc::ptr_eq(m, &p.metric));
            if !hit {
                last = match self
                    .by_metric
                    .iter()
                    .position(|(m, _)| Arc::ptr_eq(m, &p.metric))
                {
                    Some(j) => j,
                    None => {
                        let v = self.spare.pop().unwrap_or_default();
                        self.by_metric.push((Arc::clone(&p.metric), v));
                        self.by_metric.len() - 1
                    }
                };
            }
            self.by_metric[last].1.push(i);
        }
    }

    /// The request of `points` in protobuf, into `self.raw`: the resource, the scope, each
    /// metric's name, description and unit, and each series' attributes were encoded once
    /// (with the generated types); the request's other fields are written around them
    /// with prost's encoding functions, in the order prost writes them.
    fn encode_protobuf(&mut self, points: &[Point]) {
        self.group(points);
        let point_len = |p: &Point| {
            let mut n = 9 + p.attributes.encoded.len(); // the value, the attributes
            n += if p.start_ns != 0 { 9 } else { 0 };
            n += if p.time_ns != 0 { 9 } else { 0 };
            n
        };
        let field = |n: usize| 1 + encoded_len_varint(n as u64) + n;
        let data_len = |m: &MetricDef, idx: &[usize]| {
            let dps: usize = idx.iter().map(|&i| field(point_len(&points[i]))).sum();
            if m.counter {
                dps + 2 + 2 // aggregation_temporality, is_monotonic
            } else {
                dps
            }
        };
        let metric_len = |m: &MetricDef, idx: &[usize]| m.header.len() + field(data_len(m, idx));
        let metrics: usize = self
            .by_metric
            .iter()
            .map(|(m, idx)| field(metric_len(m, idx)))
            .sum();
        let scope_metrics = self.scope_field.len() + metrics;
        let resource_metrics = self.resource_field.len() + field(scope_metrics);
        let buf = &mut self.raw;
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(resource_metrics as u64, buf);
        buf.extend_from_slice(&self.resource_field);
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint(scope_metrics as u64, buf);
        buf.extend_from_slice(&self.scope_field);
        for (m, idx) in &self.by_metric {
            encode_key(2, WireType::LengthDelimited, buf);
            encode_varint(metric_len(m, idx) as u64, buf);
            buf.extend_from_slice(&m.header);
            encode_key(
                if m.counter { 7 } else { 5 },
                WireType::LengthDelimited,
                buf,
            );
            encode_varint(data_len(m, idx) as u64, buf);
            for &i in idx {
                let p = &points[i];
                encode_key(1, WireType::LengthDelimited, buf);
                encode_varint(point_len(p) as u64, buf);
                if p.start_ns != 0 {
                    encode_key(2, WireType::SixtyFourBit, buf);
                    buf.extend_from_slice(&p.start_ns.to_le_bytes());
                }
                if p.time_ns != 0 {
                    encode_key(3, WireType::SixtyFourBit, buf);
                    buf.extend_from_slice(&p.time_ns.to_le_bytes());
                }
                match p.value {
                    number_data_point::Value::AsDouble(v) => {
                        encode_key(4, WireType::SixtyFourBit, buf);
                        buf.extend_from_slice(&v.to_le_bytes());
                    }
                    number_data_point::Value::AsInt(v) => {
                        encode_key(6, WireType::SixtyFourBit, buf);
                        buf.extend_from_slice(&v.to_le_bytes());
                    }
                }
                buf.extend_from_slice(&p.attributes.encoded);
            }
            if m.counter {
                encode_key(2, WireType::Varint, buf);
                encode_varint(AggregationTemporality::Cumulative as u64, buf);
                encode_key(3, WireType::Varint, buf);
                encode_varint(1, buf);
            }
        }
    }

    /// The request of `points`: one `Metric` per metric, in the order of their first point.
    pub fn request(&self, points: &[Point]) -> ExportMetricsServiceRequest {
        let mut metrics: Vec<(Arc<MetricDef>, Vec<NumberDataPoint>)> = Vec::new();
        for p in points {
            let data_point = NumberDataPoint {
                attributes: p.attributes.attributes.clone(),
                start_time_unix_nano: p.start_ns,
                time_unix_nano: p.time_ns,
                value: Some(p.value),
                ..NumberDataPoint::default()
            };
            match metrics.iter_mut().find(|(m, _)| Arc::ptr_eq(m, &p.metric)) {
                Some((_, dps)) => dps.push(data_point),
                None => metrics.push((Arc::clone(&p.metric), vec![data_point])),
            }
        }
        let metrics = metrics
            .into_iter()
            .map(|(def, data_points)| {
                let data = if def.counter {
                    metric::Data::Sum(Sum {
                        data_points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })
                } else {
                    metric::Data::Gauge(Gauge { data_points })
                };
                Metric {
                    name: def.name.clone(),
                    description: def.description.clone(),
                    unit: def.unit.clone(),
                    data: Some(data),
                    ..Metric::default()
                }
            })
            .collect();
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(self.scope.clone()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    /// The `Content-Type` of the bodies.
    pub fn content_type(&self) -> &'static str {
        match self.encoding {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// The request body of `points`.
    pub fn encode(&mut self, points: &[Point]) -> std::io::Result<&[u8]> {
        self.raw.clear();
        match self.encoding {
            Encoding::Protobuf => self.encode_protobuf(points),
            Encoding::Json => {
                let request = self.request(points);
                serde_json::to_writer(&mut self.raw, &request)?;
            }
        }
        if self.compression == Compression::None {
            return Ok(&self.raw);
        }
        self.body.clear();
        let mut gz = GzEncoder::new(&mut self.body, flate2::Compression::fast());
        gz.write_all(&self.raw)?;
        gz.finish()?;
        Ok(&self.body)
    }
}

#[cfg(test)]
mod tests;
