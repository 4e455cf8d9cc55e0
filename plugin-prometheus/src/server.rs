//! The HTTP endpoint: a tiny_http server whose worker threads render `/metrics`.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use alumet::pipeline::{ElementKind, ElementStats};
use alumet::prelude::*;
use anyhow::{anyhow, Context};
use tiny_http::{Header, Method, Request, Response};

use crate::format::{escape_label_value, write_header};
use crate::output::{lock, State};

/// Threads answering scrapes (a scrape takes milliseconds: two cover concurrent scrapers).
const WORKERS: usize = 2;
/// The content type of the text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a scrape renders: the series, and the agent's own health from the control handle.
pub struct Page {
    /// The series, updated by the output.
    pub state: Arc<Mutex<State>>,
    /// Set in `post_start`.
    pub control: OnceLock<PipelineControl>,
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

/// The running HTTP server and its worker threads.
pub struct Exporter {
    http: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Exporter {
    /// Listens on `address` and starts the workers.
    pub fn start(address: SocketAddr, page: Arc<Page>) -> anyhow::Result<Self> {
        let http = tiny_http::Server::http(address)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("listening on {address}"))?;
        let http = Arc::new(http);
        log::info!(
            "prometheus exporter listening on http://{}/metrics",
            http.server_addr()
        );
        let stopping = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            let (http, stopping, page) =
                (Arc::clone(&http), Arc::clone(&stopping), Arc::clone(&page));
            let worker = std::thread::Builder::new()
                .name(format!("alumet-prom-{i}"))
                .spawn(move || serve(&http, &stopping, &page))
                .context("starting the exporter's threads")?;
            workers.push(worker);
        }
        Ok(Exporter {
            http,
            stopping,
            workers,
        })
    }

    /// Stops the workers and closes the socket.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.http.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(http: &tiny_http::Server, stopping: &AtomicBool, page: &Page) {
    loop {
        match http.recv() {
            Ok(request) => respond(request, page),
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            Err(e) => log::debug!("prometheus exporter: accepting a connection: {e}"),
        }
    }
}

fn respond(request: Request, page: &Page) {
    let path = request.url().split('?').next().unwrap_or("");
    let get = matches!(request.method(), Method::Get | Method::Head);
    let openmetrics = request.headers().iter().any(|h| {
        h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
    });
    let (status, body, content_type) = match (get, path) {
        (true, "/metrics") if openmetrics => (
            200,
            crate::openmetrics::convert(&page.render(Instant::now())),
            crate::openmetrics::CONTENT_TYPE,
        ),
        (true, "/metrics") => (200, page.render(Instant::now()), CONTENT_TYPE),
        (true, "/") => (
            200,
            "alumet-agent: metrics at /metrics\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
        (true, _) => (
            404,
            "not found: metrics are at /metrics\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
        (false, _) => (
            405,
            "only GET and HEAD\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
    };
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(header) = Header::from_bytes("Content-Type", content_type) {
        response.add_header(header);
    }
    if let Err(e) = request.respond(response) {
        log::debug!("prometheus exporter: answering a scrape: {e}");
    }
}
