//! The sources: counters of one target (a process and its children, a cgroup on every
//! CPU, or each CPU), read every poll; each point is the increase since the previous
//! reading, scaled for multiplexing.

use std::sync::Arc;

use alumet::prelude::*;
use perf_counter::{Counter, Group, Reading, Target};

use crate::events::{Event, Kind};

/// The events a source counts, with their metrics.
#[derive(Clone)]
pub struct Measured {
    /// The events, in config order.
    pub events: Arc<[Event]>,
    /// Their metrics, in the same order.
    pub metrics: Arc<[MetricId<u64>]>,
}

/// The counters of one target: hardware events in one group where they fit (they
/// multiplex together), software events one by one (they never multiplex); a process's
/// counters one by one (the kernel does not read inherited groups).
struct CounterSet {
    /// (indices of `Measured::events`, their group).
    groups: Vec<(Vec<usize>, Group)>,
    /// (index, its counter).
    single: Vec<(usize, Counter)>,
    scratch: Vec<Reading>,
}

impl CounterSet {
    fn open(measured: &Measured, target: Target) -> std::io::Result<CounterSet> {
        let mut set = CounterSet {
            groups: Vec::new(),
            single: Vec::new(),
            scratch: Vec::new(),
        };
        let events = &measured.events;
        let hardware: Vec<usize> = (0..events.len())
            .filter(|i| events[*i].kind == Kind::Hardware)
            .collect();
        let groupable =
            hardware.len() > 1 && !matches!(target, Target::Process { inherit: true, .. });
        if groupable {
            let specs: Vec<_> = hardware.iter().map(|i| events[*i].spec).collect();
            match Group::open(&specs, target) {
                Ok(group) => set.groups.push((hardware.clone(), group)),
                // More events than the PMU has counters for at once: one by one, each
                // multiplexed and scaled on its own.
                Err(_) => set.open_single(measured, &hardware, target)?,
            }
        } else {
            set.open_single(measured, &hardware, target)?;
        }
        let software: Vec<usize> = (0..events.len())
            .filter(|i| events[*i].kind == Kind::Software)
            .collect();
        set.open_single(measured, &software, target)?;
        Ok(set)
    }

    fn open_single(
        &mut self,
        measured: &Measured,
        indices: &[usize],
        target: Target,
    ) -> std::io::Result<()> {
        for &i in indices {
            self.single
                .push((i, Counter::open(&measured.events[i].spec, target)?));
        }
        Ok(())
    }

    /// Reads every counter into `out` (indexed like the events).
    fn read(&mut self, out: &mut [Reading]) -> std::io::Result<()> {
        for (indices, group) in &mut self.groups {
            group.read(&mut self.scratch)?;
            for (i, r) in indices.iter().zip(&self.scratch) {
                out[*i] = *r;
            }
        }
        for (i, counter) in &self.single {
            out[*i] = counter.read()?;
        }
        Ok(())
    }
}

/// One target's counters, and where its points go.
pub struct PerfSource {
    measured: Measured,
    /// Each set with its resource and its previous readings (zero at open: the first poll
    /// gives what was counted since the counters opened).
    sets: Vec<(CounterSet, Resource, Vec<Reading>)>,
    consumer: ResourceConsumer,
    /// Sum the sets into one point per event (a cgroup counted on every CPU), or one point
    /// per set (each CPU of the machine).
    summed: bool,
    now: Vec<Reading>,
}

/// `perf_event_open` failed for the target: the reason, with the fix when it is a
/// permission.
pub fn open_error(e: &std::io::Error, what: &str) -> anyhow::Error {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => anyhow::anyhow!(
            "perf_event_open refused for {what} ({e}): kernel.perf_event_paranoid is {paranoid}; give the agent CAP_PERFMON (the service unit does), or lower it (`sysctl kernel.perf_event_paranoid=0` for per-CPU counting, 2 for a user's own processes)"
        ),
        _ => anyhow::anyhow!("perf_event_open failed for {what}: {e}"),
    }
}

impl PerfSource {
    /// The counters of a process and the children it starts from now on.
    pub fn process(measured: &Measured, pid: u32) -> anyhow::Result<PerfSource> {
        let target = Target::Process { pid, inherit: true };
        let set = CounterSet::open(measured, target)
            .map_err(|e| open_error(&e, &format!("process {pid}")))?;
        Ok(Self::new(
            measured,
            vec![(set, Resource::LocalMachine)],
            ResourceConsumer::Process { pid },
            true,
        ))
    }

    /// A command's counters, opened before it started ([`Counter::open_for_next_exec`],
    /// one per event, in order).
    pub fn command(measured: &Measured, pid: u32, counters: Vec<Counter>) -> PerfSource {
        let set = CounterSet {
            groups: Vec::new(),
            single: counters.into_iter().enumerate().collect(),
            scratch: Vec::new(),
        };
        Self::new(
            measured,
            vec![(set, Resource::LocalMachine)],
            ResourceConsumer::Process { pid },
            true,
        )
    }

    /// Opens, on the calling thread, the counters a command it is about to start will
    /// inherit.
    pub fn open_for_command(measured: &Measured) -> anyhow::Result<Vec<Counter>> {
        measured
            .events
            .iter()
            .map(|e| Counter::open_for_next_exec(&e.spec).map_err(|err| open_error(&err, &e.name)))
            .collect()
    }

    /// The counters of a cgroup (its open directory `dir`), on each of `cpus`, summed.
    pub fn cgroup(
        measured: &Measured,
        dir: &std::fs::File,
        path: &str,
        cpus: &[u32],
    ) -> anyhow::Result<PerfSource> {
        use std::os::fd::AsRawFd;
        let mut sets = Vec::new();
        for &cpu in cpus {
            let target = Target::Cgroup {
                cgroup: dir.as_raw_fd(),
                cpu,
            };
            let set = CounterSet::open(measured, target)
                .map_err(|e| open_error(&e, &format!("cgroup {path} on CPU {cpu}")))?;
            sets.push((set, Resource::LocalMachine));
        }
        let consumer = ResourceConsumer::ControlGroup { path: path.into() };
        Ok(Self::new(measured, sets, consumer, true))
    }

    /// Every process of the machine, on each of `cpus`, one point per CPU.
    pub fn machine(measured: &Measured, cpus: &[u32]) -> anyhow::Result<PerfSource> {
        let mut sets = Vec::new();
        for &cpu in cpus {
            let set = CounterSet::open(measured, Target::Cpu(cpu))
                .map_err(|e| open_error(&e, &format!("CPU {cpu}")))?;
            sets.push((set, Resource::CpuCore { id: cpu }));
        }
        Ok(Self::new(
            measured,
            sets,
            ResourceConsumer::LocalMachine,
            false,
        ))
    }

    fn new(
        measured: &Measured,
        sets: Vec<(CounterSet, Resource)>,
        consumer: ResourceConsumer,
        summed: bool,
    ) -> Self {
        let n = measured.events.len();
        PerfSource {
            measured: measured.clone(),
            sets: sets
                .into_iter()
                .map(|(s, r)| (s, r, vec![Reading::default(); n]))
                .collect(),
            consumer,
            summed,
            now: vec![Reading::default(); n],
        }
    }
}

/// The increase of every event, scaled, and the smallest share of time counted.
fn push(
    acc: &mut MeasurementAccumulator,
    t: Timestamp,
    m: MetricId<u64>,
    resource: &Resource,
    consumer: &ResourceConsumer,
    scaled: f64,
    ratio: f64,
) {
    let value = scaled.round().max(0.0) as u64;
    let ratio = (ratio * 1e4).round() / 1e4;
    acc.push(
        MeasurementPoint::new(t, m, resource.clone(), consumer.clone(), value)
            .with_attributes(Attributes::new([("running_ratio", ratio)])),
    );
}

impl Source for PerfSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        let n = self.measured.events.len();
        let mut sums = vec![(0.0f64, 1.0f64); if self.summed { n } else { 0 }];
        for (set, resource, previous) in &mut self.sets {
            set.read(&mut self.now).map_err(|e| {
                ElementError::retryable(anyhow::anyhow!("reading perf counters: {e}"))
            })?;
            for i in 0..n {
                let delta = self.now[i].since(&previous[i]);
                if self.summed {
                    sums[i].0 += delta.scaled();
                    sums[i].1 = sums[i].1.min(delta.ratio());
                } else {
                    push(
                        acc,
                        t,
                        self.measured.metrics[i],
                        resource,
                        &self.consumer,
                        delta.scaled(),
                        delta.ratio(),
                    );
                }
            }
            previous.copy_from_slice(&self.now);
        }
        if self.summed {
            for (i, (scaled, ratio)) in sums.into_iter().enumerate() {
                push(
                    acc,
                    t,
                    self.measured.metrics[i],
                    &Resource::LocalMachine,
                    &self.consumer,
                    scaled,
                    ratio,
                );
            }
        }
        Ok(())
    }
}
