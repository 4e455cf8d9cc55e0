//! The output: turns each point into an OTLP data point of its metric (energy summed into
//! a cumulative counter) and queues it for the delivery engine, whose sender thread builds,
//! encodes and sends the export requests.

use std::sync::Arc;
use std::time::Instant;

use alumet::measurement::MeasurementValue;
use alumet::metrics::MetricRegistry;
use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet_delivery::http::HttpClient;
use alumet_delivery::reject::since_note;
use alumet_delivery::series::SeriesCache;
use alumet_delivery::{
    Batch as _, Convert, Engine, Items, Outcome, PushOutput, RejectLog, Settings, Transport,
};
use anyhow::Context;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use prost::Message;

use crate::config::{Compression, Config, Encoding};
use crate::encode::{attributes, resource, Encoder, MetricDef, Point, SeriesAttributes};

/// What the engine queues: data points.
pub type Batch = Items<Point>;

/// A series known to the output: its attributes, and for a counter its start and sum.
struct Known {
    attributes: Arc<SeriesAttributes>,
    start_ns: u64,
    sum: Sum,
}

/// A counter's running sum, exact for integers.
#[derive(Clone, Copy)]
enum Sum {
    Int(u64),
    Float(f64),
}

/// Writes points to an OTLP/HTTP receiver: `write` only converts and queues.
pub type OtlpOutput = PushOutput<Batch, ToDataPoints>;

/// Starts the output's sender thread; connects to nothing yet.
pub fn start(
    config: &Config,
    identity: &HostIdentity,
    engine: Arc<Engine<Batch>>,
) -> anyhow::Result<OtlpOutput> {
    config.validate()?;
    let settings = Settings {
        batch_size: config.batch_size,
        flush_interval: config.flush_interval(),
    };
    let convert = ToDataPoints {
        metrics: Vec::new(),
        series: SeriesCache::default(),
        naming: config.clone(),
    };
    PushOutput::start(
        engine,
        "otlp-send",
        Otlp::new(config, identity),
        settings,
        convert,
    )
    .context("starting the opentelemetry sender thread")
}

/// Turns points into data points: a metric's definition and a series' attributes once,
/// a counter's running sum.
pub struct ToDataPoints {
    metrics: Vec<Option<Arc<MetricDef>>>,
    /// Every series seen.
    series: SeriesCache<Known>,
    /// How metrics are named and whether attributes are sent (`prefix`, `suffix`,
    /// `append_unit_to_metric_name`, `use_unit_display_name`, `add_attributes_to_labels`).
    naming: Config,
}

impl Convert<Batch> for ToDataPoints {
    fn convert(&mut self, buffer: &MeasurementBuffer, registry: &MetricRegistry) -> Batch {
        let mut batch = Batch::new(Vec::with_capacity(buffer.len()));
        for p in buffer {
            // Without attributes, points that differ only by them are one series.
            let stripped;
            let p = if self.naming.add_attributes_to_labels || p.attributes.is_empty() {
                p
            } else {
                stripped = MeasurementPoint {
                    attributes: Attributes::default(),
                    ..p.clone()
                };
                &stripped
            };
            let index = p.metric.index();
            if self.metrics.len() <= index {
                self.metrics.resize(index + 1, None);
            }
            let def = self.metrics[index].get_or_insert_with(|| {
                Arc::new(match registry.get(p.metric) {
                    Some(m) => MetricDef::new(
                        self.naming.metric_name(&m.name, &m.unit),
                        m.unit.code().to_owned(),
                        m.description.clone(),
                        m.unit.joules().is_some(),
                    ),
                    None => MetricDef::new(
                        format!("metric_{index}"),
                        "1".to_owned(),
                        String::new(),
                        false,
                    ),
                })
            });
            let time_ns = p.timestamp.unix_nanos();
            let known = self.series.get_or_insert_with(p, || Known {
                attributes: SeriesAttributes::new(attributes(p)),
                start_ns: time_ns,
                sum: match p.value {
                    MeasurementValue::U64(_) => Sum::Int(0),
                    MeasurementValue::F64(_) => Sum::Float(0.0),
                },
            });
            let (value, start_ns) = if def.counter {
                known.sum = add(known.sum, p.value);
                let v = match known.sum {
                    Sum::Int(v) => i64::try_from(v).map_or(Value::AsDouble(v as f64), Value::AsInt),
                    Sum::Float(v) => Value::AsDouble(v),
                };
                (v, known.start_ns)
            } else {
                let v = match p.value {
                    MeasurementValue::U64(v) => {
                        i64::try_from(v).map_or(Value::AsDouble(v as f64), Value::AsInt)
                    }
                    MeasurementValue::F64(v) => Value::AsDouble(v),
                };
                (v, 0)
            };
            batch.push(Point {
                metric: Arc::clone(def),
                attributes: Arc::clone(&known.attributes),
                time_ns,
                start_ns,
                value,
            });
        }
        batch
    }
}

/// A counter's sum after one more point: an energy point is the energy used since the
/// previous one. A negative or non-finite delta would break monotonicity: not added.
fn add(sum: Sum, value: MeasurementValue) -> Sum {
    match (sum, value) {
        (Sum::Int(s), MeasurementValue::U64(v)) => Sum::Int(s.saturating_add(v)),
        (Sum::Float(s), MeasurementValue::F64(v)) if v.is_finite() && v >= 0.0 => Sum::Float(s + v),
        (Sum::Int(s), MeasurementValue::F64(v)) if v.is_finite() && v >= 0.0 => {
            Sum::Float(s as f64 + v)
        }
        (Sum::Float(s), MeasurementValue::U64(v)) => Sum::Float(s + v as f64),
        (s, _) => s,
    }
}

/// Encodes a batch into one export request and posts it.
pub struct Otlp {
    http: HttpClient,
    encoder: Encoder,
    encoding: Encoding,
    /// Data points the receiver refused in a partial success of the last request.
    partial: Option<u64>,
}

/// The most of an answer read, for its `partial_success`.
const MAX_ANSWER: u64 = 64 * 1024;

/// The `partial_success` of an export answer: the data points refused and why, when any.
pub fn partial_success(answer: &[u8], encoding: Encoding) -> Option<(u64, String)> {
    if answer.is_empty() {
        return None;
    }
    let response: ExportMetricsServiceResponse = match encoding {
        Encoding::Protobuf => ExportMetricsServiceResponse::decode(answer).ok()?,
        Encoding::Json => serde_json::from_slice(answer).ok()?,
    };
    let partial = response.partial_success?;
    let refused = u64::try_from(partial.rejected_data_points)
        .ok()
        .filter(|&n| n > 0)?;
    Some((refused, partial.error_message))
}

impl Otlp {
    /// The client of `config`'s endpoint, encoding, compression and headers.
    pub fn new(config: &Config, identity: &HostIdentity) -> Self {
        let version = env!("CARGO_PKG_VERSION");
        let encoder = Encoder::new(
            resource(identity, version),
            config.encoding,
            config.compression,
        );
        let mut headers = vec![
            ("Content-Type".to_owned(), encoder.content_type().to_owned()),
            ("User-Agent".to_owned(), format!("alumet-agent/{version}")),
        ];
        if config.compression == Compression::Gzip {
            headers.push(("Content-Encoding".to_owned(), "gzip".to_owned()));
        }
        headers.extend(config.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        Otlp {
            http: HttpClient::new(config.url(), config.timeout, headers),
            encoder,
            encoding: config.encoding,
            partial: None,
        }
    }
}

impl Transport<Batch> for Otlp {
    fn send(&mut self, batch: &Batch) -> Outcome {
        let (outcome, answer) = match self.encoder.encode(batch.as_slice()) {
            Ok(body) => self.http.post_reading(body, MAX_ANSWER),
            Err(e) => {
                let message = format!("encoding the request failed: {e}");
                return Outcome::Rejected { status: 0, message };
            }
        };
        match partial_success(&answer, self.encoding) {
            // Accepted but for some data points: those are lost, counted in `rejected`.
            Some((refused, why)) if outcome == Outcome::Delivered => {
                self.partial = Some(refused);
                Outcome::Rejected {
                    status: 200,
                    message: format!("partial success, {refused} data points refused: {why}"),
                }
            }
            _ => outcome,
        }
    }

    fn rejected(
        &mut self,
        name: &str,
        batch: &Batch,
        status: u16,
        message: &str,
        log: &mut RejectLog,
    ) -> u64 {
        let refused = self.partial.take().unwrap_or(batch.len() as u64);
        if let Some((batches, points)) = log.check(status, message, refused, Instant::now()) {
            log::error!(
                "{name}: HTTP {status} from {}, {refused} of {} points lost (not retried): {message}{}",
                self.http.url(),
                batch.len(),
                since_note(batches, points)
            );
        }
        refused
    }

    fn target(&self) -> &str {
        self.http.url()
    }
}
