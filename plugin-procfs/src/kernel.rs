//! The `kernel` section: `/proc/stat`.

use alumet::pipeline::ElementResultExt;
use alumet::prelude::*;

use crate::config::KernelConfig;
use crate::parse::{parse_stat, CpuTicks, StatLine, CPU_COLUMNS};
use crate::procfile::ProcFile;
use crate::{trigger, Env};

/// The columns of [`CPU_COLUMNS`] that become a `cpu_state`: all but `iowait`, which
/// proc(5) calls unreliable.
const REPORTED: [usize; 9] = [0, 1, 2, 3, 5, 6, 7, 8, 9];

struct Metrics {
    cpu_time: MetricId<u64>,
    context_switches: MetricId<u64>,
    forks: MetricId<u64>,
    running: MetricId<u64>,
    blocked: MetricId<u64>,
}

/// The differences of one `cpu` line, per column, in milliseconds.
struct CpuCounters {
    resource: Resource,
    diffs: [CounterDiff; 10],
}

impl CpuCounters {
    fn new(resource: Resource) -> Self {
        CpuCounters {
            resource,
            diffs: std::array::from_fn(|_| CounterDiff::without_wrap()),
        }
    }
}

/// Reads `/proc/stat` and pushes differences since the previous poll.
pub(crate) struct KernelSource {
    file: ProcFile,
    clk_tck: u64,
    total: CpuCounters,
    /// Indexed by CPU number; `None` when `per_cpu` is off.
    per_cpu: Option<Vec<Option<CpuCounters>>>,
    context_switches: CounterDiff,
    forks: CounterDiff,
    metrics: Metrics,
    /// `cpu_state = <column>`, built once, indexed like [`CPU_COLUMNS`].
    states: [Attributes; 10],
}

/// Registers the metrics and the source `procfs/kernel`.
pub(crate) fn start(
    config: &KernelConfig,
    env: &Env,
    stat: std::fs::File,
    alumet: &mut Registrar<'_>,
) -> anyhow::Result<()> {
    let file = ProcFile::from_file(stat, env.root.join("stat"), true)?;
    let metrics = Metrics {
        cpu_time: alumet.create_metric(
            "kernel_cpu_time",
            Unit::Millisecond,
            "CPU time spent in each state since the previous measurement (attribute cpu_state)",
        )?,
        context_switches: alumet.create_metric(
            "kernel_context_switches",
            Unit::Unity,
            "context switches since the previous measurement",
        )?,
        forks: alumet.create_metric(
            "kernel_new_forks",
            Unit::Unity,
            "processes and threads created since the previous measurement",
        )?,
        running: alumet.create_metric(
            "kernel_n_procs_running",
            Unit::Unity,
            "tasks in the runnable state",
        )?,
        blocked: alumet.create_metric(
            "kernel_n_procs_blocked",
            Unit::Unity,
            "tasks blocked waiting for I/O",
        )?,
    };
    let source = KernelSource::new(file, env.clk_tck, config.per_cpu, metrics)?;
    let trigger = trigger(config.poll_interval, config.flush_interval);
    alumet.add_source("kernel", source, trigger)?;
    Ok(())
}

impl KernelSource {
    /// A source that has taken its baseline: its first poll gives differences.
    fn new(file: ProcFile, clk_tck: u64, per_cpu: bool, metrics: Metrics) -> anyhow::Result<Self> {
        let mut source = KernelSource {
            file,
            clk_tck,
            total: CpuCounters::new(Resource::LocalMachine),
            per_cpu: per_cpu.then(Vec::new),
            context_switches: CounterDiff::without_wrap(),
            forks: CounterDiff::without_wrap(),
            metrics,
            states: CPU_COLUMNS.map(|c| Attributes::new([("cpu_state", c)])),
        };
        source.measure(None, Timestamp::now())?;
        Ok(source)
    }

    /// Reads the file, updates the counters and, with `acc`, pushes the points.
    fn measure(
        &mut self,
        mut acc: Option<&mut MeasurementAccumulator>,
        t: Timestamp,
    ) -> anyhow::Result<()> {
        let KernelSource {
            file,
            clk_tck,
            total,
            per_cpu,
            context_switches,
            forks,
            metrics,
            states,
        } = self;
        let text = file.read()?;
        let mut push =
            |metric: MetricId<u64>, resource: &Resource, value: u64, attrs: &Attributes| {
                if let Some(acc) = acc.as_deref_mut() {
                    let c = ResourceConsumer::LocalMachine;
                    let point = MeasurementPoint::new(t, metric, resource.clone(), c, value);
                    acc.push(point.with_attributes(attrs.clone()));
                }
            };
        let none = Attributes::none();
        parse_stat(text, |line| match line {
            StatLine::Cpu { cpu: None, ticks } => {
                cpu_line(total, &ticks, *clk_tck, |r, v, col| {
                    push(metrics.cpu_time, r, v, &states[col])
                });
            }
            StatLine::Cpu {
                cpu: Some(n),
                ticks,
            } => {
                if let Some(counters) = per_cpu.as_mut().map(|v| cpu_slot(v, n)) {
                    cpu_line(counters, &ticks, *clk_tck, |r, v, col| {
                        push(metrics.cpu_time, r, v, &states[col])
                    });
                }
            }
            StatLine::ContextSwitches(v) => {
                if let Some(d) = context_switches.update(v).difference() {
                    push(metrics.context_switches, &Resource::LocalMachine, d, &none);
                }
            }
            StatLine::Forks(v) => {
                if let Some(d) = forks.update(v).difference() {
                    push(metrics.forks, &Resource::LocalMachine, d, &none);
                }
            }
            StatLine::ProcsRunning(v) => push(metrics.running, &Resource::LocalMachine, v, &none),
            StatLine::ProcsBlocked(v) => push(metrics.blocked, &Resource::LocalMachine, v, &none),
        });
        Ok(())
    }
}

/// The counters of CPU `n`, created when it first appears (CPUs can come online later).
fn cpu_slot(per_cpu: &mut Vec<Option<CpuCounters>>, n: u32) -> &mut CpuCounters {
    let i = n as usize;
    if per_cpu.len() <= i {
        per_cpu.resize_with(i + 1, || None);
    }
    per_cpu[i].get_or_insert_with(|| CpuCounters::new(Resource::CpuCore { id: n }))
}

/// Updates the counters of one `cpu` line; calls `emit(resource, ms, column)` for each
/// reported column that has a difference. Ticks are turned into milliseconds before the
/// difference, so that rounding never accumulates.
fn cpu_line(
    counters: &mut CpuCounters,
    ticks: &CpuTicks,
    clk_tck: u64,
    mut emit: impl FnMut(&Resource, u64, usize),
) {
    for col in REPORTED {
        let Some(v) = ticks.get(col) else { continue };
        let ms = ticks_to_ms(v, clk_tck);
        if let Some(d) = counters.diffs[col].update(ms).difference() {
            emit(&counters.resource, d, col);
        }
    }
}

/// Clock ticks to milliseconds, with `clk_tck` ticks per second (rounded down).
pub(crate) fn ticks_to_ms(ticks: u64, clk_tck: u64) -> u64 {
    let ms = u128::from(ticks) * 1000 / u128::from(clk_tck.max(1));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl Source for KernelSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        self.measure(Some(acc), t).retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alloc::allocations;
    use alumet::metrics::MetricRegistry;

    #[test]
    fn polls_of_the_real_proc_stat_do_not_allocate_once_warm() {
        let mut reg = MetricRegistry::new();
        let mut id = |name: &str| reg.register::<u64>(name, Unit::Unity, "test").unwrap();
        let metrics = Metrics {
            cpu_time: id("a"),
            context_switches: id("b"),
            forks: id("c"),
            running: id("d"),
            blocked: id("e"),
        };
        let file = ProcFile::open("/proc/stat".into(), true).unwrap();
        let mut source = KernelSource::new(file, 100, true, metrics).unwrap();
        let mut buffer = MeasurementBuffer::with_capacity(100_000);
        let t = Timestamp::now();
        source.poll(buffer.as_accumulator(), t).unwrap();
        let before = allocations();
        for _ in 0..1000 {
            source.poll(buffer.as_accumulator(), t).unwrap();
        }
        assert_eq!(allocations() - before, 0);
        // Total and per-CPU cpu_time (9 states on any recent kernel), and 4 others.
        assert!(buffer.len() >= 1001 * (9 * 2 + 4), "{}", buffer.len());
    }
}
