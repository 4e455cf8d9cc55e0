//! The output against receivers that fail (the shared scripted server): a 400 is not
//! retried and its points are counted lost; a 503 is retried until accepted; an endpoint
//! where nothing listens loses everything at the shutdown deadline. The agent's figures
//! add up in each case.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use alumet::pipeline::ShutdownReport;
use alumet::prelude::*;
use alumet::test_util::PipelineTester;
use alumet_delivery::test_util::{closed_port, Recorder, Reply};
use plugin_opentelemetry::{Config, OpenTelemetryPlugin};

/// Feeds `n` points in one buffer to an output sending to `endpoint`; shuts down.
fn run(
    endpoint: String,
    n: u64,
    batch_size: usize,
    deadline: Duration,
) -> (ShutdownReport, plugin_opentelemetry::StatsHandle) {
    let mut tester = PipelineTester::new();
    let config = Config {
        endpoint,
        batch_size,
        flush_interval: Duration::from_millis(10),
        ..Config::default()
    };
    let plugin = OpenTelemetryPlugin::init(config).unwrap();
    let stats = plugin.stats_handle();
    tester.any_plugin(plugin);
    tester.shutdown_timeout(deadline);
    let feeder = tester.feeder("input");
    let run = tester.start().unwrap();
    let input = run.metric::<u64>("test_input").unwrap();
    for i in 0..n {
        feeder.push(MeasurementPoint::new(
            Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + i),
            input,
            Resource::LocalMachine,
            ResourceConsumer::LocalMachine,
            i,
        ));
    }
    assert_eq!(run.trigger("test/input"), 1);
    let (report, _) = run.shutdown();
    (report, stats)
}

fn figures(report: &ShutdownReport) -> (u64, u64, u64) {
    let o = report
        .outputs
        .iter()
        .find(|o| o.name.plugin == "opentelemetry")
        .unwrap();
    (o.written_points, o.dropped_points, o.failed_points)
}

#[test]
fn a_bad_request_is_not_retried_and_counted_lost() {
    let server = Recorder::start(|n| {
        if n == 0 {
            Reply::Status(400, "bad data point")
        } else {
            Reply::Status(200, "")
        }
    });
    let (report, stats) = run(server.url(), 6, 4, Duration::from_secs(5));
    assert_eq!(figures(&report), (2, 0, 4));
    let s = stats.stats();
    assert_eq!(
        (s.rejected, s.delivered, s.failed_attempts),
        (4, 2, 0),
        "{s:?}"
    );
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.requests()[0].target, "/v1/metrics");
}

#[test]
fn an_unavailable_receiver_is_retried_until_it_accepts() {
    let server = Recorder::start(|n| {
        if n < 2 {
            Reply::Status(503, "busy")
        } else {
            Reply::Status(200, "")
        }
    });
    let (report, stats) = run(server.url(), 3, 100, Duration::from_secs(10));
    assert_eq!(figures(&report), (3, 0, 0));
    assert_eq!(stats.stats().failed_attempts, 2);
    let bodies: Vec<Vec<u8>> = server.requests().into_iter().map(|r| r.body).collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the same request each time"
    );
}

#[test]
fn nothing_listening_loses_everything_at_the_deadline() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let (report, stats) = run(endpoint, 5, 100, Duration::from_millis(500));
    assert_eq!(figures(&report), (0, 0, 5));
    // A request still under way at the deadline is counted by the output when it ends.
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while stats.stats().undelivered < 5 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = stats.stats();
    assert_eq!((s.delivered, s.undelivered, s.buffered), (0, 5, 0), "{s:?}");
}

#[test]
fn a_partial_success_loses_only_the_refused_points() {
    // ExportMetricsServiceResponse { partial_success { rejected_data_points: 2, error_message: "bad" } }
    let answer = "\n\x07\x08\x02\x12\x03bad";
    let server = Recorder::start(move |_| Reply::Status(200, answer));
    let (report, stats) = run(server.url(), 5, 100, Duration::from_secs(5));
    assert_eq!(figures(&report), (3, 0, 2));
    let s = stats.stats();
    assert_eq!(
        (s.rejected, s.delivered, s.failed_attempts),
        (2, 3, 0),
        "{s:?}"
    );
    assert_eq!(server.requests().len(), 1, "not sent again");
}
