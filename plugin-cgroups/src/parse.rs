//! Pure parsers of the cgroup files, v1 and v2: bytes in, values out, no I/O. None panics,
//! whatever the input; a file that does not parse gives `None` (the caller says which).

use linux_parse::proc::parse_u64;

fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&c| c == b'\n')
}

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    (line.split(|c| c.is_ascii_whitespace())).filter(|f| !f.is_empty())
}

/// A file holding one number: `cpuacct.usage` (ns), `memory.current`,
/// `memory.usage_in_bytes` (bytes).
pub fn parse_single(text: &[u8]) -> Option<u64> {
    let mut f = fields(text);
    let value = parse_u64(f.next()?)?;
    f.next().is_none().then_some(value)
}

/// At or above this, a v1 `memory.limit_in_bytes` means "no limit" (the kernel writes
/// `PAGE_COUNTER_MAX` pages in bytes: 9223372036854771712 with 4 KiB pages; no one sets a
/// limit of 4 EiB).
pub const V1_UNLIMITED: u64 = 1 << 62;

/// A memory limit: `memory.max` (v2: a number or `max`) or `memory.limit_in_bytes` (v1: a
/// number, huge when unlimited). `Some(None)`: no limit is set; `None`: not a limit.
pub fn parse_limit(text: &[u8]) -> Option<Option<u64>> {
    let mut f = fields(text);
    let first = f.next()?;
    if f.next().is_some() {
        return None;
    }
    if first == b"max" {
        return Some(None);
    }
    let value = parse_u64(first)?;
    Some((value < V1_UNLIMITED).then_some(value))
}

/// User and system time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserSystem {
    /// In user mode.
    pub user: u64,
    /// In kernel mode.
    pub system: u64,
}

/// v1 `cpuacct.stat`: `user N` and `system N`, in clock ticks (`USER_HZ`).
pub fn parse_cpuacct_stat(text: &[u8]) -> Option<UserSystem> {
    let (mut user, mut system) = (None, None);
    for line in lines(text) {
        let mut f = fields(line);
        match (f.next(), f.next()) {
            (Some(b"user"), Some(v)) => user = parse_u64(v),
            (Some(b"system"), Some(v)) => system = parse_u64(v),
            _ => {}
        }
    }
    Some(UserSystem {
        user: user?,
        system: system?,
    })
}

/// v2 `cpu.stat`: total, user and system CPU time, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuStat {
    /// `usage_usec`.
    pub usage: u64,
    /// `user_usec` and `system_usec`, when both are there.
    pub split: Option<UserSystem>,
}

/// v2 `cpu.stat` (`usage_usec`, `user_usec`, `system_usec` among other keys). `None`
/// without `usage_usec`: v1's `cpu.stat` (throttling only) gives `None`.
pub fn parse_cpu_stat(text: &[u8]) -> Option<CpuStat> {
    let (mut usage, mut user, mut system) = (None, None, None);
    for line in lines(text) {
        let mut f = fields(line);
        let (Some(key), Some(v)) = (f.next(), f.next()) else {
            continue;
        };
        match key {
            b"usage_usec" => usage = parse_u64(v),
            b"user_usec" => user = parse_u64(v),
            b"system_usec" => system = parse_u64(v),
            _ => {}
        }
    }
    let split = match (user, system) {
        (Some(user), Some(system)) => Some(UserSystem { user, system }),
        _ => None,
    };
    Some(CpuStat {
        usage: usage?,
        split,
    })
}

/// Bytes read and written, summed over the block devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoBytes {
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub write: u64,
}

/// v2 `io.stat`: one line per device, `MAJ:MIN rbytes=N wbytes=N rios=N ...`. An empty
/// file (no I/O yet) is zero.
pub fn parse_io_stat(text: &[u8]) -> Option<IoBytes> {
    let mut sum = IoBytes::default();
    for line in lines(text) {
        for field in fields(line).skip(1) {
            let Some(eq) = field.iter().position(|&c| c == b'=') else {
                continue;
            };
            let (key, value) = (&field[..eq], &field[eq + 1..]);
            match key {
                b"rbytes" => sum.read = sum.read.wrapping_add(parse_u64(value)?),
                b"wbytes" => sum.write = sum.write.wrapping_add(parse_u64(value)?),
                _ => {}
            }
        }
    }
    Some(sum)
}

/// v1 `blkio.throttle.io_service_bytes`: `MAJ:MIN Read N`, `MAJ:MIN Write N` (and Sync,
/// Async, Discard, Total) per device, then `Total N`.
pub fn parse_blkio_bytes(text: &[u8]) -> Option<IoBytes> {
    let mut sum = IoBytes::default();
    for line in lines(text) {
        let mut f = fields(line);
        let (Some(_device), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        match op {
            b"Read" => sum.read = sum.read.wrapping_add(parse_u64(v)?),
            b"Write" => sum.write = sum.write.wrapping_add(parse_u64(v)?),
            _ => {}
        }
    }
    Some(sum)
}

/// Stall time from a `*.pressure` file (PSI), in microseconds since the cgroup's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pressure {
    /// `some … total=N`: time during which at least one task stalled.
    pub some: Option<u64>,
    /// `full … total=N`: time during which every non-idle task stalled.
    pub full: Option<u64>,
}

/// `cpu.pressure`, `memory.pressure`, `io.pressure`:
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=N` and the same for `full`.
pub fn parse_pressure(text: &[u8]) -> Option<Pressure> {
    let mut p = Pressure::default();
    for line in lines(text) {
        let mut f = fields(line);
        let Some(kind) = f.next() else { continue };
        let total = f
            .find_map(|field| field.strip_prefix(b"total="))
            .and_then(parse_u64);
        match kind {
            b"some" => p.some = total,
            b"full" => p.full = total,
            _ => {}
        }
    }
    (p.some.is_some() || p.full.is_some()).then_some(p)
}

/// Parts of the memory charged to a cgroup, in bytes, from `memory.stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStat {
    /// Anonymous memory (v2 `anon`, v1 `total_rss`).
    pub anonymous: Option<u64>,
    /// Page cache (v2 `file`, v1 `total_cache`).
    pub file: Option<u64>,
    /// Kernel stacks (v2 `kernel_stack`).
    pub kernel_stack: Option<u64>,
    /// Page tables (v2 `pagetables`).
    pub pagetables: Option<u64>,
}

/// `memory.stat`: v2 keys, or with `v1`, the hierarchical `total_*` keys of v1 (as
/// `memory.usage_in_bytes`, they count the cgroups below). `None` without any of them.
pub fn parse_memory_stat(text: &[u8], v1: bool) -> Option<MemoryStat> {
    let mut m = MemoryStat::default();
    let (anon, file): (&[u8], &[u8]) = if v1 {
        (b"total_rss", b"total_cache")
    } else {
        (b"anon", b"file")
    };
    for line in lines(text) {
        let mut f = fields(line);
        let (Some(key), Some(v)) = (f.next(), f.next()) else {
            continue;
        };
        let slot = match key {
            k if k == anon => &mut m.anonymous,
            k if k == file => &mut m.file,
            b"kernel_stack" if !v1 => &mut m.kernel_stack,
            b"pagetables" if !v1 => &mut m.pagetables,
            _ => continue,
        };
        *slot = parse_u64(v);
    }
    (m != MemoryStat::default()).then_some(m)
}

/// v2 `cgroup.events`: whether a process runs in the cgroup or below (`populated 1`).
pub fn parse_populated(text: &[u8]) -> Option<bool> {
    lines(text).find_map(|line| {
        let mut f = fields(line);
        match (f.next(), f.next()) {
            (Some(b"populated"), Some(b"1")) => Some(true),
            (Some(b"populated"), Some(b"0")) => Some(false),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_numbers() {
        assert_eq!(parse_single(b"9839360350231\n"), Some(9839360350231));
        assert_eq!(parse_single(b"0"), Some(0));
        assert_eq!(parse_single(b""), None);
        assert_eq!(parse_single(b"12 13\n"), None);
        assert_eq!(parse_single(b"-1\n"), None);
    }

    #[test]
    fn limits_v1_unlimited_and_v2_max_are_not_set() {
        assert_eq!(parse_limit(b"max\n"), Some(None));
        assert_eq!(parse_limit(b"9223372036854771712\n"), Some(None));
        // 64 KiB pages.
        assert_eq!(parse_limit(b"9223372036854710272\n"), Some(None));
        assert_eq!(parse_limit(b"536870912\n"), Some(Some(536870912)));
        assert_eq!(parse_limit(b"maximum\n"), None);
        assert_eq!(parse_limit(b"\n"), None);
    }

    #[test]
    fn cpuacct_stat() {
        let us = parse_cpuacct_stat(b"user 762522\nsystem 221413\n");
        assert_eq!(
            us,
            Some(UserSystem {
                user: 762522,
                system: 221413
            })
        );
        assert_eq!(parse_cpuacct_stat(b"user 1\n"), None);
        assert_eq!(parse_cpuacct_stat(b"user x\nsystem 2\n"), None);
    }

    #[test]
    fn cpu_stat_v2_and_v1() {
        let v2 = b"usage_usec 9646918210\nuser_usec 7476089383\nsystem_usec 2170828826\nnice_usec 71641031\nnr_periods 0\n";
        let s = parse_cpu_stat(v2).unwrap();
        assert_eq!(s.usage, 9646918210);
        assert_eq!(
            s.split,
            Some(UserSystem {
                user: 7476089383,
                system: 2170828826
            })
        );
        assert_eq!(
            parse_cpu_stat(b"usage_usec 5\n"),
            Some(CpuStat {
                usage: 5,
                split: None
            })
        );
        // v1's cpu.stat: throttling only.
        assert_eq!(
            parse_cpu_stat(b"nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"),
            None
        );
    }

    #[test]
    fn io_stat_sums_devices() {
        let text = b"8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
                     8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n";
        assert_eq!(
            parse_io_stat(text),
            Some(IoBytes {
                read: 1459200 + 90430464,
                write: 314773504 + 299008000
            })
        );
        assert_eq!(parse_io_stat(b""), Some(IoBytes::default()));
        assert_eq!(parse_io_stat(b"8:0 rbytes=x\n"), None);
    }

    #[test]
    fn blkio_sums_read_and_write_of_devices_not_the_total() {
        let text = b"8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\n\
                     8:16 Read 1\n8:16 Write 2\nTotal 12291\n";
        assert_eq!(
            parse_blkio_bytes(text),
            Some(IoBytes {
                read: 4097,
                write: 8194
            })
        );
        assert_eq!(parse_blkio_bytes(b"Total 0\n"), Some(IoBytes::default()));
    }

    #[test]
    fn pressure_totals() {
        let text = b"some avg10=0.00 avg60=0.38 avg300=2.46 total=2345660537\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n";
        assert_eq!(
            parse_pressure(text),
            Some(Pressure {
                some: Some(2345660537),
                full: Some(7)
            })
        );
        let cpu_old = b"some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n";
        assert_eq!(
            parse_pressure(cpu_old),
            Some(Pressure {
                some: Some(12),
                full: None
            })
        );
        assert_eq!(parse_pressure(b"garbage\n"), None);
    }

    #[test]
    fn memory_stat_v2_and_v1() {
        let v2 = b"anon 1048576\nfile 2097152\nkernel 40960\nkernel_stack 16384\npagetables 8192\nsec_pagetables 0\nfile_mapped 4096\n";
        let expected = MemoryStat {
            anonymous: Some(1048576),
            file: Some(2097152),
            kernel_stack: Some(16384),
            pagetables: Some(8192),
        };
        assert_eq!(parse_memory_stat(v2, false), Some(expected));
        // v1: this cgroup's own `rss` and `cache` are not what memory.usage_in_bytes counts.
        let v1 = b"cache 14237696\nrss 3932160\nrss_huge 0\ntotal_cache 20757712896\ntotal_rss 195276800\n";
        let expected = MemoryStat {
            anonymous: Some(195276800),
            file: Some(20757712896),
            ..MemoryStat::default()
        };
        assert_eq!(parse_memory_stat(v1, true), Some(expected));
        assert_eq!(parse_memory_stat(b"pgfault 12\n", false), None);
    }

    #[test]
    fn populated() {
        assert_eq!(parse_populated(b"populated 1\nfrozen 0\n"), Some(true));
        assert_eq!(parse_populated(b"populated 0\nfrozen 0\n"), Some(false));
        assert_eq!(parse_populated(b"frozen 0\n"), None);
        assert_eq!(parse_populated(b"populated 2\n"), None);
    }

    #[test]
    fn no_input_panics() {
        let inputs: [&[u8]; 6] = [b"", b"\n\n", b"=", b"a b c d", b"\xff\xfe", b"total="];
        for i in inputs {
            let _ = (parse_single(i), parse_limit(i), parse_cpuacct_stat(i));
            let _ = (parse_cpu_stat(i), parse_io_stat(i), parse_blkio_bytes(i));
            let _ = (
                parse_pressure(i),
                parse_populated(i),
                parse_memory_stat(i, true),
            );
        }
    }
}
