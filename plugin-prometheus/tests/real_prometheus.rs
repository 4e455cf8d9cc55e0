//! Debian's `prometheus` scrapes the exporter every second and its query API returns the
//! values fed; `promtool check metrics` accepts the endpoint's output. Both skip, loudly,
//! when the binaries are not installed (`apt-get install prometheus`), and fail instead
//! when `CI` is set.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::sel;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alumet::prelude::*;
use common::{free_port, get, point, try_get, wait_for, Exporter};

/// Whether `binary` (Debian's `prometheus` package) is installed; with `CI` set, a missing
/// one fails the test instead of skipping it.
fn installed(test: &str, binary: &str) -> bool {
    use alumet::test_util::skip::{missing_tool, should_run};
    should_run(test, missing_tool(binary, "prometheus"))
}

/// Feeds 0.5 J on package 0 and the gauge 42 every 100 ms until dropped.
struct Flow(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Flow {
    fn start(x: &Exporter) -> Flow {
        let stop = Arc::new(AtomicBool::new(false));
        let (feeder, control) = (x.feeder.clone(), x.run.control());
        let (energy, input) = (
            x.metric::<f64>("rapl_consumed_energy"),
            x.metric::<u64>("test_input"),
        );
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let t = Timestamp::now().unix_nanos();
                feeder.push(point(
                    t,
                    energy,
                    0.5,
                    Resource::CpuPackage { id: 0 },
                    ResourceConsumer::LocalMachine,
                    &[("domain", "package")],
                ));
                feeder.push(point(
                    t,
                    input,
                    42,
                    Resource::LocalMachine,
                    ResourceConsumer::LocalMachine,
                    &[],
                ));
                control.trigger_now(sel("test/input")).wait();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Flow(stop, Some(thread))
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Prometheus server, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first value of an instant query's result, if any.
fn query(api: SocketAddr, expr: &str) -> Option<f64> {
    let (status, _, body) = try_get(api, &format!("/api/v1/query?query={expr}")).ok()?;
    if status != 200 {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn real_prometheus_scrapes_the_values_and_the_counter_only_grows() {
    if !installed("real_prometheus_scrapes", "prometheus") {
        return;
    }
    let x = Exporter::start("");
    let _flow = Flow::start(&x);
    let dir = TempDir(std::env::temp_dir().join(format!("alumet-prom-{}", std::process::id())));
    std::fs::create_dir_all(dir.0.join("data")).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: alumet\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{}']\n",
        x.addr
    );
    std::fs::write(dir.0.join("prometheus.yml"), config).unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = std::fs::File::create(dir.0.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.0.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg(format!("--web.listen-address={api}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _server = Server(child);
    let gauge = wait_for(90, "prometheus to return the gauge", || {
        query(api, "alumet_test_input")
    });
    assert_eq!(gauge, 42.0);
    // Several successive scrapes of the counter: never smaller, and larger in the end.
    let name = "alumet_rapl_consumed_energy_joules_total{domain=\"package\",resource_id=\"0\"}";
    let name = name
        .replace('{', "%7B")
        .replace('}', "%7D")
        .replace('"', "%22")
        .replace('=', "%3D")
        .replace(',', "%2C");
    let mut values = vec![wait_for(60, "the counter", || query(api, &name))];
    while values.len() < 4 {
        let last = *values.last().unwrap();
        let v = wait_for(60, "the counter to grow", || {
            query(api, &name).filter(|v| *v != last)
        });
        assert!(v > last, "the counter went from {last} to {v}");
        values.push(v);
    }
    assert!(values[0] > 0.0);
}

#[test]
fn promtool_accepts_the_endpoint_output() {
    if !installed("promtool_accepts", "promtool") {
        return;
    }
    let x = Exporter::start("");
    let energy = x.metric::<f64>("rapl_consumed_energy");
    let memory = x.metric::<u64>("memory_usage");
    let latency = x.metric::<f64>("latency");
    let cg = ResourceConsumer::ControlGroup {
        path: "/system.slice/a\"b\\c".into(),
    };
    x.feed([
        point(
            1,
            energy,
            1.5,
            Resource::CpuPackage { id: 0 },
            ResourceConsumer::LocalMachine,
            &[("domain", "package")],
        ),
        point(
            1,
            memory,
            7,
            Resource::LocalMachine,
            cg,
            &[("note", "line\nbreak"), ("weird-key", "v")],
        ),
        point(
            1,
            latency,
            f64::NAN,
            Resource::LocalMachine,
            ResourceConsumer::Process { pid: 3 },
            &[],
        ),
    ]);
    x.scrape_after(3);
    let (status, _, body) = get(x.addr, "/metrics");
    assert_eq!(status, 200);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics: {said}\n--- output ---\n{body}"
    );
    assert!(said.trim().is_empty(), "promtool has remarks: {said}");
}
