//! Property tests of the /proc parsers (`linux_parse::proc`): arbitrary bytes never make
//! them panic, what they borrow lies inside their input, and well-formed files generated
//! from random values parse back to those values.
//!
//! Failures are saved by proptest's default persistence, in
//! `tests/fuzz_proc.proptest-regressions`, and replayed first on the next run.

use linux_parse::proc::{
    hidepid, metric_name, parse_meminfo, parse_net_dev, parse_process_stat, parse_stat,
    parse_statm, parse_u64, parse_uptime_ticks, proc_mount_options, StatLine,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Whether `part` is a sub-slice of `whole` (same memory): a parser borrowed it from its
/// input and did not read past it.
fn within(whole: &[u8], part: &[u8]) -> bool {
    let (w, p) = (whole.as_ptr_range(), part.as_ptr_range());
    w.start <= p.start && p.end <= w.end
}

/// Arbitrary bytes, biased towards what /proc files are made of (digits, spaces, colons,
/// parentheses, line breaks) so that the parsers get past their first checks. (Mapped from
/// plain bytes rather than chosen among alternatives per byte: several times faster to
/// generate in a debug build.)
fn proc_bytes() -> impl Strategy<Value = Vec<u8>> {
    const COMMON: &[u8] = b"0123456789 \t\n:().kBcpuctxtprocs_-";
    vec(any::<u8>(), 0..300).prop_map(|v| {
        v.into_iter()
            .map(|b| match b {
                0..=199 => COMMON[usize::from(b) % COMMON.len()],
                _ => b,
            })
            .collect()
    })
}

/// Arbitrary text, biased towards mountinfo lines and mount options (any character may
/// come: control characters, multi-byte ones).
fn mount_text() -> impl Strategy<Value = String> {
    const COMMON: &[char] = &[
        ' ', ' ', '-', ',', '=', '\n', '/', '0', '1', '2', 'a', 'A', 'é', 'ß', '\0', '\u{7f}',
        '\u{2028}', '😀',
    ];
    vec(any::<u8>(), 0..200).prop_map(|v| {
        let mut text = String::new();
        for b in v {
            match b {
                0..=15 => text.push_str(" - proc "),
                16..=31 => text.push_str("hidepid="),
                32..=47 => text.push_str("proc"),
                48..=127 => text.push(char::from(b)),
                _ => text.push(COMMON[usize::from(b) % COMMON.len()]),
            }
        }
        text
    })
}

/// A decimal number as the kernel writes it, from a value that may be anything.
/// (One `u64` mapped to the four kinds: cheaper than a choice of strategies.)
fn number() -> impl Strategy<Value = u64> {
    any::<u64>().prop_map(|n| match n % 4 {
        0 => n,
        1 => n % 1000,
        2 => u64::MAX,
        _ => 0,
    })
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn parse_u64_matches_std_on_digits_and_rejects_the_rest(s in proc_bytes()) {
        let all_digits = !s.is_empty() && s.iter().all(u8::is_ascii_digit);
        let std = std::str::from_utf8(&s).ok().and_then(|t| t.parse::<u64>().ok());
        prop_assert_eq!(parse_u64(&s), if all_digits { std } else { None });
    }

    #[test]
    fn parse_u64_reads_back_every_number(n in number(), zeros in 0..3usize) {
        let text = format!("{}{n}", "0".repeat(zeros));
        let expected = (text.len() <= 20).then_some(n);
        prop_assert_eq!(parse_u64(text.as_bytes()), expected);
        // One more than u64::MAX overflows: a clean None.
        if n == u64::MAX {
            prop_assert_eq!(parse_u64(b"18446744073709551616"), None);
        }
    }
}

proptest! {
    #![proptest_config(config(6000))]

    #[test]
    fn stat_meminfo_net_dev_never_panic_and_borrow_from_their_input(text in proc_bytes()) {
        let mut lines = 0;
        parse_stat(&text, |line| {
            if let StatLine::Cpu { ticks, .. } = line {
                assert!((4..=10).contains(&ticks.len), "{ticks:?}");
            }
            lines += 1;
        });
        prop_assert!(lines <= text.split(|&c| c == b'\n').count());
        parse_meminfo(&text, |e| {
            assert!(within(&text, e.key.as_bytes()) && !e.key.is_empty(), "{e:?}");
        });
        parse_net_dev(&text, |l| assert!(within(&text, l.interface.as_bytes()), "{l:?}"));
    }

    #[test]
    fn process_stat_statm_uptime_never_panic(text in proc_bytes(), clk_tck in 1..100_000u64) {
        if let Some(s) = parse_process_stat(&text) {
            prop_assert!(within(&text, s.comm));
            prop_assert!(!s.state.is_ascii_whitespace());
        }
        let _ = parse_statm(&text);
        let _ = parse_uptime_ticks(&text, clk_tck);
        let _ = parse_uptime_ticks(&text, u64::MAX);
    }

    #[test]
    fn mount_options_hidepid_metric_name_never_panic(text in mount_text(), point in prop::sample::select(vec!["/proc", "/", "", "/host/proc", "/pr oc"])) {
        if let Some(options) = proc_mount_options(&text, point) {
            prop_assert!(within(text.as_bytes(), options.as_bytes()));
            if let Some(v) = hidepid(options) {
                prop_assert!(within(text.as_bytes(), v.as_bytes()));
                prop_assert!(v != "0" && v != "off");
            }
        }
        let _ = hidepid(&text);
        let name = metric_name(&text);
        prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name:?}");
        prop_assert!(!name.starts_with('_') && !name.ends_with('_') && !name.contains("__"), "{name:?}");
        prop_assert_eq!(metric_name(&name), name.clone(), "not idempotent");
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// `cpu`/`cpuN` lines with 4 to 10 columns and the counter lines, in random order,
    /// with random spacing: each comes back with its values.
    #[test]
    fn stat_reads_back_generated_lines(
        cpus in vec((prop::option::of(any::<u32>()), vec(number(), 4..=10)), 0..6),
        counters in vec((0..4usize, number()), 0..6),
        sep in prop::sample::select(vec![" ", "  ", "\t", " \t "]),
    ) {
        let mut text = String::from("intr 1 2 3\n");
        let mut expected = Vec::new();
        for (cpu, values) in &cpus {
            let name = cpu.map_or("cpu".to_owned(), |n| format!("cpu{n}"));
            let joined: Vec<String> = values.iter().map(u64::to_string).collect();
            text += &format!("{name}{sep}{}\n", joined.join(sep));
            let mut ticks = linux_parse::proc::CpuTicks { len: values.len(), ..Default::default() };
            ticks.values[..values.len()].copy_from_slice(values);
            expected.push(StatLine::Cpu { cpu: *cpu, ticks });
        }
        let keys = ["ctxt", "processes", "procs_running", "procs_blocked"];
        let make = [StatLine::ContextSwitches, StatLine::Forks, StatLine::ProcsRunning, StatLine::ProcsBlocked];
        for &(k, v) in &counters {
            text += &format!("{}{sep}{v}\n", keys[k]);
            expected.push(make[k](v));
        }
        text += "softirq 1 2";
        let mut got = Vec::new();
        parse_stat(text.as_bytes(), |l| got.push(l));
        prop_assert_eq!(got, expected, "{}", text);
    }

    #[test]
    fn meminfo_reads_back_generated_entries(
        entries in vec(("[A-Za-z][A-Za-z0-9_()]{0,20}", number(), any::<bool>()), 0..8),
    ) {
        let mut text = String::new();
        for (key, value, kib) in &entries {
            text += &format!("{key}:{:>16}{}\n", value, if *kib { " kB" } else { "" });
        }
        let mut got = Vec::new();
        parse_meminfo(text.as_bytes(), |e| got.push((e.key.to_owned(), e.value, e.kib)));
        prop_assert_eq!(got, entries);
    }

    #[test]
    fn net_dev_reads_back_generated_interfaces(
        interfaces in vec(("[a-z][a-z0-9.@-]{0,14}", prop::array::uniform16(number()), any::<bool>()), 0..5),
    ) {
        let mut text = String::from(
            "Inter-|   Receive                   |  Transmit\n face |bytes    packets errs|bytes\n",
        );
        for (name, values, tight) in &interfaces {
            let joined: Vec<String> = values.iter().map(u64::to_string).collect();
            let sep = if *tight { "" } else { " " };
            text += &format!("{name:>6}:{sep}{}\n", joined.join(" "));
        }
        let mut got = Vec::new();
        parse_net_dev(text.as_bytes(), |l| {
            let mut all = l.rx.to_vec();
            all.extend_from_slice(&l.tx);
            got.push((l.interface.to_owned(), all));
        });
        let expected: Vec<(String, Vec<u64>)> =
            interfaces.iter().map(|(n, v, _)| (n.clone(), v.to_vec())).collect();
        prop_assert_eq!(got, expected);
    }

    /// A command name of any bytes (spaces, parentheses, line breaks) does not shift the
    /// fields that follow it.
    #[test]
    fn process_stat_reads_back_any_command_name(
        pid in any::<u32>(),
        comm in vec(any::<u8>(), 0..32),
        state in prop::sample::select(b"RSDZTtXIPW".to_vec()),
        ppid in any::<u32>(),
        (utime, stime, starttime) in (number(), number(), number()),
        guest in prop::option::of(number()),
    ) {
        let mut fields: Vec<String> = (4..=52).map(|n| (n * 7).to_string()).collect();
        fields[0] = ppid.to_string(); // field 4
        fields[10] = utime.to_string(); // 14
        fields[11] = stime.to_string(); // 15
        fields[18] = starttime.to_string(); // 22
        match guest {
            Some(g) => fields[39] = g.to_string(), // 43
            None => fields.truncate(39), // an old kernel: no field 43
        }
        let mut text = format!("{pid} (").into_bytes();
        text.extend_from_slice(&comm);
        text.extend_from_slice(format!(") {} {}\n", state as char, fields.join(" ")).as_bytes());
        let s = parse_process_stat(&text);
        prop_assert!(s.is_some(), "{:?}", String::from_utf8_lossy(&text));
        let s = s.unwrap();
        prop_assert_eq!(s.pid, pid);
        prop_assert_eq!(s.comm, &comm[..]);
        prop_assert_eq!((s.state, s.ppid), (state, ppid));
        prop_assert_eq!((s.utime, s.stime, s.starttime, s.guest_time), (utime, stime, starttime, guest));
    }

    #[test]
    fn statm_and_uptime_read_back_generated_values(
        (size, resident, shared) in (number(), number(), number()),
        secs in 0..100_000_000_000u64,
        frac in prop::option::of(0..100u64),
        clk_tck in prop::sample::select(vec![100u64, 250, 1000, 1_000_000]),
    ) {
        let statm = parse_statm(format!("{size} {resident} {shared} 1 0 2 0\n").as_bytes());
        prop_assert_eq!(statm.map(|s| (s.size, s.resident, s.shared)), Some((size, resident, shared)));
        let text = match frac {
            Some(f) => format!("{secs}.{f:02} 12345.67\n"),
            None => format!("{secs} 12345.67\n"),
        };
        let expected = u128::from(secs) * u128::from(clk_tck)
            + u128::from(frac.unwrap_or(0)) * u128::from(clk_tck) / 100;
        let expected = u64::try_from(expected).ok();
        prop_assert_eq!(parse_uptime_ticks(text.as_bytes(), clk_tck), expected);
    }

    #[test]
    fn mount_options_and_hidepid_read_back_a_generated_mountinfo(
        others in vec(("/[a-z/]{0,12}", "[a-z]{2,8}", "[a-z=,0-9]{1,20}"), 0..5),
        point in "/[a-z]{0,8}",
        hide in prop::sample::select(vec!["0", "1", "2", "off", "noaccess", "invisible"]),
        at in 0..6usize,
    ) {
        let line = |point: &str, fstype: &str, options: &str| {
            format!("23 1 0:21 / {point} rw,nosuid - {fstype} {fstype} {options}\n")
        };
        let options = format!("rw,nosuid,hidepid={hide},gid=5");
        let mut lines: Vec<String> = others.iter().map(|(p, f, o)| line(p, f, o)).collect();
        lines.insert(at.min(lines.len()), line(&point, "proc", &options));
        let text: String = lines.concat();
        // The last proc mount at `point` wins: ours, unless a later generated one is there.
        let later = others.iter().skip(at.min(others.len())).rev()
            .find(|(p, f, _)| *p == point && f == "proc").map(|(_, _, o)| o.as_str());
        let got = proc_mount_options(&text, &point);
        prop_assert_eq!(got, later.or(Some(options.as_str())), "{}", text);
        if later.is_none() {
            let hidden = !matches!(hide, "0" | "off");
            prop_assert_eq!(got.and_then(hidepid), hidden.then_some(hide));
        }
    }
}
