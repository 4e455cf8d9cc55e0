//! The loop of a group's thread: apply the commands, poll what is due, sleep until the
//! next deadline or command. It owns the group's sources and holds no lock while polling.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::measurement::Timestamp;

use super::command::{self, Command};
use super::dispatch::Dispatcher;
use super::group_slots::GroupSlots;
use super::slot::SourceSlot;
use super::sources::GroupShared;
use super::tick::TickBuffer;

pub(crate) fn run(shared: &GroupShared, dispatcher: &Dispatcher) {
    precise_timers();
    let _ = shared.thread_id.set(std::thread::current().id());
    let mut slots = shared.take_parked();
    // Swapped with the inbox's list, so that taking the commands allocates nothing.
    let mut commands: Vec<Command> = Vec::new();
    let mut tick = TickBuffer::default();
    loop {
        if shared.pending.load(Ordering::Acquire) {
            apply_commands(shared, &mut slots, &mut commands, dispatcher);
        }
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let now = Instant::now();
        let since = now.saturating_duration_since(super::sources::busy_epoch());
        let since = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        shared.busy_since.store(since, Ordering::Relaxed);
        let next = poll_due(&mut slots, shared, &mut tick, now);
        tick.dispatch(dispatcher);
        // After the dispatch: what the watermark covers is queued by then.
        let watermark = slots.iter().map(SourceSlot::watermark).min();
        shared
            .watermark
            .store(watermark.unwrap_or(u64::MAX), Ordering::Release);
        // Dropping the acks after the dispatch tells trigger_now that the points are queued.
        for slot in slots.iter_mut() {
            slot.triggers.clear();
        }
        let buffered: usize = slots.iter().map(|s| s.buffer.len()).sum();
        set_buffered(shared, dispatcher, buffered as u64);
        shared.busy_since.store(0, Ordering::Relaxed);
        sleep_until(shared, next);
    }
    final_flush(&mut slots, dispatcher);
    set_buffered(shared, dispatcher, 0);
    // Commands that came too late are dropped unanswered: their callers see the stop.
    drop(std::mem::take(&mut shared.lock().commands));
}

/// Takes the queued commands and applies them in order.
fn apply_commands(
    shared: &GroupShared,
    slots: &mut GroupSlots,
    commands: &mut Vec<Command>,
    dispatcher: &Dispatcher,
) {
    {
        let mut inbox = shared.lock();
        std::mem::swap(&mut inbox.commands, commands);
        shared.pending.store(false, Ordering::Release);
    }
    for c in commands.drain(..) {
        command::apply(slots, c, dispatcher, false);
    }
}

/// Sleeps until `next` (forever when `None`), a command or the stop.
fn sleep_until(shared: &GroupShared, next: Option<Instant>) {
    let mut inbox = shared.lock();
    loop {
        if shared.pending.load(Ordering::Relaxed) || shared.stop.load(Ordering::Relaxed) {
            return;
        }
        inbox = match next {
            Some(deadline) => {
                let now = Instant::now();
                if deadline <= now {
                    return;
                }
                let waited = shared.cv.wait_timeout(inbox, deadline - now);
                waited.map_or_else(|e| e.into_inner().0, |(g, _)| g)
            }
            None => shared.cv.wait(inbox).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// Sets this thread's timer slack to 1 ns, so that timed waits wake up on time
/// (the default slack is 50 µs, half of the period at 10 kHz).
fn precise_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects this thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        log::debug!(
            "could not set the timer slack: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Flushes what every source buffered, at the stop of its group.
pub(crate) fn final_flush(slots: &mut [SourceSlot], dispatcher: &Dispatcher) {
    let now = Instant::now();
    for slot in slots.iter_mut() {
        slot.flush(dispatcher, now);
        slot.triggers.clear();
    }
}

/// Records how many points the group's sources buffer, in the group and in the pipeline's
/// total (added before the old count is taken away, so the total never goes below zero).
fn set_buffered(shared: &GroupShared, dispatcher: &Dispatcher, n: u64) {
    let old = shared.buffered.swap(n, Ordering::Relaxed);
    if old != n {
        dispatcher.in_sources.fetch_add(n, Ordering::Relaxed);
        dispatcher.in_sources.fetch_sub(old, Ordering::Relaxed);
    }
}

/// Polls every source that is due or triggered, moves what is to be flushed into the
/// tick's buffer, and sees the stop between two polls; returns the earliest next deadline.
fn poll_due(
    slots: &mut [SourceSlot],
    shared: &GroupShared,
    tick: &mut TickBuffer,
    now: Instant,
) -> Option<Instant> {
    let mut polled = false;
    let mut earliest: Option<Instant> = None;
    for slot in slots.iter_mut() {
        if !slot.active() {
            slot.triggers.clear();
            continue;
        }
        let triggered = !slot.triggers.is_empty();
        let due = slot.next_poll.is_some_and(|t| t <= now);
        if due || triggered {
            if polled && shared.stop.load(Ordering::Relaxed) {
                return None;
            }
            polled = true;
            // Each source's points carry the time of its own reading, not the tick's.
            slot.poll(Timestamp::now());
            if due {
                // From the time the poll ended: what it overran is skipped, not made up.
                slot.advance(now, Instant::now());
            }
            let flush_due = slot
                .flush_interval
                .is_none_or(|f| now.duration_since(slot.last_flush) >= f);
            if triggered || flush_due || slot.source.is_none() {
                slot.flush_into(tick.points(), now);
            }
        }
        if slot.active() {
            if let Some(t) = slot.next_poll {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
    }
    earliest
}
