//! amdgpu's per-process use of a GPU: the engine time that each DRM client (an open of
//! the device) reports in `/proc/PID/fdinfo/FD` (kernel 5.19 and later), turned into a
//! utilization per process since the previous reading, the input the attribution plugin
//! splits the GPU's energy by (as NVML's per-process SM utilization for NVIDIA GPUs).
//!
//! Scanning every process's file descriptors costs more than reading the sensors (and
//! allocates): it is done only for amdgpu chips, and `amdgpu_processes = false` turns it off.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alumet::consumers::{ConsumerRegistry, Discovery, ProcessEntry};
use alumet::prelude::*;

use crate::metrics::Out;
use crate::parse::parse_fdinfo;

/// A client's last engine time, its process, and the scan that saw it last.
struct Client {
    pid: u32,
    engine_ns: u64,
    seen: u64,
}

/// Where the processes are: the procfs root and the pipeline's listing of it (shared with
/// the other plugins that list processes: one scan of `/proc` for all).
#[derive(Clone)]
pub struct ProcessList {
    proc_root: PathBuf,
    listing: Discovery<ProcessEntry>,
    /// How old a listing may be when a scan starts.
    max_age: Duration,
}

impl ProcessList {
    /// The processes under `proc_root`, from `consumers`, listed again when the latest
    /// listing is older than `max_age`.
    pub fn new(consumers: &ConsumerRegistry, proc_root: &Path, max_age: Duration) -> Self {
        ProcessList {
            proc_root: proc_root.to_owned(),
            listing: consumers.processes(proc_root),
            max_age,
        }
    }
}

/// The processes using one GPU.
pub struct GpuProcesses {
    processes: ProcessList,
    pdev: String,
    out: Out,
    clients: HashMap<u64, Client>,
    scan: u64,
    last: Option<Instant>,
    /// Engine nanoseconds per process in this scan, of the clients known before (reused).
    per_pid: HashMap<u32, u64>,
    text: String,
}

impl GpuProcesses {
    /// The processes using the GPU at PCI address `pdev`, among `processes`.
    pub fn new(processes: ProcessList, pdev: String, out: Out) -> Self {
        GpuProcesses {
            processes,
            pdev,
            out,
            clients: HashMap::new(),
            scan: 0,
            last: None,
            per_pid: HashMap::new(),
            text: String::new(),
        }
    }

    /// Scans the processes at `now` and pushes the utilization (percent of the time since
    /// the previous scan, summed over the GPU's engines) of each process with a client on
    /// this GPU. A client seen for the first time is a baseline; one whose engine time went
    /// down (a reused client id) too.
    pub fn scan(
        &mut self,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
        now: Instant,
        gpu: &Resource,
    ) {
        self.scan += 1;
        self.per_pid.clear();
        let Ok(listed) = self.processes.listing.listing(self.processes.max_age) else {
            return;
        };
        for p in listed.entries.iter() {
            let fdinfo = self
                .processes
                .proc_root
                .join(p.pid.to_string())
                .join("fdinfo");
            self.process(p.pid, &fdinfo);
        }
        let scan = self.scan;
        self.clients.retain(|_, c| c.seen == scan);
        let previous = self.last.replace(now);
        let Some(wall_ns) = previous.map(|p| now.saturating_duration_since(p).as_nanos() as f64)
        else {
            return;
        };
        if wall_ns == 0.0 {
            return;
        }
        for (&pid, &ns) in &self.per_pid {
            let point = self.out.point(t, gpu, ns as f64 * 100.0 / wall_ns);
            acc.push(MeasurementPoint {
                consumer: ResourceConsumer::Process { pid },
                ..point
            });
        }
    }

    /// Reads the fdinfo files of one process.
    fn process(&mut self, pid: u32, fdinfo: &Path) {
        let Ok(fds) = std::fs::read_dir(fdinfo) else {
            return;
        };
        for fd in fds.flatten() {
            self.text.clear();
            let Ok(mut file) = std::fs::File::open(fd.path()) else {
                continue;
            };
            if std::io::Read::read_to_string(&mut file, &mut self.text).is_err() {
                continue;
            }
            let Some(client) = parse_fdinfo(&self.text) else {
                continue;
            };
            if client.pdev != self.pdev {
                continue;
            }
            let (id, ns) = (client.client_id, client.engine_ns);
            let delta = match self.clients.get_mut(&id) {
                // Several fds of one client, or a client passed to another process: once.
                Some(c) if c.seen == self.scan => continue,
                Some(c) if c.pid == pid && ns >= c.engine_ns => Some(ns - c.engine_ns),
                _ => None,
            };
            self.clients.insert(
                id,
                Client {
                    pid,
                    engine_ns: ns,
                    seen: self.scan,
                },
            );
            // A process whose clients are all new is a baseline: reported from the next scan.
            if let Some(d) = delta {
                *self.per_pid.entry(pid).or_default() += d;
            }
        }
    }
}
