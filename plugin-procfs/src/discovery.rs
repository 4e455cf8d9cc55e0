//! Finding the processes to measure: the core's listing of `/proc` (shared with every
//! plugin that lists processes; at most `refresh_interval` old), matched against the
//! watcher's groups or against the descendants of an announced process; and the source
//! that measures what was found.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alumet::consumers::{ProcessEntry, Snapshot};
use alumet::prelude::*;
use regex_lite::Regex;

use crate::parse::{parse_process_stat, parse_uptime_ticks};
use crate::process::ProcessSet;
use crate::procfile::{
    is_denied, is_gone, is_out_of_files, read_whole, warn_exe_denied, warn_out_of_files,
    warn_process_denied,
};
use crate::Env;

/// One `[[processes.groups]]` entry, compiled.
pub(crate) struct GroupFilter {
    pub(crate) pid: Option<u32>,
    pub(crate) ppid: Option<u32>,
    pub(crate) exe: Option<Regex>,
}

/// Which processes a source measures.
pub(crate) enum Matcher {
    /// The processes whose first matching group is `filters[index]`.
    Group {
        filters: Arc<Vec<GroupFilter>>,
        index: usize,
    },
    /// An announced process and, with `follow`, its descendants.
    Descendants { follow: bool },
}

/// Measures the processes that its [`Matcher`] selects.
pub(crate) struct ProcessSource {
    set: ProcessSet,
    matcher: Matcher,
    refresh: Duration,
    last_refresh: Option<Instant>,
    listed: Arc<Snapshot<ProcessEntry>>,
    /// Set by the event handler before the final poll: the files are closed after it.
    ended: Arc<AtomicBool>,
}

impl ProcessSource {
    pub(crate) fn new(set: ProcessSet, matcher: Matcher, refresh: Duration) -> Self {
        ProcessSource {
            set,
            matcher,
            refresh,
            last_refresh: None,
            listed: Arc::new(Snapshot::default()),
            ended: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Waits one `refresh` before the first scan for descendants: a process announced right
    /// after its spawn has none yet, and a scan reads every `/proc/PID/stat`.
    pub(crate) fn defer_first_refresh(mut self) -> Self {
        self.last_refresh = Some(Instant::now());
        self
    }

    /// The flag that tells this source that its consumer ended.
    pub(crate) fn ended_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ended)
    }

    /// Takes the listing of `/proc` (a new one if the last is older than `refresh`) and
    /// updates the tracked set.
    fn refresh(&mut self) -> anyhow::Result<()> {
        if let Matcher::Descendants { follow: false } = self.matcher {
            return Ok(());
        }
        if self.last_refresh.is_none() && matches!(self.matcher, Matcher::Group { .. }) {
            // What runs before the first scan is measured from its first reading, what
            // starts later from its start.
            let uptime = uptime_ticks(self.set.env());
            self.set.set_count_from(uptime.unwrap_or(u64::MAX));
        }
        let env = self.set.env();
        self.listed = env.processes.listing(self.refresh / 4)?;
        if let Some(why) = &self.listed.incomplete {
            env.warnings.denied.call(|| warn_process_denied(why));
        }
        // Drop the processes that are gone or whose pid was reused.
        let listed = &self.listed;
        let stale: Vec<u32> = (self.set.pids())
            .filter(|&pid| listed.process(pid).map(|l| l.starttime) != self.set.starttime(pid))
            .collect();
        stale.into_iter().for_each(|pid| self.set.untrack(pid));
        match &self.matcher {
            Matcher::Group { filters, index } => {
                let filters = Arc::clone(filters);
                self.add_group_members(&filters, *index);
            }
            Matcher::Descendants { .. } => self.add_descendants(),
        }
        Ok(())
    }

    fn add_group_members(&mut self, filters: &[GroupFilter], index: usize) {
        let listed = Arc::clone(&self.listed);
        for l in listed.entries.iter() {
            if self.set.starttime(l.pid).is_some() {
                continue;
            }
            let first = filters.iter().position(|f| matches(self.set.env(), f, l));
            if first == Some(index) {
                track(&mut self.set, l);
            }
        }
    }

    /// Tracks every listed process whose parent is tracked and older, until none is added.
    fn add_descendants(&mut self) {
        let listed = Arc::clone(&self.listed);
        loop {
            let mut added = false;
            for l in listed.entries.iter() {
                let parent = self.set.starttime(l.ppid);
                let child = parent.is_some_and(|p| p <= l.starttime) && l.pid != l.ppid;
                if child && self.set.starttime(l.pid).is_none() {
                    added |= track(&mut self.set, l);
                }
            }
            if !added {
                return;
            }
        }
    }
}

fn track(set: &mut ProcessSet, l: &ProcessEntry) -> bool {
    match set.track(l.pid, l.starttime) {
        Ok(()) => true,
        Err(e) => {
            if is_out_of_files(&e) {
                set.env()
                    .warnings
                    .files
                    .call(|| warn_out_of_files(l.pid, &e));
            } else if !is_gone(&e) {
                log::debug!("procfs: cannot measure process {}: {e}", l.pid);
            }
            false
        }
    }
}

/// Whether a listed process matches a group (every criterion given).
fn matches(env: &Env, f: &GroupFilter, l: &ProcessEntry) -> bool {
    if f.pid.is_some_and(|p| p != l.pid) || f.ppid.is_some_and(|p| p != l.ppid) {
        return false;
    }
    let Some(re) = &f.exe else { return true };
    let link = env.root.join(l.pid.to_string()).join("exe");
    match fs::read_link(&link) {
        Ok(target) => re.is_match(&target.to_string_lossy()),
        Err(e) => {
            if is_denied(&e) {
                env.warnings.exe.call(|| warn_exe_denied(&link, &e));
            }
            false
        }
    }
}

/// The start time of process `pid`, read now.
pub(crate) fn starttime_of(env: &Env, pid: u32) -> io::Result<Option<u64>> {
    let path = env.root.join(pid.to_string()).join("stat");
    let file = fs::File::open(path)?;
    let mut buf = Vec::new();
    let stat = parse_process_stat(read_whole(&file, &mut buf, true)?);
    Ok(stat.map(|s| s.starttime))
}

/// Clock ticks since boot, from `/proc/uptime`.
pub(crate) fn uptime_ticks(env: &Env) -> Option<u64> {
    let text = fs::read(env.root.join("uptime")).ok()?;
    parse_uptime_ticks(&text, env.clk_tck)
}

impl Source for ProcessSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        let now = Instant::now();
        let due = self
            .last_refresh
            .is_none_or(|last| now.duration_since(last) >= self.refresh);
        let refreshed = if due { self.refresh() } else { Ok(()) };
        if due {
            self.last_refresh = Some(now);
        }
        self.set.measure(acc, t);
        if self.ended.load(Ordering::Acquire) {
            self.set.clear();
        }
        refreshed.map_err(ElementError::retryable)
    }
}
