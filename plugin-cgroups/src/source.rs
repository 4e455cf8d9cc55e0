//! The source of one cgroup: its files ([`KFile`]), opened once and re-read into one
//! buffer the source keeps (no allocation per poll once it is warm).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use alumet::prelude::*;

use crate::cpu::Split;
use crate::hierarchy::{CgroupFiles, CpuFiles, IoFile};
use crate::kfile::{is_gone, read_with, KFile};
use crate::metrics::Metrics;
use crate::parse::{self, UserSystem};
use crate::pods::{rebase, PodLink};

enum CpuReader {
    V1 { usage: KFile, stat: Option<KFile> },
    V2(KFile),
}

/// CPU of the cgroup: the reader, the v1 split, and the counters in ms (user, system).
struct Cpu {
    reader: CpuReader,
    split: Split,
    /// User, system, and the total where the kernel gives no split.
    ms: [CounterDiff; 3],
    /// The previous total (ns) and when it was read, for `cpu_percent`.
    last: Option<(Instant, u64)>,
    /// `kind` = user, system (with the cgroup's attributes), and the cgroup's alone.
    attrs: [Attributes; 3],
}

/// A pair of counters (read/write, some/full) with their attribute sets.
struct Pair {
    file: KFile,
    diffs: [CounterDiff; 2],
    attrs: [Attributes; 2],
}

/// Measures one cgroup.
pub(crate) struct CgroupSource {
    consumer: ResourceConsumer,
    metrics: Arc<Metrics>,
    attrs: Attributes,
    buf: Vec<u8>,
    cpu: Option<Cpu>,
    memory: Option<KFile>,
    memory_max: Option<KFile>,
    /// `memory.stat`, and whether it is v1's.
    memory_stat: Option<(bool, KFile)>,
    /// `blkio.*` (v1) or `io.stat` (v2), read and write bytes.
    io: Option<(bool, Pair)>,
    /// Per `*.pressure` file, the totals of `some` and `full` stall time (µs).
    pressure: Vec<Pair>,
    /// The cgroup was removed: nothing more to read.
    gone: bool,
    /// Polls until the costlier figures are read again (0: at this poll).
    details_in: u32,
    /// A pod's cgroup: its names, once Kubernetes gives them.
    pod: Option<PodLink>,
}

fn counters<const N: usize>(from_zero: bool) -> [CounterDiff; N] {
    std::array::from_fn(|_| {
        let mut c = CounterDiff::without_wrap();
        if from_zero {
            c.update(0);
        }
        c
    })
}

fn pair(attrs: &Attributes, key: &str, values: [&'static str; 2]) -> [Attributes; 2] {
    values.map(|v| attrs.with(key, v))
}

/// Opens a cgroup's files, saying once when file descriptors run out.
struct Opener<'a>(&'a AtomicBool);

impl Opener<'_> {
    fn open(&self, p: PathBuf) -> Option<KFile> {
        match KFile::open(p.clone()) {
            Ok(f) => Some(f),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                if !self.0.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "cgroups: cannot open {}: {e}; the figures of cgroups beyond this limit are not measured. Raise the open files limit (LimitNOFILE= in the systemd unit) or narrow `include`; this warning is not repeated",
                        p.display()
                    );
                }
                None
            }
            Err(e) => {
                log::debug!("cgroups: cannot open {}: {e}", p.display());
                None
            }
        }
    }

    fn cpu(&self, files: Option<CpuFiles>, attrs: &Attributes, from_zero: bool) -> Option<Cpu> {
        let reader = match files? {
            CpuFiles::V1 { usage, stat } => CpuReader::V1 {
                usage: self.open(usage)?,
                stat: stat.and_then(|s| self.open(s)),
            },
            CpuFiles::V2(stat) => CpuReader::V2(self.open(stat)?),
        };
        let [user, system] = pair(attrs, "kind", ["user", "system"]);
        Some(Cpu {
            reader,
            split: Split::default(),
            ms: counters(from_zero),
            last: None,
            attrs: [user, system, attrs.clone()],
        })
    }

    fn pair(&self, p: PathBuf, attrs: [Attributes; 2], from_zero: bool) -> Option<Pair> {
        Some(Pair {
            file: self.open(p)?,
            diffs: counters(from_zero),
            attrs,
        })
    }
}

impl CgroupSource {
    /// Opens the files of the cgroup at `path`. With `from_zero`, the cgroup is new (it
    /// appeared while the plugin runs): its counters are counted from zero, so that its
    /// first reading counts what it used since its creation. A file that cannot be opened
    /// is left out (and logged at debug level: the cgroup may be going away; for lack of
    /// file descriptors, a warning, once per `out_of_files` flag).
    pub(crate) fn open(
        path: &str,
        files: CgroupFiles,
        metrics: Arc<Metrics>,
        attrs: Attributes,
        from_zero: bool,
        out_of_files: &AtomicBool,
    ) -> Self {
        let o = Opener(out_of_files);
        let io = files.io.and_then(|io| {
            let (v1, p) = match io {
                IoFile::V1(p) => (true, p),
                IoFile::V2(p) => (false, p),
            };
            let attrs = pair(&attrs, "kind", ["read", "write"]);
            Some((v1, o.pair(p, attrs, from_zero)?))
        });
        let pressure = (files.pressure.into_iter())
            .filter_map(|(res, p)| {
                let attrs = pair(&attrs.with("pressure", res), "kind", ["some", "full"]);
                o.pair(p, attrs, from_zero)
            })
            .collect();
        CgroupSource {
            consumer: ResourceConsumer::ControlGroup { path: path.into() },
            metrics,
            buf: Vec::new(),
            cpu: o.cpu(files.cpu, &attrs, from_zero),
            memory: files.memory.and_then(|p| o.open(p)),
            memory_max: files.memory_max.and_then(|p| o.open(p)),
            memory_stat: (files.memory_stat).and_then(|(v1, p)| Some((v1, o.open(p)?))),
            io,
            pressure,
            attrs,
            gone: false,
            details_in: 0,
            pod: None,
        }
    }

    /// The source of a pod's cgroup, which takes the pod's names from `link` once known.
    pub(crate) fn with_pod(mut self, link: PodLink) -> Self {
        self.pod = Some(link);
        self
    }

    /// Puts `attrs` instead of the cgroup's attributes on every point from now on (the
    /// sets with `kind` or `pressure` keep those).
    fn relabel(&mut self, attrs: Attributes) {
        let old = self.attrs.len();
        let re = |set: &mut Attributes| *set = rebase(set, old, &attrs);
        if let Some(cpu) = &mut self.cpu {
            cpu.attrs.iter_mut().for_each(re);
        }
        if let Some((_, p)) = &mut self.io {
            p.attrs.iter_mut().for_each(re);
        }
        for p in &mut self.pressure {
            p.attrs.iter_mut().for_each(re);
        }
        self.attrs = attrs;
    }

    fn point<T: MeasurementType>(
        &self,
        t: Timestamp,
        m: MetricId<T>,
        v: T,
        a: &Attributes,
    ) -> MeasurementPoint {
        MeasurementPoint::new(t, m, Resource::LocalMachine, self.consumer.clone(), v)
            .with_attributes(a.clone())
    }

    /// Reads every figure; one that fails does not keep the others from being pushed (the
    /// first error is returned).
    fn measure(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> anyhow::Result<()> {
        let mut first = None;
        let mut keep = |r: anyhow::Result<()>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        // memory.stat and the pressure files cost the kernel as much as the others
        // together: read at every `details_every`th poll only.
        let details = self.details_in == 0;
        self.details_in = match self.details_in {
            0 => self.metrics.details_every - 1,
            n => n - 1,
        };
        keep(self.measure_cpu(acc, t));
        keep(self.measure_memory(acc, t, details));
        keep(self.measure_io(acc, t));
        if details {
            for i in 0..self.pressure.len() {
                keep(self.measure_pressure(i, acc, t));
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn measure_memory(
        &mut self,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
        details: bool,
    ) -> anyhow::Result<()> {
        if let Some(f) = &self.memory {
            let v = read_with(f, &mut self.buf, parse::parse_single)?;
            acc.push(self.point(t, self.metrics.memory, v, &self.attrs));
        }
        // A limit is configuration: it changes rarely, and is read with the details.
        if let Some(f) = self.memory_max.as_ref().filter(|_| details) {
            if let Some(v) = read_with(f, &mut self.buf, parse::parse_limit)? {
                acc.push(self.point(t, self.metrics.memory_max, v, &self.attrs));
            }
        }
        if let Some((v1, f)) = self.memory_stat.as_ref().filter(|_| details) {
            let parser = if *v1 {
                parse_v1_memory_stat
            } else {
                parse_v2_memory_stat
            };
            let m = read_with(f, &mut self.buf, parser)?;
            let parts = [m.anonymous, m.file, m.kernel_stack, m.pagetables];
            for (v, metric) in parts.into_iter().zip(self.metrics.memory_parts) {
                if let Some(v) = v {
                    acc.push(self.point(t, metric, v, &self.attrs));
                }
            }
        }
        Ok(())
    }

    fn measure_io(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> anyhow::Result<()> {
        let Some((v1, p)) = &mut self.io else {
            return Ok(());
        };
        let parser = if *v1 {
            parse::parse_blkio_bytes
        } else {
            parse::parse_io_stat
        };
        let io = read_with(&p.file, &mut self.buf, parser)?;
        let values = [Some(io.read), Some(io.write)];
        push_pair(acc, t, &self.consumer, self.metrics.io, p, values);
        Ok(())
    }

    fn measure_pressure(
        &mut self,
        i: usize,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
    ) -> anyhow::Result<()> {
        let p = &mut self.pressure[i];
        let psi = read_with(&p.file, &mut self.buf, parse::parse_pressure)?;
        let values = [psi.some, psi.full];
        push_pair(acc, t, &self.consumer, self.metrics.pressure, p, values);
        Ok(())
    }

    fn measure_cpu(
        &mut self,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
    ) -> anyhow::Result<()> {
        let Some(cpu) = &mut self.cpu else {
            return Ok(());
        };
        let now = Instant::now();
        let (total, split) = match &cpu.reader {
            CpuReader::V1 { usage, stat } => {
                let total = read_with(usage, &mut self.buf, parse::parse_single)?;
                let split = match stat {
                    Some(stat) => {
                        let ticks = read_with(stat, &mut self.buf, parse::parse_cpuacct_stat)?;
                        Some(cpu.split.update(total, ticks))
                    }
                    None => None,
                };
                (total, split)
            }
            CpuReader::V2(stat) => {
                let s = read_with(stat, &mut self.buf, parse::parse_cpu_stat)?;
                let ns = |v: u64| v.saturating_mul(1000);
                let split = (s.split).map(|us| UserSystem {
                    user: ns(us.user),
                    system: ns(us.system),
                });
                (ns(s.usage), split)
            }
        };
        // User and system where the kernel splits, else the total without `kind`.
        let values = [
            split.map(|s| s.user),
            split.map(|s| s.system),
            split.is_none().then_some(total),
        ];
        // Cumulated ns to cumulated ms, then differences: no rounding error piles up.
        for (i, v) in values.into_iter().enumerate() {
            let Some(v) = v else { continue };
            if let Some(d) = cpu.ms[i].update(v / 1_000_000).difference() {
                let p = MeasurementPoint::new(
                    t,
                    self.metrics.cpu_time,
                    Resource::LocalMachine,
                    self.consumer.clone(),
                    d,
                );
                acc.push(p.with_attributes(cpu.attrs[i].clone()));
            }
        }
        if let Some((last, last_total)) = cpu.last {
            let wall = now.duration_since(last).as_nanos() as f64;
            if wall > 0.0 && total >= last_total {
                let percent = (total - last_total) as f64 / wall * 100.0;
                let p = MeasurementPoint::new(
                    t,
                    self.metrics.cpu_percent,
                    Resource::LocalMachine,
                    self.consumer.clone(),
                    percent,
                );
                acc.push(p.with_attributes(self.attrs.clone()));
            }
        }
        cpu.last = Some((now, total));
        Ok(())
    }
}

fn parse_v1_memory_stat(text: &[u8]) -> Option<parse::MemoryStat> {
    parse::parse_memory_stat(text, true)
}

fn parse_v2_memory_stat(text: &[u8]) -> Option<parse::MemoryStat> {
    parse::parse_memory_stat(text, false)
}

fn push_pair(
    acc: &mut MeasurementAccumulator,
    t: Timestamp,
    consumer: &ResourceConsumer,
    metric: MetricId<u64>,
    p: &mut Pair,
    values: [Option<u64>; 2],
) {
    for ((v, diff), attrs) in values.iter().zip(&mut p.diffs).zip(&p.attrs) {
        if let Some(d) = v.and_then(|v| diff.update(v).difference()) {
            let point =
                MeasurementPoint::new(t, metric, Resource::LocalMachine, consumer.clone(), d);
            acc.push(point.with_attributes(attrs.clone()));
        }
    }
}

impl Source for CgroupSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        if self.gone {
            return Ok(());
        }
        if let Some(attrs) = self.pod.as_mut().and_then(PodLink::changed) {
            self.relabel(attrs);
        }
        match self.measure(acc, t) {
            Ok(()) => Ok(()),
            Err(e) if e.downcast_ref::<io::Error>().is_some_and(is_gone) => {
                // Removed: the discovery task removes this source; until then, silence.
                self.gone = true;
                Ok(())
            }
            Err(e) => Err(ElementError::retryable(e)),
        }
    }
}
