use super::*;

#[test]
fn counters_parse_as_sysfs_prints_them() {
    assert_eq!(parse_u64(b"262143328850\n"), Some(262_143_328_850));
    assert_eq!(parse_u64(b"0"), Some(0));
    assert_eq!(parse_u64(b"  42 \n"), Some(42));
    assert_eq!(parse_u64(b"000123\n"), Some(123));
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    for bad in [
        &b""[..],
        b"\n",
        b"-1",
        b"12a",
        b"1 2",
        b"18446744073709551616",
    ] {
        assert_eq!(parse_u64(bad), None, "{bad:?}");
    }
}

#[test]
fn zone_ids() {
    let id = parse_zone_id("intel-rapl:0:1").unwrap();
    assert_eq!(id.control, Control::Msr);
    assert_eq!(id.indices, [0, 1]);
    assert_eq!(id.parent(), parse_zone_id("intel-rapl:0"));
    assert_eq!(parse_zone_id("intel-rapl:1").unwrap().parent(), None);
    let mmio = parse_zone_id("intel-rapl-mmio:0").unwrap();
    assert_eq!((mmio.control, mmio.indices), (Control::Mmio, vec![0]));
    for bad in [
        "intel-rapl",
        "intel-rapl:",
        "intel-rapl:x",
        "dtpm:0",
        "intel-rapl:0:1:2",
    ] {
        assert_eq!(parse_zone_id(bad), None, "{bad}");
    }
    // Parents sort before their sub-zones, and MSR zones before MMIO ones.
    let mut ids: Vec<ZoneId> = [
        "intel-rapl-mmio:0",
        "intel-rapl:1",
        "intel-rapl:0:1",
        "intel-rapl:0",
    ]
    .iter()
    .map(|s| parse_zone_id(s).unwrap())
    .collect();
    ids.sort();
    let order: Vec<_> = ids.iter().map(|i| (i.control, i.indices.clone())).collect();
    assert_eq!(
        order,
        [
            (Control::Msr, vec![0]),
            (Control::Msr, vec![0, 1]),
            (Control::Msr, vec![1]),
            (Control::Mmio, vec![0])
        ]
    );
}

#[test]
fn zone_names() {
    let pkg = |package, die| Some(ZoneName::Package { package, die });
    assert_eq!(parse_zone_name("package-0\n"), pkg(0, None));
    assert_eq!(parse_zone_name("package-1"), pkg(1, None));
    assert_eq!(parse_zone_name("package-0-die-1"), pkg(0, Some(1)));
    assert_eq!(parse_zone_name("core"), Some(ZoneName::Sub(Domain::Pp0)));
    assert_eq!(parse_zone_name("uncore"), Some(ZoneName::Sub(Domain::Pp1)));
    assert_eq!(parse_zone_name("dram\n"), Some(ZoneName::Sub(Domain::Dram)));
    assert_eq!(parse_zone_name("psys"), Some(ZoneName::Platform));
    assert_eq!(parse_zone_name("psys-0"), Some(ZoneName::Platform));
    for bad in [
        "",
        "package-",
        "package-x",
        "package-0-die-",
        "gpu",
        "psys-x",
    ] {
        assert_eq!(parse_zone_name(bad), None, "{bad}");
    }
}

#[test]
fn perf_event_names() {
    assert_eq!(perf_event_domain("energy-pkg"), Some(Domain::Package));
    assert_eq!(perf_event_domain("energy-cores"), Some(Domain::Pp0));
    assert_eq!(perf_event_domain("energy-gpu"), Some(Domain::Pp1));
    assert_eq!(perf_event_domain("energy-ram"), Some(Domain::Dram));
    assert_eq!(perf_event_domain("energy-psys"), Some(Domain::Platform));
    assert_eq!(perf_event_domain("energy-pkg.scale"), None);
    assert_eq!(perf_event_domain("energy-core"), None);
}

#[test]
fn event_terms_and_formats() {
    assert_eq!(parse_event_terms("event=0x02\n"), Some(vec![("event", 2)]));
    assert_eq!(
        parse_event_terms("event=0x3c,umask=1,edge"),
        Some(vec![("event", 0x3c), ("umask", 1), ("edge", 1)])
    );
    assert_eq!(parse_event_terms("event=0xzz"), None);
    assert_eq!(parse_event_terms(""), None);
    assert_eq!(parse_format("config:0-7\n"), Some((0, 7)));
    assert_eq!(parse_format("config:12"), Some((12, 12)));
    assert_eq!(parse_format("config1:0-7"), None);
    assert_eq!(parse_format("config:7-0"), None);
    assert_eq!(parse_format("config:0-64"), None);
    assert_eq!(place_bits(0x02, (0, 7)), Some(0x02));
    assert_eq!(place_bits(0x3, (8, 15)), Some(0x300));
    assert_eq!(place_bits(0x100, (0, 7)), None);
    assert_eq!(place_bits(u64::MAX, (0, 63)), Some(u64::MAX));
    // Not ranges of a 64-bit word: None (they panicked: subtract and shift overflows).
    assert_eq!(place_bits(0, (31, 0)), None);
    assert_eq!(place_bits(1, (64, 64)), None);
    assert_eq!(place_bits(1, (0, u32::MAX)), None);
}

#[test]
fn scales_and_units() {
    // 2^-32 J and 2^-16 J: exactly representable, so counts convert exactly.
    assert_eq!(
        parse_scale("2.3283064365386962890625e-10\n"),
        Some(2f64.powi(-32))
    );
    assert_eq!(parse_scale("1.52587890625e-05"), Some(2f64.powi(-16)));
    for bad in ["0", "-1e-10", "inf", "NaN", "", "x"] {
        assert_eq!(parse_scale(bad), None, "{bad}");
    }
    assert!(is_joules("Joules\n"));
    assert!(!is_joules("Watts"));
}

#[test]
fn cpu_lists() {
    assert_eq!(parse_cpu_list("0\n"), Some(vec![0]));
    assert_eq!(parse_cpu_list("0,36"), Some(vec![0, 36]));
    assert_eq!(parse_cpu_list("0-2,8"), Some(vec![0, 1, 2, 8]));
    for bad in ["", "\n", "a", "3-1", "1,,x"] {
        assert_eq!(parse_cpu_list(bad), None, "{bad}");
    }
    // A corrupt list cannot make it allocate gigabytes (4 G CPUs were 16 GiB).
    let most = MAX_CPU_LIST_LEN as u32;
    assert_eq!(
        parse_cpu_list(&format!("0-{}", most - 1)).map(|c| c.len()),
        Some(MAX_CPU_LIST_LEN)
    );
    for bad in [
        "0-4294967295".to_owned(),
        format!("0-{most}"),
        format!("0-{},7", most - 1),
    ] {
        assert_eq!(parse_cpu_list(&bad), None, "{bad}");
    }
}

#[test]
fn vendors_from_modalias() {
    let intel = "cpu:type:x86,ven0000fam0006mod0055:feature:,0000,0001\n";
    assert_eq!(parse_vendor(intel), Vendor::Intel);
    let amd = "cpu:type:x86,ven0002fam0017mod0031:feature:,0000";
    assert_eq!(parse_vendor(amd), Vendor::Amd);
    let hygon = "cpu:type:x86,ven0009fam0018mod0000:feature:";
    assert_eq!(parse_vendor(hygon), Vendor::Amd);
    assert_eq!(parse_vendor("cpu:type:aarch64:feature:"), Vendor::Unknown);
    assert_eq!(parse_vendor("cpu:type:x86,ven00"), Vendor::Unknown);
}
