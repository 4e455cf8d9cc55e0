//! Remote write against the shared scripted server: the request (headers, credentials,
//! snappy-compressed protobuf with sorted, deduplicated series) and a receiver that
//! refuses a batch (400: not retried, counted lost, the agent's figures add up).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use alumet_delivery::test_util::{Recorder, Reply};
use common::*;
use plugin_prometheus_remote_write::encode::WriteRequest;
use prost::Message;

fn decode(body: &[u8]) -> WriteRequest {
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    WriteRequest::decode(raw.as_slice()).unwrap()
}

#[test]
fn the_request_has_the_headers_credentials_and_sorted_series() {
    let server = Recorder::start(|_| Reply::Status(204, ""));
    let mut headers = std::collections::BTreeMap::new();
    headers.insert("X-Scope-OrgID".to_owned(), "fleet".to_owned());
    let config = plugin_prometheus_remote_write::Config {
        bearer_token: "s3cret".into(),
        headers,
        batch_size: 1000,
        ..config(format!("{}/api/v1/write", server.url()))
    };
    let mut run = start(config, Duration::from_secs(5));
    run.feed(recent_ms(), 0..3);
    let expected = run.expected_series();
    let (report, _) = run.run.shutdown();
    assert_eq!(figures(&report, 12), (12, 0, 0));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one request for 12 points");
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/api/v1/write")
    );
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("x-prometheus-remote-write-version"), Some("0.1.0"));
    assert_eq!(r.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(r.header("x-scope-orgid"), Some("fleet"));
    let request = decode(&r.body);
    let names: Vec<Vec<(String, String)>> = request
        .timeseries
        .iter()
        .map(|ts| {
            ts.labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "series sorted, each once");
    assert_eq!(names.len(), 4);
    for ts in &request.timeseries {
        let label_names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        let mut s = label_names.clone();
        s.sort();
        assert_eq!(label_names, s, "labels sorted by name");
        assert!(label_names.contains(&"host") && label_names.contains(&"cluster"));
        assert_eq!(ts.samples.len(), 3);
        assert!(ts
            .samples
            .windows(2)
            .all(|w| w[0].timestamp < w[1].timestamp));
    }
    let got: Vec<_> = request
        .timeseries
        .iter()
        .map(|ts| {
            let labels = ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            let samples = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
            alumet_delivery::test_util::stores::Series { labels, samples }
        })
        .collect();
    assert_same_series(&got, &expected);
}

#[test]
fn basic_authentication() {
    let server = Recorder::start(|_| Reply::Status(200, ""));
    let config = plugin_prometheus_remote_write::Config {
        username: "me".into(),
        password: "pw".into(),
        ..config(server.url())
    };
    let mut run = start(config, Duration::from_secs(5));
    run.feed(recent_ms(), 0..1);
    run.run.shutdown();
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Basic bWU6cHc=")
    );
}

#[test]
fn a_refused_batch_is_not_retried_and_is_counted_lost() {
    let server = Recorder::start(|n| {
        if n == 0 {
            Reply::Status(400, "out of order sample")
        } else {
            Reply::Status(204, "")
        }
    });
    let config = plugin_prometheus_remote_write::Config {
        batch_size: 4,
        ..config(server.url())
    };
    let mut run = start(config, Duration::from_secs(5));
    run.feed(recent_ms(), 0..2);
    let stats = run.stats.clone();
    let (report, _) = run.run.shutdown();
    assert_eq!(figures(&report, 8), (4, 0, 4));
    let s = stats.stats();
    assert_eq!(
        (s.rejected, s.delivered, s.failed_attempts),
        (4, 4, 0),
        "{s:?}"
    );
    assert_eq!(
        server.requests().len(),
        2,
        "the refused batch is not sent again"
    );
}
