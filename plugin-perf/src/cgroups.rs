//! `cgroups = true`: counters for every cgroup that the cgroups plugin measures, as it
//! publishes them in the core's consumer registry. A task waits for each new listing and
//! adds a source per new cgroup (cgroup mode on every CPU), and removes the source of each
//! cgroup that went away.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use alumet::consumers::{CgroupEntry, Changes, Discovery, Entry, Watch};
use alumet::prelude::*;

use crate::{cgroup_dir, cpus, source_name, Measured, PerfSource};

/// Follows the published cgroups.
pub(crate) struct Follower {
    measured: Measured,
    trigger: Trigger,
    cgroup_root: PathBuf,
    published: Discovery<CgroupEntry>,
    watch: Watch<CgroupEntry>,
    /// Path → the source counting it.
    sources: HashMap<Arc<str>, SourceId>,
    /// A cgroup that could not be counted was reported (once, then at debug level).
    warned: bool,
}

impl Follower {
    pub(crate) fn new(
        measured: Measured,
        trigger: Trigger,
        cgroup_root: PathBuf,
        published: Discovery<CgroupEntry>,
    ) -> Self {
        Follower {
            measured,
            trigger,
            cgroup_root,
            published,
            watch: Watch::default(),
            sources: HashMap::new(),
            warned: false,
        }
    }

    /// Runs until shutdown.
    pub(crate) async fn run(
        mut self,
        control: PluginControl,
        mut shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let mut changed = self.published.subscribe();
        if self.published.publisher().is_none() {
            log::warn!("perf: `cgroups = true`, but no plugin publishes cgroups: enable the cgroups plugin ([plugins.cgroups]) to count its cgroups");
        }
        loop {
            changed.mark_unchanged();
            let changes = self.watch.changes(&self.published.current());
            if !changes.is_empty() {
                let c = control.clone();
                // Control calls wait for the source groups: not on the runtime's threads.
                self = tokio::task::spawn_blocking(move || {
                    self.apply(&c, changes);
                    self
                })
                .await?;
            }
            tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                r = changed.changed() => if r.is_err() { return Ok(()) },
            }
        }
    }

    fn apply(&mut self, control: &PluginControl, changes: Changes<CgroupEntry>) {
        for gone in changes.gone {
            if let Some(id) = self.sources.remove(&gone.path) {
                let _ = control.poll_now(id);
                if let Err(e) = control.remove_source(id) {
                    log::warn!("perf: removing the counters of cgroup {}: {e}", gone.path);
                }
            }
        }
        for new in changes.appeared {
            match self.add(control, &new) {
                Ok(id) => {
                    self.sources.insert(Arc::clone(&new.path), id);
                }
                Err(e) if !self.warned => {
                    self.warned = true;
                    log::warn!("perf: {e:#} (further cgroups that cannot be counted are logged at debug level)");
                }
                Err(e) => log::debug!("perf: {e:#}"),
            }
        }
    }

    fn add(&self, control: &PluginControl, cgroup: &CgroupEntry) -> anyhow::Result<SourceId> {
        let consumer = cgroup.consumer();
        let name = source_name(&consumer).unwrap_or_default();
        let dir = cgroup_dir(&self.cgroup_root, &cgroup.path).ok_or_else(|| {
            anyhow::anyhow!(
                "cgroup {}: not found under {} (cgroup v2, or v1's perf_event hierarchy): not counted",
                cgroup.path,
                self.cgroup_root.display()
            )
        })?;
        let source = PerfSource::cgroup(&self.measured, &dir, &cgroup.path, &cpus())?;
        Ok(control.add_source(&name, source, self.trigger.clone())?)
    }
}
