//! Pure parsers of the `/proc` files: bytes in, values out.
//!
//! They do no I/O, never allocate (except [`metric_name`], used once at start) and never
//! panic: a malformed line is skipped, a malformed file gives `None`. The parsers that
//! read many lines call a closure for each record instead of building a collection, so
//! that a source can parse into its own state at every poll without allocating.

/// The columns of a `cpu` line of `/proc/stat`, in the kernel's order.
pub const CPU_COLUMNS: [&str; 10] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

/// The receive columns of `/proc/net/dev`, in the kernel's order (the transmit columns
/// are [`NET_TX_COLUMNS`]).
pub const NET_RX_COLUMNS: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];

/// The transmit columns of `/proc/net/dev`, in the kernel's order.
pub const NET_TX_COLUMNS: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

/// The tick counters of one `cpu` line of `/proc/stat`. Older kernels have fewer
/// columns (no `steal` before 2.6.11, no `guest` before 2.6.24, no `guest_nice` before
/// 2.6.33): `len` says how many are present.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// The counters, in the order of [`CPU_COLUMNS`], in clock ticks (`CLK_TCK`).
    pub values: [u64; 10],
    /// How many columns the line has.
    pub len: usize,
}

impl CpuTicks {
    /// The counter of column `index` of [`CPU_COLUMNS`], if the line has it.
    pub fn get(&self, index: usize) -> Option<u64> {
        (index < self.len).then(|| self.values[index])
    }
}

/// One line of `/proc/stat` that this plugin uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StatLine {
    /// `cpu` (all CPUs: `cpu` is `None`) or `cpuN`.
    Cpu {
        /// The CPU number, `None` for the total line.
        cpu: Option<u32>,
        /// Its counters.
        ticks: CpuTicks,
    },
    /// `ctxt`: context switches since boot.
    ContextSwitches(u64),
    /// `processes`: forks since boot.
    Forks(u64),
    /// `procs_running`: runnable tasks now.
    ProcsRunning(u64),
    /// `procs_blocked`: tasks blocked on I/O now.
    ProcsBlocked(u64),
}

/// An unsigned decimal integer made of ASCII digits only.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

fn fields(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

fn lines(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&c| c == b'\n')
}

/// Calls `f` for each line of `/proc/stat` that [`StatLine`] describes, in file order.
pub fn parse_stat(text: &[u8], mut f: impl FnMut(StatLine)) {
    for line in lines(text) {
        let mut it = fields(line);
        let Some(key) = it.next() else { continue };
        if let Some(n) = key.strip_prefix(b"cpu") {
            let cpu = if n.is_empty() {
                None
            } else {
                match parse_u64(n).and_then(|n| u32::try_from(n).ok()) {
                    Some(n) => Some(n),
                    None => continue,
                }
            };
            let mut ticks = CpuTicks::default();
            for (slot, field) in ticks.values.iter_mut().zip(it) {
                let Some(v) = parse_u64(field) else { break };
                *slot = v;
                ticks.len += 1;
            }
            // Every kernel since 2.6 has at least user, nice, system and idle.
            if ticks.len >= 4 {
                f(StatLine::Cpu { cpu, ticks });
            }
            continue;
        }
        let make: fn(u64) -> StatLine = match key {
            b"ctxt" => StatLine::ContextSwitches,
            b"processes" => StatLine::Forks,
            b"procs_running" => StatLine::ProcsRunning,
            b"procs_blocked" => StatLine::ProcsBlocked,
            _ => continue,
        };
        if let Some(v) = it.next().and_then(parse_u64) {
            f(make(v));
        }
    }
}

/// One entry of `/proc/meminfo`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MeminfoEntry<'a> {
    /// The key, without its colon: `MemTotal`, `Active(anon)`, `HugePages_Total`.
    pub key: &'a str,
    /// The number as written.
    pub value: u64,
    /// Whether the number is followed by `kB` (otherwise it is a count, as for
    /// `HugePages_Total`).
    pub kib: bool,
}

impl MeminfoEntry<'_> {
    /// The value in bytes for a `kB` entry, the count otherwise.
    pub fn scaled(&self) -> u64 {
        if self.kib {
            self.value.saturating_mul(1024)
        } else {
            self.value
        }
    }
}

/// Calls `f` for each well-formed entry of `/proc/meminfo`, in file order.
pub fn parse_meminfo(text: &[u8], mut f: impl FnMut(MeminfoEntry<'_>)) {
    for line in lines(text) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let Ok(key) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        let key = key.trim();
        let mut it = fields(&line[colon + 1..]);
        let Some(value) = it.next().and_then(parse_u64).filter(|_| !key.is_empty()) else {
            continue;
        };
        let kib = match it.next() {
            None => false,
            Some(b"kB") => true,
            Some(_) => continue,
        };
        f(MeminfoEntry { key, value, kib });
    }
}

/// The counters of one interface in `/proc/net/dev`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NetDevLine<'a> {
    /// The interface name, `eth0`.
    pub interface: &'a str,
    /// Receive counters, in the order of [`NET_RX_COLUMNS`].
    pub rx: [u64; 8],
    /// Transmit counters, in the order of [`NET_TX_COLUMNS`].
    pub tx: [u64; 8],
}

/// Calls `f` for each interface line of `/proc/net/dev`, in file order. The two header
/// lines have no `:` and are skipped. Old kernels wrote no space after the colon when
/// the byte counter was wide (`eth0:1234567890`): that works too. An interface name
/// cannot contain `:`, so the first one ends it.
pub fn parse_net_dev(text: &[u8], mut f: impl FnMut(NetDevLine<'_>)) {
    'lines: for line in lines(text) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        let mut values = [0u64; 16];
        let mut it = fields(&line[colon + 1..]);
        for slot in values.iter_mut() {
            match it.next().and_then(parse_u64) {
                Some(v) => *slot = v,
                None => continue 'lines,
            }
        }
        let (mut rx, mut tx) = ([0u64; 8], [0u64; 8]);
        rx.copy_from_slice(&values[..8]);
        tx.copy_from_slice(&values[8..]);
        f(NetDevLine {
            interface: name.trim(),
            rx,
            tx,
        });
    }
}

/// The fields of `/proc/PID/stat` that this plugin uses (see proc(5) for their numbers).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProcessStat<'a> {
    /// Field 1.
    pub pid: u32,
    /// Field 2, without its parentheses: any bytes, spaces and `)` included.
    pub comm: &'a [u8],
    /// Field 3: `R`, `S`, `Z`...
    pub state: u8,
    /// Field 4.
    pub ppid: u32,
    /// Field 14: user time in clock ticks (guest time included).
    pub utime: u64,
    /// Field 15: system time in clock ticks.
    pub stime: u64,
    /// Field 22: when the process started, in clock ticks since boot. A pid and its
    /// start time identify a process: a reused pid has another start time.
    pub starttime: u64,
    /// Field 43 (since Linux 2.6.24): time spent running a virtual CPU, in clock ticks.
    pub guest_time: Option<u64>,
}

/// Parses `/proc/PID/stat`. The command name may hold spaces, parentheses and even
/// newlines, so the fields after it are found from the **last** `)`.
pub fn parse_process_stat(text: &[u8]) -> Option<ProcessStat<'_>> {
    let open = text.iter().position(|&c| c == b'(')?;
    let close = text.iter().rposition(|&c| c == b')')?;
    if close < open {
        return None;
    }
    let pid = parse_u64(text[..open].trim_ascii()).and_then(|p| u32::try_from(p).ok())?;
    let mut rest = fields(&text[close + 1..]);
    // `rest` starts at field 3; field N is its item N - 3.
    let state = *rest.next()?.first()?;
    let mut num = |skip: usize| rest.nth(skip).and_then(parse_u64);
    let ppid = u32::try_from(num(0)?).ok()?; // 4
    let utime = num(9)?; // 14
    let stime = num(0)?; // 15
    let starttime = num(6)?; // 22
    let guest_time = num(20); // 43
    Some(ProcessStat {
        pid,
        comm: &text[open + 1..close],
        state,
        ppid,
        utime,
        stime,
        starttime,
        guest_time,
    })
}

/// The first fields of `/proc/PID/statm`, in pages.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Statm {
    /// Total program size (virtual memory).
    pub size: u64,
    /// Resident set size.
    pub resident: u64,
    /// Resident pages backed by a file or shared memory.
    pub shared: u64,
}

/// Parses `/proc/PID/statm`.
pub fn parse_statm(text: &[u8]) -> Option<Statm> {
    let mut it = fields(text).map(parse_u64);
    Some(Statm {
        size: it.next()??,
        resident: it.next()??,
        shared: it.next()??,
    })
}

/// What `/proc/PID/smaps_rollup` sums over every mapping of a process, in kB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmapsRollup {
    /// `Rss:`: resident pages.
    pub rss: u64,
    /// `Pss:`: resident pages, each shared one divided by the processes that map it.
    pub pss: u64,
    /// `Shared_Clean:` plus `Shared_Dirty:`: resident pages that other processes map too.
    pub shared: u64,
}

/// Parses `/proc/PID/smaps_rollup`; `None` unless it has the `Rss:`, `Pss:`,
/// `Shared_Clean:` and `Shared_Dirty:` lines.
pub fn parse_smaps_rollup(text: &[u8]) -> Option<SmapsRollup> {
    let (mut rss, mut pss, mut clean, mut dirty) = (None, None, None, None);
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let slot = match &line[..colon] {
            b"Rss" => &mut rss,
            b"Pss" => &mut pss,
            b"Shared_Clean" => &mut clean,
            b"Shared_Dirty" => &mut dirty,
            _ => continue,
        };
        *slot = Some(fields(&line[colon + 1..]).next().and_then(parse_u64)?);
    }
    Some(SmapsRollup {
        rss: rss?,
        pss: pss?,
        shared: clean?.checked_add(dirty?)?,
    })
}

/// The first number of `/proc/uptime` (seconds since boot, with a fraction), in clock
/// ticks of `clk_tck` per second: the unit of [`ProcessStat::starttime`].
pub fn parse_uptime_ticks(text: &[u8], clk_tck: u64) -> Option<u64> {
    let first = fields(text).next()?;
    let (secs, frac) = match first.iter().position(|&c| c == b'.') {
        Some(dot) => (&first[..dot], &first[dot + 1..]),
        None => (first, &b""[..]),
    };
    let secs = parse_u64(secs)?;
    let frac_ticks = if frac.is_empty() {
        0
    } else {
        let digits = u32::try_from(frac.len()).ok().filter(|&d| d <= 9)?;
        parse_u64(frac)?.checked_mul(clk_tck)? / 10u64.pow(digits)
    };
    secs.checked_mul(clk_tck)?.checked_add(frac_ticks)
}

/// The super options (`rw,hidepid=2,gid=5`) of the last `proc` mount at `mount_point`
/// in a `/proc/self/mountinfo` text.
pub fn proc_mount_options<'a>(mountinfo: &'a str, mount_point: &str) -> Option<&'a str> {
    mountinfo.lines().rev().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let point = before.split(' ').nth(4)?;
        let mut after = after.split(' ');
        let fstype = after.next()?;
        let options = after.nth(1)?;
        (point == mount_point && fstype == "proc").then_some(options)
    })
}

/// The `hidepid=` value of procfs mount options, when it hides something (not `0` or
/// `off`).
pub fn hidepid(options: &str) -> Option<&str> {
    options
        .split(',')
        .filter_map(|o| o.strip_prefix("hidepid="))
        .find(|v| !matches!(*v, "0" | "off"))
}

/// The metric name of a `/proc/meminfo` key, as the public Alumet names it: keys with
/// `_` are lowercased (`Committed_AS`: `committed_as`), the others are split before
/// each capital that follows a lowercase letter or ends an acronym (`MemTotal`:
/// `mem_total`, `SReclaimable`: `s_reclaimable`); other characters become `_`
/// (`Active(anon)`: `active_anon`).
pub fn metric_name(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let has_underscore = key.contains('_');
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 && !has_underscore {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase() || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}
