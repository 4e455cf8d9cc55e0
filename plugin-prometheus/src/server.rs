//! The HTTP endpoint: hyper's HTTP/1.1 on a current-thread tokio runtime, in one thread
//! of its own. A connection is a task, not a thread; their number is capped (a new one
//! beyond the cap closes the oldest idle one), a client has `read_timeout` to send its
//! headers, and a connection lives at most `MAX_LIFETIME`. Accept errors (no file
//! descriptor left, no memory) are logged and retried; if the server ends anyway, the
//! output's next write fails, so that the run counts as failed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ACCEPT, CONNECTION, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::page::Page;
use crate::state::{lock, State};

/// The content type of the text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// A connection is asked to close after this long (after its current request)...
const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// ... and closed this much later in any case (a client that does not read its response).
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// The pause after an accept error, which may repeat at once (no file descriptor left).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line about accept errors in this span.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The limits of the endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers; also the idle time of a keep-alive connection.
    pub read_timeout: Duration,
}

/// The running HTTP server.
pub struct Exporter {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Listens on `address` (an error here, a port in use, stops the agent before it
    /// measures) and serves `page` from a thread of its own. If that thread ends before
    /// [`Exporter::stop`], the reason is logged and stored in `state`.
    pub fn start(
        address: SocketAddr,
        page: Arc<Page>,
        state: Arc<Mutex<State>>,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("listening on {address}"))?;
        listener
            .set_nonblocking(true)
            .context("setting the listening socket non-blocking")?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("starting the exporter's runtime")?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("alumet-prom".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| {
                    runtime.block_on(serve(listener, page, limits, stopped))
                });
                let why = match std::panic::catch_unwind(run) {
                    Ok(Ok(true)) => return,
                    Ok(Ok(false)) => "the server ended".to_owned(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(_) => "the server panicked".to_owned(),
                };
                log::error!("prometheus exporter on http://{addr}/metrics stopped: {why}");
                lock(&state).endpoint_failure = Some(why);
            })
            .context("starting the exporter's thread")?;
        log::info!("prometheus exporter listening on http://{addr}/metrics");
        Ok(Exporter {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and closes the socket and every connection.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An open connection: its task, and whether it is answering a request now.
struct Open {
    task: AbortHandle,
    busy: Arc<AtomicBool>,
}

/// Accepts until told to stop (`Ok(true)`) or until the stop channel is gone (`Ok(false)`).
async fn serve(
    listener: std::net::TcpListener,
    page: Arc<Page>,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) -> anyhow::Result<bool> {
    let listener = TcpListener::from_std(listener).context("registering the listening socket")?;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(64 * 1024);
    let mut open: Vec<Open> = Vec::new();
    let mut errors = AcceptErrors::default();
    loop {
        let accepted = tokio::select! {
            stopped = &mut stop => return Ok(stopped.is_ok()),
            accepted = listener.accept() => accepted,
        };
        open.retain(|c| !c.task.is_finished());
        match accepted {
            Ok((stream, _)) => {
                if open.len() >= limits.max_connections && !close_oldest_idle(&mut open) {
                    drop(stream); // every connection is answering: this one waits its turn elsewhere
                    continue;
                }
                let busy = Arc::new(AtomicBool::new(false));
                let conn = connection(stream, http.clone(), Arc::clone(&page), Arc::clone(&busy));
                let task = tokio::spawn(conn).abort_handle();
                open.push(Open { task, busy });
            }
            Err(e) => {
                errors.log(&e);
                // Out of file descriptors: an idle connection gives one back, and the
                // next accept may go on at once (a scraper may wait behind idle clients).
                let fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                if !(fds && close_oldest_idle(&mut open)) {
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            }
        }
    }
}

/// Closes the oldest connection that is not answering a request; false if all are.
fn close_oldest_idle(open: &mut Vec<Open>) -> bool {
    match open.iter().position(|c| !c.busy.load(Ordering::Relaxed)) {
        Some(i) => {
            open.remove(i).task.abort();
            true
        }
        None => false,
    }
}

/// Rate-limited logging of accept errors.
#[derive(Default)]
struct AcceptErrors {
    last_log: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn log(&mut self, e: &std::io::Error) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < ACCEPT_LOG_EVERY)
        {
            return;
        }
        log::warn!(
            "prometheus exporter: accepting a connection failed ({} time(s) since the last report): {e}; retrying",
            self.unlogged
        );
        self.unlogged = 0;
        self.last_log = Some(now);
    }
}

/// Serves one connection for at most `MAX_LIFETIME` (then the current request's time,
/// up to `CLOSE_GRACE`).
async fn connection(
    stream: TcpStream,
    http: hyper::server::conn::http1::Builder,
    page: Arc<Page>,
    busy: Arc<AtomicBool>,
) {
    let service = hyper::service::service_fn(move |request| {
        busy.store(true, Ordering::Relaxed);
        let reply = respond(&request, &page, Busy(Arc::clone(&busy)));
        async move { Ok::<_, Infallible>(reply) }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return log_error(r),
        _ = tokio::time::sleep(MAX_LIFETIME) => conn.as_mut().graceful_shutdown(),
    }
    if let Ok(r) = tokio::time::timeout(CLOSE_GRACE, conn).await {
        log_error(r);
    }
}

fn log_error(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        log::debug!("prometheus exporter: connection: {e}");
    }
}

/// Marks the connection as answering until the response body is dropped (sent).
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// A response body: the text, and the mark of a connection answering.
struct Reply {
    body: Full<Bytes>,
    _busy: Busy,
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn respond(request: &Request<Incoming>, page: &Page, busy: Busy) -> Response<Reply> {
    let get = matches!(*request.method(), Method::GET | Method::HEAD);
    let openmetrics = request.headers().get_all(ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.contains("application/openmetrics-text"))
    });
    let text = "text/plain; charset=utf-8";
    let (status, body, content_type) = match (get, request.uri().path()) {
        (true, "/metrics") if openmetrics => (
            StatusCode::OK,
            crate::openmetrics::convert(&page.render(Instant::now())),
            crate::openmetrics::CONTENT_TYPE,
        ),
        (true, "/metrics") => (StatusCode::OK, page.render(Instant::now()), CONTENT_TYPE),
        (true, "/") => (
            StatusCode::OK,
            "alumet-agent: metrics at /metrics\n".to_owned(),
            text,
        ),
        (true, _) => (
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n".to_owned(),
            text,
        ),
        (false, _) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD\n".to_owned(),
            text,
        ),
    };
    let body = Reply {
        body: Full::new(Bytes::from(body)),
        _busy: busy,
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(content_type));
    if *request.method() != Method::GET && *request.method() != Method::HEAD {
        // The body of an unexpected request is not read: do not reuse the connection.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests;
