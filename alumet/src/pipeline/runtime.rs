//! The pipeline's async runtime, for autonomous sources and plugin tasks: a
//! current-thread tokio runtime driven by one thread of its own ("alumet-rt").
//!
//! It does what a multi-thread runtime with one worker did, without tokio's multi-thread
//! scheduler: that scheduler is the only user of `pow` in the agent, so with it the binary
//! needed libm, one more library for the dynamic loader to map at every start (0.15-0.19
//! ms of `alumet-agent exec -- true`, see docs/performance.md).

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;

/// A started runtime and the thread that drives its tasks.
pub(crate) struct AsyncRuntime {
    runtime: Arc<Runtime>,
    /// Tells the driving thread to return (dropped: the same).
    stop: Option<oneshot::Sender<()>>,
    driver: Option<JoinHandle<()>>,
    /// Disconnects when the driving thread returns.
    driver_done: std::sync::mpsc::Receiver<()>,
}

impl AsyncRuntime {
    /// Builds the runtime (timers and I/O enabled) and starts its thread.
    pub fn start() -> std::io::Result<Self> {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                // The threads of `spawn_blocking` get this name too.
                .thread_name("alumet-rt")
                .enable_all()
                .build()?,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let (done, driver_done) = std::sync::mpsc::channel::<()>();
        let driven = Arc::clone(&runtime);
        let driver = std::thread::Builder::new()
            .name("alumet-rt".into())
            .spawn(move || {
                let _done = done;
                // Runs the spawned tasks until told to stop.
                let _ = driven.block_on(stopped);
            })?;
        Ok(AsyncRuntime {
            runtime,
            stop: Some(stop),
            driver: Some(driver),
            driver_done,
        })
    }

    /// The handle to spawn tasks with (they run on the runtime's thread).
    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// Spawns a task on the runtime's thread.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Blocks the calling thread (not an async one) on `future`, while the runtime's
    /// thread goes on running the tasks.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Stops the driving thread, then the runtime; tasks still running are dropped at
    /// their next await point. A task that blocks the thread without awaiting (a blocking
    /// call in async code) is given `timeout`, then left behind with its thread: the
    /// shutdown returns all the same.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.stop.take();
        let returned = matches!(
            self.driver_done.recv_timeout(timeout),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
        if !returned {
            log::error!(
                "the async runtime's thread is blocked (a task that blocks without awaiting): \
                 left behind"
            );
            return;
        }
        if let Some(driver) = self.driver.take() {
            if driver.join().is_err() {
                log::error!("the async runtime's thread panicked");
            }
        }
        // The driving thread held the only other reference, and it has returned.
        match Arc::try_unwrap(self.runtime) {
            Ok(runtime) => runtime.shutdown_timeout(timeout),
            Err(_) => log::error!("the async runtime is still in use: not shut down"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn tasks_run_on_the_runtime_thread_without_anyone_blocking_on_them() {
        let rt = AsyncRuntime::start().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let name = std::thread::current().name().map(str::to_owned);
            tx.send(name).unwrap();
        });
        // Nobody calls block_on: the runtime's own thread drives the task and its timer.
        let name = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(name.as_deref(), Some("alumet-rt"));
        rt.shutdown_timeout(Duration::from_millis(100));
    }

    #[test]
    fn block_on_from_another_thread_waits_for_a_task() {
        let rt = AsyncRuntime::start().unwrap();
        let task = rt.handle().spawn(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            7
        });
        let out = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
        assert_eq!(out.unwrap().unwrap(), 7);
        rt.shutdown_timeout(Duration::from_millis(100));
    }

    #[test]
    fn shutdown_returns_even_when_a_task_blocks_the_runtime_thread() {
        let rt = AsyncRuntime::start().unwrap();
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            entered_tx.send(()).unwrap();
            // Blocks the thread, never awaits (until the test releases it).
            let _ = blocked.recv();
        });
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        let (returned_tx, returned) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            rt.shutdown_timeout(Duration::from_millis(50));
            returned_tx.send(()).unwrap();
        });
        let shut_down = returned.recv_timeout(Duration::from_secs(10));
        release.send(()).unwrap();
        assert!(
            shut_down.is_ok(),
            "the shutdown waited for the blocked task"
        );
    }

    #[test]
    fn shutdown_drops_tasks_that_never_end_and_returns() {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let rt = AsyncRuntime::start().unwrap();
        let guard = SetOnDrop(Arc::clone(&dropped));
        rt.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        rt.shutdown_timeout(Duration::from_millis(100));
        assert!(dropped.load(Ordering::SeqCst));
    }
}
