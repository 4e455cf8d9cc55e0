//! Groups of managed sources: one thread per poll interval, so that sources sharing an
//! interval share one wake-up. The thread owns its sources; control calls reach them
//! through commands that it applies between two ticks (see [`super::command`]), so a
//! source blocked in its poll holds up its own group only.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use super::command::{self, Command};
use super::dispatch::Dispatcher;
use super::group_slots::GroupSlots;
use super::group_thread;
use super::slot::SourceSlot;

/// What control calls hand to a group.
#[derive(Default)]
pub(crate) struct Inbox {
    /// Commands for the group's thread, in the order they came.
    pub(crate) commands: Vec<Command>,
    /// The group's sources until its thread takes them.
    parked: Option<GroupSlots>,
    /// Whether the thread was started: from then on, commands are queued for it, even
    /// before it has taken the sources. Until then, they are applied to the parked sources
    /// on the calling thread.
    thread_started: bool,
}

/// The part of a group that control calls share with its thread. The thread holds no
/// lock while it polls: the inbox lock is taken to hand over commands and to sleep.
#[derive(Default)]
pub(crate) struct GroupShared {
    pub(crate) inbox: Mutex<Inbox>,
    /// Wakes the thread for a command or the stop.
    pub(crate) cv: Condvar,
    /// Whether `inbox.commands` holds something: the thread's one check per tick.
    pub(crate) pending: AtomicBool,
    /// Seen by the thread between every two polls.
    pub(crate) stop: AtomicBool,
    /// Points polled but not flushed yet, readable without the lock (for the report of a
    /// thread that does not stop).
    pub(crate) buffered: AtomicU64,
    /// The group's thread, once started (a call from its own poll cannot be answered).
    pub(crate) thread_id: OnceLock<ThreadId>,
    /// How many sources the registry places in this group (changed under its lock): the
    /// group goes away with its last source.
    pub(crate) members: AtomicUsize,
    /// The group's part of the pipeline's watermark (Unix nanoseconds): every reading of
    /// its active periodic sources up to this time is dispatched; `u64::MAX` when it has
    /// none. Published by its thread after each tick.
    pub(crate) watermark: AtomicU64,
    /// When the thread's current tick began (nanoseconds after [`busy_epoch`], plus one);
    /// 0 between ticks. A tick that lasts is a source blocked in its poll.
    pub(crate) busy_since: AtomicU64,
}

/// The instant the ticks' start times count from.
pub(crate) fn busy_epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl GroupShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `command` to the group: applied at once, on the calling thread, while the
    /// group's thread has not taken its sources; queued for the thread otherwise;
    /// dropped unanswered once the thread is stopping.
    pub(crate) fn submit(&self, command: Command, dispatcher: &Dispatcher) {
        let mut inbox = self.lock();
        if !inbox.thread_started {
            if let Some(slots) = inbox.parked.as_mut() {
                command::apply(slots, command, dispatcher, true);
            }
            return;
        }
        if self.stop.load(Ordering::Acquire) {
            // Stopping (shut down, or retired): nobody would answer; dropping the command
            // tells the caller at once. Checked under the lock the thread takes to drop
            // what came too late, so no command is left waiting for a thread that is gone.
            return;
        }
        inbox.commands.push(command);
        self.pending.store(true, Ordering::Release);
        drop(inbox);
        self.cv.notify_one();
    }

    /// Whether the calling thread is this group's (a control call from a source's poll).
    pub(crate) fn is_current_thread(&self) -> bool {
        self.thread_id.get() == Some(&std::thread::current().id())
    }

    /// The sources, for the thread that starts (an empty list when already taken).
    pub(crate) fn take_parked(&self) -> GroupSlots {
        self.lock().parked.take().unwrap_or_default()
    }

    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        // Through the lock, so that the thread cannot miss the wake-up between its check
        // and its sleep. The thread never holds it while polling.
        drop(self.lock());
        self.cv.notify_one();
    }
}

/// A thread polls at most this many sources of one interval before the next ones go to
/// another thread of the same interval (with its own phase): a tick of 1000 cgroups is
/// then four shorter ticks a quarter of the interval apart, on as many CPUs as are free.
pub(crate) const SOURCES_PER_THREAD: usize = 256;
/// At most this many threads per poll interval; beyond, the one with the fewest sources
/// takes the next.
pub(crate) const THREADS_PER_INTERVAL: usize = 4;

/// Where a group's polls fall within its interval: the `index`th of the interval's
/// threads polls `index / THREADS_PER_INTERVAL` of an interval after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phase {
    pub(crate) index: usize,
    /// An instant at which the group's sources are due (its first sources were created
    /// with it: they are due one interval after it, and every interval from then on).
    pub(crate) anchor: Instant,
}

impl Phase {
    /// The first thread's phase, from `anchor`.
    pub(crate) fn first(anchor: Instant) -> Self {
        Phase { index: 0, anchor }
    }

    /// The phase of the `index`th thread of `interval`, this phase being another's of the
    /// same interval.
    pub(crate) fn sibling(&self, interval: Duration, index: usize) -> Self {
        let base = self.anchor.checked_sub(offset(interval, self.index));
        let anchor = base.map_or(self.anchor, |b| b + offset(interval, index));
        Phase { index, anchor }
    }

    /// The instant to create a source with (see [`super::slot::SourceSlot::new`]) for it
    /// to keep this phase: the last due instant at or before `now`.
    pub(crate) fn creation_instant(&self, interval: Duration, now: Instant) -> Instant {
        let nanos = interval.as_nanos().max(1);
        if now >= self.anchor {
            let periods = (now - self.anchor).as_nanos() / nanos;
            let back = (now - self.anchor).as_nanos() - periods * nanos;
            now.checked_sub(Duration::from_nanos(back as u64))
                .unwrap_or(now)
        } else {
            let ahead = (self.anchor - now).as_nanos() % nanos;
            let back = if ahead == 0 { 0 } else { nanos - ahead };
            now.checked_sub(Duration::from_nanos(back as u64))
                .unwrap_or(now)
        }
    }
}

/// When a group polls: its interval (`None`: manual sources) and its phase.
pub(crate) type Schedule = (Option<Duration>, Phase);

/// The phase offset of the `index`th thread of `interval`.
fn offset(interval: Duration, index: usize) -> Duration {
    interval.mul_f64(index as f64 / THREADS_PER_INTERVAL as f64)
}

/// How many threads `n` sources of one interval get at start.
pub(crate) fn threads_for(n: usize) -> usize {
    n.div_ceil(SOURCES_PER_THREAD)
        .clamp(1, THREADS_PER_INTERVAL)
}

/// A thread and the sources it polls.
pub(crate) struct SourceGroup {
    /// The poll interval the group was made for (`None`: manual sources).
    pub(crate) interval: Option<Duration>,
    /// Where its polls fall within the interval.
    pub(crate) phase: Phase,
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
        (interval, phase): Schedule,
        slots: Vec<SourceSlot>,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        let watermark = slots.iter().map(SourceSlot::watermark).min();
        let shared = Arc::new(GroupShared {
            inbox: Mutex::new(Inbox {
                commands: Vec::new(),
                parked: Some(GroupSlots::new(slots)),
                thread_started: false,
            }),
            watermark: AtomicU64::new(watermark.unwrap_or(u64::MAX)),
            ..GroupShared::default()
        });
        dispatcher.add_clock(&shared);
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        SourceGroup {
            interval,
            phase,
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
        schedule: Schedule,
        slots: Vec<SourceSlot>,
        dispatcher: Arc<Dispatcher>,
    ) -> std::io::Result<Self> {
        let mut group = SourceGroup::new(schedule, slots, dispatcher);
        group.start()?;
        Ok(group)
    }

    /// Starts the thread (once). It takes the sources when it runs: until then, commands
    /// still apply on the calling thread.
    pub(crate) fn start(&mut self) -> std::io::Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let name = match self.interval {
            Some(i) => format!("alumet-src-{i:?}"),
            None => "alumet-src-manual".to_owned(),
        };
        self.shared.lock().thread_started = true;
        let thread_shared = Arc::clone(&self.shared);
        let dispatcher = Arc::clone(&pending.dispatcher);
        let done_tx = pending.done_tx.clone();
        match std::thread::Builder::new().name(name).spawn(move || {
            let _done = done_tx;
            group_thread::run(&thread_shared, &dispatcher);
        }) {
            Ok(thread) => {
                self.thread = Some(thread);
                Ok(())
            }
            Err(e) => {
                self.shared.lock().thread_started = false;
                self.pending = Some(pending);
                Err(e)
            }
        }
    }

    /// Whether [`SourceGroup::start`] was called (the thread may have ended since).
    pub(crate) fn started(&self) -> bool {
        self.pending.is_none()
    }

    /// When the earliest periodic poll of the group's active sources is due, while its
    /// sources are parked (`None` once its thread took them).
    pub(crate) fn next_poll(&self) -> Option<Instant> {
        let inbox = self.shared.lock();
        inbox
            .parked
            .as_ref()?
            .iter()
            .filter(|s| s.active())
            .filter_map(|s| s.next_poll)
            .min()
    }

    /// The state shared with the group's thread (to hand it commands).
    pub(crate) fn shared(&self) -> Arc<GroupShared> {
        Arc::clone(&self.shared)
    }

    /// Whether this group shares `shared`.
    pub(crate) fn is(&self, shared: &Arc<GroupShared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Asks the thread of a group left without sources to stop, without waiting for it
    /// (it may be in the last poll of a source being removed); one whose thread never
    /// started is done at once. Returns the group if its thread is still to be joined.
    pub(crate) fn retire(mut self) -> Option<Self> {
        if !self.started() {
            let _ = self.stop_until(Instant::now());
            return None;
        }
        self.shared.request_stop();
        Some(self)
    }

    /// Whether the thread has ended (a retired group can then be dropped at no cost).
    pub(crate) fn ended(&self) -> bool {
        matches!(
            self.done.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Disconnected)
        )
    }

    /// Stops the thread after a final flush of every source: it sees the stop between two
    /// polls, so a source that overruns its interval holds it for one poll at most. Gives
    /// up waiting at `deadline` (a source blocked in a system call): the thread is left
    /// behind and the number of points it still buffers is returned.
    pub(crate) fn stop_until(&mut self, deadline: Instant) -> Result<(), u64> {
        if let Some(pending) = self.pending.take() {
            // Never started: the final flush happens here.
            self.shared.stop.store(true, Ordering::Release);
            let mut slots = self.shared.take_parked();
            group_thread::final_flush(&mut slots, &pending.dispatcher);
            return Ok(());
        }
        self.shared.request_stop();
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self.done.recv_timeout(remaining) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let group = self
                    .interval
                    .map_or_else(|| "manual".to_owned(), |i| format!("{i:?}"));
                log::error!(
                    "the thread of the sources polled every {group} did not stop in time: \
                     a source is blocked"
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
}

impl Drop for SourceGroup {
    fn drop(&mut self) {
        if self.thread.is_some() || self.pending.is_some() {
            let _ = self.stop_until(Instant::now() + Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod phase_tests {
    use super::*;

    const I: Duration = Duration::from_millis(400);

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn siblings_are_a_quarter_interval_apart_from_any_of_them() {
        let anchor = Instant::now();
        let first = Phase::first(anchor);
        let third = first.sibling(I, 2);
        assert_eq!(third.index, 2);
        assert_eq!(ms(third.anchor - anchor), 200);
        // From the third, the second: 100 ms after the first.
        let second = third.sibling(I, 1);
        assert_eq!(ms(second.anchor - anchor), 100);
    }

    #[test]
    fn a_source_created_at_the_instant_given_is_due_on_the_phase_within_one_interval() {
        let anchor = Instant::now() + Duration::from_secs(10);
        let phase = Phase::first(anchor).sibling(I, 1); // due at anchor + 100 ms + k * 400 ms
        for now in [
            anchor + Duration::from_millis(1234),
            anchor,
            anchor - Duration::from_millis(1234),
            anchor + Duration::from_millis(100),
        ] {
            let created = phase.creation_instant(I, now);
            assert!(created <= now, "created in the past");
            let due = created + I;
            assert!(due > now && due <= now + I, "due within one interval");
            let from_phase = if due >= phase.anchor {
                ms(due - phase.anchor)
            } else {
                ms(phase.anchor - due)
            };
            assert_eq!(from_phase % 400, 0, "on the phase: {from_phase} ms");
        }
    }

    #[test]
    fn threads_per_interval_grow_with_the_sources_up_to_four() {
        assert_eq!(threads_for(0), 1);
        assert_eq!(threads_for(256), 1);
        assert_eq!(threads_for(257), 2);
        assert_eq!(threads_for(600), 3);
        assert_eq!(threads_for(100_000), THREADS_PER_INTERVAL);
    }
}
