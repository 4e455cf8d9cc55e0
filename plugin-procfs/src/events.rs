//! The `"event"` strategy: a source per process announced by the agent (exec and watch
//! modes), added when `ConsumerStarted` or `ConsumerWatched` arrives, and given a final poll
//! then removed when `ConsumerEnded` arrives (`exec -r 4000` adds and removes 4000 of them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alumet::prelude::*;

use crate::config::EventsConfig;
use crate::discovery::{starttime_of, uptime_ticks, Matcher, ProcessSource};
use crate::process::{ProcessMetrics, ProcessSet};
use crate::procfile::{is_denied, is_gone, warn_process_denied};
use crate::{trigger, Env};

/// The per-process sources: the plugin's event handler.
pub(crate) struct EventHandler {
    env: Arc<Env>,
    metrics: ProcessMetrics,
    config: EventsConfig,
    refresh: Duration,
    /// pid → (source name, its `ended` flag).
    sources: Mutex<HashMap<u32, (SourceId, Arc<AtomicBool>)>>,
}

impl EventHandler {
    pub(crate) fn new(
        env: Arc<Env>,
        metrics: ProcessMetrics,
        config: EventsConfig,
        refresh: Duration,
    ) -> Self {
        EventHandler {
            env,
            metrics,
            config,
            refresh,
            sources: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn handle(&self, event: &Event, control: &PluginControl) {
        match event {
            Event::ConsumerStarted(ResourceConsumer::Process { pid }) => {
                self.started(*pid, CountFrom::Start, control)
            }
            Event::ConsumerWatched(ResourceConsumer::Process { pid }) => {
                self.started(*pid, CountFrom::Now, control)
            }
            Event::ConsumerEnded(ResourceConsumer::Process { pid }) => self.ended(*pid, control),
            _ => {}
        }
    }

    /// Adds the source `procfs/process-PID-STARTTIME` and polls it at once.
    fn started(&self, pid: u32, from: CountFrom, control: &PluginControl) {
        let starttime = match starttime_of(&self.env, pid) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                let path = self.env.root.join(pid.to_string()).join("stat");
                if is_denied(&e) {
                    self.env
                        .warnings
                        .denied
                        .call(|| warn_process_denied(&format!("{}: {e}", path.display())));
                } else if !is_gone(&e) {
                    log::warn!(
                        "procfs: cannot measure process {pid}: reading {}: {e}",
                        path.display()
                    );
                }
                return;
            }
        };
        // The processes that start from then on (the announced one included, for `Start`)
        // are measured from their start; the others from their first reading.
        let count_from = match from {
            CountFrom::Start => starttime,
            // Never the announced process itself, even one that started in the same clock
            // tick. Without /proc/uptime, a child is measured from when it is found.
            CountFrom::Now => {
                uptime_ticks(&self.env).map_or(u64::MAX, |u| u.max(starttime.saturating_add(1)))
            }
        };
        let mut set = ProcessSet::new(Arc::clone(&self.env), self.metrics.clone(), count_from)
            .with_memory_mode(self.config.memory_mode);
        if let Err(e) = set.track(pid, starttime) {
            if !is_gone(&e) {
                log::warn!("procfs: cannot measure process {pid}: {e}");
            }
            return;
        }
        let matcher = Matcher::Descendants {
            follow: self.config.follow_children,
        };
        let mut source = ProcessSource::new(set, matcher, self.refresh);
        if from == CountFrom::Start {
            // Just started (exec mode): no descendants to look for yet.
            source = source.defer_first_refresh();
        }
        let ended = source.ended_flag();
        let name = format!("process-{pid}-{starttime}");
        let trigger = trigger(self.config.poll_interval, self.config.flush_interval);
        let id = match control.add_source(&name, source, trigger) {
            Ok(id) => id,
            Err(e) => {
                log::warn!("procfs: cannot measure process {pid}: {e}");
                return;
            }
        };
        self.lock().insert(pid, (id, ended));
        // The first reading now, without waiting for it: the handler may run anywhere. For
        // `Now`, it is the baseline (what the process used so far is not counted); a
        // process measured from its start needs it too: the attribution splits the
        // intervals between readings, and the first one starts there.
        if let Err(e) = control.trigger_now(id) {
            log::warn!("procfs: first reading of process {pid}: {e}");
        }
    }

    /// Polls the process's source one last time (its group polls at once and this waits
    /// for it), then removes it. A source blocked past the control deadline is logged; the
    /// removal still applies once its poll returns.
    fn ended(&self, pid: u32, control: &PluginControl) {
        let Some((id, ended)) = self.lock().remove(&pid) else {
            return;
        };
        ended.store(true, Ordering::Release);
        if let Err(e) = control.poll_now(id) {
            log::warn!("procfs: last reading of process {pid}: {e}");
        }
        if let Err(e) = control.remove_source(id) {
            log::warn!("procfs: removing the source of process {pid}: {e}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (SourceId, Arc<AtomicBool>)>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// From when an announced process is measured.
#[derive(Copy, Clone, PartialEq, Eq)]
enum CountFrom {
    /// From its start: it began just now (`ConsumerStarted`).
    Start,
    /// From the announcement: it was already running (`ConsumerWatched`).
    Now,
}
