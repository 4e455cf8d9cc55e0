//! The endpoint's limits: half-sent requests and idle keep-alive connections are closed
//! after `read_timeout` while other clients are served; beyond `max_connections` the
//! oldest idle connection goes; the series of an ended consumer go at once; `max_series`
//! caps the series and counts what it refused; HEAD and other methods.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use alumet::pipeline::Event;
use alumet::prelude::*;
use common::{get, point, Exporter};
use plugin_prometheus::PrometheusPlugin;

const T0: u64 = 1_795_674_359_123_456_789;

/// A connection that sent `bytes` and nothing more.
fn half_sent(addr: SocketAddr, bytes: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes.as_bytes()).unwrap();
    s
}

/// Whether the server closed `s` within `secs` seconds (what it sent before is read
/// and ignored).
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

#[test]
fn a_half_sent_request_is_closed_after_read_timeout_while_others_are_served() {
    let x = Exporter::start("read_timeout = \"1s\"");
    let mut half = half_sent(x.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
    let mut silent = TcpStream::connect(x.addr).unwrap();
    // Served meanwhile, more than once.
    for _ in 0..5 {
        assert_eq!(get(x.addr, "/metrics").0, 200);
    }
    assert!(closed_within(&mut half, 20), "the half-sent request");
    assert!(
        closed_within(&mut silent, 20),
        "the connection that sent nothing"
    );
    // An idle keep-alive connection after a complete request: the response, then closed.
    let mut kept = half_sent(x.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        closed_within(&mut kept, 20),
        "the idle keep-alive connection"
    );
    assert_eq!(get(x.addr, "/metrics").0, 200);
}

#[test]
fn beyond_max_connections_the_oldest_idle_connection_is_closed() {
    let x = Exporter::start("max_connections = 4\nread_timeout = \"1h\"");
    let mut idle: Vec<_> = (0..10).map(|_| half_sent(x.addr, "GET /")).collect();
    // A scraper still gets in, and then the one after it.
    assert_eq!(get(x.addr, "/metrics").0, 200);
    assert_eq!(get(x.addr, "/metrics").0, 200);
    // read_timeout is an hour: only the cap closed the 10 idle ones, oldest first; at
    // most 4 are open (3 while a scrape is served).
    let closed: Vec<bool> = idle.iter_mut().map(|s| closed_within(s, 2)).collect();
    let open = closed.iter().filter(|c| !**c).count();
    assert!(open <= 4, "{closed:?}");
    assert!(closed[0] && closed[5], "{closed:?}");
}

#[test]
fn head_answers_without_a_body_and_other_methods_get_405() {
    let x = Exporter::start("");
    let mut s = TcpStream::connect(x.addr).unwrap();
    s.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.is_empty(), "{body}");
    let mut s = TcpStream::connect(x.addr).unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
}

fn process_point(metric: MetricId<u64>, pid: u32) -> MeasurementPoint {
    point(
        T0,
        metric,
        1,
        Resource::LocalMachine,
        ResourceConsumer::Process { pid },
        &[],
    )
}

#[test]
fn the_series_of_an_ended_consumer_go_at_once() {
    let x = Exporter::start("");
    let (input, memory) = (
        x.metric::<u64>("test_input"),
        x.metric::<u64>("memory_usage"),
    );
    x.feed([
        process_point(input, 1),
        process_point(memory, 1),
        process_point(input, 2),
    ]);
    let e = x.scrape_after(3);
    assert_eq!(e.value("alumet_prometheus_series", &[]), Some(3.0));
    x.run
        .control()
        .emit(&Event::ConsumerEnded(ResourceConsumer::Process { pid: 1 }));
    let e = x.scrape();
    assert_eq!(e.value("alumet_prometheus_series", &[]), Some(1.0));
    assert_eq!(e.of("alumet_test_input").len(), 1);
    assert_eq!(
        e.value("alumet_test_input", &[("consumer_id", "2")]),
        Some(1.0)
    );
    assert!(e.of("alumet_memory_usage_bytes").is_empty());
}

#[test]
fn max_series_caps_the_series_and_counts_the_refused_points() {
    let x = Exporter::start("max_series = 2");
    let input = x.metric::<u64>("test_input");
    x.feed((1..=5).map(|pid| process_point(input, pid)));
    let e = x.scrape_after(5);
    assert_eq!(e.of("alumet_test_input").len(), 2);
    assert_eq!(e.value("alumet_prometheus_series", &[]), Some(2.0));
    let dropped = "alumet_prometheus_series_dropped_total";
    assert_eq!(e.types[dropped], "counter");
    assert_eq!(e.value(dropped, &[]), Some(3.0));
}

#[test]
fn zero_limits_are_refused_naming_the_key() {
    for key in [
        "max_series = 0",
        "max_connections = 0",
        "read_timeout = \"0s\"",
    ] {
        let mut tester = alumet::test_util::PipelineTester::new();
        let Err(e) = tester.plugin_toml::<PrometheusPlugin>(key) else {
            panic!("{key} accepted");
        };
        let said = format!("{e:#}");
        let name = key.split(' ').next().unwrap();
        assert!(said.contains(name), "{key}: {said}");
    }
}
