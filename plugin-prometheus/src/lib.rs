//! Prometheus exporter: the plugin `prometheus` serves every series it receives on an
//! HTTP endpoint (`/metrics`, text exposition format 0.0.4) for Prometheus to scrape
//! (see `README.md` for names, units, counters, staleness and limits).
//!
//! ```toml
//! [plugins.prometheus]
//! address = "127.0.0.1:9091"
//! ```

mod config;
mod format;
mod openmetrics;
mod output;
mod page;
mod server;
mod state;

use std::sync::{Arc, Mutex, OnceLock};

use alumet::pipeline::{Event, OutputOptions};
use alumet::prelude::*;

pub use config::Config;
pub use output::{PrometheusOutput, Snapshot};
pub use page::Page;
pub use server::{Exporter, Limits, CONTENT_TYPE};
pub use state::{lock, State, MIN_EXPIRY, MISSED_INTERVALS};

/// The `prometheus` plugin: one output, `prometheus/prometheus`, and the HTTP endpoint.
pub struct PrometheusPlugin {
    config: Config,
    page: Option<Arc<Page>>,
    exporter: Option<Exporter>,
}

impl Plugin for PrometheusPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "prometheus"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(PrometheusPlugin {
            config,
            page: None,
            exporter: None,
        })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let c = &self.config;
        let state = Arc::new(Mutex::new(State::new(c.stale_after, c.max_series)));
        let page = Arc::new(Page {
            state: Arc::clone(&state),
            control: OnceLock::new(),
            prefix: c.prefix.clone(),
            add_timestamps: c.add_timestamps,
        });
        let limits = Limits {
            max_connections: c.max_connections,
            read_timeout: c.read_timeout,
        };
        // Listening here: a port in use stops the agent before it measures.
        let address = c.listen_address()?;
        let exporter = Exporter::start(address, Arc::clone(&page), Arc::clone(&state), limits)?;
        self.exporter = Some(exporter);
        self.page = Some(page);
        // The series of an ended consumer go at once, not after a few intervals.
        let ended = Arc::clone(&state);
        alumet.on_event(move |event, _| {
            if let Event::ConsumerEnded(consumer) = event {
                lock(&ended).consumer_ended(consumer);
            }
        });
        // Its own thread, never the flushing one: a write takes the lock that a scrape
        // holds while it copies every series.
        let output = PrometheusOutput::new(state, &c.prefix, alumet.host_identity())
            .with_naming(&c.suffix, c.add_attributes_to_labels);
        alumet.add_output_with("prometheus", output, OutputOptions::default())?;
        Ok(())
    }

    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()> {
        if let Some(page) = &self.page {
            let _ = page.control.set(control.clone());
        }
        Ok(())
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut exporter) = self.exporter.take() {
            exporter.stop();
        }
        Ok(())
    }
}

/// Takes (and drops) the snapshot a scrape takes under the state's lock; for the
/// `scrape_cost` example, which measures how long a scrape holds the lock.
#[doc(hidden)]
pub fn output_lock_snapshot(page: &Page) -> usize {
    lock(&page.state)
        .snapshot(std::time::Instant::now())
        .series()
}
