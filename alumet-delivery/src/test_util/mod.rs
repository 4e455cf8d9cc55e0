//! For the tests of the network outputs (feature `test-util`): a small HTTP/1.1 server
//! on 127.0.0.1:0 that records every request and answers as the test scripts it, so
//! that every output is tested against the same bad receivers (errors, `Retry-After`,
//! no answer, garbage).
#![allow(clippy::unwrap_used)] // test helpers: a failure is the test's

pub mod otlp;
pub mod stores;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `POST`, ...
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The header lines, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as sent (compressed if it was).
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What to do with request number `n` (from 0).
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status and body.
    Status(u16, &'static str),
    /// This status, with `Retry-After: secs`.
    RetryAfter(u16, u64),
    /// Read the request, never answer (until the server is dropped, at most 30 s).
    Hang,
    /// Answer bytes that are not HTTP, and close.
    Garbage,
}

type Script = Box<dyn Fn(usize) -> Reply + Send + Sync>;

/// The recording server; it stops when dropped.
pub struct Recorder {
    /// Its loopback port.
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Starts a server that answers request `n` with `script(n)`.
    pub fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Recorder {
        Recorder::start_keeping(script, true)
    }

    /// A server that answers 204 to everything and keeps no body (for benchmarks: its
    /// requests are listed with empty bodies).
    pub fn sink() -> Recorder {
        Recorder::start_keeping(|_| Reply::Status(204, ""), false)
    }

    fn start_keeping(
        script: impl Fn(usize) -> Reply + Send + Sync + 'static,
        keep_bodies: bool,
    ) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(Box::new(script));
        let (reqs, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (reqs, script, stopped) =
                    (Arc::clone(&reqs), Arc::clone(&script), Arc::clone(&stopped));
                std::thread::spawn(move || serve(stream, &reqs, &script, &stopped, keep_bodies));
            }
        });
        Recorder {
            port,
            requests,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes up `incoming`
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn serve(
    stream: TcpStream,
    reqs: &Mutex<Vec<Request>>,
    script: &Script,
    stop: &AtomicBool,
    keep_bodies: bool,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(mut request) = read_request(&mut reader) {
        if !keep_bodies {
            request.body = Vec::new();
        }
        let n = {
            let mut all = reqs.lock().unwrap();
            all.push(request);
            all.len() - 1
        };
        let (status, extra, body) = match script(n) {
            Reply::Status(status, body) => (status, String::new(), body),
            Reply::RetryAfter(status, secs) => (status, format!("Retry-After: {secs}\r\n"), ""),
            Reply::Garbage => {
                let _ = writer.write_all(b"\x00\x01 this is not HTTP\r\n\r\n");
                return;
            }
            Reply::Hang => {
                for _ in 0..1500 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}
