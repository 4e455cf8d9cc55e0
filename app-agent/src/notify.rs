//! systemd's notify protocol (`Type=notify` units): READY once the pipeline runs,
//! RELOADING/READY around a reload, STOPPING at shutdown, a one-line STATUS, and the
//! watchdog's WATCHDOG pings, sent only while no source thread is blocked in its poll.
//!
//! The datagrams are sent by the `sd-notify` crate; without `NOTIFY_SOCKET` (not started
//! by systemd), nothing is sent.

use std::time::Duration;

use alumet::pipeline::PipelineControl;
use sd_notify::NotifyState;

/// Talks to the service manager, if the agent has one.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Enabled when `NOTIFY_SOCKET` is set.
    pub fn from_env() -> Self {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(false, states) {
            log::warn!("could not notify the service manager (NOTIFY_SOCKET): {e}");
        }
    }

    /// The pipeline runs.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload begins (the monotonic time tells systemd which reload this is).
    pub fn reloading(&self) {
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        states.push(NotifyState::Status("reloading the config"));
        self.send(&states);
    }

    /// The shutdown begins.
    pub fn stopping(&self) {
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: writing what was measured"),
        ]);
    }

    /// Starts the watchdog's thread when systemd asks for pings (`WatchdogSec=`): a ping
    /// every half period while no source thread has spent longer than the period in one
    /// poll; a blocked source stops the pings, and systemd restarts the agent.
    pub fn start_watchdog(&self, control: PipelineControl) {
        if !self.enabled {
            return;
        }
        let Some(period) = watchdog_period() else {
            return;
        };
        let notifier = *self;
        let spawned = std::thread::Builder::new()
            .name("alumet-watchdog".into())
            .spawn(move || watchdog_loop(notifier, &control, period));
        if let Err(e) = spawned {
            log::error!("could not start the watchdog's thread: {e}");
        }
    }
}

/// `WATCHDOG_USEC`, if set for this process (`WATCHDOG_PID`, when set, is its PID).
fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

fn watchdog_loop(notifier: Notifier, control: &PipelineControl, period: Duration) {
    let mut blocked = false;
    loop {
        if control.is_shutdown_requested() {
            return;
        }
        match control.longest_poll() {
            Some(polling) if polling >= period => {
                if !blocked {
                    log::error!(
                        "a source has been inside one poll for {polling:?}, longer than the watchdog period ({period:?}): no watchdog ping until it returns"
                    );
                    blocked = true;
                }
            }
            _ => {
                if blocked {
                    log::info!("the blocked source returned: watchdog pings resume");
                    blocked = false;
                }
                notifier.send(&[NotifyState::Watchdog]);
            }
        }
        std::thread::sleep(period / 2);
    }
}
