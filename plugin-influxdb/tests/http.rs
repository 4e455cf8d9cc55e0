//! Delivery against a recording HTTP server: request shape of v1, v2 and v3, no retry on
//! 4xx, retries on 5xx, the timeout, a refused connection and the count at shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use alumet::plugin::HostIdentity;
use common::recorder::{Recorder, Reply};
use common::{figures, start, start_full, wait_until};
use plugin_influxdb::{ApiVersion, Config};

const T0: u64 = 1_700_000_000_000_000_000;

fn config(url: String) -> Config {
    Config {
        api_version: ApiVersion::V1,
        host: url,
        database: "db".into(),
        batch_size: 10,
        flush_interval: Duration::from_millis(20),
        ..Config::default()
    }
}

#[test]
fn request_shape_of_each_version() {
    let server = Recorder::start(|_| Reply::Status(204, ""));
    let v1 = Config {
        username: "me".into(),
        password: "pw".into(),
        ..config(server.url())
    };
    let v2 = Config {
        api_version: ApiVersion::V2,
        token: "s3cret".into(),
        org: "my org".into(),
        bucket: "b".into(),
        ..config(server.url())
    };
    let v3 = Config {
        api_version: ApiVersion::V3,
        token: "s3cret".into(),
        database: "d".into(),
        ..config(server.url())
    };
    let expected = [
        ("/write?db=db&precision=ns", "Basic bWU6cHc=", "value=7i"),
        (
            "/api/v2/write?org=my%20org&bucket=b&precision=ns",
            "Token s3cret",
            "value=7u",
        ),
        (
            "/api/v3/write_lp?db=d&precision=nanosecond",
            "Bearer s3cret",
            "value=7u",
        ),
    ];
    for (i, config) in [v1, v2, v3].into_iter().enumerate() {
        let run = start(config, Duration::from_secs(5));
        run.feed_counts(T0, [7]);
        let (report, _) = run.run.shutdown();
        assert_eq!(report.undelivered_points, 0);
        assert_eq!(run.stats.stats().delivered, 1);
        assert_eq!(figures(&report, 1), (1, 0, 0));
        let request = server.requests()[i].clone();
        let (target, auth, value) = expected[i];
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, target);
        assert_eq!(request.header("authorization"), Some(auth));
        assert_eq!(
            request.text(),
            format!(
                "test_input_1,resource_kind=local_machine,consumer_kind=local_machine {value} {}\n",
                T0 + 7
            )
        );
    }
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn client_errors_are_not_retried() {
    for status in [400, 401, 403, 404] {
        let body = r#"{"error":"unable to parse 'x y': bad"}"#;
        let server = Recorder::start(move |_| Reply::Status(status, body));
        let run = start(config(server.url()), Duration::from_secs(5));
        run.feed_counts(T0, 0..5);
        assert!(wait_until(Duration::from_secs(10), || run
            .stats
            .stats()
            .rejected
            == 5));
        let (report, _) = run.run.shutdown();
        let stats = run.stats.stats();
        assert_eq!(
            (stats.rejected, stats.delivered, stats.failed_attempts),
            (5, 0, 0),
            "{status}"
        );
        assert_eq!(
            server.requests().len(),
            1,
            "HTTP {status} must not be retried"
        );
        assert_eq!(report.undelivered_points, 0);
        assert_eq!(figures(&report, 5), (0, 0, 5), "rejected points are lost");
    }
}

#[test]
fn server_errors_are_retried_until_accepted() {
    let server = Recorder::start(|n| {
        if n < 2 {
            Reply::Status(503, "busy")
        } else {
            Reply::Status(204, "")
        }
    });
    let run = start(config(server.url()), Duration::from_secs(10));
    run.feed_counts(T0, 0..4);
    assert!(wait_until(Duration::from_secs(20), || run
        .stats
        .stats()
        .delivered
        == 4));
    let (report, _) = run.run.shutdown();
    let stats = run.stats.stats();
    assert_eq!(
        (stats.delivered, stats.failed_attempts, stats.dropped),
        (4, 2, 0)
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "the same batch is sent again"
    );
    assert_eq!(report.undelivered_points, 0);
    assert_eq!(figures(&report, 4), (4, 0, 0));
}

#[test]
fn a_hanging_server_is_abandoned_at_the_timeout() {
    let server = Recorder::start(|n| {
        if n == 0 {
            Reply::Hang
        } else {
            Reply::Status(204, "")
        }
    });
    let config = Config {
        timeout: Duration::from_millis(300),
        ..config(server.url())
    };
    let run = start(config, Duration::from_secs(10));
    run.feed_counts(T0, 0..3);
    assert!(wait_until(Duration::from_secs(20), || run
        .stats
        .stats()
        .delivered
        == 3));
    let (report, _) = run.run.shutdown();
    let stats = run.stats.stats();
    assert_eq!(
        (stats.delivered, stats.failed_attempts),
        (3, 1),
        "{stats:?}"
    );
    assert_eq!(figures(&report, 3), (3, 0, 0));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn down_at_start_and_at_shutdown_counts_what_was_not_delivered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing listens on `port`: every connection is refused; the agent still starts.
    let run = start(
        config(format!("http://127.0.0.1:{port}")),
        Duration::from_millis(500),
    );
    run.feed_counts(T0, 0..30);
    run.wait_received(30, Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(10), || run
        .stats
        .stats()
        .failed_attempts
        > 0));
    let (report, _) = run.run.shutdown();
    assert!(report.timed_out);
    assert_eq!(report.undelivered_points, 30);
    assert_eq!(figures(&report, 30), (0, 0, 30), "all lost, none written");
    // The plugin's own count: the queue at once, a batch in flight when its request ends.
    assert!(wait_until(Duration::from_secs(10), || run
        .stats
        .stats()
        .undelivered
        == 30));
    let stats = run.stats.stats();
    assert_eq!((stats.delivered, stats.dropped), (0, 0), "{stats:?}");
}

#[test]
fn non_finite_values_are_skipped_and_counted() {
    let server = Recorder::start(|_| Reply::Status(204, ""));
    let run = start(config(server.url()), Duration::from_secs(5));
    for v in [1.5, f64::NAN, f64::INFINITY, -2.0] {
        let t = alumet::measurement::Timestamp::from_unix_nanos(T0);
        run.feeder.push(alumet::measurement::MeasurementPoint::new(
            t,
            run.energy,
            alumet::measurement::Resource::LocalMachine,
            alumet::measurement::ResourceConsumer::LocalMachine,
            v,
        ));
    }
    run.run.trigger("test/input");
    let (report, _) = run.run.shutdown();
    let stats = run.stats.stats();
    assert_eq!(
        (stats.received, stats.delivered, stats.skipped_non_finite),
        (4, 2, 2)
    );
    assert_eq!(figures(&report, 4), (2, 0, 2), "skipped points are lost");
    let body: String = server.requests().iter().map(|r| r.text()).collect();
    assert_eq!(body.lines().count(), 2);
}

#[test]
fn the_host_identity_is_a_tag_of_every_line() {
    let server = Recorder::start(|_| Reply::Status(204, ""));
    let identity = HostIdentity::new([
        ("host".to_owned(), "web 1".to_owned()),
        ("cluster".to_owned(), "eu,a".to_owned()),
    ]);
    let run = start_full(
        config(server.url()),
        Duration::from_secs(5),
        "input",
        identity,
    );
    run.feed_counts(T0, [1, 2]);
    let (report, _) = run.run.shutdown();
    assert_eq!(figures(&report, 2), (2, 0, 0));
    let body: String = server.requests().iter().map(|r| r.text()).collect();
    let expected: String = [1, 2]
        .iter()
        .map(|v| {
            format!(
                "test_input_1,cluster=eu\\,a,host=web\\ 1,resource_kind=local_machine,consumer_kind=local_machine value={v}i {}\n",
                T0 + v
            )
        })
        .collect();
    assert_eq!(body, expected);
}
