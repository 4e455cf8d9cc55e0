//! The engine with scripted transports (no network): counts, drop-oldest, retries, 413
//! splits, rejections and the shutdown deadline. Each test waits on counts, never on time.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alumet_delivery::{Batch, Engine, Items, Outcome, Settings, Transport};

/// Answers each request with the next scripted outcome (the last one repeats), and
/// records the points of every request.
#[derive(Clone)]
struct Scripted {
    script: Arc<Mutex<Vec<Outcome>>>,
    sent: Arc<Mutex<Vec<Vec<u32>>>>,
    /// Batches larger than this get 413.
    max_len: usize,
    /// When set, each request waits for one message here before it is answered.
    gate: Option<Arc<Mutex<std::sync::mpsc::Receiver<()>>>>,
}

impl Scripted {
    fn new(script: Vec<Outcome>) -> Self {
        Scripted {
            script: Arc::new(Mutex::new(script)),
            sent: Arc::default(),
            max_len: usize::MAX,
            gate: None,
        }
    }

    /// As [`Scripted::new`], with each request held until the returned sender sends.
    fn gated(script: Vec<Outcome>) -> (Self, std::sync::mpsc::Sender<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut s = Scripted::new(script);
        s.gate = Some(Arc::new(Mutex::new(rx)));
        (s, tx)
    }

    fn requests(&self) -> Vec<Vec<u32>> {
        self.sent.lock().unwrap().clone()
    }
}

impl Transport<Items<u32>> for Scripted {
    fn send(&mut self, batch: &Items<u32>) -> Outcome {
        self.sent.lock().unwrap().push(batch.as_slice().to_vec());
        if let Some(gate) = &self.gate {
            let _ = gate.lock().unwrap().recv();
        }
        if batch.len() > self.max_len {
            return Outcome::TooLarge {
                message: "too big".into(),
            };
        }
        let mut script = self.script.lock().unwrap();
        if script.len() > 1 {
            script.remove(0)
        } else {
            script[0].clone()
        }
    }

    fn target(&self) -> &str {
        "scripted"
    }
}

fn retry() -> Outcome {
    Outcome::Retry {
        reason: "HTTP 503".into(),
        after: Some(Duration::ZERO),
    }
}

fn settings(batch_size: usize) -> Settings {
    Settings {
        batch_size,
        flush_interval: Duration::from_millis(1),
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "condition not reached in 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn points(range: std::ops::Range<u32>) -> Items<u32> {
    Items::new(range.collect())
}

#[test]
fn everything_is_delivered_in_batches_in_order() {
    let engine = Arc::new(Engine::new(1000, "t"));
    let transport = Scripted::new(vec![Outcome::Delivered]);
    let sender = engine.spawn("t", transport.clone(), settings(4)).unwrap();
    engine.enqueue(points(0..10));
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    let requests = transport.requests();
    assert!(requests.iter().all(|r| r.len() <= 4), "{requests:?}");
    let all: Vec<u32> = requests.concat();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    let stats = engine.stats();
    assert_eq!((stats.delivered, stats.buffered, stats.dropped), (10, 0, 0));
}

#[test]
fn server_errors_are_retried_until_accepted() {
    let engine = Arc::new(Engine::new(1000, "t"));
    let transport = Scripted::new(vec![retry(), retry(), Outcome::Delivered]);
    let sender = engine.spawn("t", transport.clone(), settings(100)).unwrap();
    engine.enqueue(points(0..5));
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    let stats = engine.stats();
    assert_eq!((stats.delivered, stats.failed_attempts), (5, 2));
    assert_eq!(transport.requests(), vec![(0..5).collect::<Vec<_>>(); 3]);
}

#[test]
fn client_errors_are_not_retried() {
    let engine = Arc::new(Engine::new(1000, "t"));
    let transport = Scripted::new(vec![
        Outcome::Rejected {
            status: 400,
            message: "bad".into(),
        },
        Outcome::Delivered,
    ]);
    let sender = engine.spawn("t", transport.clone(), settings(3)).unwrap();
    engine.enqueue(points(0..5));
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    let stats = engine.stats();
    assert_eq!(
        (stats.rejected, stats.delivered, stats.failed_attempts),
        (3, 2, 0)
    );
    assert_eq!(
        transport.requests().len(),
        2,
        "the refused batch is not sent again"
    );
}

#[test]
fn a_batch_too_large_is_split_until_it_fits() {
    let engine = Arc::new(Engine::new(1000, "t"));
    let mut transport = Scripted::new(vec![Outcome::Delivered]);
    transport.max_len = 3;
    let sender = engine.spawn("t", transport.clone(), settings(16)).unwrap();
    engine.enqueue(points(0..16));
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    let stats = engine.stats();
    // 16 -> 8 -> 4 -> 2: three splits, then every request of 2 fits.
    assert_eq!((stats.delivered, stats.splits, stats.rejected), (16, 3, 0));
    let delivered: Vec<u32> = transport
        .requests()
        .into_iter()
        .filter(|r| r.len() <= 3)
        .flatten()
        .collect();
    assert_eq!(
        delivered,
        (0..16).collect::<Vec<_>>(),
        "in order, none twice"
    );
}

#[test]
fn a_single_point_too_large_is_rejected() {
    let engine = Arc::new(Engine::new(1000, "t"));
    let mut transport = Scripted::new(vec![Outcome::Delivered]);
    transport.max_len = 0;
    let sender = engine.spawn("t", transport, settings(2)).unwrap();
    engine.enqueue(points(0..2));
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    let stats = engine.stats();
    assert_eq!((stats.rejected, stats.splits, stats.delivered), (2, 1, 0));
}

#[test]
fn the_buffer_drops_the_oldest_and_counts_exactly() {
    let engine = Arc::new(Engine::new(10, "t"));
    let transport = Scripted::new(vec![Outcome::Retry {
        reason: "down".into(),
        after: None,
    }]);
    let sender = engine.spawn("t", transport.clone(), settings(4)).unwrap();
    engine.enqueue(points(0..4));
    wait_until(|| engine.stats().failed_attempts >= 1);
    engine.enqueue(points(4..25));
    let stats = engine.stats();
    assert_eq!((stats.dropped, stats.buffered), (15, 10), "{stats:?}");
    // The batch in flight at abort, if any, is counted when its request ends.
    assert!(engine.abort() <= 10);
    sender.join().unwrap();
    let stats = engine.stats();
    assert_eq!(
        stats.dropped + stats.undelivered + stats.delivered,
        25,
        "{stats:?}"
    );
    assert_eq!(
        (stats.dropped, stats.undelivered, stats.delivered),
        (15, 10, 0)
    );
    // What survived is the newest: the requests after the drop carry points 15 and up.
    let last = transport.requests().last().cloned().unwrap();
    assert!(last.iter().all(|&p| !(4..15).contains(&p)), "{last:?}");
}

#[test]
fn a_batch_in_flight_during_an_overflow_is_the_oldest_and_dropped_first() {
    // The first request (points 0..4) is held while 21 more points arrive into a buffer of
    // 10; it then fails, and the next requests succeed. The survivors must be the 10
    // newest, whatever was in flight.
    let engine = Arc::new(Engine::new(10, "t"));
    let (transport, release) = Scripted::gated(vec![
        Outcome::Retry {
            reason: "down".into(),
            after: Some(Duration::ZERO),
        },
        Outcome::Delivered,
    ]);
    let sender = engine.spawn("t", transport.clone(), settings(4)).unwrap();
    engine.enqueue(points(0..4));
    wait_until(|| transport.requests().len() == 1);
    engine.enqueue(points(4..25));
    // Later requests are no longer held.
    release.send(()).unwrap();
    drop(release);
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    let stats = engine.stats();
    assert_eq!(
        (stats.dropped, stats.undelivered, stats.delivered),
        (15, 0, 10),
        "{stats:?}"
    );
    let requests = transport.requests();
    assert_eq!(requests[0], vec![0, 1, 2, 3]);
    let after: Vec<u32> = requests[1..].concat();
    assert_eq!(after, (15..25).collect::<Vec<_>>(), "the newest, in order");
}

#[test]
fn the_shutdown_deadline_gives_up_and_counts_what_was_not_delivered() {
    let engine = Arc::new(Engine::new(1000, "t"));
    let transport = Scripted::new(vec![retry()]);
    let sender = engine.spawn("t", transport.clone(), settings(3)).unwrap();
    engine.enqueue(points(0..7));
    let closer = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || engine.close_and_wait())
    };
    wait_until(|| engine.stats().failed_attempts >= 3);
    engine.abort();
    let left = closer.join().unwrap();
    sender.join().unwrap();
    let stats = engine.stats();
    assert!(left <= 7, "{left}");
    assert_eq!(
        (stats.undelivered, stats.delivered, stats.buffered),
        (7, 0, 0),
        "{stats:?}"
    );
    assert_eq!(engine.abort(), 0, "a second abort gives up nothing more");
}

#[test]
fn nothing_to_send_closes_at_once() {
    let engine: Arc<Engine<Items<u32>>> = Arc::new(Engine::new(10, "t"));
    let sender = engine
        .spawn("t", Scripted::new(vec![Outcome::Delivered]), settings(4))
        .unwrap();
    engine.enqueue(Items::default());
    assert_eq!(engine.close_and_wait(), 0);
    sender.join().unwrap();
    assert_eq!(engine.stats(), alumet_delivery::Stats::default());
}

#[test]
fn items_move_between_batches() {
    let mut a = points(0..5);
    let mut b = Items::default();
    a.move_front(2, &mut b);
    a.drop_front(1);
    assert_eq!((a.as_slice(), b.as_slice()), (&[3, 4][..], &[0, 1][..]));
}
