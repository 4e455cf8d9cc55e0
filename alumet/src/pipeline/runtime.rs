//! The pipeline's async runtime, for async outputs and autonomous sources: a
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
        let driven = Arc::clone(&runtime);
        let driver = std::thread::Builder::new()
            .name("alumet-rt".into())
            .spawn(move || {
                // Runs the spawned tasks until told to stop.
                let _ = driven.block_on(stopped);
            })?;
        Ok(AsyncRuntime {
            runtime,
            stop: Some(stop),
            driver: Some(driver),
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

    /// Stops the driving thread, then the runtime: tasks still running get `timeout` to
    /// reach their next await point and are dropped there.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.stop.take();
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
