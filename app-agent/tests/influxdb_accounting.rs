//! The agent with the influxdb output against a real InfluxDB 1.x (Debian's `influxd`,
//! started on free loopback ports with a temporary directory): with the default config,
//! every metric of procfs (kernel, memory, network, processes) and of the `agent` plugin
//! has as many points in InfluxDB as rows in the CSV; a missing database, or a server
//! that cannot be reached at shutdown, loses every point, says so, and exits 1.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::accounting::{csv_rows, reported, run_agent, SOURCES};
use common::*;

const DB: &str = "alumet";

/// Whether `influxd` can run here: under CI its absence fails the test (CI installs it);
/// elsewhere the skip is shown on the terminal.
fn available(test: &str) -> bool {
    use alumet::test_util::skip::{missing_tool, should_run};
    should_run(test, missing_tool("influxd", "influxdb"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A running `influxd` with database [`DB`]; killed on drop.
struct Influxd {
    port: u16,
    child: Child,
}

impl Influxd {
    fn start(dir: &Path) -> Influxd {
        let (port, rpc) = (free_port(), free_port());
        let d = dir.join("influxdb");
        let d = d.display();
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n[continuous_queries]\n  enabled = false\n"
        );
        let path: PathBuf = dir.join("influxdb.conf");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .arg("-config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Influxd { port, child };
        let start = Instant::now();
        while server.http("GET", "/ping", "").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "influxd is not up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server.query(&format!("CREATE DATABASE {DB}"));
        server
    }

    /// One HTTP/1.0 request; the body of a 2xx answer.
    fn http(&self, method: &str, target: &str, body: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let request = format!(
            "{method} {target} HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        head.split(' ')
            .nth(1)?
            .starts_with('2')
            .then(|| body.to_owned())
    }

    /// Runs an InfluxQL query against [`DB`]; the JSON answer.
    fn query(&self, q: &str) -> serde_json::Value {
        let encoded: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let body = self
            .http("POST", &format!("/query?db={DB}"), &format!("q={encoded}"))
            .unwrap_or_else(|| panic!("query failed: {q}"));
        serde_json::from_str(&body).unwrap()
    }

    /// Points per measurement: each point has a `value` (or, above `i64::MAX`, `value_u64`).
    fn points(&self) -> BTreeMap<String, u64> {
        let answer = self.query("SELECT COUNT(*) FROM /.*/");
        let mut counts = BTreeMap::new();
        let series = answer["results"][0]["series"].as_array().cloned();
        for s in series.unwrap_or_default() {
            let columns = s["columns"].as_array().unwrap();
            let values = s["values"][0].as_array().unwrap();
            let n: u64 = columns
                .iter()
                .zip(values)
                .filter(|(c, _)| matches!(c.as_str(), Some("count_value" | "count_value_u64")))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum();
            counts.insert(s["name"].as_str().unwrap().to_owned(), n);
        }
        counts
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn influx_config(host: &str, database: &str, extra: &str) -> String {
    format!("{SOURCES}[plugins.influxdb]\napi_version = \"v1\"\nhost = \"{host}\"\ndatabase = \"{database}\"\n{extra}")
}

#[test]
fn every_point_in_the_csv_is_a_point_in_influxdb() {
    if !available("every_point_in_the_csv_is_a_point_in_influxdb") {
        return;
    }
    let dir = temp_dir("influx-every-point");
    let server = Influxd::start(&dir);
    let host = format!("http://127.0.0.1:{}", server.port);
    let (code, stderr) = run_agent(&dir, &influx_config(&host, DB, ""));
    assert_eq!(code, Some(0), "{stderr}");
    let csv = csv_rows(&dir.join("out.csv"));
    let influx = server.points();
    for m in [
        "kernel_cpu_time_ms",
        "memory_usage_By",
        "cpu_time_delta_ms",
        "mem_total_By",
    ] {
        assert!(csv.contains_key(m), "{m} measured: {csv:?}");
    }
    assert!(csv.keys().any(|m| m.starts_with("network_")), "{csv:?}");
    assert!(
        csv.keys().any(|m| m.starts_with("alumet_output_")),
        "{csv:?}"
    );
    eprintln!("points per metric, CSV vs InfluxDB:");
    for (m, n) in &csv {
        eprintln!("  {m}: {n} {}", influx.get(m).copied().unwrap_or(0));
    }
    assert_eq!(
        csv, influx,
        "rows in the CSV == points in InfluxDB, per metric"
    );
    let total: u64 = csv.values().sum();
    assert_eq!(
        reported(&stderr, "influxdb/influxdb"),
        (total, 0, 0),
        "{stderr}"
    );
}

#[test]
fn attributes_as_fields_lose_what_influxdb_would_merge_and_say_so() {
    if !available("attributes_as_fields_lose_what_influxdb_would_merge_and_say_so") {
        return;
    }
    let dir = temp_dir("influx-fields");
    let server = Influxd::start(&dir);
    let host = format!("http://127.0.0.1:{}", server.port);
    let config = influx_config(&host, DB, "attributes_as = \"field\"\n");
    let (code, stderr) = run_agent(&dir, &config);
    assert_eq!(code, Some(1), "points were lost: {stderr}");
    let csv = csv_rows(&dir.join("out.csv"));
    let influx = server.points();
    let (given, stored) = (csv.values().sum::<u64>(), influx.values().sum::<u64>());
    eprintln!("attributes_as = \"field\": {given} rows in the CSV, {stored} points in InfluxDB");
    let (written, dropped, lost) = reported(&stderr, "influxdb/influxdb");
    assert_eq!(
        (written, dropped, lost),
        (stored, 0, given - stored),
        "{stderr}"
    );
    let per_poll = csv["kernel_cpu_time_ms"] / influx["kernel_cpu_time_ms"];
    assert_eq!(per_poll, 9, "one cpu_state of 9 kept per poll");
    assert!(
        stderr.contains(
            "metric kernel_cpu_time differ only by attributes written as fields (cpu_state)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_missing_database_loses_every_point_says_so_and_exits_1() {
    if !available("a_missing_database_loses_every_point_says_so_and_exits_1") {
        return;
    }
    let dir = temp_dir("influx-missing-db");
    let server = Influxd::start(&dir);
    let host = format!("http://127.0.0.1:{}", server.port);
    let (code, stderr) = run_agent(&dir, &influx_config(&host, "nowhere", ""));
    assert_eq!(code, Some(1), "{stderr}");
    let given: u64 = csv_rows(&dir.join("out.csv")).values().sum();
    let figures = reported(&stderr, "influxdb/influxdb");
    eprintln!("missing database: {given} points given, reported {figures:?}, 0 stored");
    assert_eq!(figures, (0, 0, given), "{stderr}");
    assert!(
        stderr.contains("HTTP 404"),
        "the server's answer is logged: {stderr}"
    );
    let databases = server.query("SHOW DATABASES").to_string();
    assert!(!databases.contains("nowhere"), "{databases}");
}

#[test]
fn an_unreachable_server_at_shutdown_loses_every_point_says_so_and_exits_1() {
    let dir = temp_dir("influx-unreachable");
    // Nothing listens on that port: every connection is refused.
    let host = format!("http://127.0.0.1:{}", free_port());
    let config = format!(
        "shutdown_timeout = \"500ms\"\n{}",
        influx_config(&host, DB, "")
    );
    let (code, stderr) = run_agent(&dir, &config);
    assert_eq!(code, Some(1), "{stderr}");
    let given: u64 = csv_rows(&dir.join("out.csv")).values().sum();
    let figures = reported(&stderr, "influxdb/influxdb");
    eprintln!("unreachable server: {given} points given, reported {figures:?}");
    assert_eq!(figures, (0, 0, given), "all lost, none written: {stderr}");
}
