//! The output: formats each buffer into lines and queues them for the sender thread,
//! which delivers them in batches (see `delivery.rs`).

use std::sync::Arc;
use std::thread::JoinHandle;

use alumet::metrics::MetricRegistry;
use alumet::plugin::HostIdentity;
use alumet::prelude::*;
use alumet_delivery::Settings;
use anyhow::Context;

use crate::client::Client;
use crate::collide::Collisions;
use crate::config::{ApiVersion, Config};
use crate::delivery::{Shared, Stats};
use crate::line::{self, Dialect, LineFormat, Written};
use crate::queue::Chunk;

/// A handle on the counts of an [`InfluxOutput`], usable after the pipeline has taken it.
#[derive(Clone)]
pub struct StatsHandle(pub(crate) Arc<Shared>);

impl StatsHandle {
    /// The counts so far.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }
}

/// Writes points to InfluxDB: `write` only formats and queues (it never waits on the
/// network); a thread of its own sends the batches.
pub struct InfluxOutput {
    config: Config,
    dialect: Dialect,
    shared: Arc<Shared>,
    /// The escaped measurement of each metric, by [`alumet::metrics::RawMetricId::index`],
    /// followed by the host identity's tags (`,host=web-1,cluster=a`).
    measurements: Vec<Option<Box<[u8]>>>,
    /// The host identity's tags, escaped, each as `,key=value`.
    identity_tags: Vec<u8>,
    /// Only when some attribute may be written as a field (see `collide.rs`).
    collisions: Option<Collisions>,
    sender: Option<JoinHandle<()>>,
}

impl InfluxOutput {
    /// Starts the sender thread; connects to nothing yet (a server down at start only
    /// delays delivery).
    pub fn start(
        config: &Config,
        identity: &HostIdentity,
        shared: Arc<Shared>,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let dialect = match config.api_version {
            ApiVersion::V1 => Dialect::V1,
            ApiVersion::V2 | ApiVersion::V3 => Dialect::Modern,
        };
        let settings = Settings {
            batch_size: config.batch_size,
            flush_interval: config.flush_interval,
        };
        let sender = shared
            .engine
            .spawn("influxdb-send", Client::new(config), settings)
            .context("starting the influxdb sender thread")?;
        Ok(InfluxOutput {
            config: config.clone(),
            dialect,
            shared,
            measurements: Vec::new(),
            identity_tags: identity_tags(identity, dialect),
            collisions: config
                .may_write_field_attributes()
                .then(Collisions::default),
            sender: Some(sender),
        })
    }

    /// The counts of this output.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.shared))
    }

    /// Formats `buffer` into lines; returns them and how many points were left out
    /// (non-finite values, collisions), which are counted as lost.
    fn format(&mut self, buffer: &MeasurementBuffer, metrics: &MetricRegistry) -> (Chunk, u64) {
        let mut chunk = Chunk::default();
        let (mut non_finite, mut collided, mut large) = (0, 0, 0);
        let config = &self.config;
        let name = self.shared.name();
        let format = LineFormat {
            dialect: self.dialect,
            is_tag: |key: &str| config.is_tag(key),
        };
        if let Some(c) = &mut self.collisions {
            c.clear();
        }
        let points = buffer.as_slice();
        for (i, point) in points.iter().enumerate() {
            let measurement = measurement(
                &mut self.measurements,
                metrics,
                point,
                self.dialect,
                &self.identity_tags,
            );
            let Written::Line { large_u64, key_len } =
                format.write(chunk.bytes_mut(), point, measurement)
            else {
                non_finite += 1;
                continue;
            };
            if let Some(c) = &mut self.collisions {
                if let Some(j) = c.check(&chunk, key_len, points, i) {
                    chunk.discard_unended();
                    collided += 1;
                    c.warn_once(name, metrics, &points[j], point, |k| config.is_tag(k));
                    continue;
                }
            }
            chunk.end_line();
            large += u64::from(large_u64);
        }
        self.shared
            .count_received(buffer.len(), non_finite, collided, large);
        (chunk, non_finite + collided)
    }
}

/// The host identity's labels as tags: `,key=value` each, escaped.
fn identity_tags(identity: &HostIdentity, dialect: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in identity.labels() {
        out.push(b',');
        line::write_key(&mut out, key, dialect);
        out.push(b'=');
        line::write_key(&mut out, value, dialect);
    }
    out
}

/// The escaped measurement of the point's metric followed by the identity's tags,
/// computed once per metric.
fn measurement<'a>(
    cache: &'a mut Vec<Option<Box<[u8]>>>,
    metrics: &MetricRegistry,
    point: &MeasurementPoint,
    dialect: Dialect,
    identity_tags: &[u8],
) -> &'a [u8] {
    let i = point.metric.index();
    if cache.len() <= i {
        cache.resize(i + 1, None);
    }
    cache[i].get_or_insert_with(|| {
        let name = match metrics.get(point.metric) {
            Some(m) => line::measurement(&m.name, &m.unit, dialect),
            None => line::measurement(&format!("metric_{i}"), &Unit::Unity, dialect),
        };
        [&name[..], identity_tags].concat().into_boxed_slice()
    })
}

impl Output for InfluxOutput {
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        self.shared.set_delivery(ctx.delivery());
        let (chunk, left_out) = self.format(buffer, ctx.metrics());
        ctx.delivery().lost(left_out);
        self.shared.enqueue(chunk);
        Ok(())
    }

    /// Sends what is buffered, retrying, until it is delivered or the plugin's `stop`
    /// gives up (after the core's shutdown deadline).
    fn finish(&mut self, _ctx: &OutputContext) -> Result<(), ElementError> {
        let left = self.shared.close_and_wait();
        if left == 0 {
            if let Some(sender) = self.sender.take() {
                let _ = sender.join();
            }
        }
        let stats = self.shared.stats();
        log::info!(
            "{}: {} points delivered, {} dropped, {} rejected, {} skipped (NaN or infinite), {} colliding (same series and timestamp), {} not delivered",
            self.shared.name(),
            stats.delivered,
            stats.dropped,
            stats.rejected,
            stats.skipped_non_finite,
            stats.collided,
            stats.undelivered,
        );
        Ok(())
    }
}

impl Drop for InfluxOutput {
    fn drop(&mut self) {
        // The pipeline stopped this output: make the sender exit too (what it still held
        // is counted as lost, by the core if it has settled this output already).
        self.shared.abort();
    }
}
