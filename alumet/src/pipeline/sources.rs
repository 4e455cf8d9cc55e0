//! Threads that poll managed sources: one per poll interval, so that sources sharing an
//! interval share one wake-up.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::measurement::Timestamp;

use super::dispatch::Dispatcher;
use super::selector::{ElementName, Selector};
use super::slot::SourceSlot;

#[derive(Default)]
struct GroupState {
    slots: Vec<SourceSlot>,
    stop: bool,
}

pub(crate) struct GroupShared {
    state: Mutex<GroupState>,
    cv: Condvar,
    /// Points polled but not flushed yet, readable without the lock (for the report of a
    /// thread that does not stop).
    buffered: std::sync::atomic::AtomicU64,
}

impl GroupShared {
    /// Polls the matching active sources on the calling thread (waiting while the group's
    /// thread polls), with timestamp `t`, and flushes them; returns how many were polled.
    pub(crate) fn poll_here(
        &self,
        selector: &Selector,
        t: Timestamp,
        dispatcher: &Dispatcher,
    ) -> usize {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.stop {
            return 0;
        }
        let now = Instant::now();
        let mut n = 0;
        for slot in state.slots.iter_mut() {
            if slot.active() && selector.matches(&slot.name) {
                slot.poll(t);
                slot.flush(dispatcher, now);
                // A pending trigger_now is answered by this poll.
                slot.triggers.clear();
                n += 1;
            }
        }
        n
    }
}

/// A thread and the sources it polls.
pub(crate) struct SourceGroup {
    /// The poll interval the group was made for (`None`: manual sources).
    pub(crate) interval: Option<Duration>,
    shared: Arc<GroupShared>,
    thread: Option<JoinHandle<()>>,
    /// What starting the thread needs, until [`SourceGroup::start`].
    pending: Option<PendingThread>,
    /// Disconnects when the thread ends.
    done: std::sync::mpsc::Receiver<()>,
}

struct PendingThread {
    dispatcher: Arc<Dispatcher>,
    done_tx: std::sync::mpsc::Sender<()>,
}

impl SourceGroup {
    /// The group, its thread not started yet ([`SourceGroup::start`]).
    pub(crate) fn new(
        interval: Option<Duration>,
        slots: Vec<SourceSlot>,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        let shared = Arc::new(GroupShared {
            state: Mutex::new(GroupState { slots, stop: false }),
            cv: Condvar::new(),
            buffered: std::sync::atomic::AtomicU64::new(0),
        });
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        SourceGroup {
            interval,
            shared,
            thread: None,
            pending: Some(PendingThread {
                dispatcher,
                done_tx,
            }),
            done,
        }
    }

    /// The group with its thread started.
    pub(crate) fn spawn(
        interval: Option<Duration>,
        slots: Vec<SourceSlot>,
        dispatcher: Arc<Dispatcher>,
    ) -> std::io::Result<Self> {
        let mut group = SourceGroup::new(interval, slots, dispatcher);
        group.start()?;
        Ok(group)
    }

    /// Starts the thread (once).
    pub(crate) fn start(&mut self) -> std::io::Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let name = match self.interval {
            Some(i) => format!("alumet-src-{i:?}"),
            None => "alumet-src-manual".to_owned(),
        };
        let thread_shared = Arc::clone(&self.shared);
        let dispatcher = Arc::clone(&pending.dispatcher);
        let done_tx = pending.done_tx.clone();
        match std::thread::Builder::new().name(name).spawn(move || {
            let _done = done_tx;
            run(&thread_shared, &dispatcher);
        }) {
            Ok(thread) => {
                self.thread = Some(thread);
                Ok(())
            }
            Err(e) => {
                self.pending = Some(pending);
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether [`SourceGroup::start`] was called (the thread may have ended since).
    pub(crate) fn started(&self) -> bool {
        self.pending.is_none()
    }

    /// When the earliest periodic poll of the group's active sources is due.
    pub(crate) fn next_poll(&self) -> Option<Instant> {
        self.lock()
            .slots
            .iter()
            .filter(|s| s.active())
            .filter_map(|s| s.next_poll)
            .min()
    }

    /// Applies `f` to every slot matching `selector`; returns how many matched.
    pub(crate) fn for_each_matching(
        &self,
        selector: &Selector,
        mut f: impl FnMut(&mut SourceSlot),
    ) -> usize {
        let mut state = self.lock();
        let mut n = 0;
        for slot in state.slots.iter_mut().filter(|s| selector.matches(&s.name)) {
            f(slot);
            n += 1;
        }
        drop(state);
        self.shared.cv.notify_one();
        n
    }

    /// Removes the slots matching `selector`, after a flush of what they buffered;
    /// returns their names.
    pub(crate) fn remove_matching(
        &self,
        selector: &Selector,
        dispatcher: &Dispatcher,
    ) -> Vec<ElementName> {
        let mut state = self.lock();
        let now = Instant::now();
        let mut removed = Vec::new();
        state.slots.retain_mut(|slot| {
            if !selector.matches(&slot.name) {
                return true;
            }
            slot.flush(dispatcher, now);
            removed.push(slot.name.clone());
            false
        });
        drop(state);
        self.shared.cv.notify_one();
        removed
    }

    /// The state shared with the group's thread (to poll its sources from another thread).
    pub(crate) fn shared(&self) -> Arc<GroupShared> {
        Arc::clone(&self.shared)
    }

    pub(crate) fn names(&self) -> Vec<(ElementName, bool)> {
        self.lock()
            .slots
            .iter()
            .map(|s| (s.name.clone(), s.active()))
            .collect()
    }

    /// Adds a source; one with the same interval as a source already here takes its
    /// phase, so that both are polled in the same wake-up.
    pub(crate) fn add(&self, mut slot: SourceSlot) {
        let mut state = self.lock();
        let same = state.slots.iter().find(|s| {
            s.poll_interval.is_some()
                && s.poll_interval == slot.poll_interval
                && s.next_poll.is_some()
        });
        if let Some(next) = same.and_then(|s| s.next_poll) {
            slot.next_poll = Some(next);
        }
        state.slots.push(slot);
        drop(state);
        self.shared.cv.notify_one();
    }

    /// Stops the thread after a final flush of every source. Gives up waiting at
    /// `deadline` (a source, or an output written inline, blocked in a system call): the
    /// thread is left behind and the number of points it still buffers is returned.
    pub(crate) fn stop_until(&mut self, deadline: Instant) -> Result<(), u64> {
        if let Some(pending) = self.pending.take() {
            // Never started: the final flush happens here.
            let mut state = self.lock();
            state.stop = true;
            final_flush(&mut state.slots, &pending.dispatcher);
            return Ok(());
        }
        self.lock_for_stop();
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self.done.recv_timeout(remaining) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Its lock is held by the blocked thread: name the group by its interval.
                let group = self
                    .interval
                    .map_or_else(|| "manual".to_owned(), |i| format!("{i:?}"));
                log::error!(
                    "the thread of the sources polled every {group} did not stop in time: \
                     a source or an output it writes to is blocked"
                );
                self.thread = None;
                Err(self.shared.buffered.load(Ordering::Relaxed))
            }
            _ => {
                if let Some(thread) = self.thread.take() {
                    if thread.join().is_err() {
                        log::error!("a source thread panicked outside of any source");
                    }
                }
                Ok(())
            }
        }
    }

    fn lock_for_stop(&self) {
        // The thread holds the lock while it polls; try briefly, then set the flag anyway
        // through the lock once it is free (a blocked thread never frees it).
        let deadline = Instant::now() + Duration::from_millis(100);
        loop {
            match self.shared.state.try_lock() {
                Ok(mut state) => {
                    state.stop = true;
                    break;
                }
                Err(std::sync::TryLockError::Poisoned(e)) => {
                    e.into_inner().stop = true;
                    break;
                }
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    // Set it from a helper thread when the lock frees, so that a thread
                    // which unblocks later still stops.
                    let shared = Arc::clone(&self.shared);
                    std::thread::spawn(move || {
                        shared.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
                        shared.cv.notify_one();
                    });
                    break;
                }
            }
        }
        self.shared.cv.notify_one();
    }
}

impl Drop for SourceGroup {
    fn drop(&mut self) {
        if self.thread.is_some() || self.pending.is_some() {
            let _ = self.stop_until(Instant::now() + Duration::from_secs(5));
        }
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
fn final_flush(slots: &mut [SourceSlot], dispatcher: &Dispatcher) {
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

fn run(shared: &GroupShared, dispatcher: &Dispatcher) {
    precise_timers();
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if state.stop {
            final_flush(&mut state.slots, dispatcher);
            set_buffered(shared, dispatcher, 0);
            return;
        }
        let next = poll_due(&mut state.slots, dispatcher);
        let buffered: usize = state.slots.iter().map(|s| s.buffer.len()).sum();
        set_buffered(shared, dispatcher, buffered as u64);
        let now = Instant::now();
        state = match next {
            Some(deadline) if deadline <= now => continue,
            Some(deadline) => {
                let waited = shared.cv.wait_timeout(state, deadline - now);
                waited.map_or_else(|e| e.into_inner().0, |(s, _)| s)
            }
            None => shared.cv.wait(state).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// Polls every source that is due or triggered; returns the earliest next deadline.
fn poll_due(slots: &mut [SourceSlot], dispatcher: &Dispatcher) -> Option<Instant> {
    let now = Instant::now();
    let mut timestamp = None;
    let mut earliest: Option<Instant> = None;
    for slot in slots.iter_mut() {
        if !slot.active() {
            slot.triggers.clear();
            continue;
        }
        let triggered = !slot.triggers.is_empty();
        let due = slot.next_poll.is_some_and(|t| t <= now);
        if due || triggered {
            let ts = *timestamp.get_or_insert_with(Timestamp::now);
            slot.poll(ts);
            if due {
                slot.advance(now);
            }
            let flush_due = slot
                .flush_interval
                .is_none_or(|f| now.duration_since(slot.last_flush) >= f);
            if triggered || flush_due || slot.source.is_none() {
                slot.flush(dispatcher, now);
            }
            // Dropping the acks after the flush tells trigger_now that the points are queued.
            slot.triggers.clear();
        }
        if slot.active() {
            if let Some(t) = slot.next_poll {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
    }
    earliest
}
