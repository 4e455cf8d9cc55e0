//! The workers that drain the output queues: a thread per output. Output code runs here
//! only, never on a source thread.

use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::measurement::MeasurementBuffer;

use super::element::ElementError;
use super::output::{Idle, OutputSlot, LINGER};
use super::ratelimit::{caught, judge, Called};

/// What a worker does after one write.
enum Next {
    Continue,
    Stop,
}

/// Starts the thread of a blocking output; `done` is dropped when it is done.
pub(crate) fn spawn(slot: Arc<OutputSlot>, done: Sender<()>) -> std::io::Result<()> {
    let name = format!("alumet-out-{}", slot.name.element);
    std::thread::Builder::new().name(name).spawn(move || {
        let _done = done;
        coarse_timers();
        let mut scratch = MeasurementBuffer::new();
        while let Some(buffer) = next_blocking(&slot) {
            write(&slot, &buffer, &mut scratch);
        }
        finish_blocking(&slot);
    })?;
    Ok(())
}

/// Lets the kernel fire the worker's [`LINGER`] timer up to a tenth of it late, together
/// with another timer (a source thread's), instead of waking the CPU for it alone.
fn coarse_timers() {
    let slack = (LINGER.as_nanos() / 10) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects this thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack, 0, 0, 0) };
    if rc != 0 {
        log::debug!(
            "could not set the timer slack: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The next buffer to write, once there is one; `None` once the queue is closed and
/// drained, or stopped. With nothing queued, the worker lingers once, then parks.
fn next_blocking(slot: &OutputSlot) -> Option<Arc<MeasurementBuffer>> {
    let mut q = slot.lock();
    let mut lingered = false;
    loop {
        if let Some(next) = q.pop() {
            return next.ok();
        }
        q = match q.state.emptied(lingered, true) {
            Idle::Exit => return None,
            Idle::Linger => {
                lingered = true;
                let waited = slot.cv.wait_timeout(q, LINGER);
                waited.map_or_else(|e| e.into_inner().0, |(g, _)| g)
            }
            Idle::Park => {
                lingered = false;
                slot.cv.wait(q).unwrap_or_else(|e| e.into_inner())
            }
        };
    }
}

/// Writes one buffer into the output, on its thread: only the points of its inputs when
/// it names them (copied into `scratch`).
fn write(slot: &OutputSlot, buffer: &MeasurementBuffer, scratch: &mut MeasurementBuffer) {
    let buffer = match &slot.filter {
        Some(filter) => match slot.received(buffer) {
            0 => return,
            n if n == buffer.len() => buffer,
            _ => {
                filter.copy(buffer, scratch, slot.ctx.metrics());
                &*scratch
            }
        },
        None => buffer,
    };
    let mut output = slot.output.lock().unwrap_or_else(|e| e.into_inner());
    let Some(out) = output.as_mut() else {
        slot.delivery().lost(buffer.len() as u64);
        return;
    };
    let result = caught(|| out.write(buffer, &slot.ctx));
    if let Next::Stop = after_write(slot, buffer.len(), result) {
        *output = None;
        drop(output);
        slot.stop();
    }
}

/// Accounts for one write and decides whether the output goes on.
fn after_write(
    slot: &OutputSlot,
    points: usize,
    result: Result<Result<(), ElementError>, String>,
) -> Next {
    let n = points as u64;
    let failed = format_args!("failed to write {n} points");
    let log = || {
        slot.write_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check()
    };
    let called = judge("output", &slot.name, result, failed, log);
    if !slot.reports {
        match called {
            Called::Done => slot.delivery().written(n),
            Called::Failed | Called::Stopped => slot.delivery().lost(n),
        }
    }
    match called {
        Called::Done => Next::Continue,
        Called::Failed => {
            slot.counters.retryable();
            Next::Continue
        }
        Called::Stopped => {
            slot.counters.stopped();
            Next::Stop
        }
    }
}

/// Calls the blocking output's `finish`, once its queue is drained (not once it was
/// abandoned), then drops the output: handles on the pipeline that outlive it (a control
/// handle kept by another thread) keep no output alive.
fn finish_blocking(slot: &OutputSlot) {
    let mut output = slot.output.lock().unwrap_or_else(|e| e.into_inner());
    let abandoned = slot.lock().state == super::output::State::Stopped;
    if let Some(out) = output.as_mut().filter(|_| !abandoned) {
        match caught(|| out.finish(&slot.ctx)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => slot.record_finish_failure(format_args!("failed to finish: {e}")),
            Err(panic) => {
                slot.record_finish_failure(format_args!("panicked while finishing: {panic}"))
            }
        }
    }
    let done = output.take();
    drop(output);
    if caught(|| drop(done)).is_err() {
        log::error!("output {} panicked while being dropped", slot.name);
    }
    slot.settle();
    slot.mark_done();
}
