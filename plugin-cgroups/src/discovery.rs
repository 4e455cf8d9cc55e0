//! Which cgroups are measured, and following them while the agent runs: one source per
//! measured cgroup (`cgroups/system.slice:nginx.service`), added when the cgroup appears
//! and removed, after a last reading, when it goes away.
//!
//! The tree is listed at start, then again whenever inotify reports a directory created,
//! removed or renamed under a watched cgroup, and every `rescan_interval` in any case (the
//! kernel drops events when its queue overflows, and watches can run out). The v2
//! `cgroup.events` of each measured cgroup is watched too: when it says that no process
//! is left, the cgroup gets a reading at once, with its final counters.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use alumet::consumers::{CgroupEntry, ConsumerRegistry};
use alumet::prelude::*;
use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};

use crate::hierarchy::{self, Hierarchy};
use crate::metrics::Metrics;
use crate::parse::parse_populated;
use crate::pattern::{selected, PathPattern};
use crate::pods::{PodLink, PodNames};
use crate::resolve::resolve;
use crate::runtimes::RuntimeState;
use crate::source::CgroupSource;

/// What is measured, and how to find more.
pub(crate) struct Discovery {
    hierarchies: Vec<Hierarchy>,
    include: Vec<PathPattern>,
    exclude: Vec<PathPattern>,
    max_depth: usize,
    metrics: Arc<Metrics>,
    trigger: Trigger,
    pub(crate) rescan_interval: Duration,
    /// Path → its source.
    measured: HashMap<String, Measured>,
    watches: Option<Watches>,
    /// A watch could not be added (limit reached): said once.
    watch_warned: bool,
    /// The watch of a `cgroup.events` → the cgroup's path.
    by_watch: HashMap<WatchDescriptor, String>,
    /// The watch of a directory (in any hierarchy) → its cgroup's path.
    dirs: HashMap<WatchDescriptor, String>,
    /// No file descriptor was left to open a cgroup's files: said once.
    out_of_files: AtomicBool,
    /// The pods' names from Kubernetes, where enabled.
    pod_names: Option<Arc<PodNames>>,
    /// Where Docker and Podman keep their containers' names.
    runtimes: Option<RuntimeState>,
    /// Where the measured cgroups are published for other plugins (the core's consumer
    /// registry), and under which plugin name.
    publish: Option<(alumet::consumers::Discovery<CgroupEntry>, String)>,
}

/// What changed in the tree since the last update.
pub(crate) enum TreeChanges {
    /// Unknown (the periodic listing, events lost): list the whole tree.
    All,
    /// Directories created, removed or renamed at these paths (none: nothing to list).
    Paths(Vec<String>),
}

/// A measured cgroup.
struct Measured {
    id: SourceId,
    /// v2 `cgroup.events`, watched: when its last process exits, the cgroup gets a reading
    /// at once (its counters are final; it may be removed before the next poll).
    events: Option<(PathBuf, WatchDescriptor)>,
}

fn read_populated(events: &Path) -> Option<bool> {
    std::fs::read(events).ok().and_then(|t| parse_populated(&t))
}

/// The name of the source of the cgroup at `path`: the path without its leading `/`, with
/// `:` for `/` (a source name holds no `/`) and `_` for blanks; `root` for `/`.
pub fn source_name(path: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return "root".to_owned();
    }
    (trimmed.chars())
        .map(|c| match c {
            '/' => ':',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect()
}

impl Discovery {
    pub(crate) fn new(
        hierarchies: Vec<Hierarchy>,
        (include, exclude): (Vec<PathPattern>, Vec<PathPattern>),
        max_depth: usize,
        metrics: Metrics,
        trigger: Trigger,
        rescan_interval: Duration,
    ) -> Self {
        Discovery {
            hierarchies,
            include,
            exclude,
            max_depth,
            metrics: Arc::new(metrics),
            trigger,
            rescan_interval,
            measured: HashMap::new(),
            watches: None,
            watch_warned: false,
            by_watch: HashMap::new(),
            dirs: HashMap::new(),
            out_of_files: AtomicBool::new(false),
            pod_names: None,
            runtimes: None,
            publish: None,
        }
    }

    /// Publishes the measured cgroups in the core's consumer registry (for the perf
    /// plugin's counters per cgroup), after each change, as the plugin `plugin`.
    pub(crate) fn publish_to(&mut self, registry: &ConsumerRegistry, plugin: &str) {
        self.publish = Some((registry.cgroups(), plugin.to_owned()));
    }

    fn publish(&self) {
        let Some((cgroups, plugin)) = &self.publish else {
            return;
        };
        let entries = self.measured.keys().map(|p| CgroupEntry::new(p));
        if let Err(e) = cgroups.publish(plugin, entries) {
            log::warn!("cgroups: {e}");
        }
    }

    /// Names the Docker and Podman containers from their runtimes' state.
    pub(crate) fn name_containers_with(&mut self, runtimes: RuntimeState) {
        self.runtimes = Some(runtimes);
    }

    /// Names the pods' cgroups from `names` (filled by the Kubernetes task).
    pub(crate) fn name_pods_with(&mut self, names: Arc<PodNames>) {
        self.pod_names = Some(names);
    }

    /// The trigger of every cgroup's source.
    pub(crate) fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// Follows the tree with `inotify` from now on (watches are added while listing).
    pub(crate) fn watch_with(&mut self, inotify: &Inotify) {
        self.watches = Some(inotify.watches());
    }

    /// The selected cgroups now, over every hierarchy; watches every directory listed
    /// whose children are within `max_depth`.
    fn scan(&mut self) -> BTreeSet<String> {
        let root = self
            .hierarchies
            .first()
            .map(|h| h.dir.display().to_string());
        log::debug!(
            "cgroups: listing every cgroup under {}",
            root.unwrap_or_default()
        );
        self.scan_from("")
    }

    /// The selected cgroups at `start` and below (a path from the hierarchies' root, `""`
    /// for all), over every hierarchy; watches the directories listed, as [`Self::scan`].
    fn scan_from(&mut self, start: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let hierarchies = std::mem::take(&mut self.hierarchies);
        for h in &hierarchies {
            hierarchy::walk_from(h, start, self.max_depth, &mut |path: &str, dir: &Path| {
                let depth = path.split('/').filter(|s| !s.is_empty()).count();
                if depth < self.max_depth {
                    let mask = WatchMask::CREATE | WatchMask::DELETE | WatchMask::MOVE;
                    if let Some(wd) = self.watch(dir, mask | WatchMask::ONLYDIR) {
                        self.dirs.insert(wd, path.to_owned());
                    }
                }
                if selected(path, &self.include, &self.exclude) {
                    found.insert(path.to_owned());
                }
            });
        }
        self.hierarchies = hierarchies;
        found
    }

    /// A watch the kernel dropped (its directory or file was removed).
    pub(crate) fn forget(&mut self, wd: &WatchDescriptor) {
        self.dirs.remove(wd);
        self.by_watch.remove(wd);
    }

    /// The path of the cgroup `name` in the directory watched by `wd`.
    pub(crate) fn child_of(&self, wd: &WatchDescriptor, name: &str) -> Option<String> {
        let parent = self.dirs.get(wd)?;
        Some(format!("{}/{name}", parent.trim_end_matches('/')))
    }

    /// Watches `path` (a directory, or a `cgroup.events`); a failure other than a path
    /// that vanished is said once.
    fn watch(&mut self, path: &Path, mask: WatchMask) -> Option<WatchDescriptor> {
        let e = match self.watches.as_mut()?.add(path, mask) {
            Ok(wd) => return Some(wd),
            Err(e) => e,
        };
        if !self.watch_warned && !crate::kfile::is_gone(&e) {
            self.watch_warned = true;
            log::warn!(
                "cgroups: cannot watch {}: {e}; changes there are found by the listing every {:?} instead (raise the sysctl fs.inotify.max_user_watches); this warning is not repeated",
                path.display(),
                self.rescan_interval
            );
        }
        None
    }

    /// The source of the cgroup at `path`, or `None` when no hierarchy gives any figure
    /// of it (or it vanished meanwhile).
    /// Also returns its `cgroup.events` (v2).
    pub(crate) fn source(
        &self,
        path: &str,
        from_zero: bool,
    ) -> Option<(CgroupSource, Option<PathBuf>)> {
        let mut files = hierarchy::locate(&self.hierarchies, path);
        if files.is_empty() {
            return None;
        }
        let events = files.events.take();
        let mut resolved = resolve(path);
        if let Some(runtimes) = &self.runtimes {
            runtimes.name(&mut resolved);
        }
        let path_attrs = Attributes::new(resolved);
        let pod = (self.pod_names.as_ref()).and_then(|n| PodLink::new(n, path_attrs.clone()));
        let attrs = pod.as_ref().map_or(path_attrs, |(_, now)| now.clone());
        let metrics = Arc::clone(&self.metrics);
        let flag = &self.out_of_files;
        let source = CgroupSource::open(path, files, metrics, attrs, from_zero, flag);
        let source = match pod {
            Some((link, _)) => source.with_pod(link),
            None => source,
        };
        Some((source, events))
    }

    fn track(&mut self, path: String, id: SourceId, events: Option<PathBuf>) {
        let events = events.and_then(|e| {
            let wd = self.watch(&e, WatchMask::MODIFY)?;
            self.by_watch.insert(wd.clone(), path.clone());
            Some((e, wd))
        });
        self.measured.insert(path, Measured { id, events });
    }

    /// Lists the tree and adds a source per selected cgroup, at start.
    pub(crate) fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        for path in self.scan() {
            if let Some((source, events)) = self.source(&path, false) {
                let id = alumet.add_source(&source_name(&path), source, self.trigger.clone())?;
                self.track(path, id, events);
            }
        }
        log::debug!("cgroups: measuring {} cgroups", self.measured.len());
        self.publish();
        Ok(())
    }

    /// Gives a reading to each cgroup whose `cgroup.events` changed (`changed`: their
    /// watches) and says that no process is left in it: its counters are final, and it may
    /// be removed before the next poll. Then lists again what `tree` says changed (the
    /// whole tree, or the subtrees at some paths): removes the sources of the cgroups that
    /// are gone (after a last reading, if their files still answer) and adds one for each
    /// new cgroup, measured from its creation (a first reading now).
    pub(crate) fn update(
        &mut self,
        control: &PluginControl,
        changed: &[WatchDescriptor],
        tree: &TreeChanges,
    ) {
        for wd in changed {
            let Some(m) = self.by_watch.get(wd).and_then(|p| self.measured.get(p)) else {
                continue;
            };
            let Some((events, _)) = &m.events else {
                continue;
            };
            if read_populated(events) == Some(false) {
                let _ = control.poll_now(m.id);
            }
        }
        match tree {
            TreeChanges::All => {
                let now = self.scan();
                let gone: Vec<String> = (self.measured.keys())
                    .filter(|p| !now.contains(*p))
                    .cloned()
                    .collect();
                self.remove(control, gone);
                self.add(control, now);
            }
            TreeChanges::Paths(paths) => {
                for path in paths {
                    self.update_path(control, path);
                }
            }
        }
        self.publish();
    }

    /// A directory appeared or vanished at `path` in some hierarchy: lists that subtree
    /// only (in every hierarchy), adds the cgroups found there, and removes those measured
    /// there that no hierarchy has any more.
    fn update_path(&mut self, control: &PluginControl, path: &str) {
        let now = self.scan_from(path);
        let under = |p: &str| p == path || p.strip_prefix(path).is_some_and(|r| r.starts_with('/'));
        let gone: Vec<String> = (self.measured.keys())
            .filter(|p| under(p) && !now.contains(*p))
            .cloned()
            .collect();
        self.remove(control, gone);
        self.add(control, now);
    }

    /// Removes the sources of the cgroups at `gone` (after a last reading, if their files
    /// still answer).
    fn remove(&mut self, control: &PluginControl, gone: Vec<String>) {
        for path in gone {
            let Some(Measured { id, events }) = self.measured.remove(&path) else {
                continue;
            };
            if let Some((_, wd)) = events {
                self.by_watch.remove(&wd);
            }
            // Its files answer ENODEV once it is removed: the source then pushes nothing.
            let _ = control.poll_now(id);
            if let Err(e) = control.remove_source(id) {
                log::warn!("cgroups: removing the source of {path}: {e}");
            }
            log::debug!("cgroups: {path} is gone");
        }
    }

    /// Adds a source for each cgroup of `found` not measured yet, measured from its
    /// creation.
    fn add(&mut self, control: &PluginControl, found: BTreeSet<String>) {
        for path in found {
            if self.measured.contains_key(&path) {
                continue;
            }
            let Some((source, events)) = self.source(&path, true) else {
                continue;
            };
            match control.add_source(&source_name(&path), source, self.trigger.clone()) {
                Ok(id) => {
                    log::debug!("cgroups: measuring {path}");
                    self.track(path, id, events);
                    // Counted from zero: the first reading says what it used so far.
                    let _ = control.trigger_now(id);
                }
                Err(e) => log::warn!("cgroups: cannot measure {path}: {e}"),
            }
        }
    }
}

/// The root's hierarchies, or why the plugin is unavailable.
pub(crate) fn hierarchies(root: &Path) -> anyhow::Result<Vec<Hierarchy>> {
    let fix = "set the general cgroup_root (or this plugin's cgroup_root) to the directory where the cgroup tree is mounted (`/host/sys/fs/cgroup` in a container that mounts the host's there)";
    let found = hierarchy::detect(root)
        .map_err(|e| Unavailable::new(format!("cannot list {}: {e}", root.display()), fix))?;
    if found.is_empty() {
        let reason = format!(
            "no cgroup hierarchy under {}: neither cgroup.controllers (v2) nor v1 hierarchies with cpuacct, memory or blkio",
            root.display()
        );
        return Err(Unavailable::new(reason, fix).into());
    }
    Ok(found)
}

/// The hierarchies, for the log line at start.
pub(crate) fn shown(hierarchies: &[Hierarchy]) -> String {
    let names: Vec<String> = (hierarchies.iter())
        .map(|h| format!("{} ({:?})", h.dir.display(), h.version))
        .collect();
    names.join(", ")
}
