//! Threads that poll managed sources: one per poll interval, so that sources sharing an
//! interval share one wake-up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::measurement::{MeasurementBuffer, Timestamp};

use super::dispatch::Dispatcher;
use super::element::{ErrorKind, Source, Trigger};
use super::ratelimit::{panic_message, suppressed_note, RateLimited};
use super::selector::{ElementName, Selector};
use super::stats::Counters;

/// How many sent buffers a source keeps to reuse once the outputs are done with them.
const SPARE_BUFFERS: usize = 4;

/// Counts the sources polled for one `trigger_now`; reports when the last one is done.
pub(crate) struct TriggerAck {
    polled: AtomicUsize,
    tx: Option<tokio::sync::oneshot::Sender<usize>>,
}

impl TriggerAck {
    pub(crate) fn new(tx: tokio::sync::oneshot::Sender<usize>) -> Arc<Self> {
        Arc::new(TriggerAck {
            polled: AtomicUsize::new(0),
            tx: Some(tx),
        })
    }
}

impl Drop for TriggerAck {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // The receiver may be gone (nobody waits): that is fine.
            let _ = tx.send(self.polled.load(Ordering::Relaxed));
        }
    }
}

pub(crate) struct SourceSlot {
    pub(crate) name: ElementName,
    /// `None` once the source is stopped.
    source: Option<Box<dyn Source>>,
    paused: bool,
    poll_interval: Option<Duration>,
    flush_interval: Option<Duration>,
    next_poll: Option<Instant>,
    last_flush: Instant,
    buffer: Arc<MeasurementBuffer>,
    spare: Vec<Arc<MeasurementBuffer>>,
    triggers: Vec<Arc<TriggerAck>>,
    error_log: RateLimited,
    pub(crate) counters: Arc<Counters>,
}

impl SourceSlot {
    /// A slot whose first poll is one interval after `now`: sources created with the same
    /// `now` and interval keep the same phase, and are polled in the same wake-up.
    pub(crate) fn new(
        name: ElementName,
        source: Box<dyn Source>,
        trigger: &Trigger,
        now: Instant,
    ) -> Self {
        SourceSlot {
            name,
            source: Some(source),
            paused: false,
            poll_interval: trigger.poll_interval,
            flush_interval: trigger.flush_interval,
            next_poll: trigger.poll_interval.map(|i| now + i),
            last_flush: now,
            buffer: Arc::new(MeasurementBuffer::new()),
            spare: Vec::with_capacity(SPARE_BUFFERS),
            triggers: Vec::new(),
            error_log: RateLimited::default(),
            counters: Arc::default(),
        }
    }

    fn active(&self) -> bool {
        self.source.is_some() && !self.paused
    }

    /// Polls once; a fatal error or a panic stops the source (what it measured is kept).
    fn poll(&mut self, timestamp: Timestamp) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        let before = self.buffer.len();
        let acc = Arc::make_mut(&mut self.buffer).as_accumulator();
        match catch_unwind(AssertUnwindSafe(|| source.poll(acc, timestamp))) {
            Ok(Ok(())) => {
                let produced = self.buffer.len().saturating_sub(before);
                self.counters.success(produced, timestamp);
            }
            Ok(Err(e)) if e.kind() == ErrorKind::Retryable => {
                self.counters.poll_failed();
                if let Some(n) = self.error_log.check() {
                    log::warn!(
                        "source {} failed, it will poll again: {e}{}",
                        self.name,
                        suppressed_note(n)
                    );
                }
            }
            Ok(Err(e)) => {
                log::error!("source {} stopped after a fatal error: {e}", self.name);
                self.source = None;
                self.counters.stopped();
            }
            Err(panic) => {
                self.counters.stopped();
                log::error!(
                    "source {} panicked and is stopped: {}",
                    self.name,
                    panic_message(&*panic)
                );
                self.source = None;
            }
        }
        for ack in &self.triggers {
            ack.polled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands the buffered points on, then takes a free buffer (a recycled one if possible).
    fn flush(&mut self, dispatcher: &Dispatcher, now: Instant) {
        self.last_flush = now;
        if self.buffer.is_empty() {
            return;
        }
        dispatcher.dispatch(&mut self.buffer);
        let capacity = self.buffer.len();
        let free = self.spare.iter().position(|b| Arc::strong_count(b) == 1);
        let next = match free {
            Some(i) => {
                let mut b = self.spare.swap_remove(i);
                Arc::make_mut(&mut b).clear();
                b
            }
            None => Arc::new(MeasurementBuffer::with_capacity(capacity)),
        };
        let sent = std::mem::replace(&mut self.buffer, next);
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(sent);
        }
    }

    fn advance(&mut self, now: Instant) {
        let (Some(interval), Some(next)) = (self.poll_interval, self.next_poll) else {
            return;
        };
        let mut next = next + interval;
        if next <= now {
            // Late by more than one period: skip the missed polls, keep the phase.
            let missed = (now - next).as_nanos() / interval.as_nanos().max(1) + 1;
            next += interval * u32::try_from(missed).unwrap_or(u32::MAX);
        }
        self.next_poll = Some(next);
    }
}

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

pub(crate) fn pause(slot: &mut SourceSlot) {
    slot.paused = true;
}

pub(crate) fn resume(slot: &mut SourceSlot) {
    if slot.paused {
        slot.paused = false;
        slot.next_poll = slot.poll_interval.map(|i| Instant::now() + i);
    }
}

pub(crate) fn set_interval(slot: &mut SourceSlot, interval: Duration) {
    slot.poll_interval = Some(interval);
    slot.next_poll = Some(Instant::now() + interval);
}

pub(crate) fn trigger(slot: &mut SourceSlot, ack: &Arc<TriggerAck>) {
    if slot.active() {
        slot.triggers.push(Arc::clone(ack));
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

fn run(shared: &GroupShared, dispatcher: &Dispatcher) {
    precise_timers();
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if state.stop {
            final_flush(&mut state.slots, dispatcher);
            return;
        }
        let next = poll_due(&mut state.slots, dispatcher);
        let buffered: usize = state.slots.iter().map(|s| s.buffer.len()).sum();
        shared.buffered.store(buffered as u64, Ordering::Relaxed);
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
