//! An example dynamic plugin in Rust, `rust_example`, built as a shared library
//! (`libdynamic_plugin_example.so`) and loaded by the agent at run time:
//!
//! ```toml
//! [plugins.rust_example]
//! path = "target/release/libdynamic_plugin_example.so"
//! poll_interval_ms = 100
//! output_path = "points.txt"
//! ```
//!
//! - source `counter`: metric `rust_example_polls` (u64), the number of polls so far;
//! - source `panicky` (only with `panic_on_poll`): panics at that poll, to show that the
//!   agent stops that source only;
//! - output `lines` (only with `output_path`): one line per point it receives.
//!
//! It has no `unsafe` code: `alumet_dynamic::export_plugin!` exports the C ABI.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Duration;

use alumet_dynamic::sdk::{
    self, Accumulator, Attribute, Buffer, Error, MetricId, Output, Plugin, Point, Registrar,
    Result, Source,
};
use serde::Deserialize;

/// The `[plugins.rust_example]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// How often the sources poll, in milliseconds.
    poll_interval_ms: u64,
    /// Where the output `lines` writes one line per point (no output when absent).
    output_path: Option<String>,
    /// The poll (counted from 1) at which the source `panicky` panics; 0: no such source.
    panic_on_poll: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_interval_ms: 1000,
            output_path: None,
            panic_on_poll: 0,
        }
    }
}

struct ExamplePlugin {
    config: Config,
}

impl Plugin for ExamplePlugin {
    fn init(config_toml: &str) -> Result<Self> {
        let config: Config = toml::from_str(config_toml)
            .map_err(|e| Error::fatal(format!("invalid config: {}", e.message())))?;
        if config.poll_interval_ms == 0 {
            return Err(Error::fatal("poll_interval_ms must be at least 1"));
        }
        Ok(ExamplePlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> Result<()> {
        let interval = Duration::from_millis(self.config.poll_interval_ms);
        let polls = alumet.create_metric::<u64>(
            "rust_example_polls",
            "1",
            "Polls of the source so far.",
        )?;
        alumet.add_source(
            "counter",
            interval,
            None,
            Counter {
                metric: polls,
                polls: 0,
            },
        )?;
        if self.config.panic_on_poll > 0 {
            let metric = alumet.create_metric::<f64>(
                "rust_example_panicky",
                "1",
                "Polls of the source that panics, as a float.",
            )?;
            let source = Panicky {
                metric,
                polls: 0,
                panic_on: self.config.panic_on_poll,
            };
            alumet.add_source("panicky", interval, None, source)?;
        }
        if let Some(path) = &self.config.output_path {
            let file = File::create(path)
                .map_err(|e| Error::fatal(format!("cannot create {path}: {e}")))?;
            alumet.add_output(
                "lines",
                Lines {
                    file: BufWriter::new(file),
                },
            )?;
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        sdk::log(sdk::Level::Info, "rust_example stopped");
        Ok(())
    }
}

const ATTRIBUTES: [Attribute<'static>; 1] = [Attribute::new("origin", "rust")];

struct Counter {
    metric: MetricId<u64>,
    polls: u64,
}

impl Source for Counter {
    fn poll(&mut self, acc: &mut Accumulator<'_>, timestamp_ns: u64) -> Result<()> {
        self.polls += 1;
        let point = Point::new(self.metric, timestamp_ns, self.polls)
            .resource("example", "counter")
            .attributes(&ATTRIBUTES);
        acc.push(point)
    }
}

struct Panicky {
    metric: MetricId<f64>,
    polls: u64,
    panic_on: u64,
}

impl Source for Panicky {
    fn poll(&mut self, acc: &mut Accumulator<'_>, timestamp_ns: u64) -> Result<()> {
        self.polls += 1;
        if self.polls == self.panic_on {
            panic!("rust_example: panic on poll {} as configured", self.polls);
        }
        acc.push(Point::new(self.metric, timestamp_ns, self.polls as f64))
    }
}

struct Lines {
    file: BufWriter<File>,
}

impl Output for Lines {
    fn write(&mut self, buffer: &mut Buffer<'_>) -> Result<()> {
        for i in 0..buffer.len() {
            let Some(p) = buffer.get(i) else { break };
            let attributes: Vec<String> = p.attributes().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(
                self.file,
                "{} {} {} {} {}",
                p.metric_name,
                p.resource_kind,
                p.resource_id,
                p.value,
                attributes.join(",")
            )?;
        }
        // Flushed after every buffer, so that a reader sees the lines at once.
        self.file.flush().map_err(Error::retry)
    }

    fn finish(&mut self) -> Result<()> {
        self.file.flush()?;
        Ok(())
    }
}

alumet_dynamic::export_plugin!(
    ExamplePlugin,
    name = "rust_example",
    version = env!("CARGO_PKG_VERSION")
);
