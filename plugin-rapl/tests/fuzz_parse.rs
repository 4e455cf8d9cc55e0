//! Property tests of the RAPL parsers (`plugin_rapl::parse`) and of the sysfs readers
//! that use them (powercap and perf_event discovery, the counter reader, the CPU topology,
//! the wrap-around check): arbitrary text never makes them panic, and values written as
//! the kernel writes them parse back to themselves.
//!
//! Failures are saved by proptest's default persistence, in
//! `tests/fuzz_parse.proptest-regressions`, and replayed first on the next run.

use std::time::Duration;

use alumet::test_util::TempDir;
use plugin_rapl::domains::{self, Domain, Vendor, WrapInfo};
use plugin_rapl::parse::{
    is_joules, parse_cpu_list, parse_event_terms, parse_format, parse_scale, parse_u64,
    parse_vendor, parse_zone_id, parse_zone_name, perf_event_domain, place_bits, Control, ZoneName,
};
use plugin_rapl::source::EnergyReader;
use plugin_rapl::{perf, powercap, topology};
use proptest::collection::vec;
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Arbitrary text, biased towards what sysfs files of RAPL hold (digits, `-`, `:`, `,`,
/// `=`, `0x`, the names the parsers look for), with any character now and then (control
/// characters, multi-byte ones). Mapped from plain bytes: cheap to generate.
fn sysfs_text() -> impl Strategy<Value = String> {
    const WORDS: &[&str] = &[
        "intel-rapl",
        "intel-rapl-mmio",
        "package-",
        "-die-",
        "psys",
        "core",
        "dram",
        "uncore",
        "config:",
        "event=",
        "umask=",
        "0x",
        "Joules",
        ",ven",
        "4294967295",
        "18446744073709551615",
        "99999999999999999999",
        "e-300",
        "NaN",
        "inf",
    ];
    const CHARS: &[char] = &[
        '\0', '\n', '\t', ' ', '\u{7f}', 'é', '\u{2028}', '😀', '\u{feff}', '+', '.',
    ];
    vec(any::<u8>(), 0..60).prop_map(|v| {
        let mut text = String::new();
        for b in v {
            match b {
                0..=59 => text.push_str(WORDS[usize::from(b) % WORDS.len()]),
                60..=159 => text.push(char::from(b"0123456789-:,=-:,x"[usize::from(b) % 18])),
                160..=199 => text.push(CHARS[usize::from(b) % CHARS.len()]),
                _ => text.push(char::from(b & 0x7f)),
            }
        }
        text
    })
}

/// A `u64` of every size, its extremes often.
fn number() -> impl Strategy<Value = u64> {
    any::<u64>().prop_map(|n| match n % 4 {
        0 => n,
        1 => n % 1000,
        2 => u64::MAX - n % 2,
        _ => 0,
    })
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn text_parsers_never_panic(text in sysfs_text()) {
        let bytes = text.as_bytes();
        let std = std::str::from_utf8(bytes.trim_ascii()).ok()
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok());
        prop_assert_eq!(parse_u64(bytes), std);
        if let Some(id) = parse_zone_id(&text) {
            prop_assert!((1..=2).contains(&id.indices.len()));
            prop_assert_eq!(id.parent().is_some(), id.indices.len() == 2);
        }
        let _ = parse_zone_name(&text);
        let _ = perf_event_domain(&text);
        if let Some(terms) = parse_event_terms(&text) {
            prop_assert!(terms.iter().all(|(name, _)| !name.is_empty() || text.contains('=')));
        }
        if let Some((low, high)) = parse_format(&text) {
            prop_assert!(low <= high && high < 64);
        }
        if let Some(scale) = parse_scale(&text) {
            prop_assert!(scale.is_finite() && scale > 0.0);
        }
        prop_assert_eq!(is_joules(&text), text.trim() == "Joules");
        if let Some(cpus) = parse_cpu_list(&text) {
            prop_assert!(!cpus.is_empty());
        }
        let _ = parse_vendor(&text);
    }

    /// Any bit range and value: `None` or the value in those bits, never a panic (the
    /// range comes from a file, through `parse_format`, but the function is public).
    #[test]
    fn place_bits_is_total(value in number(), low in 0..80u32, high in 0..80u32) {
        if let Some(config) = place_bits(value, (low, high)) {
            prop_assert!(low <= high && high < 64);
            prop_assert_eq!(config >> low, value);
        }
        if low <= high && high < 64 && (high - low == 63 || value >> (high - low + 1) == 0) {
            prop_assert_eq!(place_bits(value, (low, high)), Some(value << low));
        }
    }

    #[test]
    fn counters_and_zone_ids_read_back(n in number(), a in any::<u32>(), b in prop::option::of(any::<u32>()), mmio in any::<bool>()) {
        prop_assert_eq!(parse_u64(format!("{n}\n").as_bytes()), Some(n));
        prop_assert_eq!(parse_u64(format!("  {n} \t").as_bytes()), Some(n));
        let control = if mmio { "intel-rapl-mmio" } else { "intel-rapl" };
        let name = match b {
            Some(b) => format!("{control}:{a}:{b}"),
            None => format!("{control}:{a}"),
        };
        let id = parse_zone_id(&name).expect("a zone id");
        prop_assert_eq!(id.control, if mmio { Control::Mmio } else { Control::Msr });
        let mut indices = vec![a];
        indices.extend(b);
        prop_assert_eq!(&id.indices, &indices);
        prop_assert_eq!(id.parent().map(|p| p.indices), b.map(|_| vec![a]));
        prop_assert_eq!(parse_zone_id(&format!("{name}:0:0")), None);
    }

    #[test]
    fn zone_names_read_back(package in any::<u32>(), die in prop::option::of(any::<u32>()), sub in 0..4usize) {
        let name = match die {
            Some(d) => format!("package-{package}-die-{d}\n"),
            None => format!("package-{package}\n"),
        };
        prop_assert_eq!(parse_zone_name(&name), Some(ZoneName::Package { package, die }));
        let (text, expected) = [
            ("core", ZoneName::Sub(Domain::Pp0)),
            ("uncore", ZoneName::Sub(Domain::Pp1)),
            ("dram", ZoneName::Sub(Domain::Dram)),
            ("psys", ZoneName::Platform),
        ][sub];
        prop_assert_eq!(parse_zone_name(text), Some(expected));
        prop_assert_eq!(parse_zone_name(&format!("psys-{package}")), Some(ZoneName::Platform));
    }

    #[test]
    fn event_terms_formats_and_scales_read_back(
        event in any::<u64>(),
        umask in any::<u64>(),
        flag in "[a-z]{1,8}",
        (low, width) in (0..64u32, 1..=64u32),
        scale in any::<f64>(),
    ) {
        let text = format!("event={event:#x},umask={umask},{flag}\n");
        let terms = parse_event_terms(&text).expect("terms");
        prop_assert_eq!(terms, vec![("event", event), ("umask", umask), (flag.as_str(), 1)]);
        let high = (low + width - 1).min(63);
        let format = if low == high { format!("config:{low}\n") } else { format!("config:{low}-{high}\n") };
        prop_assert_eq!(parse_format(&format), Some((low, high)));
        let fits = high - low == 63 || event >> (high - low + 1) == 0;
        prop_assert_eq!(place_bits(event, (low, high)), fits.then(|| event << low));
        let expected = (scale.is_finite() && scale > 0.0).then_some(scale);
        prop_assert_eq!(parse_scale(&format!("{scale:e}\n")), expected);
        prop_assert_eq!(parse_scale(&format!("{scale}")), expected);
    }

    #[test]
    fn cpu_lists_and_vendors_read_back(
        parts in vec((0..5000u32, 0..40u32), 1..6),
        vendor in any::<u16>(),
    ) {
        let mut expected = Vec::new();
        let text: Vec<String> = parts
            .iter()
            .map(|&(a, len)| {
                expected.extend(a..=a + len);
                if len == 0 { a.to_string() } else { format!("{a}-{}", a + len) }
            })
            .collect();
        prop_assert_eq!(parse_cpu_list(&format!("{}\n", text.join(","))), Some(expected));
        let modalias = format!("cpu:type:x86,ven{vendor:04X}fam0006mod008F:feature:,0000\n");
        let expected = match vendor {
            0 => Vendor::Intel,
            2 | 9 => Vendor::Amd,
            _ => Vendor::Unknown,
        };
        prop_assert_eq!(parse_vendor(&modalias), expected);
    }

    /// Counter ranges and TDPs as sysfs may give them, 0 and `u64::MAX` included.
    #[test]
    fn wrap_check_never_panics(
        counters in vec((number(), prop::option::of(number())), 0..4),
        poll in (any::<u64>(), 0..1_000_000_000u32),
    ) {
        let infos: Vec<WrapInfo> = counters
            .iter()
            .map(|&(range, tdp)| WrapInfo { label: "zone".into(), max_energy_range_uj: range, tdp_uw: tdp })
            .collect();
        for &(range, tdp) in &counters {
            let _ = domains::wrap_time(range, tdp.unwrap_or(0));
        }
        let poll = Duration::new(poll.0, poll.1);
        if let Some(warning) = domains::wrap_warning(poll, &infos) {
            prop_assert!(warning.contains("poll_interval"), "{}", warning);
        }
    }
}

/// A sysfs file's content: often a valid one, else arbitrary text.
fn file(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(valid).prop_map(str::to_owned),
        1 => sysfs_text(),
    ]
}

/// The contents of a small RAPL sysfs tree: one package zone with one sub-zone, and the
/// `power` PMU with one event.
#[derive(Debug, Clone)]
struct Tree {
    package_name: String,
    package_range: String,
    package_tdp: String,
    package_energy: String,
    sub_name: String,
    sub_range: String,
    pmu_type: String,
    cpumask: String,
    event: String,
    event_format: String,
    event_scale: String,
    event_unit: String,
    modalias: String,
    package_id: String,
}

fn tree() -> impl Strategy<Value = Tree> {
    const NUMBERS: &[&str] = &["262143328850\n", "0\n", "1\n", "18446744073709551615\n"];
    (
        (
            file(&["package-0\n", "package-0-die-1\n", "psys\n"]),
            file(NUMBERS),
            file(&["1\n", "15000000\n", "0\n", "18446744073709551615\n"]),
            file(&["123456\n", "18446744073709551615\n", "\n"]),
            file(&["core\n", "dram\n", "uncore\n"]),
            file(NUMBERS),
        ),
        (
            file(&["33\n", "4294967295\n"]),
            file(&["0\n", "0,36\n", "0-3\n"]),
            file(&[
                "event=0x02\n",
                "event=0x02,umask=0x1\n",
                "event=0xffffffffffffffff\n",
            ]),
            file(&["config:0-7\n", "config:0-63\n", "config:63\n"]),
            file(&["2.3283064365386962890625e-10\n", "1e-300\n", "1e308\n"]),
            file(&["Joules\n"]),
        ),
        file(&["cpu:type:x86,ven0000fam0006mod008F:feature:,0000\n"]),
        file(&["0\n", "4294967295\n"]),
    )
        .prop_map(|(a, b, modalias, package_id)| Tree {
            package_name: a.0,
            package_range: a.1,
            package_tdp: a.2,
            package_energy: a.3,
            sub_name: a.4,
            sub_range: a.5,
            pmu_type: b.0,
            cpumask: b.1,
            event: b.2,
            event_format: b.3,
            event_scale: b.4,
            event_unit: b.5,
            modalias,
            package_id,
        })
}

fn write(root: &std::path::Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

proptest! {
    #![proptest_config(config(300))]

    /// The sysfs readers, on a tree whose files say anything: discovery gives zones and
    /// events or the reasons it ignored them, the counter reader a value or an error.
    #[test]
    fn sysfs_readers_never_panic_on_any_file_content(t in tree(), poll_ms in 1..100_000_000u64) {
        let dir = TempDir::new("rapl-fuzz");
        let root = dir.path();
        let zone = "devices/virtual/powercap/intel-rapl/intel-rapl:0";
        write(root, &format!("{zone}/name"), &t.package_name);
        write(root, &format!("{zone}/max_energy_range_uj"), &t.package_range);
        write(root, &format!("{zone}/constraint_0_max_power_uw"), &t.package_tdp);
        write(root, &format!("{zone}/energy_uj"), &t.package_energy);
        write(root, &format!("{zone}/intel-rapl:0:0/name"), &t.sub_name);
        write(root, &format!("{zone}/intel-rapl:0:0/max_energy_range_uj"), &t.sub_range);
        write(root, &format!("{zone}/intel-rapl:0:0/energy_uj"), &t.package_energy);
        let pmu = "bus/event_source/devices/power";
        write(root, &format!("{pmu}/type"), &t.pmu_type);
        write(root, &format!("{pmu}/cpumask"), &t.cpumask);
        write(root, &format!("{pmu}/events/energy-pkg"), &t.event);
        write(root, &format!("{pmu}/events/energy-pkg.scale"), &t.event_scale);
        write(root, &format!("{pmu}/events/energy-pkg.unit"), &t.event_unit);
        write(root, &format!("{pmu}/format/event"), &t.event_format);
        write(root, "devices/system/cpu/modalias", &t.modalias);
        write(root, "devices/system/cpu/cpu0/topology/physical_package_id", &t.package_id);

        let found = powercap::discover(root);
        prop_assert!(found.zones.len() + found.ignored.len() == 2, "{:?}", found);
        let wraps: Vec<WrapInfo> = found.zones.iter().map(|z| z.wrap_info()).collect();
        prop_assert!(found.zones.iter().all(|z| z.max_energy_range_uj > 0));
        let _ = domains::wrap_warning(Duration::from_millis(poll_ms), &wraps);
        let candidates: Vec<_> = found.zones.iter().map(|z| z.candidate()).collect();
        let _ = domains::select(&candidates, topology::vendor(root));
        for z in &found.zones {
            let mut reader = powercap::PowercapReader::open(z.energy_path()).expect("open");
            match reader.read() {
                Ok(v) => prop_assert_eq!(Some(v), parse_u64(t.package_energy.as_bytes())),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
        match perf::discover(root) {
            Ok(Some(pmu)) => {
                prop_assert!(!pmu.cpus.is_empty());
                prop_assert_eq!(pmu.events.len() + pmu.ignored.len(), 1);
                let cpus = topology::cpus(root, &pmu.cpus);
                prop_assert_eq!(cpus.len(), pmu.cpus.len());
                let _ = pmu.candidates(&cpus);
            }
            Ok(None) => prop_assert!(false, "the PMU directory exists"),
            Err(e) => {
                let message = format!("{e:#}");
                prop_assert!(!message.is_empty());
            }
        }
    }
}
