//! The consumer registry: the processes and control groups of the host, found once for
//! every plugin that needs them, with what changed between two listings.
//!
//! One scanner per kind of consumer:
//! - **processes**: the core lists `/proc` (one scan per procfs root, shared by every
//!   caller): [`ConsumerRegistry::processes`] and [`Discovery::listing`], which scans again
//!   only when the last listing is older than what the caller accepts;
//! - **cgroups**: the plugin that follows the cgroup tree (`cgroups`) publishes the ones it
//!   measures ([`Discovery::publish`]); others read them, and wait for changes with
//!   [`Discovery::subscribe`].
//!
//! A listing is a [`Snapshot`]: entries sorted by their identity, shared (`Arc`) by all
//! readers. A [`Watch`] remembers the last snapshot its owner saw and gives what appeared
//! and what is gone since.
//!
//! ```
//! use alumet::consumers::{CgroupEntry, ConsumerRegistry, Watch};
//!
//! let registry = ConsumerRegistry::default();
//! let cgroups = registry.cgroups();
//! let mut watch = Watch::default();
//! cgroups.publish("cgroups", ["/a", "/b"].map(CgroupEntry::new));
//! let changes = watch.changes(&cgroups.current());
//! assert_eq!(changes.appeared.len(), 2);
//! cgroups.publish("cgroups", [CgroupEntry::new("/b")]);
//! let changes = watch.changes(&cgroups.current());
//! assert_eq!(changes.gone, vec![CgroupEntry::new("/a")]);
//! ```

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::measurement::ResourceConsumer;

/// An entry of a listing: what identifies it, and the consumer it is.
pub trait Entry: Clone + Send + Sync + 'static {
    /// The identity: two entries with equal keys are the same consumer (a process whose
    /// pid was reused has another key).
    type Key: Ord + Clone;
    /// This entry's identity.
    fn key(&self) -> Self::Key;
    /// The consumer, as points name it.
    fn consumer(&self) -> ResourceConsumer;
}

/// A process, as `/proc/PID/stat` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessEntry {
    /// The process id.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// When it started, in clock ticks after boot: with the pid, its identity.
    pub starttime: u64,
}

impl Entry for ProcessEntry {
    type Key = (u32, u64);
    fn key(&self) -> (u32, u64) {
        (self.pid, self.starttime)
    }
    fn consumer(&self) -> ResourceConsumer {
        ResourceConsumer::Process { pid: self.pid }
    }
}

/// A control group, by its path from the hierarchy's root (`/system.slice/nginx.service`),
/// the consumer id of its points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupEntry {
    /// The path, with its leading `/`.
    pub path: Arc<str>,
}

impl CgroupEntry {
    /// The cgroup at `path`.
    pub fn new(path: &str) -> Self {
        CgroupEntry { path: path.into() }
    }
}

impl Entry for CgroupEntry {
    type Key = Arc<str>;
    fn key(&self) -> Arc<str> {
        Arc::clone(&self.path)
    }
    fn consumer(&self) -> ResourceConsumer {
        ResourceConsumer::ControlGroup {
            path: Arc::clone(&self.path),
        }
    }
}

/// One listing of a kind of consumer.
#[derive(Debug)]
pub struct Snapshot<T> {
    /// Counts the listings: 0 before the first one.
    pub generation: u64,
    /// When it was taken.
    pub taken: Instant,
    /// The entries, sorted by key, each key once.
    pub entries: Arc<[T]>,
    /// Why some consumers may be missing from it (an entry that could not be read, such
    /// as `/proc/PID/stat` under `hidepid`), for the reader to log once.
    pub incomplete: Option<Arc<str>>,
}

impl<T> Default for Snapshot<T> {
    /// Generation 0: no listing yet.
    fn default() -> Self {
        Snapshot {
            generation: 0,
            taken: Instant::now(),
            entries: Arc::from(Vec::new()),
            incomplete: None,
        }
    }
}

impl Snapshot<ProcessEntry> {
    /// The process `pid` (a pid is listed once).
    pub fn process(&self, pid: u32) -> Option<&ProcessEntry> {
        let i = self.entries.binary_search_by_key(&pid, |e| e.pid).ok()?;
        self.entries.get(i)
    }
}

/// What changed between two snapshots.
#[derive(Debug, PartialEq, Eq)]
pub struct Changes<T> {
    /// Entries in the newer snapshot only, by key order.
    pub appeared: Vec<T>,
    /// Entries in the older snapshot only, by key order.
    pub gone: Vec<T>,
}

impl<T> Changes<T> {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.appeared.is_empty() && self.gone.is_empty()
    }
}

/// The last snapshot a reader saw, to compute what changed since.
pub struct Watch<T> {
    last: Option<Arc<Snapshot<T>>>,
}

impl<T> Default for Watch<T> {
    fn default() -> Self {
        Watch { last: None }
    }
}

impl<T: Entry> Watch<T> {
    /// What changed from the last snapshot given here (nothing, at first: every entry
    /// appears) to `now`, which becomes the last. Linear in the two listings; nothing
    /// when `now` is the same listing.
    pub fn changes(&mut self, now: &Arc<Snapshot<T>>) -> Changes<T> {
        let mut changes = Changes {
            appeared: Vec::new(),
            gone: Vec::new(),
        };
        let old: &[T] = match &self.last {
            Some(last) if Arc::ptr_eq(last, now) => return changes,
            Some(last) => &last.entries,
            None => &[],
        };
        let (mut i, mut j) = (0, 0);
        let new = &now.entries;
        while i < old.len() || j < new.len() {
            let order = match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) => a.key().cmp(&b.key()),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    changes.gone.push(old[i].clone());
                    i += 1;
                }
                Ordering::Greater => {
                    changes.appeared.push(new[j].clone());
                    j += 1;
                }
                Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
            }
        }
        self.last = Some(Arc::clone(now));
        changes
    }
}

type Scanner<T> = Box<dyn FnMut(&mut Vec<T>) -> io::Result<Option<String>> + Send>;

struct Inner<T> {
    current: Mutex<Arc<Snapshot<T>>>,
    /// The scanner of a scanned kind; held while scanning, so that callers who wait for a
    /// listing share the one that was being taken.
    scanner: Mutex<Option<Scanner<T>>>,
    /// Who publishes a published kind: one plugin.
    publisher: OnceLock<String>,
    changed: tokio::sync::watch::Sender<u64>,
}

/// One kind of consumer: its current listing, how to refresh it, and who waits for it.
pub struct Discovery<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Discovery<T> {
    fn clone(&self) -> Self {
        Discovery {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// `entries` sorted by key, each key once (as a [`Snapshot`] holds them). Each key is
/// made once for the sort (a cgroup's is its path, a `String`).
fn by_key<T: Entry>(mut entries: Vec<T>) -> Vec<T> {
    entries.sort_by_cached_key(|e| e.key());
    entries.dedup_by_key(|e| e.key());
    entries
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Entry> Discovery<T> {
    fn new(scanner: Option<Scanner<T>>) -> Self {
        Discovery {
            inner: Arc::new(Inner {
                current: Mutex::new(Arc::new(Snapshot::default())),
                scanner: Mutex::new(scanner),
                publisher: OnceLock::new(),
                changed: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    /// The latest listing (generation 0, empty, before the first).
    pub fn current(&self) -> Arc<Snapshot<T>> {
        Arc::clone(&lock(&self.inner.current))
    }

    /// A listing at most `max_age` old: the latest, or a new scan (a kind that is
    /// published, not scanned, gives its latest). Callers at the same moment share one
    /// scan. Errors: the kind's root cannot be listed (the latest listing stays).
    pub fn listing(&self, max_age: Duration) -> io::Result<Arc<Snapshot<T>>> {
        let asked = Instant::now();
        let fresh = |s: &Snapshot<T>| s.generation > 0 && asked.duration_since(s.taken) <= max_age;
        let now = self.current();
        if fresh(&now) {
            return Ok(now);
        }
        let mut scanner = lock(&self.inner.scanner);
        let Some(scan) = scanner.as_mut() else {
            return Ok(self.current());
        };
        // Taken by another caller while this one waited.
        let now = self.current();
        if now.generation > 0 && now.taken >= asked {
            return Ok(now);
        }
        let mut entries = Vec::with_capacity(now.entries.len() + 16);
        let taken = Instant::now();
        let incomplete = scan(&mut entries)?;
        Ok(self.store(by_key(entries), taken, incomplete))
    }

    /// Makes `entries` (sorted by key, each key once: [`by_key`]) the latest listing.
    fn store(
        &self,
        entries: Vec<T>,
        taken: Instant,
        incomplete: Option<String>,
    ) -> Arc<Snapshot<T>> {
        let mut current = lock(&self.inner.current);
        let snapshot = Arc::new(Snapshot {
            generation: current.generation + 1,
            taken,
            entries: entries.into(),
            incomplete: incomplete.map(Into::into),
        });
        *current = Arc::clone(&snapshot);
        drop(current);
        self.inner.changed.send_replace(snapshot.generation);
        snapshot
    }

    /// Replaces the listing of a published kind by `entries` (any order), unless it holds
    /// exactly those. `publisher` names the plugin; the first one to publish owns the kind,
    /// and another's listing is refused with an error naming both.
    pub fn publish(
        &self,
        publisher: &str,
        entries: impl IntoIterator<Item = T>,
    ) -> Result<(), String> {
        let owner = self.inner.publisher.get_or_init(|| publisher.to_owned());
        if owner != publisher {
            return Err(format!(
                "{publisher} cannot publish these consumers: {owner} publishes them (one plugin per kind)"
            ));
        }
        let _serial = lock(&self.inner.scanner);
        let entries = by_key(entries.into_iter().collect());
        let current = self.current();
        let same = current.generation > 0
            && current.entries.len() == entries.len()
            && current
                .entries
                .iter()
                .zip(&entries)
                .all(|(a, b)| a.key() == b.key());
        if !same {
            self.store(entries, Instant::now(), None);
        }
        Ok(())
    }

    /// The plugin that publishes this kind, once it has.
    pub fn publisher(&self) -> Option<&str> {
        self.inner.publisher.get().map(String::as_str)
    }

    /// A receiver that wakes at each new listing (its value: the generation), for a task
    /// that follows the changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}

/// The registry shared by every plugin of a pipeline (see the module's documentation);
/// [`Registrar::consumers`](crate::plugin::Registrar::consumers) gives it.
#[derive(Clone, Default)]
pub struct ConsumerRegistry {
    inner: Arc<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    /// One process scanner per procfs root.
    processes: Mutex<Vec<(PathBuf, Discovery<ProcessEntry>)>>,
    cgroups: OnceLock<Discovery<CgroupEntry>>,
}

impl ConsumerRegistry {
    /// The processes under the procfs at `proc_root` (`/proc`), scanned on demand.
    pub fn processes(&self, proc_root: &Path) -> Discovery<ProcessEntry> {
        let mut all = lock(&self.inner.processes);
        if let Some((_, d)) = all.iter().find(|(root, _)| root == proc_root) {
            return d.clone();
        }
        let root = proc_root.to_owned();
        let mut buf = Vec::new();
        let scanner: Scanner<ProcessEntry> =
            Box::new(move |out| scan_processes(&root, &mut buf, out));
        let d = Discovery::new(Some(scanner));
        all.push((proc_root.to_owned(), d.clone()));
        d
    }

    /// The cgroups that the plugin following the cgroup tree publishes.
    pub fn cgroups(&self) -> Discovery<CgroupEntry> {
        self.inner
            .cgroups
            .get_or_init(|| Discovery::new(None))
            .clone()
    }
}

/// Lists the processes of `root` with their parent and start time. Returns why some may be
/// missing (a `stat` file that could not be read for another reason than the process
/// being gone).
fn scan_processes(
    root: &Path,
    buf: &mut Vec<u8>,
    out: &mut Vec<ProcessEntry>,
) -> io::Result<Option<String>> {
    let entries = fs::read_dir(root)
        .map_err(|e| io::Error::new(e.kind(), format!("listing {}: {e}", root.display())))?;
    let mut incomplete = None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let path = entry.path().join("stat");
        match read_stat(&path, buf) {
            Ok(Some(p)) if p.pid == pid => out.push(p),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                incomplete.get_or_insert_with(|| format!("{}: {e}", path.display()));
            }
            Err(_) => {} // gone between listing and reading
        }
    }
    Ok(incomplete)
}

fn read_stat(path: &Path, buf: &mut Vec<u8>) -> io::Result<Option<ProcessEntry>> {
    use std::io::Read;
    buf.clear();
    fs::File::open(path)?.read_to_end(buf)?;
    Ok(
        linux_parse::proc::parse_process_stat(buf).map(|s| ProcessEntry {
            pid: s.pid,
            ppid: s.ppid,
            starttime: s.starttime,
        }),
    )
}
