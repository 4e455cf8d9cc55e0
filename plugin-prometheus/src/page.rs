//! What `/metrics` shows: the series, and the agent's own health.

use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use alumet::pipeline::{ElementKind, ElementStats};
use alumet::prelude::*;

use crate::format::{escape_label_value, write_header};
use crate::state::{lock, State};

/// What a scrape renders: the series, and the agent's own health from the control handle.
pub struct Page {
    /// The series, updated by the output.
    pub state: Arc<Mutex<State>>,
    /// Set in `post_start`.
    pub control: OnceLock<PluginControl>,
    /// Prefix of the health metrics' names.
    pub prefix: String,
    /// Write each series' timestamp.
    pub add_timestamps: bool,
}

impl Page {
    /// The whole exposition: a snapshot taken under the lock, rendered without it.
    pub fn render(&self, now: Instant) -> String {
        let snapshot = lock(&self.state).snapshot(now);
        let mut out = String::with_capacity(snapshot.series() * 96 + 2048);
        snapshot.render(&mut out, self.add_timestamps);
        let p = &self.prefix;
        let n = format!("{p}prometheus_points_received_total");
        write_header(
            &mut out,
            &n,
            "Points received by the Prometheus exporter.",
            true,
        );
        let _ = writeln!(out, "{n} {}", snapshot.points_received);
        let n = format!("{p}prometheus_series");
        write_header(
            &mut out,
            &n,
            "Series exposed by the Prometheus exporter.",
            false,
        );
        let _ = writeln!(out, "{n} {}", snapshot.series());
        let n = format!("{p}prometheus_series_dropped_total");
        write_header(
            &mut out,
            &n,
            "Points of new series refused because max_series series existed.",
            true,
        );
        let _ = writeln!(out, "{n} {}", snapshot.series_dropped);
        if let Some(control) = self.control.get() {
            self.render_outputs(&mut out, &control.output_stats());
            self.render_elements(&mut out, &control.element_stats());
        }
        out
    }

    /// Errors and stops of every element; polls, points and last success of every source.
    fn render_elements(&self, out: &mut String, stats: &[ElementStats]) {
        let p = &self.prefix;
        let element = |out: &mut String, name: &str, s: &ElementStats| {
            let _ = write!(out, "{name}{{element=\"");
            escape_label_value(out, &s.name.to_string());
            let _ = write!(out, "\",kind=\"{}\"}} ", s.kind.as_str());
        };
        let families: [ElementFamily; 5] = [
            (
                "element_errors_total",
                "Retryable errors of each element (it went on).",
                true,
                |s| Some(s.retryable_errors as f64),
            ),
            (
                "element_stopped",
                "1 when the element stopped after a fatal error or a panic.",
                false,
                |s| Some(f64::from(u8::from(s.stopped))),
            ),
            ("source_polls_total", "Polls of each source.", true, |s| {
                (s.kind == ElementKind::Source).then_some(s.polls as f64)
            }),
            (
                "source_points_total",
                "Points produced by each source.",
                true,
                |s| (s.kind == ElementKind::Source).then_some(s.points as f64),
            ),
            (
                "source_last_success_timestamp_seconds",
                "Time of the last successful poll of each source.",
                false,
                |s| s.last_success.map(|t| t.unix_nanos() as f64 / 1e9),
            ),
        ];
        for (family, help, counter, get) in families {
            let name = format!("{p}{family}");
            if !stats.iter().any(|s| get(s).is_some()) {
                continue;
            }
            write_header(out, &name, help, counter);
            for s in stats {
                if let Some(v) = get(s) {
                    element(out, &name, s);
                    let _ = writeln!(out, "{v}");
                }
            }
        }
    }

    fn render_outputs(&self, out: &mut String, stats: &[alumet::pipeline::OutputStats]) {
        let families: [HealthFamily; 4] = [
            (
                "output_points_written_total",
                "Points written by each output.",
                true,
                |s| s.written_points,
            ),
            (
                "output_points_dropped_total",
                "Points dropped because the queue of the output was full.",
                true,
                |s| s.dropped_points,
            ),
            (
                "output_points_failed_total",
                "Points lost because a write failed or the output stopped.",
                true,
                |s| s.failed_points,
            ),
            (
                "output_points_queued",
                "Points waiting in the queue of each output.",
                false,
                |s| s.queued_points,
            ),
        ];
        for (name, help, counter, get) in families {
            let name = format!("{}{name}", self.prefix);
            write_header(out, &name, help, counter);
            for s in stats {
                let _ = write!(out, "{name}{{output=\"");
                escape_label_value(out, &s.name.to_string());
                let _ = writeln!(out, "\"}} {}", get(s));
            }
        }
    }
}

/// Name, help, counter, and the value of [`ElementStats`] (none: no sample).
type ElementFamily = (
    &'static str,
    &'static str,
    bool,
    fn(&ElementStats) -> Option<f64>,
);

/// Name, help, counter, and the field of [`OutputStats`](alumet::pipeline::OutputStats).
type HealthFamily = (
    &'static str,
    &'static str,
    bool,
    fn(&alumet::pipeline::OutputStats) -> u64,
);
