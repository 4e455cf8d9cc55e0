//! Helpers: a pipeline with the exporter on a free port, raw HTTP GET, and a small parser
//! of the text exposition format.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use alumet::prelude::*;
use alumet::test_util::{Feeder, PipelineTester, TestPlugin, TestRun};
use plugin_prometheus::PrometheusPlugin;

/// A free loopback port (bound, then released for the exporter).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `GET path` over a fresh connection; returns the status, the headers (lowercase
/// names) and the body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    try_get(addr, path).unwrap()
}

/// [`get`], or the error of a server that is not (yet) listening.
pub fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    get_with(addr, path, "")
}

/// [`try_get`] with extra header lines (each ending in `\r\n`).
pub fn get_with(
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Ok((status, head.to_lowercase(), body.to_owned()))
}

/// Retries `f` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp: Option<i64>,
}

/// A parsed exposition.
#[derive(Debug, Default)]
pub struct Exposition {
    pub help: HashMap<String, String>,
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The samples of `name`.
    pub fn of(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self
            .of(name)
            .into_iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(found.len() <= 1, "several samples match {name} {labels:?}");
        found.first().map(|s| s.value)
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => panic!("dangling backslash in {s:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|_| panic!("bad value {s:?}")),
    }
}

/// Parses the text format strictly enough to catch malformed lines.
pub fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(
                e.help.insert(name.into(), unescape(help)).is_none(),
                "two HELP for {name}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                e.samples.iter().all(|s| s.name != name),
                "TYPE of {name} after its samples"
            );
            assert!(
                e.types.insert(name.into(), kind.into()).is_none(),
                "two TYPE for {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "unexpected line {line:?}"
        );
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(name_ok(name), "bad metric name {name:?}");
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            // label="value" pairs; values may hold escaped quotes.
            let mut r = r;
            while !r.starts_with('}') {
                let (key, after) = r.split_once("=\"").unwrap();
                assert!(name_ok(key) && !key.contains(':'), "bad label name {key:?}");
                let mut end = 0;
                let bytes = after.as_bytes();
                while bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                assert!(
                    labels
                        .insert(key.to_owned(), unescape(&after[..end]))
                        .is_none(),
                    "duplicate label {key}"
                );
                r = &after[end + 1..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
            rest = &r[1..];
        }
        let mut fields = rest.trim_start_matches(' ').split(' ');
        let value = parse_value(fields.next().unwrap());
        let timestamp = fields.next().map(|t| t.parse().unwrap());
        assert!(fields.next().is_none(), "trailing fields in {line:?}");
        e.samples.push(Sample {
            name: name.into(),
            labels,
            value,
            timestamp,
        });
    }
    e
}

/// A running pipeline with the exporter.
pub struct Exporter {
    pub run: TestRun,
    pub feeder: Feeder,
    pub addr: SocketAddr,
}

impl Exporter {
    /// Starts a pipeline with the exporter (config `extra` added to its address) and
    /// metrics `rapl_consumed_energy` (J), `gpu_energy` (mJ), `memory_usage` (By),
    /// `latency` (ms) and `test_input` (1), fed by `test/input`.
    pub fn start(extra: &str) -> Exporter {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut tester = PipelineTester::new();
        let toml = format!("address = \"{addr}\"\n{extra}");
        tester.plugin_toml::<PrometheusPlugin>(&toml).unwrap();
        tester.any_plugin(TestPlugin::new("m", |a| {
            a.create_metric::<f64>(
                "rapl_consumed_energy",
                Unit::Joule,
                "Energy used since the previous point.\nIn \"joules\" \\ J.",
            )?;
            a.create_metric::<u64>("gpu_energy", Unit::MilliJoule, "GPU energy.")?;
            a.create_metric::<u64>("memory_usage", Unit::Byte, "Resident memory.")?;
            a.create_metric::<f64>("latency", Unit::Millisecond, "Latency.")?;
            Ok(())
        }));
        let feeder = tester.feeder("input");
        let run = tester.start().unwrap();
        Exporter { run, feeder, addr }
    }

    pub fn metric<T: alumet::measurement::MeasurementType>(&self, name: &str) -> MetricId<T> {
        self.run.metric::<T>(name).unwrap()
    }

    /// Pushes `points` as one buffer.
    pub fn feed(&self, points: impl IntoIterator<Item = MeasurementPoint>) {
        for p in points {
            self.feeder.push(p);
        }
        assert_eq!(self.run.trigger("test/input"), 1);
    }

    /// Scrapes `/metrics` (status 200 asserted) and parses it.
    pub fn scrape(&self) -> Exposition {
        let (status, head, body) = get(self.addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        parse(&body)
    }

    /// Scrapes until the exporter has received `n` points in all.
    pub fn scrape_after(&self, n: u64) -> Exposition {
        wait_for(20, &format!("{n} points received"), || {
            let e = self.scrape();
            let received = e
                .samples
                .iter()
                .find(|s| s.name.ends_with("prometheus_points_received_total"));
            (received.map(|s| s.value) == Some(n as f64)).then_some(e)
        })
    }
}

/// A point at `t` ns.
pub fn point<T: alumet::measurement::MeasurementType>(
    t: u64,
    metric: MetricId<T>,
    value: T,
    resource: Resource,
    consumer: ResourceConsumer,
    attributes: &[(&str, &str)],
) -> MeasurementPoint {
    MeasurementPoint::new(
        Timestamp::from_unix_nanos(t),
        metric,
        resource,
        consumer,
        value,
    )
    .with_attributes(Attributes::new(attributes.iter().copied()))
}
