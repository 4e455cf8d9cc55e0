//! perf_event counters, shared by the plugins that read them (`rapl`'s energy events,
//! `perf`'s hardware and software events): one way to open, read and scale them, through
//! `perf-event-open-sys`'s bindings of the kernel's interface.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use perf_event_open_sys::bindings::{
    perf_event_attr, PERF_FLAG_FD_CLOEXEC, PERF_FLAG_PID_CGROUP, PERF_FORMAT_GROUP,
    PERF_FORMAT_TOTAL_TIME_ENABLED, PERF_FORMAT_TOTAL_TIME_RUNNING,
};

/// An event: the `type` and `config` of `perf_event_attr`, and which privilege levels
/// it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventSpec {
    /// `PERF_TYPE_HARDWARE`, `PERF_TYPE_SOFTWARE`, `PERF_TYPE_HW_CACHE`, `PERF_TYPE_RAW`, or a
    /// PMU's dynamic type.
    pub type_: u32,
    /// The event within its type.
    pub config: u64,
    /// Count only in user space (`:u`).
    pub user_only: bool,
    /// Count only in the kernel (`:k`).
    pub kernel_only: bool,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A process, on any CPU; with `inherit`, its children and threads created after the
    /// counter opened too (as `perf stat` counts a command).
    Process {
        /// Its PID.
        pid: u32,
        /// Whether children and new threads count.
        inherit: bool,
    },
    /// Every process on one CPU (`perf stat -a`, per CPU).
    Cpu(u32),
    /// The processes of a cgroup (the open directory `cgroup`) while they run on `cpu`.
    Cgroup {
        /// The cgroup's directory, open (v2, or v1's `perf_event` hierarchy).
        cgroup: RawFd,
        /// The CPU.
        cpu: u32,
    },
}

/// One reading of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// The raw count.
    pub value: u64,
    /// Nanoseconds the counter was enabled.
    pub enabled: u64,
    /// Nanoseconds it was actually counting (less than `enabled` when the PMU was shared
    /// among more events than it has counters: multiplexing).
    pub running: u64,
}

impl Reading {
    /// The increase since `earlier` (counters only go up; a smaller reading gives 0s).
    pub fn since(&self, earlier: &Reading) -> Reading {
        Reading {
            value: self.value.saturating_sub(earlier.value),
            enabled: self.enabled.saturating_sub(earlier.enabled),
            running: self.running.saturating_sub(earlier.running),
        }
    }

    /// The count scaled for multiplexing as `perf stat` scales it: `value × enabled /
    /// running`; the value itself when it ran all the time; 0 when it never ran.
    pub fn scaled(&self) -> f64 {
        scale(self.value, self.enabled, self.running)
    }

    /// `running / enabled`: the share of the time it counted (1 when not multiplexed).
    pub fn ratio(&self) -> f64 {
        if self.enabled == 0 {
            1.0
        } else {
            self.running as f64 / self.enabled as f64
        }
    }
}

/// `value × enabled / running`, the estimate of what the counter would have counted had
/// it run all the time; `value` when `running == enabled`; 0 when it never ran.
pub fn scale(value: u64, enabled: u64, running: u64) -> f64 {
    if running == 0 {
        return 0.0;
    }
    if running >= enabled {
        return value as f64;
    }
    value as f64 * (enabled as f64 / running as f64)
}

/// One open counter.
#[derive(Debug)]
pub struct Counter {
    fd: OwnedFd,
}

fn attr_of(event: &EventSpec, read_format: u64, inherit: bool) -> perf_event_attr {
    let mut attr = perf_event_attr {
        type_: event.type_,
        size: std::mem::size_of::<perf_event_attr>() as u32,
        config: event.config,
        read_format,
        ..perf_event_attr::default()
    };
    if event.user_only {
        attr.set_exclude_kernel(1);
        attr.set_exclude_hv(1);
    }
    if event.kernel_only {
        attr.set_exclude_user(1);
        attr.set_exclude_hv(1);
    }
    if inherit {
        attr.set_inherit(1);
    }
    attr
}

fn open(
    attr: &mut perf_event_attr,
    target: Target,
    group: Option<&Counter>,
) -> io::Result<Counter> {
    let (pid, cpu, flags) = match target {
        Target::Process { pid, .. } => (pid_of(pid)?, -1, 0),
        Target::Cpu(cpu) => (-1, cpu_of(cpu)?, 0),
        Target::Cgroup { cgroup, cpu } => (cgroup, cpu_of(cpu)?, PERF_FLAG_PID_CGROUP),
    };
    let group_fd = group.map_or(-1, |g| g.fd.as_raw_fd());
    // SAFETY: attr is a valid perf_event_attr whose size field is its own size; pid, cpu,
    // group_fd and flags are as perf_event_open(2) documents them.
    let fd = unsafe {
        perf_event_open_sys::perf_event_open(
            attr,
            pid,
            cpu,
            group_fd,
            libc::c_ulong::from(flags | PERF_FLAG_FD_CLOEXEC),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new file descriptor that nothing else owns.
    Ok(Counter {
        fd: unsafe { OwnedFd::from_raw_fd(fd) },
    })
}

fn pid_of(pid: u32) -> io::Result<i32> {
    i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn cpu_of(cpu: u32) -> io::Result<i32> {
    i32::try_from(cpu).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn read_exact(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reads at most buf.len() bytes into buf from an fd the caller owns.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn words(buf: &[u8]) -> impl Iterator<Item = u64> + '_ {
    buf.chunks_exact(8).map(|c| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_ne_bytes(w)
    })
}

impl Counter {
    /// A counter of `event` for `target`, counting now, read with its times.
    pub fn open(event: &EventSpec, target: Target) -> io::Result<Counter> {
        let inherit = matches!(target, Target::Process { inherit: true, .. });
        let format = u64::from(PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING);
        let mut attr = attr_of(event, format, inherit);
        open(&mut attr, target, None)
    }

    /// A counter of the calling thread, disabled, inherited by the processes and threads
    /// it starts from now on and enabled in each at its `exec`: opened just before a
    /// command is spawned, it counts the command (and its children) from its first
    /// instruction, as `perf stat` does, and nothing of the caller. Read it with
    /// [`Counter::read`]: the counts of the children, alive or ended.
    pub fn open_for_next_exec(event: &EventSpec) -> io::Result<Counter> {
        let format = u64::from(PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING);
        let mut attr = attr_of(event, format, true);
        attr.set_disabled(1);
        attr.set_enable_on_exec(1);
        open(
            &mut attr,
            Target::Process {
                pid: 0,
                inherit: true,
            },
            None,
        )
    }

    /// A bare counter (the count alone, no times) of `event` on `cpu` for every process:
    /// what RAPL's energy events need.
    pub fn open_bare_on_cpu(event: &EventSpec, cpu: u32) -> io::Result<Counter> {
        let mut attr = attr_of(event, 0, false);
        open(&mut attr, Target::Cpu(cpu), None)
    }

    /// The count of a bare counter.
    pub fn read_count(&self) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        match read_exact(self.fd.as_raw_fd(), &mut buf)? {
            8 => Ok(u64::from_ne_bytes(buf)),
            _ => Err(short_read()),
        }
    }

    /// The count and its times, of a counter from [`Counter::open`].
    pub fn read(&self) -> io::Result<Reading> {
        let mut buf = [0u8; 24];
        if read_exact(self.fd.as_raw_fd(), &mut buf)? != 24 {
            return Err(short_read());
        }
        let mut w = words(&buf);
        let (value, enabled, running) = (
            w.next().unwrap_or(0),
            w.next().unwrap_or(0),
            w.next().unwrap_or(0),
        );
        Ok(Reading {
            value,
            enabled,
            running,
        })
    }
}

fn short_read() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "short read of a perf_event counter",
    )
}

/// Counters opened as one group: the PMU schedules them together (they share their
/// enabled and running times), read in one system call.
#[derive(Debug)]
pub struct Group {
    leader: Counter,
    members: Vec<Counter>,
    buf: Vec<u8>,
}

impl Group {
    /// A group of `events` for `target` (not inherited: the kernel does not read inherited
    /// groups). Fails when one of them cannot be opened, or when together they do not fit
    /// on the PMU (the kernel then refuses the member that does not fit).
    pub fn open(events: &[EventSpec], target: Target) -> io::Result<Group> {
        let format = u64::from(
            PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING,
        );
        let Some((first, rest)) = events.split_first() else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let mut attr = attr_of(first, format, false);
        let leader = open(&mut attr, target, None)?;
        let mut members = Vec::with_capacity(rest.len());
        for e in rest {
            let mut attr = attr_of(e, format, false);
            members.push(open(&mut attr, target, Some(&leader))?);
        }
        Ok(Group {
            leader,
            buf: vec![0u8; 8 * (3 + events.len())],
            members,
        })
    }

    /// How many counters.
    pub fn len(&self) -> usize {
        1 + self.members.len()
    }

    /// Whether it has no counter (never: a group has its leader).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads every counter of the group into `out` (cleared first), in the order they
    /// were given; they share the times.
    pub fn read(&mut self, out: &mut Vec<Reading>) -> io::Result<()> {
        let n = read_exact(self.leader.fd.as_raw_fd(), &mut self.buf)?;
        if n != self.buf.len() {
            return Err(short_read());
        }
        let mut w = words(&self.buf);
        let (nr, enabled, running) = (
            w.next().unwrap_or(0),
            w.next().unwrap_or(0),
            w.next().unwrap_or(0),
        );
        if nr as usize != self.len() {
            return Err(short_read());
        }
        out.clear();
        out.extend(w.map(|value| Reading {
            value,
            enabled,
            running,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perf_event_open_sys::bindings::{
        PERF_COUNT_SW_PAGE_FAULTS, PERF_COUNT_SW_PAGE_FAULTS_MIN, PERF_COUNT_SW_TASK_CLOCK,
        PERF_TYPE_SOFTWARE,
    };

    /// Recorded (value, enabled, running) triples, as multiplexed counters give them.
    #[test]
    fn scaling_is_value_times_enabled_over_running() {
        for (value, enabled, running, expected) in [
            (1_000, 2_000, 1_000, 2_000.0),
            (625, 1_000_000, 625_000, 1_000.0),
            (7, 10, 10, 7.0),
            (7, 10, 0, 0.0),
            (0, 10, 5, 0.0),
            (3, 9, 12, 3.0), // running above enabled (rounding): not scaled down
        ] {
            assert_eq!(
                scale(value, enabled, running),
                expected,
                "{value} {enabled} {running}"
            );
        }
        let r = Reading {
            value: 500,
            enabled: 800,
            running: 500,
        };
        assert_eq!(r.ratio(), 0.625);
        let earlier = Reading {
            value: 100,
            enabled: 300,
            running: 100,
        };
        assert_eq!(
            r.since(&earlier),
            Reading {
                value: 400,
                enabled: 500,
                running: 400
            }
        );
        assert_eq!(r.since(&earlier).scaled(), 500.0);
    }

    #[test]
    fn software_counters_of_this_process_count_its_work() {
        let task_clock = EventSpec {
            type_: PERF_TYPE_SOFTWARE,
            config: u64::from(PERF_COUNT_SW_TASK_CLOCK),
            user_only: false,
            kernel_only: false,
        };
        let faults = EventSpec {
            config: u64::from(PERF_COUNT_SW_PAGE_FAULTS),
            ..task_clock
        };
        let me = Target::Process {
            pid: 0,
            inherit: false,
        };
        // Two events of one PMU (task-clock is a PMU of its own: the kernel does not read
        // it as another PMU's group member).
        let minor = EventSpec {
            config: u64::from(PERF_COUNT_SW_PAGE_FAULTS_MIN),
            ..faults
        };
        let Ok(mut group) = Group::open(&[faults, minor], me) else {
            // perf_event_paranoid 3 or 4 forbids even this: nothing to check here.
            return;
        };
        let mut before = Vec::new();
        group.read(&mut before).expect("reads");
        // 64 fresh pages, each written once: 64 faults.
        let len = 64 << 12;
        // SAFETY: an anonymous private mapping of `len` bytes, unmapped below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        for page in 0..64 {
            // SAFETY: within the mapping.
            unsafe { std::ptr::write_volatile(map.cast::<u8>().add(page << 12), 1) };
        }
        let mut after = Vec::new();
        group.read(&mut after).expect("reads");
        assert!(
            after[0].value >= before[0].value + 64,
            "the fresh pages faulted: {before:?} {after:?}"
        );
        assert!(
            after[1].value >= before[1].value + 64,
            "minor faults: {before:?} {after:?}"
        );
        let clock = Counter::open(&task_clock, me).expect("opens");
        let (a, b) = (clock.read().expect("reads"), clock.read().expect("reads"));
        assert!(
            b.value >= a.value && b.enabled >= a.enabled,
            "task-clock goes on"
        );
        assert_eq!(
            after[0].enabled, after[1].enabled,
            "a group shares its times"
        );
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(map, len) };
    }
}
