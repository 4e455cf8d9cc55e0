//! Measuring a set of processes: `/proc/PID/stat` and `/proc/PID/statm`, kept open.

use alumet::metrics::shared;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use alumet::prelude::*;

use crate::config::{MemoryMode, ProcessesConfig, Strategy};
use crate::discovery::{GroupFilter, Matcher, ProcessSource};
use crate::events::EventHandler;
use crate::kernel::ticks_to_ms;
use crate::parse::{self, parse_process_stat, parse_statm, ProcessStat};
use crate::procfile::{is_denied, is_gone, read_whole, warn_process_denied};
use crate::{trigger, Env};

/// The process metrics and their attribute sets, registered and built once.
#[derive(Clone)]
pub(crate) struct ProcessMetrics {
    cpu_time: MetricId<u64>,
    cpu_percent: MetricId<f64>,
    memory: MetricId<u64>,
    /// `kind` = user, system, guest.
    cpu_kinds: [Attributes; 3],
    /// `kind` = resident, shared, virtual.
    memory_kinds: [Attributes; 3],
    /// `kind` = proportional.
    proportional: Attributes,
    /// `kind` = total (user and system), on `cpu_percent`.
    total: Attributes,
}

impl ProcessMetrics {
    pub(crate) fn register(alumet: &mut Registrar<'_>) -> anyhow::Result<Self> {
        let kinds = |k: [&str; 3]| k.map(|k| Attributes::new([("kind", k)]));
        Ok(ProcessMetrics {
            cpu_time: alumet.create_shared_metric(&shared::CPU_TIME_DELTA)?,
            cpu_percent: alumet.create_shared_metric(&shared::CPU_PERCENT)?,
            memory: alumet.create_shared_metric(&shared::MEMORY_USAGE)?,
            cpu_kinds: kinds(["user", "system", "guest"]),
            memory_kinds: kinds(["resident", "shared", "virtual"]),
            proportional: Attributes::new([("kind", "proportional")]),
            total: Attributes::new([("kind", "total")]),
        })
    }
}

/// One measured process: its identity (pid and start time), open files and counters.
struct Tracked {
    starttime: u64,
    stat: File,
    statm: File,
    /// `smaps_rollup`, with `memory_mode = "slow_but_accurate"`.
    smaps_rollup: Option<File>,
    /// user, system, guest, in milliseconds.
    cpu: [CounterDiff; 3],
    /// When the previous reading was taken, for `cpu_percent`.
    last: Option<Instant>,
}

/// The processes one source measures.
pub(crate) struct ProcessSet {
    env: Arc<Env>,
    metrics: ProcessMetrics,
    tracked: HashMap<u32, Tracked>,
    /// Read buffer shared by every file of the set.
    buf: Vec<u8>,
    /// Processes that started at or after this time (clock ticks since boot) started
    /// while being watched: they are measured from their start (their first reading is a
    /// difference from zero). Older ones are measured from their first reading.
    count_from: u64,
    memory_mode: MemoryMode,
}

impl ProcessSet {
    pub(crate) fn new(env: Arc<Env>, metrics: ProcessMetrics, count_from: u64) -> Self {
        ProcessSet {
            env,
            metrics,
            tracked: HashMap::new(),
            buf: Vec::new(),
            count_from,
            memory_mode: MemoryMode::Quick,
        }
    }

    /// Reads memory as `mode` says.
    pub(crate) fn with_memory_mode(mut self, mode: MemoryMode) -> Self {
        self.memory_mode = mode;
        self
    }

    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    pub(crate) fn set_count_from(&mut self, ticks: u64) {
        self.count_from = ticks;
    }

    /// The start time of a tracked pid.
    pub(crate) fn starttime(&self, pid: u32) -> Option<u64> {
        self.tracked.get(&pid).map(|t| t.starttime)
    }

    pub(crate) fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.tracked.keys().copied()
    }

    pub(crate) fn untrack(&mut self, pid: u32) {
        self.tracked.remove(&pid);
    }

    /// Forgets every process (closes their files).
    pub(crate) fn clear(&mut self) {
        self.tracked = HashMap::new();
    }

    /// Starts measuring process `pid` that started at `starttime`.
    pub(crate) fn track(&mut self, pid: u32, starttime: u64) -> io::Result<()> {
        let dir = self.env.root.join(pid.to_string());
        let stat = File::open(dir.join("stat"))?;
        let statm = File::open(dir.join("statm"))?;
        let smaps_rollup = match self.memory_mode {
            MemoryMode::Quick => None,
            MemoryMode::SlowButAccurate => Some(File::open(dir.join("smaps_rollup"))?),
        };
        let mut cpu: [CounterDiff; 3] = std::array::from_fn(|_| CounterDiff::without_wrap());
        if starttime >= self.count_from {
            cpu.iter_mut().for_each(|c| {
                c.update(0);
            });
        }
        let tracked = Tracked {
            starttime,
            stat,
            statm,
            smaps_rollup,
            cpu,
            last: None,
        };
        self.tracked.insert(pid, tracked);
        Ok(())
    }

    /// Reads every tracked process and pushes its points. A process that is gone (or
    /// whose pid now belongs to another process) is dropped without a word.
    pub(crate) fn measure(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) {
        let ProcessSet {
            env,
            metrics,
            tracked,
            buf,
            ..
        } = self;
        tracked.retain(
            |&pid, p| match measure_one(env, metrics, pid, p, buf, acc, t) {
                Ok(keep) => keep,
                Err(e) => {
                    if is_denied(&e) {
                        let path = env.root.join(pid.to_string()).join("stat");
                        env.warnings
                            .denied
                            .call(|| warn_process_denied(&format!("{}: {e}", path.display())));
                    } else if !is_gone(&e) {
                        log::debug!("procfs: dropping process {pid}: {e}");
                    }
                    false
                }
            },
        );
    }
}

/// Measures one process; `Ok(false)` when it is not the tracked process any more.
fn measure_one(
    env: &Env,
    m: &ProcessMetrics,
    pid: u32,
    p: &mut Tracked,
    buf: &mut Vec<u8>,
    acc: &mut MeasurementAccumulator,
    t: Timestamp,
) -> io::Result<bool> {
    let consumer = ResourceConsumer::Process { pid };
    let now = Instant::now();
    let Some(stat) = parse_process_stat(read_whole(&p.stat, buf, true)?) else {
        return Ok(false);
    };
    if stat.starttime != p.starttime {
        return Ok(false);
    }
    let deltas = cpu_deltas(p, &stat, env.clk_tck);
    for (value, attrs) in deltas.iter().zip(&m.cpu_kinds) {
        if let Some(v) = *value {
            let point =
                MeasurementPoint::new(t, m.cpu_time, Resource::LocalMachine, consumer.clone(), v);
            acc.push(point.with_attributes(attrs.clone()));
        }
    }
    if let (Some(user), Some(system), Some(last)) = (deltas[0], deltas[1], p.last) {
        let wall_ms = now.duration_since(last).as_secs_f64() * 1000.0;
        if wall_ms > 0.0 {
            let percent = (user + system) as f64 / wall_ms * 100.0;
            let point = MeasurementPoint::new(
                t,
                m.cpu_percent,
                Resource::LocalMachine,
                consumer.clone(),
                percent,
            );
            acc.push(point.with_attributes(m.total.clone()));
        }
    }
    p.last = Some(now);
    let Some(statm) = parse_statm(read_whole(&p.statm, buf, true)?) else {
        return Ok(true);
    };
    let page = |pages: u64| pages.saturating_mul(env.page_size);
    let kb = |kb: u64| kb.saturating_mul(1024);
    // slow_but_accurate: resident and shared from smaps_rollup (exact, where statm's
    // counters may lag), and the proportional set size; virtual from statm in both modes.
    let rollup = match &p.smaps_rollup {
        Some(f) => parse::parse_smaps_rollup(read_whole(f, buf, true)?),
        None => None,
    };
    let bytes = match rollup {
        Some(r) => [kb(r.rss), kb(r.shared), page(statm.size)],
        None => [page(statm.resident), page(statm.shared), page(statm.size)],
    };
    for (bytes, attrs) in bytes.iter().zip(&m.memory_kinds) {
        let point = MeasurementPoint::new(
            t,
            m.memory,
            Resource::LocalMachine,
            consumer.clone(),
            *bytes,
        );
        acc.push(point.with_attributes(attrs.clone()));
    }
    if let Some(r) = rollup {
        let point = MeasurementPoint::new(t, m.memory, Resource::LocalMachine, consumer, kb(r.pss));
        acc.push(point.with_attributes(m.proportional.clone()));
    }
    Ok(true)
}

/// The differences of user, system and guest time, in milliseconds (guest is also
/// counted in user time, as the kernel does).
fn cpu_deltas(p: &mut Tracked, stat: &ProcessStat<'_>, clk_tck: u64) -> [Option<u64>; 3] {
    let values = [Some(stat.utime), Some(stat.stime), stat.guest_time];
    let mut out = [None; 3];
    for ((value, diff), out) in values.iter().zip(&mut p.cpu).zip(&mut out) {
        if let Some(v) = value {
            *out = diff.update(ticks_to_ms(*v, clk_tck)).difference();
        }
    }
    out
}

/// Registers the process metrics, then the watcher's sources (one per group,
/// `procfs/group-N`) or the event handler that adds a source per announced process.
pub(crate) fn start(
    config: &ProcessesConfig,
    env: &Arc<Env>,
    alumet: &mut Registrar<'_>,
) -> anyhow::Result<()> {
    let metrics = ProcessMetrics::register(alumet)?;
    warn_if_hidepid(env);
    raise_open_files_limit();
    match config.strategy {
        Strategy::Watcher => {
            let mut filters = Vec::new();
            for g in &config.groups {
                let exe = g.regex()?;
                filters.push(GroupFilter {
                    pid: g.pid,
                    ppid: g.ppid,
                    exe,
                });
            }
            let filters = Arc::new(filters);
            for (index, g) in config.groups.iter().enumerate() {
                let set = ProcessSet::new(Arc::clone(env), metrics.clone(), u64::MAX)
                    .with_memory_mode(g.memory_mode);
                let matcher = Matcher::Group {
                    filters: Arc::clone(&filters),
                    index,
                };
                let source = ProcessSource::new(set, matcher, config.refresh_interval);
                let trigger = trigger(g.poll_interval, g.flush_interval);
                alumet.add_source(&format!("group-{index}"), source, trigger)?;
            }
        }
        Strategy::Event => {
            let handler = EventHandler::new(
                Arc::clone(env),
                metrics,
                config.events.clone(),
                config.refresh_interval,
            );
            alumet.on_event(move |event, control| handler.handle(event, control));
        }
    }
    Ok(())
}

/// Warns once at start when procfs hides other users' processes from this agent.
fn warn_if_hidepid(env: &Env) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return;
    }
    let text = std::fs::read_to_string(env.root.join("self/mountinfo"))
        .or_else(|_| std::fs::read_to_string("/proc/self/mountinfo"));
    let Ok(text) = text else { return };
    let point = std::fs::canonicalize(&env.root).unwrap_or_else(|_| env.root.clone());
    let options = parse::proc_mount_options(&text, &point.to_string_lossy());
    if let Some(value) = options.and_then(parse::hidepid) {
        log::warn!(
            "procfs: {} is mounted with hidepid={value}: the processes of other users are \
             not measured. Mount it with hidepid=0 (or with gid= a group of the agent's \
             user), or run the agent as root or with CAP_SYS_PTRACE",
            env.root.display()
        );
    }
}

/// Two files stay open per measured process: lift the soft limit on open files to the
/// hard one.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                log::debug!(
                    "procfs: cannot raise the open files limit: {}",
                    io::Error::last_os_error()
                );
            }
        }
    }
}
