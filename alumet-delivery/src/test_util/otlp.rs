//! An OTLP/HTTP receiver for the tests: `otlp_receiver.py`, which decodes every request
//! with the official generated classes (PyPI's `opentelemetry-proto`, installed by
//! `.ci/run`) and writes each data point as a JSON line.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::closed_port;

const SCRIPT: &str = include_str!("otlp_receiver.py");

/// Whether `python3` with `opentelemetry-proto` is here: with `CI` set, its absence fails
/// the test; elsewhere the skip is shown on the terminal.
pub fn available(test: &str) -> bool {
    use alumet::test_util::skip::{missing_tool, should_run};
    let mut missing = missing_tool("python3", "python3");
    if missing.is_none() {
        let ok = Command::new("python3")
            .args([
                "-c",
                "import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing = Some(
                "needs Python's opentelemetry-proto (pip install --break-system-packages opentelemetry-proto)"
                    .to_owned(),
            );
        }
    }
    should_run(test, missing)
}

/// The running receiver; killed on drop, its directory removed.
pub struct Receiver {
    dir: PathBuf,
    /// Its loopback port.
    pub port: u16,
    child: Child,
}

impl Receiver {
    /// Starts the receiver and waits until it listens.
    pub fn start(tag: &str) -> Receiver {
        let dir = std::env::temp_dir().join(format!(
            "alumet-otlp-{tag}-{}-{}",
            std::process::id(),
            closed_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("otlp_receiver.py");
        std::fs::write(&script, SCRIPT).unwrap();
        let log = std::fs::File::create(dir.join("receiver.log")).unwrap();
        let child = Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
                break p.trim().parse().unwrap();
            }
            assert!(
                Instant::now() < end,
                "the OTLP receiver did not start: {}",
                std::fs::read_to_string(dir.join("receiver.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Receiver { dir, port, child }
    }

    /// `http://127.0.0.1:PORT`, the `endpoint` of the output.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every line written so far: requests (`{"request": ...}`) and data points.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("points.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The data points received so far.
    pub fn points(&self) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| l.get("request").is_none())
            .collect()
    }

    /// The requests received so far (path and headers, names in lowercase).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter_map(|l| l.get("request").cloned())
            .collect()
    }

    /// What the receiver wrote on its standard error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("receiver.log")).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
