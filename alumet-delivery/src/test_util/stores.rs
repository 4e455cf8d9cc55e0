//! Real Prometheus-compatible stores for the tests: Debian's `prometheus` (with its
//! remote-write receiver) and `victoria-metrics`, each started on a free loopback port with
//! a temporary data directory, and the raw samples they hold.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::closed_port;

/// Which store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Debian's `prometheus`, `--web.enable-remote-write-receiver`.
    Prometheus,
    /// Debian's `victoria-metrics` (single node).
    VictoriaMetrics,
}

impl Kind {
    /// The binary, and the Debian package that has it.
    pub fn binary(self) -> (&'static str, &'static str) {
        match self {
            Kind::Prometheus => ("prometheus", "prometheus"),
            Kind::VictoriaMetrics => ("victoria-metrics", "victoria-metrics"),
        }
    }
}

/// Whether the store's binary is installed: with `CI` set, its absence fails the test
/// (`.ci/run` installs it); elsewhere the skip is shown on the terminal.
pub fn available(test: &str, kind: Kind) -> bool {
    use alumet::test_util::skip::{missing_tool, should_run};
    let (binary, package) = kind.binary();
    should_run(test, missing_tool(binary, package))
}

/// One series and its raw samples (milliseconds, value), oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// Its samples.
    pub samples: Vec<(i64, f64)>,
}

/// A running store; killed on drop, its directory removed.
pub struct Store {
    kind: Kind,
    dir: PathBuf,
    /// Its loopback port.
    pub port: u16,
    child: Option<Child>,
}

impl Store {
    /// Starts a store with an empty data directory, and waits until it is ready.
    pub fn start(kind: Kind, tag: &str) -> Store {
        let dir = std::env::temp_dir().join(format!(
            "alumet-{tag}-{}-{}",
            std::process::id(),
            closed_port()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            "global:\n  scrape_interval: 1m\n",
        )
        .unwrap();
        let mut store = Store {
            kind,
            dir,
            port: closed_port(),
            child: None,
        };
        store.restart();
        store
    }

    /// The remote-write URL.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// Starts the store again on the same directory and port (after [`Store::kill`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let d = &self.dir;
        let addr = format!("127.0.0.1:{}", self.port);
        let mut cmd = match self.kind {
            Kind::Prometheus => {
                let mut c = Command::new("prometheus");
                c.arg(format!(
                    "--config.file={}",
                    d.join("prometheus.yml").display()
                ))
                .arg(format!("--storage.tsdb.path={}", d.join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-remote-write-receiver");
                c
            }
            Kind::VictoriaMetrics => {
                let mut c = Command::new("victoria-metrics");
                c.arg(format!("-storageDataPath={}", d.join("data").display()))
                    .arg(format!("-httpListenAddr={addr}"))
                    .arg("-search.latencyOffset=0s")
                    .arg("-search.disableCache");
                c
            }
        };
        let log = std::fs::File::create(d.join("store.log")).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.child = Some(child);
        let ready = match self.kind {
            Kind::Prometheus => "/-/ready",
            Kind::VictoriaMetrics => "/health",
        };
        let end = Instant::now() + Duration::from_secs(60);
        while self.get(ready).is_none() {
            assert!(
                Instant::now() < end,
                "{:?} not ready on port {}: {}",
                self.kind,
                self.port,
                std::fs::read_to_string(d.join("store.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the store (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `GET path`: the body of a 200 answer.
    pub fn get(&self, path: &str) -> Option<String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let answer = ureq::get(&url)
            .timeout(Duration::from_secs(10))
            .call()
            .ok()?;
        answer.into_string().ok()
    }

    /// Every series whose name matches the regular expression `name_regex`, with all
    /// its raw samples of the last `hours` hours.
    pub fn series(&self, name_regex: &str, hours: u32) -> Vec<Series> {
        let selector = format!("{{__name__=~\"{name_regex}\"}}");
        let mut out = match self.kind {
            Kind::Prometheus => self.prometheus_series(&selector, hours),
            Kind::VictoriaMetrics => self.victoria_series(&selector, hours),
        };
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    fn prometheus_series(&self, selector: &str, hours: u32) -> Vec<Series> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            + 60.0;
        let query = encode(&format!("{selector}[{hours}h]"));
        let body = self
            .get(&format!("/api/v1/query?query={query}&time={now:.3}"))
            .expect("query answered");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let result = json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        result
            .iter()
            .map(|r| Series {
                labels: labels(&r["metric"]),
                samples: r["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        let t = v[0].as_f64().unwrap();
                        let value = v[1].as_str().unwrap().parse::<f64>().unwrap();
                        ((t * 1000.0).round() as i64, value)
                    })
                    .collect(),
            })
            .collect()
    }

    fn victoria_series(&self, selector: &str, hours: u32) -> Vec<Series> {
        let query = encode(selector);
        let body = self
            .get(&format!("/api/v1/export?match[]={query}&start=-{hours}h"))
            .expect("export answered");
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let r: serde_json::Value = serde_json::from_str(line).unwrap();
                let times = r["timestamps"].as_array().unwrap();
                let values = r["values"].as_array().unwrap();
                let mut samples: Vec<(i64, f64)> = times
                    .iter()
                    .zip(values)
                    .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap()))
                    .collect();
                samples.sort_by_key(|s| s.0);
                Series {
                    labels: labels(&r["metric"]),
                    samples,
                }
            })
            .collect()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn labels(metric: &serde_json::Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
