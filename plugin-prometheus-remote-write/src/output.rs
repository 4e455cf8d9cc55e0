//! The output: turns each point into a sample of its series (names and labels as the
//! `prometheus` exporter makes them; energy summed into a `_total` counter) and queues the
//! samples for the delivery engine, whose sender thread encodes and sends them.

use std::sync::Arc;

use alumet::metrics::MetricRegistry;
use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet_delivery::http::HttpClient;
use alumet_delivery::prometheus::{family, label_pairs, FamilyDef};
use alumet_delivery::series::SeriesCache;
use alumet_delivery::{Convert, Engine, Items, Outcome, PushOutput, Settings, Transport};
use anyhow::Context;

use crate::config::Config;
use crate::encode::{series_labels, Encoder, Point, Sample, SeriesLabels};

/// What the engine queues: samples of series.
pub type Batch = Items<Point>;

/// A series known to the output, and the running total of a counter.
struct Known {
    labels: SeriesLabels,
    total: f64,
}

/// Writes points to a remote-write receiver: `write` only converts and queues (it never
/// waits on the network); the engine's thread sends the batches.
pub type RemoteWriteOutput = PushOutput<Batch, ToSamples>;

/// Starts the output's sender thread; connects to nothing yet (a receiver down at start
/// only delays delivery).
pub fn start(
    config: &Config,
    identity: &HostIdentity,
    engine: Arc<Engine<Batch>>,
) -> anyhow::Result<RemoteWriteOutput> {
    config.validate()?;
    let settings = Settings {
        batch_size: config.batch_size,
        flush_interval: config.flush_interval,
    };
    let convert = ToSamples {
        prefix: config.prefix.clone(),
        identity: identity.clone(),
        families: Vec::new(),
        series: SeriesCache::default(),
    };
    PushOutput::start(
        engine,
        "remote-write",
        RemoteWrite::new(config),
        settings,
        convert,
    )
    .context("starting the remote-write sender thread")
}

/// Turns points into samples: a family's name and a series' labels once, a counter's
/// running total.
pub struct ToSamples {
    prefix: String,
    identity: HostIdentity,
    /// The family of each metric, by [`alumet::metrics::RawMetricId::index`].
    families: Vec<Option<FamilyDef>>,
    /// Every series seen.
    series: SeriesCache<Known>,
}

impl Convert<Batch> for ToSamples {
    /// The samples of `buffer`.
    fn convert(&mut self, buffer: &MeasurementBuffer, metrics: &MetricRegistry) -> Batch {
        let mut batch = Batch::new(Vec::with_capacity(buffer.len()));
        for p in buffer {
            let index = p.metric.index();
            if self.families.len() <= index {
                self.families.resize(index + 1, None);
            }
            let def = self.families[index].get_or_insert_with(|| match metrics.get(p.metric) {
                Some(m) => family(&self.prefix, &m.name, &m.unit, &m.description),
                None => family(&self.prefix, &format!("metric_{index}"), &Unit::Unity, ""),
            });
            let identity = &self.identity;
            let known = self.series.get_or_insert_with(p, || Known {
                labels: series_labels(&def.name, label_pairs(identity, p)),
                total: 0.0,
            });
            let value = p.value.as_f64() * def.factor;
            let value = if def.counter {
                // An energy point is the energy used since the previous one: add it up,
                // as the exporter does. A negative or non-finite delta would break the
                // counter's monotonicity: it is not added.
                if value.is_finite() && value >= 0.0 {
                    known.total += value;
                }
                known.total
            } else {
                value
            };
            let timestamp = (p.timestamp.unix_nanos() / 1_000_000) as i64;
            batch.push(Point {
                series: Arc::clone(&known.labels),
                sample: Sample { value, timestamp },
            });
        }
        batch
    }
}

/// Encodes a batch into one remote-write request and posts it.
pub struct RemoteWrite {
    http: HttpClient,
    encoder: Encoder,
}

impl RemoteWrite {
    /// The client of `config`'s URL and credentials, with remote write 1.0's headers.
    pub fn new(config: &Config) -> Self {
        let mut headers: Vec<(String, String)> = [
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        headers.push((
            "User-Agent".to_owned(),
            format!("alumet-agent/{}", env!("CARGO_PKG_VERSION")),
        ));
        if let Some(auth) = config.authorization() {
            headers.push(("Authorization".to_owned(), auth));
        }
        headers.extend(config.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        RemoteWrite {
            http: HttpClient::new(config.url.clone(), config.timeout, headers),
            encoder: Encoder::default(),
        }
    }
}

impl Transport<Batch> for RemoteWrite {
    fn send(&mut self, batch: &Batch) -> Outcome {
        match self.encoder.encode(batch.as_slice()) {
            Ok(body) => self.http.post(body),
            // Snappy fails only past its input limit (about 4 GiB): not worth retrying.
            Err(e) => Outcome::TooLarge {
                message: format!("snappy: {e}"),
            },
        }
    }

    fn target(&self) -> &str {
        self.http.url()
    }
}
