//! Signals during exec and watch.
//!
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT go to the measured command; the agent then waits
//! for it, takes its final measurement and stops (no further `-r` runs). A watched
//! process is not the agent's: the signal ends the watch and is not sent on. The handler
//! does the forwarding itself (atomics, `getpgid` and `kill` are plain system calls): no
//! thread to start.
//!
//! A signal that the terminal sends to its whole foreground process group (Ctrl-C,
//! Ctrl-\, and the SIGHUP that follows the session leader's exit) reaches the measured
//! process too when it is in the agent's group: it is not sent it twice (a second Ctrl-C
//! means "force quit" to many programs). The SIGHUP of a hangup goes to the session leader
//! alone: when that is the agent (`ssh -t host alumet-agent exec ...`, `setsid`), it is
//! forwarded.
//!
//! A signal that comes while the command is being spawned (the agent waits, signals
//! blocked, until the child has exec'd) is sent to it once it has a pid: if the terminal
//! had sent it to the child as well, the child got it before its program could install a
//! handler, and its default action already ended it.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::child;

/// The process that signals are forwarded to (0: none, between runs).
static MEASURED: AtomicU32 = AtomicU32::new(0);
/// The last of SIGINT, SIGTERM, SIGHUP or SIGQUIT the agent received (0: none).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
/// Whether the measured process has that signal: sent on by the handler, or sent to it
/// by the terminal.
static FORWARDED: AtomicBool = AtomicBool::new(false);
/// Whether the terminal sent that signal to the measured process as well as to the agent.
static FROM_TERMINAL: AtomicBool = AtomicBool::new(false);
/// Whether the agent leads its session (then a hangup's SIGHUP reaches it alone).
static SESSION_LEADER: AtomicBool = AtomicBool::new(false);

/// Whether `signal`, with siginfo `info`, was sent by the terminal to the agent's whole
/// process group (so also to a measured process in that group).
fn to_the_whole_group(signal: i32, info: &libc::siginfo_t) -> bool {
    info.si_code == libc::SI_KERNEL
        && match signal {
            SIGINT | SIGQUIT => true,
            SIGHUP => !SESSION_LEADER.load(Ordering::SeqCst),
            _ => false,
        }
}

/// Installs the handlers (once per process) and forgets any earlier signal.
pub fn install() -> std::io::Result<()> {
    SIGNALLED.store(0, Ordering::SeqCst);
    FORWARDED.store(false, Ordering::SeqCst);
    FROM_TERMINAL.store(false, Ordering::SeqCst);
    // SAFETY: both only query the kernel about this process.
    let leader = unsafe { libc::getsid(0) == libc::getpid() };
    SESSION_LEADER.store(leader, Ordering::SeqCst);
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
        let action = move |info: &libc::siginfo_t| {
            SIGNALLED.store(signal, Ordering::SeqCst);
            let pid = MEASURED.load(Ordering::SeqCst);
            if pid == 0 {
                return;
            }
            if to_the_whole_group(signal, info) && child::in_our_process_group(pid) {
                FROM_TERMINAL.store(true, Ordering::SeqCst);
            } else {
                child::forward(pid, signal);
            }
            FORWARDED.store(true, Ordering::SeqCst);
        };
        // SAFETY: the action only touches atomics, reads the siginfo and makes system
        // calls (getpgid, getpgrp, kill), which are async-signal-safe; it neither
        // allocates nor locks.
        unsafe { signal_hook_registry::register_sigaction(signal, action) }?;
    }
    let _ = INSTALLED.set(());
    Ok(())
}

/// Makes `pid` the target of forwarded signals; a signal that came while it was being
/// started (no target yet) is sent now.
pub fn measure(pid: u32) {
    MEASURED.store(pid, Ordering::SeqCst);
    let signal = SIGNALLED.load(Ordering::SeqCst);
    if signal != 0 && !FORWARDED.swap(true, Ordering::SeqCst) {
        child::forward(pid, signal);
    }
}

/// No more forwarding (once reaped, the pid may be another process's).
pub fn unmeasure() {
    MEASURED.store(0, Ordering::SeqCst);
}

/// The last signal received since [`install`], if any.
pub fn received() -> Option<i32> {
    Some(SIGNALLED.load(Ordering::SeqCst)).filter(|s| *s != 0)
}

/// Logs, once, how the signal reached the measured process `pid`, if one did.
pub fn log_forwarded(pid: u32) {
    if FORWARDED.swap(false, Ordering::SeqCst) {
        let signal = SIGNALLED.load(Ordering::SeqCst);
        if FROM_TERMINAL.swap(false, Ordering::SeqCst) {
            log::info!("signal {signal} from the terminal: pid {pid} received it too");
        } else {
            log::info!("signal {signal} received: forwarded it to pid {pid}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_received_before_the_command_started_is_sent_to_it_at_start() {
        let sleep = std::ffi::OsString::from("sleep");
        let pid = child::spawn(&sleep, &["30".into()]).expect("sleep starts");
        SIGNALLED.store(SIGTERM, Ordering::SeqCst);
        FORWARDED.store(false, Ordering::SeqCst);
        measure(pid);
        let ended = child::wait(pid).expect("sleep is our child");
        unmeasure();
        assert_eq!(ended.code, 128 + SIGTERM);
        assert!(FORWARDED.load(Ordering::SeqCst));
    }
}
