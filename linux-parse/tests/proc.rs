//! The parsers of `linux_parse::proc`: small cases, and files from several kernels
//! (`tests/fixtures/proc/<case>/<file>`), each compared with its golden output
//! `<file>.golden`. The parser is chosen by file name:
//! `stat`, `meminfo`, `net_dev`, `statm`, `uptime`, `*.stat` (a `/proc/PID/stat`).
//! Set `PROCFS_BLESS=1` to rewrite the golden files (then read the diff).
#![allow(clippy::unwrap_used)]

use std::fmt::Write;
use std::path::{Path, PathBuf};

use linux_parse::proc::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

fn stat(text: &[u8]) -> String {
    let mut out = String::new();
    parse_stat(text, |line| match line {
        StatLine::Cpu { cpu, ticks } => {
            match cpu {
                Some(n) => write!(out, "cpu{n}").unwrap(),
                None => out.push_str("cpu total"),
            }
            for (i, name) in CPU_COLUMNS.iter().enumerate() {
                if let Some(v) = ticks.get(i) {
                    write!(out, " {name}={v}").unwrap();
                }
            }
            out.push('\n');
        }
        other => writeln!(out, "{other:?}").unwrap(),
    });
    out
}

fn meminfo(text: &[u8]) -> String {
    let mut out = String::new();
    parse_meminfo(text, |e| {
        let unit = if e.kib { " kB" } else { "" };
        let (key, value, scaled) = (e.key, e.value, e.scaled());
        let name = metric_name(key);
        writeln!(out, "{key}: {value}{unit} = {scaled} -> {name}").unwrap();
    });
    out
}

fn net_dev(text: &[u8]) -> String {
    let mut out = String::new();
    parse_net_dev(text, |l| {
        write!(out, "{} rx", l.interface).unwrap();
        for (name, v) in NET_RX_COLUMNS.iter().zip(l.rx) {
            write!(out, " {name}={v}").unwrap();
        }
        out.push_str(" tx");
        for (name, v) in NET_TX_COLUMNS.iter().zip(l.tx) {
            write!(out, " {name}={v}").unwrap();
        }
        out.push('\n');
    });
    out
}

fn process_stat(text: &[u8]) -> String {
    match parse_process_stat(text) {
        Some(s) => format!(
            "pid={} comm={:?} state={} ppid={} utime={} stime={} starttime={} guest_time={:?}\n",
            s.pid,
            String::from_utf8_lossy(s.comm),
            s.state as char,
            s.ppid,
            s.utime,
            s.stime,
            s.starttime,
            s.guest_time
        ),
        None => "None\n".to_owned(),
    }
}

fn parsed(path: &Path) -> Option<String> {
    let text = std::fs::read(path).unwrap();
    let name = path.file_name()?.to_str()?;
    Some(match name {
        "stat" => stat(&text),
        "meminfo" => meminfo(&text),
        "net_dev" => net_dev(&text),
        "statm" => format!("{:?}\n", parse_statm(&text)),
        "uptime" => format!(
            "ticks at 100 Hz: {:?}, at 250 Hz: {:?}\n",
            parse_uptime_ticks(&text, 100),
            parse_uptime_ticks(&text, 250)
        ),
        _ if name.ends_with(".stat") => process_stat(&text),
        _ => return None,
    })
}

#[test]
fn parsers_match_golden_outputs() {
    let bless = std::env::var_os("PROCFS_BLESS").is_some();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    for case in cases {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let Some(actual) = parsed(&file) else {
                continue;
            };
            let golden = PathBuf::from(format!("{}.golden", file.display()));
            if bless {
                std::fs::write(&golden, &actual).unwrap();
            }
            let expected = std::fs::read_to_string(&golden).unwrap_or_default();
            if actual != expected {
                failures.push(format!("{}:\n{actual}", golden.display()));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "differences (PROCFS_BLESS=1 rewrites):\n{}",
        failures.join("\n")
    );
    // 4 kernels + malformed inputs + 8 process stat lines.
    assert!(checked >= 25, "only {checked} fixture files");
}

#[test]
fn integers_are_digits_only_and_never_overflow() {
    assert_eq!(parse_u64(b"0"), Some(0));
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    for bad in [
        &b""[..],
        b"18446744073709551616",
        b"-1",
        b"1.5",
        b"+3",
        b" 1",
    ] {
        assert_eq!(parse_u64(bad), None, "{bad:?}");
    }
}

#[test]
fn meminfo_keys_become_snake_case_metric_names() {
    let cases = [
        ("MemTotal", "mem_total"),
        ("SReclaimable", "s_reclaimable"),
        ("Active(anon)", "active_anon"),
        ("Committed_AS", "committed_as"),
        ("HugePages_Total", "hugepages_total"),
        ("DirectMap4k", "direct_map4k"),
        ("Cached", "cached"),
    ];
    for (key, name) in cases {
        assert_eq!(metric_name(key), name);
    }
}

#[test]
fn hidepid_is_found_on_the_procfs_mount() {
    let mountinfo = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                     30 22 0:40 / /proc rw,relatime - proc proc rw,hidepid=invisible,gid=4\n\
                     31 1 0:41 / /host/proc rw - proc proc rw,hidepid=0\n";
    let opts = proc_mount_options(mountinfo, "/proc");
    assert_eq!(opts, Some("rw,hidepid=invisible,gid=4"));
    assert_eq!(opts.and_then(hidepid), Some("invisible"));
    let host = proc_mount_options(mountinfo, "/host/proc");
    assert_eq!(host.and_then(hidepid), None);
    assert_eq!(proc_mount_options(mountinfo, "/sys"), None);
}

#[test]
fn smaps_rollup_gives_rss_pss_and_shared_in_kb() {
    let text = b"55ebe1387000-7ffc9c65e000 ---p 00000000 00:00 0                          [rollup]\nRss:                1716 kB\nPss:                 262 kB\nPss_Dirty:           108 kB\nShared_Clean:       1572 kB\nShared_Dirty:          4 kB\nPrivate_Clean:         0 kB\n";
    assert_eq!(
        parse_smaps_rollup(text),
        Some(SmapsRollup {
            rss: 1716,
            pss: 262,
            shared: 1576
        })
    );
    // Pss_Dirty is not Pss; a missing or garbled line gives nothing.
    assert_eq!(
        parse_smaps_rollup(b"Rss: 1 kB\nPss_Dirty: 3 kB\nShared_Clean: 0 kB\nShared_Dirty: 0 kB\n"),
        None
    );
    assert_eq!(
        parse_smaps_rollup(b"Rss: 1 kB\nPss: lots kB\nShared_Clean: 0 kB\nShared_Dirty: 0 kB\n"),
        None
    );
    assert_eq!(parse_smaps_rollup(b""), None);
}
