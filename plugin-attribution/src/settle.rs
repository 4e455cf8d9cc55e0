//! Energy intervals waiting for their usage data, and how one interval is attributed.

use std::collections::VecDeque;

use alumet::prelude::*;

use crate::config::{Config, IdleMode};
use crate::consumers::{gpu_to_measured, nest, Kinds};
use crate::inputs::OutputMetrics;
use crate::split::split;
use crate::usage::{CpuUsage, GpuUsage};

/// Where an energy counter comes from: the value of the `source` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// CPU energy: split by CPU time.
    Rapl,
    /// GPU energy: split by SM utilization.
    Nvml,
    /// GPU energy from hwmon (amdgpu): split by per-process engine utilization.
    Hwmon,
}

/// The values of the `reason` attribute of `unattributed_energy`.
const REASONS: [&str; 4] = [
    "untracked",
    "no_usage_data",
    "first_reading",
    "parent_cgroup",
];

/// One reading of an energy counter: the energy used over `(start, end]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interval {
    /// The previous reading's time; `None` for the counter's first reading.
    pub(crate) start: Option<u64>,
    pub(crate) end: u64,
    pub(crate) joules: f64,
}

/// One energy counter (a RAPL domain of a package, a GPU) and its pending intervals.
pub(crate) struct Stream {
    pub(crate) kind: Kind,
    resource: Resource,
    pub(crate) last_end: Option<u64>,
    pub(crate) pending: VecDeque<Interval>,
    /// `domain`, `source`.
    attrs: Attributes,
    /// `domain`, `source`, `reason`, indexed like [`REASONS`].
    reasons: [Attributes; 4],
    /// Fixed idle power, or `None` to use the lowest power seen so far.
    idle_watts: Option<f64>,
    min_power: f64,
}

impl Stream {
    /// The stream of `kind`'s energy, whose parts carry `source` (`rapl`, `estimated`,
    /// `nvml`).
    pub(crate) fn new(
        (kind, source): (Kind, &'static str),
        resource: Resource,
        domain: &str,
        config: &Config,
    ) -> Self {
        let attrs = Attributes::new([("domain", domain), ("source", source)]);
        let idle_watts = match config.idle {
            IdleMode::Fixed => Some(config.idle_power.get(domain).copied().unwrap_or(0.0)),
            IdleMode::Measured => None,
        };
        Stream {
            kind,
            resource,
            last_end: None,
            pending: VecDeque::new(),
            reasons: REASONS.map(|r| attrs.with("reason", r)),
            attrs,
            idle_watts,
            min_power: f64::INFINITY,
        }
    }

    /// Queues a reading at `end`; ignored when not after the previous one.
    pub(crate) fn push(&mut self, end: u64, joules: f64) {
        if self.last_end.is_some_and(|last| end <= last) {
            return;
        }
        self.pending.push_back(Interval {
            start: self.last_end,
            end,
            joules,
        });
        self.last_end = Some(end);
    }

    /// The earliest time this counter's future intervals may start at.
    pub(crate) fn horizon(&self) -> Option<u64> {
        match self.pending.front() {
            Some(iv) => Some(iv.start.unwrap_or(iv.end)),
            None => self.last_end,
        }
    }

    /// Idle baseline energy for `covered_ns` of the interval `iv`.
    fn idle_base(&mut self, iv: &Interval, start: u64, covered_ns: u64) -> f64 {
        let watts = match self.idle_watts {
            Some(w) => w,
            None => {
                let secs = (iv.end - start) as f64 / 1e9;
                if iv.joules.is_finite() {
                    self.min_power = self.min_power.min(iv.joules / secs);
                }
                self.min_power
            }
        };
        if watts.is_finite() {
            watts * covered_ns as f64 / 1e9
        } else {
            0.0
        }
    }
}

/// The parts of one interval's energy, besides the consumers'.
#[derive(Debug, Default)]
struct Parts {
    idle: f64,
    /// Indexed like [`REASONS`].
    unattributed: [f64; 4],
    /// Joules per unit of the consumers' usage.
    per_usage: f64,
}

impl Parts {
    fn unattributed(reason: usize, joules: f64) -> Self {
        let mut parts = Parts::default();
        parts.unattributed[reason] = joules;
        parts
    }
}

/// Where the attribution of an interval goes.
pub(crate) struct Sink<'a> {
    pub(crate) outputs: &'a OutputMetrics,
    /// Scratch list of the consumers that used something in the interval.
    pub(crate) usages: &'a mut Vec<(ResourceConsumer, f64)>,
    pub(crate) out: &'a mut Vec<MeasurementPoint>,
}

/// Attributes a RAPL interval by CPU time. `has_machine`: the machine's CPU time exists.
pub(crate) fn settle_cpu(
    stream: &mut Stream,
    iv: Interval,
    cpu: &CpuUsage,
    has_machine: bool,
    sink: Sink<'_>,
) {
    sink.usages.clear();
    let Some(a) = iv.start else {
        return emit(stream, iv, Parts::unattributed(2, iv.joules), sink);
    };
    let covered = if has_machine {
        cpu.coverage(a, iv.end)
    } else {
        None
    };
    let Some((a2, b2)) = covered else {
        return emit(stream, iv, Parts::unattributed(1, iv.joules), sink);
    };
    let covered_energy = if (a2, b2) == (a, iv.end) {
        iv.joules
    } else {
        iv.joules * ((b2 - a2) as f64 / (iv.end - a) as f64)
    };
    let busy = cpu.machine.delta(a2, b2);
    for (consumer, series) in &cpu.consumers {
        let used = series.delta(a2, b2);
        if used > 0.0 {
            sink.usages.push((consumer.clone(), used));
        }
    }
    // Nested cgroups: the parents' time outside their measured children is set apart.
    let outside = nest(cpu.consumers.keys(), sink.usages);
    let used: f64 = sink.usages.iter().map(|u| u.1).sum::<f64>() + outside;
    let idle_base = stream.idle_base(&iv, a, b2 - a2);
    let s = split(covered_energy, idle_base, busy, used);
    let parts = Parts {
        idle: s.idle,
        unattributed: [
            s.untracked,
            iv.joules - covered_energy,
            0.0,
            outside * s.per_usage,
        ],
        per_usage: s.per_usage,
    };
    emit(stream, iv, parts, sink)
}

/// Attributes an NVML interval by SM utilization. `has_usage`: the utilization exists.
/// With `consumers = "cgroup"`, the processes' use was recorded under their cgroups: it
/// goes to the measured cgroups (`cpu`'s consumers, nested ones counted once); use that
/// reaches no measured cgroup is `untracked`.
pub(crate) fn settle_gpu(
    stream: &mut Stream,
    iv: Interval,
    (gpu, cpu): (&GpuUsage, &CpuUsage),
    has_usage: bool,
    kinds: Kinds,
    sink: Sink<'_>,
) {
    sink.usages.clear();
    let Some(a) = iv.start else {
        return emit(stream, iv, Parts::unattributed(2, iv.joules), sink);
    };
    if !has_usage {
        return emit(stream, iv, Parts::unattributed(1, iv.joules), sink);
    }
    let mut busy = 0.0;
    if let Some(device) = gpu.devices.get(&stream.resource) {
        for (process, series) in &device.processes {
            let used = series.delta(a, iv.end);
            if used > 0.0 {
                busy += used;
                if kinds.accepts(process) {
                    sink.usages.push((process.clone(), used));
                }
            }
        }
    }
    let outside = match kinds {
        Kinds::Cgroup => gpu_to_measured(cpu.consumers.keys(), sink.usages),
        _ => 0.0,
    };
    let used: f64 = sink.usages.iter().map(|u| u.1).sum::<f64>() + outside;
    let idle_base = stream.idle_base(&iv, a, iv.end - a);
    let s = split(iv.joules, idle_base, busy, used);
    let parts = Parts {
        idle: s.idle,
        unattributed: [s.untracked, 0.0, 0.0, outside * s.per_usage],
        per_usage: s.per_usage,
    };
    emit(stream, iv, parts, sink)
}

/// Pushes the points of one attributed interval, and the imbalance computed from them.
fn emit(stream: &Stream, iv: Interval, parts: Parts, sink: Sink<'_>) {
    let t = Timestamp::from_unix_nanos(iv.end);
    let point = |metric: MetricId<f64>, consumer: ResourceConsumer, joules: f64| {
        MeasurementPoint::new(t, metric, stream.resource.clone(), consumer, joules)
    };
    let mut total = 0.0;
    for (consumer, used) in sink.usages.drain(..) {
        let joules = used * parts.per_usage;
        total += joules;
        let p = point(sink.outputs.attributed, consumer, joules);
        sink.out.push(p.with_attributes(stream.attrs.clone()));
    }
    total += parts.idle;
    let p = point(
        sink.outputs.idle,
        ResourceConsumer::LocalMachine,
        parts.idle,
    );
    sink.out.push(p.with_attributes(stream.attrs.clone()));
    for (joules, attrs) in parts.unattributed.iter().zip(&stream.reasons) {
        if *joules != 0.0 {
            total += joules;
            let p = point(
                sink.outputs.unattributed,
                ResourceConsumer::LocalMachine,
                *joules,
            );
            sink.out.push(p.with_attributes(attrs.clone()));
        }
    }
    let p = point(
        sink.outputs.imbalance,
        ResourceConsumer::LocalMachine,
        total - iv.joules,
    );
    sink.out.push(p.with_attributes(stream.attrs.clone()));
}
