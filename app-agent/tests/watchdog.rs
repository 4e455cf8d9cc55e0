//! The watchdog's pings stop while a source thread is blocked in its poll, and resume when
//! it returns. In-process: one test in this binary, which sets NOTIFY_SOCKET and
//! WATCHDOG_USEC before any thread of its own starts.
#![allow(clippy::unwrap_used)]

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestPlugin};
use alumet_agent::notify::Notifier;

const PERIOD: Duration = Duration::from_millis(200);

/// The watchdog pings received within `window`.
fn pings_within(socket: &UnixDatagram, window: Duration) -> usize {
    let end = Instant::now() + window;
    let mut buf = [0u8; 256];
    let mut pings = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return pings;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.recv(&mut buf) {
            Ok(n) if &buf[..n] == b"WATCHDOG=1\n" => pings += 1,
            Ok(_) => {}
            Err(_) => return pings,
        }
    }
}

#[test]
fn no_watchdog_ping_while_a_source_is_blocked_in_its_poll() {
    let dir = std::env::temp_dir().join(format!("alumet-watchdog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &path);
    std::env::set_var("WATCHDOG_USEC", PERIOD.as_micros().to_string());
    std::env::remove_var("WATCHDOG_PID");

    let blocked = Arc::new(AtomicBool::new(false));
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let polls = Arc::new(AtomicU64::new(0));
    let (b, p) = (Arc::clone(&blocked), Arc::clone(&polls));
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("p", move |alumet| {
        let m = alumet.create_metric::<u64>("value", Unit::Unity, "a value")?;
        let source = move |acc: &mut MeasurementAccumulator, t: Timestamp| {
            if b.load(Ordering::SeqCst) {
                let _ = wait.lock().unwrap().recv();
            }
            let n = p.fetch_add(1, Ordering::SeqCst);
            acc.push(MeasurementPoint::new(
                t,
                m,
                Resource::LocalMachine,
                ResourceConsumer::LocalMachine,
                n,
            ));
            Ok(())
        };
        alumet.add_source("s", source, Trigger::every(Duration::from_millis(10)))?;
        Ok(())
    }));
    let run = tester.start().unwrap();
    let control = run.control();
    Notifier::from_env().start_watchdog(control.clone());
    assert!(
        pings_within(&socket, PERIOD * 3) >= 2,
        "pings while polling"
    );

    blocked.store(true, Ordering::SeqCst);
    // Once the poll has lasted the period and half another (the watchdog looks every half
    // period), no ping decided before it can still be on its way.
    let start = Instant::now();
    while control.longest_poll() < Some(PERIOD * 3 / 2 + Duration::from_millis(50)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the source never blocked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    while pings_within(&socket, Duration::from_millis(1)) > 0 {}
    assert_eq!(pings_within(&socket, PERIOD * 3), 0, "a ping while blocked");

    blocked.store(false, Ordering::SeqCst);
    release.send(()).unwrap();
    assert!(
        pings_within(&socket, PERIOD * 3) >= 2,
        "pings once it returned"
    );
    let _ = run.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
