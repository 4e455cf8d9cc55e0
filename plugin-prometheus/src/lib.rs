//! Prometheus exporter: the plugin `prometheus` serves every series it receives on an
//! HTTP endpoint (`/metrics`, text exposition format 0.0.4) for Prometheus to scrape
//! (see `README.md` for names, units, counters and staleness).
//!
//! ```toml
//! [plugins.prometheus]
//! address = "127.0.0.1:9091"
//! ```

mod config;
mod format;
mod openmetrics;
mod output;
mod server;

use std::sync::{Arc, Mutex, OnceLock};

use alumet::pipeline::OutputOptions;
use alumet::prelude::*;

pub use config::Config;
pub use output::{PrometheusOutput, State};
pub use server::{Exporter, Page, CONTENT_TYPE};

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
        let state = Arc::new(Mutex::new(State::new(self.config.stale_after)));
        let page = Arc::new(Page {
            state: Arc::clone(&state),
            control: OnceLock::new(),
            prefix: self.config.prefix.clone(),
            add_timestamps: self.config.add_timestamps,
        });
        // Listening here: a port in use stops the agent before it measures.
        self.exporter = Some(Exporter::start(self.config.address, Arc::clone(&page))?);
        self.page = Some(page);
        // A write only updates a map under a short lock: quick enough to run inline.
        let output = PrometheusOutput::new(state, &self.config.prefix);
        alumet.add_output_with(
            "prometheus",
            output,
            OutputOptions::default().inline_when_idle(),
        )?;
        Ok(())
    }

    fn post_start(&mut self, control: &PipelineControl) -> anyhow::Result<()> {
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
    output::lock(&page.state)
        .snapshot(std::time::Instant::now())
        .series()
}
