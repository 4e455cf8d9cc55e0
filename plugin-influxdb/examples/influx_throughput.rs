//! Points per second sustained into a real `influxd` (Debian's influxdb 1.x) from one
//! pipeline: `cargo run --release -p plugin-influxdb --example influx_throughput -- [SECONDS] [BATCH_SIZE]`.
//!
//! Starts `influxd` on free loopback ports with a temporary directory, feeds buffers of
//! 1000 points (2 attributes each) as fast as the output keeps up (never more than two
//! buffers ahead), and prints delivered points per second, shutdown included.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alumet::prelude::*;
use alumet::test_util::PipelineTester;
use plugin_influxdb::{ApiVersion, Config, InfluxDbPlugin};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(10, |s| s.parse().unwrap());
    let batch_size: usize = args.next().map_or(5000, |s| s.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("influx-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, rpc) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n dir = \"{d}/meta\"\n\
         [data]\n dir = \"{d}/data\"\n wal-dir = \"{d}/wal\"\n query-log-enabled = false\n\
         [http]\n bind-address = \"127.0.0.1:{port}\"\n log-enabled = false\n[monitor]\n store-enabled = false\n"
    );
    std::fs::write(dir.join("influxdb.conf"), conf).unwrap();
    let mut child = Command::new("influxd")
        .arg("-config")
        .arg(dir.join("influxdb.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("influxd not found: apt-get install -y influxdb");
    let url = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..300 {
        up = ureq::post(&format!("{url}/query"))
            .send_form(&[("q", "CREATE DATABASE bench")])
            .is_ok();
        if up {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "influxd did not start");

    let config = Config {
        api_version: ApiVersion::V1,
        host: url,
        database: "bench".into(),
        batch_size,
        ..Config::default()
    };
    let plugin = InfluxDbPlugin::init(config).unwrap();
    let stats = plugin.stats_handle();
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    tester.shutdown_timeout(Duration::from_secs(60));
    let feeder = tester.feeder("input");
    let run = tester.start().unwrap();
    let metric = run.metric::<u64>("test_input").unwrap();
    let attrs =
        [0, 1, 2, 3].map(|c| Attributes::new([("domain", "package")]).with("core", c as u64));
    let start = Instant::now();
    let mut fed = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        if fed - stats.stats().delivered > 2 * batch_size as u64 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let now = Timestamp::now().unix_nanos();
        for i in 0..1000u64 {
            let t = Timestamp::from_unix_nanos(now + i);
            let p = MeasurementPoint::new(
                t,
                metric,
                Resource::CpuCore { id: (i % 4) as u32 },
                ResourceConsumer::LocalMachine,
                i,
            );
            feeder.push(p.with_attributes(attrs[(i % 4) as usize].clone()));
        }
        run.trigger("test/input");
        fed += 1000;
    }
    let (report, _) = run.shutdown();
    let elapsed = start.elapsed().as_secs_f64();
    let s = stats.stats();
    println!(
        "fed {fed} points, delivered {} in {elapsed:.1} s: {:.0} points/s (batch_size {batch_size}, undelivered {}, failed attempts {})",
        s.delivered,
        s.delivered as f64 / elapsed,
        report.undelivered_points + s.undelivered,
        s.failed_attempts
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
