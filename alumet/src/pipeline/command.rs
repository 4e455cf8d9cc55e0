//! What a control call asks of a group of sources, and how a group applies it to the
//! slots it owns: on its thread between two ticks, or on the calling thread while the
//! group's thread has not started.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::measurement::Timestamp;

use super::control::ControlError;
use super::dispatch::Dispatcher;
use super::group_slots::GroupSlots;
use super::registry::Target;
use super::slot::{self, SourceSlot, TriggerAck};

/// Where a group answers a command: the number of sources it matched (or polled).
pub(crate) type Reply = Sender<usize>;

/// A command for one group. Those with a [`Reply`] are answered once applied; dropping
/// one unanswered (the group stopped) tells the caller that nothing more will happen.
pub(crate) enum Command {
    /// Adds a source (nobody waits for it: later commands come after it).
    Add(SourceSlot),
    /// Flushes, then removes, the targeted sources.
    Remove(Target, Reply),
    /// Pauses the targeted sources.
    Pause(Target, Reply),
    /// Resumes the targeted sources.
    Resume(Target, Reply),
    /// Changes the poll interval of the targeted sources.
    SetInterval(Target, Duration, Reply),
    /// Polls the targeted active sources in the next tick (answered through the ack);
    /// the timestamp serves only a group whose thread has not started, which polls on
    /// the calling thread.
    Trigger(Target, Arc<TriggerAck>, Timestamp),
    /// Polls the targeted active sources now, with this timestamp, and flushes them.
    Poll(Target, Timestamp, Reply),
}

/// Applies `command` to `slots`. A trigger only marks the sources (the group's thread polls
/// them in the same tick); with `now_polls`, it polls them at once (no thread will).
pub(crate) fn apply(
    slots: &mut GroupSlots,
    command: Command,
    dispatcher: &Dispatcher,
    now_polls: bool,
) {
    match command {
        Command::Add(slot) => add(slots, slot),
        Command::Remove(target, reply) => {
            let _ = reply.send(remove(slots, &target, dispatcher));
        }
        Command::Pause(target, reply) => {
            let _ = reply.send(for_each(slots, &target, slot::pause));
        }
        Command::Resume(target, reply) => {
            let _ = reply.send(for_each(slots, &target, slot::resume));
        }
        Command::SetInterval(target, interval, reply) => {
            let n = for_each(slots, &target, |s| slot::set_interval(s, interval));
            let _ = reply.send(n);
        }
        Command::Trigger(target, ack, t) => {
            for_each(slots, &target, |s| slot::trigger(s, &ack));
            if now_polls {
                poll_targeted(slots, &target, t, dispatcher);
            }
        }
        Command::Poll(target, t, reply) => {
            let _ = reply.send(poll_targeted(slots, &target, t, dispatcher));
        }
    }
}

/// Flushes, then drops, the targeted sources; returns how many there were.
fn remove(slots: &mut GroupSlots, target: &Target, dispatcher: &Dispatcher) -> usize {
    let now = Instant::now();
    match target {
        Target::Id(id) => match slots.remove(*id) {
            Some(mut slot) => {
                slot.flush(dispatcher, now);
                1
            }
            None => 0,
        },
        Target::Matching(selector) => {
            let before = slots.len();
            slots.retain_mut(|slot| {
                if !selector.matches(&slot.name) {
                    return true;
                }
                slot.flush(dispatcher, now);
                false
            });
            before - slots.len()
        }
    }
}

/// Calls `f` on each targeted source; returns how many there were.
fn for_each(slots: &mut GroupSlots, target: &Target, mut f: impl FnMut(&mut SourceSlot)) -> usize {
    match target {
        Target::Id(id) => slots.get_mut(*id).map(f).map_or(0, |()| 1),
        Target::Matching(selector) => {
            let mut n = 0;
            for slot in slots.iter_mut().filter(|s| selector.matches(&s.name)) {
                f(slot);
                n += 1;
            }
            n
        }
    }
}

/// Adds a source; one with the same interval as a source already here takes its phase,
/// so that both are polled in the same wake-up. The first source of the group nearly
/// always has that interval (a group is made per interval): the search stops there.
fn add(slots: &mut GroupSlots, mut slot: SourceSlot) {
    let same = slots.iter().find(|s| {
        s.poll_interval.is_some() && s.poll_interval == slot.poll_interval && s.next_poll.is_some()
    });
    if let Some(next) = same.and_then(|s| s.next_poll) {
        slot.next_poll = Some(next);
    }
    slots.push(slot);
}

/// Polls the targeted active sources with timestamp `t` and flushes them; returns how many
/// were polled. A pending trigger of theirs is answered by this poll.
fn poll_targeted(
    slots: &mut GroupSlots,
    target: &Target,
    t: Timestamp,
    dispatcher: &Dispatcher,
) -> usize {
    let now = Instant::now();
    let mut polled = 0;
    for_each(slots, target, |slot| {
        if slot.active() {
            slot.poll(t);
            slot.flush(dispatcher, now);
            slot.triggers.clear();
            polled += 1;
        }
    });
    polled
}

/// Waits until `expected` groups answered, or `deadline`; returns the sum of the answers.
/// `own` groups are those of the calling thread (a control call from a source's poll):
/// they cannot answer before the call returns, so they are not waited for.
pub(crate) fn collect(
    replies: Receiver<usize>,
    expected: usize,
    own: usize,
    deadline: Instant,
    waited_from: Instant,
) -> Result<usize, ControlError> {
    let mut sum = 0;
    let mut answered = 0;
    while answered < expected {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match replies.recv_timeout(remaining) {
            Ok(n) => {
                sum += n;
                answered += 1;
            }
            // Every group left unanswered has stopped: nothing more will apply.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                return Err(ControlError::Pending {
                    applied: sum,
                    pending: expected - answered + own,
                    waited: waited_from.elapsed(),
                });
            }
        }
    }
    if own > 0 {
        return Err(ControlError::Pending {
            applied: sum,
            pending: own,
            waited: waited_from.elapsed(),
        });
    }
    Ok(sum)
}
