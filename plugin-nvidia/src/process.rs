//! Per-process metrics: which processes to report (every one, or the process trees the
//! agent announced), and the mean of the driver's utilization samples per process.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alumet::consumers::{Discovery, ProcessEntry};

use crate::backend::ProcessSample;

/// Which processes get per-process metrics.
#[derive(Clone, Debug)]
pub enum ProcessFilter {
    /// Every process using the GPU.
    All,
    /// The announced processes and their descendants.
    Announced(Announced),
    /// No process.
    Nothing,
}

/// The pids announced by the agent (exec and watch modes), shared by the plugin's event
/// handler and its sources, and where to find their descendants.
#[derive(Clone)]
pub struct Announced {
    /// Announced and not ended yet.
    pub roots: Arc<Mutex<HashSet<u32>>>,
    /// Where procfs is mounted.
    pub procfs_root: PathBuf,
    /// The core's listing of that procfs (taken for the procfs plugin and others): the
    /// parents are looked up there first, and read from `/proc` only for processes newer
    /// than the listing.
    pub processes: Discovery<ProcessEntry>,
}

impl std::fmt::Debug for Announced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announced")
            .field("roots", &self.roots)
            .field("procfs_root", &self.procfs_root)
            .finish_non_exhaustive()
    }
}

/// How far up the parent chain to look (deeper trees are not followed).
const MAX_DEPTH: usize = 64;

/// A listing older than this is not used (a pid in it may have been reused since).
const LISTING_MAX_AGE: Duration = Duration::from_secs(2);

impl Announced {
    /// Whether `pid` is an announced process or one of their descendants.
    fn contains(&self, pid: u32) -> bool {
        let roots = match self.roots.lock() {
            Ok(roots) => roots,
            Err(poisoned) => poisoned.into_inner(),
        };
        if roots.is_empty() {
            return false;
        }
        let listing = self.processes.current();
        let recent = listing.generation > 0 && listing.taken.elapsed() <= LISTING_MAX_AGE;
        let parent = |pid: u32| match listing.process(pid) {
            Some(p) if recent => Some(p.ppid),
            _ => parent_of(&self.procfs_root, pid),
        };
        let mut current = pid;
        for _ in 0..MAX_DEPTH {
            if roots.contains(&current) {
                return true;
            }
            match parent(current) {
                Some(parent) if parent > 1 => current = parent,
                _ => return false,
            }
        }
        false
    }
}

/// The parent pid from `ROOT/PID/stat`; `None` when the process is gone or the file is
/// unreadable.
fn parent_of(root: &std::path::Path, pid: u32) -> Option<u32> {
    let stat = std::fs::read(root.join(pid.to_string()).join("stat")).ok()?;
    linux_parse::proc::parse_process_stat(&stat).map(|s| s.ppid)
}

/// Decides, poll after poll, which processes are reported. A process matched once stays
/// matched while the GPU lists it, even when its announced ancestor has ended and it was
/// re-parented.
#[derive(Debug)]
pub struct Selection {
    filter: ProcessFilter,
    matched: HashSet<u32>,
}

impl Selection {
    /// A selection by `filter`.
    pub fn new(filter: ProcessFilter) -> Self {
        Selection {
            filter,
            matched: HashSet::new(),
        }
    }

    /// Whether per-process metrics are wanted at all.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.filter, ProcessFilter::Nothing)
    }

    /// Starts a poll: forgets the matched processes that the GPU no longer lists.
    pub fn retain_listed(&mut self, listed: &HashSet<u32>) {
        self.matched.retain(|pid| listed.contains(pid));
    }

    /// Whether `pid` is reported.
    pub fn wants(&mut self, pid: u32) -> bool {
        match &self.filter {
            ProcessFilter::All => true,
            ProcessFilter::Nothing => false,
            ProcessFilter::Announced(announced) => {
                if self.matched.contains(&pid) {
                    return true;
                }
                let yes = announced.contains(pid);
                if yes {
                    self.matched.insert(pid);
                }
                yes
            }
        }
    }
}

/// The mean utilizations of one process over the samples of one poll, in percent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanUtilization {
    /// Streaming multiprocessors.
    pub sm: f64,
    /// Memory.
    pub memory: f64,
    /// Encoder.
    pub encoder: f64,
    /// Decoder.
    pub decoder: f64,
}

/// The mean utilization per pid of `samples`, with the pid's newest sample's timestamp.
pub fn mean_by_pid(samples: &[ProcessSample]) -> BTreeMap<u32, (u64, MeanUtilization)> {
    let mut sums: BTreeMap<u32, ([u64; 4], u32, u64)> = BTreeMap::new();
    for s in samples {
        let (sum, n, newest) = sums.entry(s.pid).or_default();
        for (acc, v) in sum.iter_mut().zip([s.sm, s.memory, s.encoder, s.decoder]) {
            *acc += u64::from(v);
        }
        *n += 1;
        *newest = (*newest).max(s.timestamp_us);
    }
    sums.into_iter()
        .map(|(pid, (sum, n, newest))| {
            let mean = |i: usize| sum[i] as f64 / f64::from(n);
            let m = MeanUtilization {
                sm: mean(0),
                memory: mean(1),
                encoder: mean(2),
                decoder: mean(3),
            };
            (pid, (newest, m))
        })
        .collect()
}

/// How long a process's latest utilization is repeated when the driver took no new sample
/// of it (it samples every 1/6 s to 1 s, so polls faster than that find none).
pub const HOLD_US: u64 = 1_000_000;

/// The latest utilization of each process: the mean of the samples of the latest poll
/// that had some, repeated at the next polls while it is at most [`HOLD_US`] old and the
/// process still uses the GPU. So a process that keeps the GPU busy has a value at every
/// poll, whatever the poll interval, and a process that left the GPU has none.
#[derive(Debug, Default)]
pub struct HeldUtilization {
    latest: BTreeMap<u32, (u64, MeanUtilization)>,
}

impl HeldUtilization {
    /// Takes the samples of one poll.
    pub fn update(&mut self, samples: &[ProcessSample]) {
        self.latest.extend(mean_by_pid(samples));
    }

    /// The newest sample's timestamp seen, 0 before any.
    pub fn newest(&self) -> u64 {
        self.latest.values().map(|(t, _)| *t).max().unwrap_or(0)
    }

    /// The utilization to report at `now_us`: the processes with a sample at most
    /// [`HOLD_US`] old that are in `listed` (when the device lists its processes).
    pub fn current(
        &mut self,
        now_us: u64,
        listed: Option<&HashSet<u32>>,
    ) -> Vec<(u32, MeanUtilization)> {
        self.latest.retain(|pid, (t, _)| {
            t.saturating_add(HOLD_US) >= now_us && listed.is_none_or(|l| l.contains(pid))
        });
        self.latest.iter().map(|(pid, (_, u))| (*pid, *u)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32, ts: u64, sm: u32) -> ProcessSample {
        ProcessSample {
            pid,
            timestamp_us: ts,
            sm,
            memory: sm / 2,
            encoder: 0,
            decoder: 1,
        }
    }

    #[test]
    fn samples_are_averaged_per_pid_with_each_pids_newest_timestamp() {
        let means = mean_by_pid(&[sample(7, 10, 40), sample(9, 30, 10), sample(7, 20, 60)]);
        assert_eq!(means[&7].0, 20);
        assert_eq!(means[&7].1.sm, 50.0);
        assert_eq!(means[&7].1.memory, 25.0);
        assert_eq!(means[&7].1.decoder, 1.0);
        assert_eq!(means[&9], (30, means[&9].1));
        assert_eq!(means[&9].1.sm, 10.0);
        assert!(mean_by_pid(&[]).is_empty());
    }

    #[test]
    fn the_latest_utilization_is_held_for_a_second_while_the_process_is_listed() {
        let mut held = HeldUtilization::default();
        held.update(&[sample(7, 1_000_000, 40), sample(9, 1_000_000, 10)]);
        assert_eq!(held.newest(), 1_000_000);
        let listed: HashSet<u32> = [7, 9].into();
        let pids = |v: Vec<(u32, MeanUtilization)>| {
            v.into_iter().map(|(p, u)| (p, u.sm)).collect::<Vec<_>>()
        };
        // No new sample 0.5 s later: both are repeated.
        assert_eq!(
            pids(held.current(1_500_000, Some(&listed))),
            [(7, 40.0), (9, 10.0)]
        );
        // A new sample of 7 only; 9 no longer uses the GPU.
        held.update(&[sample(7, 1_600_000, 80)]);
        let only_7: HashSet<u32> = [7].into();
        assert_eq!(pids(held.current(1_700_000, Some(&only_7))), [(7, 80.0)]);
        // More than a second after its newest sample: dropped.
        assert_eq!(pids(held.current(2_600_001, None)), []);
    }

    #[test]
    fn the_parent_is_read_after_the_last_parenthesis() {
        let dir = std::env::temp_dir().join(format!("nvidia-ppid-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("42")).unwrap();
        // A whole line, as the kernel writes it (52 fields).
        let stat =
            "42 (a (b) c) S 17 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        std::fs::write(dir.join("42/stat"), stat).unwrap();
        assert_eq!(parent_of(&dir, 42), Some(17));
        assert_eq!(parent_of(&dir, 43), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn descendants_are_found_in_the_cores_listing_then_in_proc_for_newer_processes() {
        let dir = alumet::test_util::TempDir::new("nvidia-announced");
        let write = |pid: u32, ppid: u32| {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir_all(&p).unwrap();
            let stat =
                format!("{pid} (x) S {ppid} 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {pid}00 1 1");
            std::fs::write(p.join("stat"), stat).unwrap();
        };
        // 100 <- 200 <- 300 (and 400, unrelated)
        write(100, 1);
        write(200, 100);
        write(300, 200);
        write(400, 1);
        let registry = alumet::consumers::ConsumerRegistry::default();
        let processes = registry.processes(dir.path());
        processes.listing(Duration::ZERO).unwrap();
        let announced = Announced {
            roots: Arc::new(Mutex::new([100].into())),
            procfs_root: dir.path().to_owned(),
            processes,
        };
        // The listing alone answers: /proc no longer has 200's file.
        std::fs::remove_dir_all(dir.path().join("200")).unwrap();
        assert!(announced.contains(300));
        assert!(!announced.contains(400));
        // A process newer than the listing: its parent is read from /proc.
        write(500, 300);
        assert!(announced.contains(500));
        write(600, 400);
        assert!(!announced.contains(600));
    }
}
