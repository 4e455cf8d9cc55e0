//! The HTTP client against the scripted server: what each kind of bad receiver means
//! for the engine, and one run of the engine over real HTTP.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use alumet_delivery::http::HttpClient;
use alumet_delivery::test_util::{closed_port, Recorder, Reply};
use alumet_delivery::{Engine, Items, Outcome, Settings, Transport};

fn client(url: String, timeout_ms: u64) -> HttpClient {
    let headers = vec![
        ("Content-Type".to_owned(), "application/x-test".to_owned()),
        ("Authorization".to_owned(), "Bearer secret".to_owned()),
    ];
    HttpClient::new(url, Duration::from_millis(timeout_ms), headers)
}

fn post_once(reply: Reply) -> Outcome {
    let server = Recorder::start(move |_| reply.clone());
    client(server.url(), 5000).post(b"body")
}

#[test]
fn a_success_sends_the_body_and_headers() {
    let server = Recorder::start(|_| Reply::Status(204, ""));
    let outcome = client(format!("{}/write?x=1", server.url()), 5000).post(b"hello");
    assert_eq!(outcome, Outcome::Delivered);
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/write?x=1")
    );
    assert_eq!(r.header("content-type"), Some("application/x-test"));
    assert_eq!(r.header("authorization"), Some("Bearer secret"));
    assert_eq!(r.body, b"hello");
}

#[test]
fn too_many_requests_carries_retry_after() {
    match post_once(Reply::RetryAfter(429, 7)) {
        Outcome::Retry { reason, after } => {
            assert!(reason.starts_with("HTTP 429"), "{reason}");
            assert_eq!(after, Some(Duration::from_secs(7)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_errors_are_retried_without_a_server_delay() {
    match post_once(Reply::Status(503, "busy")) {
        Outcome::Retry { reason, after } => {
            assert_eq!((reason.as_str(), after), ("HTTP 503: busy", None));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_request_is_rejected_with_its_message() {
    assert_eq!(
        post_once(Reply::Status(400, "  bad field x \n")),
        Outcome::Rejected {
            status: 400,
            message: "bad field x".into()
        }
    );
}

#[test]
fn payload_too_large_asks_for_a_split() {
    assert!(matches!(
        post_once(Reply::Status(413, "too big")),
        Outcome::TooLarge { message } if message == "too big"
    ));
}

#[test]
fn a_server_that_never_answers_times_out_and_is_retried() {
    let server = Recorder::start(|_| Reply::Hang);
    match client(server.url(), 300).post(b"x") {
        Outcome::Retry {
            reason,
            after: None,
        } => {
            assert_eq!(reason, "no answer within the timeout")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_connection_is_retried() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    match client(url, 2000).post(b"x") {
        Outcome::Retry {
            reason,
            after: None,
        } => {
            assert!(reason.contains("connection failed"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_is_retried() {
    assert!(matches!(
        post_once(Reply::Garbage),
        Outcome::Retry { after: None, .. }
    ));
}

/// Sends `Items<u32>` as their decimal text, one per line.
struct Lines(HttpClient);

impl Transport<Items<u32>> for Lines {
    fn send(&mut self, batch: &Items<u32>) -> Outcome {
        let body: String = batch.as_slice().iter().map(|p| format!("{p}\n")).collect();
        self.0.post(body.as_bytes())
    }

    fn target(&self) -> &str {
        self.0.url()
    }
}

#[test]
fn the_engine_waits_out_429_and_delivers_everything_once() {
    let server = Recorder::start(|n| match n {
        0 | 1 => Reply::RetryAfter(429, 0),
        _ => Reply::Status(204, ""),
    });
    let engine = Arc::new(Engine::new(100, "t"));
    let settings = Settings {
        batch_size: 4,
        flush_interval: Duration::from_millis(1),
    };
    let sender = engine
        .spawn("t", Lines(client(server.url(), 5000)), settings)
        .unwrap();
    engine.enqueue(Items::new((0..10).collect()));
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    let stats = engine.stats();
    assert_eq!((stats.delivered, stats.failed_attempts), (10, 2));
    let requests = server.requests();
    let accepted: String = requests[2..].iter().map(|r| r.text()).collect();
    let expected: String = (0..10).map(|p| format!("{p}\n")).collect();
    assert_eq!(accepted, expected, "each point once, in order");
}
