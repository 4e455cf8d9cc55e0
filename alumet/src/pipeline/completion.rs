//! The end of a [`PipelineControl::trigger_now`](super::PipelineControl::trigger_now).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The end of a [`PipelineControl::trigger_now`](super::PipelineControl::trigger_now):
/// `.await` it in async code, or [`Completion::wait`] for it in a thread.
#[must_use = "a trigger happens anyway; await or wait to know when its points are queued"]
pub struct Completion(pub(crate) tokio::sync::oneshot::Receiver<usize>);

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

impl Completion {
    /// Blocks this thread until the triggered polls are done; returns how many sources
    /// were polled. A source blocked in its poll blocks this too: see
    /// [`Completion::wait_timeout`].
    pub fn wait(self) -> usize {
        // Without a deadline, only the end of the polls returns.
        self.wait_until(None).unwrap_or_default()
    }

    /// Like [`Completion::wait`], for `timeout` at most: `None` when a triggered group
    /// is still polling (a source slow or blocked in its poll; the trigger stays queued
    /// and its polls happen when the group gets back to them).
    pub fn wait_timeout(self, timeout: Duration) -> Option<usize> {
        let deadline = super::slot::after(Instant::now(), timeout);
        self.wait_until(Some(deadline)).ok()
    }

    fn wait_until(mut self, deadline: Option<Instant>) -> Result<usize, Self> {
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(n) = Pin::new(&mut self).poll(&mut cx) {
                return Ok(n);
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if d <= now {
                        return Err(self);
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }
}

impl Future for Completion {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        // A dropped sender means the pipeline stopped: nothing was polled.
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(0))
    }
}
