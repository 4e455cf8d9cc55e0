use alumet::measurement::{Attributes, Resource, ResourceConsumer, Timestamp};
use alumet::metrics::MetricRegistry;

use super::*;

fn ts(unix_nanos: u64) -> String {
    String::from_utf8(format_timestamp(unix_nanos).to_vec()).unwrap()
}

const S: u64 = 1_000_000_000;

#[test]
fn timestamps_are_rfc3339_utc_with_nanoseconds() {
    assert_eq!(ts(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        ts(1_795_674_359 * S + 123_456_789),
        "2026-11-26T06:25:59.123456789Z"
    );
    // Leap days: an ordinary leap year, and 2000 (divisible by 400).
    assert_eq!(ts(1_709_251_199 * S + 1), "2024-02-29T23:59:59.000000001Z");
    assert_eq!(ts(951_782_400 * S), "2000-02-29T00:00:00.000000000Z");
    // 2100 is not a leap year: February 28th is followed by March 1st.
    assert_eq!(ts(4_107_542_399 * S), "2100-02-28T23:59:59.000000000Z");
    assert_eq!(ts(4_107_542_400 * S), "2100-03-01T00:00:00.000000000Z");
    assert_eq!(
        ts(946_684_799 * S + 999_999_999),
        "1999-12-31T23:59:59.999999999Z"
    );
    assert_eq!(ts(u64::MAX), "2554-07-21T23:34:33.709551615Z");
}

#[test]
fn civil_from_days_matches_a_day_by_day_calendar() {
    let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
    let max_day = u64::MAX / S / 86_400;
    for days in 0..=max_day {
        assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let len = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        d += 1;
        if d > len {
            (d, m) = (1, m + 1);
        }
        if m > 12 {
            (m, y) = (1, y + 1);
        }
    }
}

fn field(s: &str, delim: char) -> String {
    let mut out = Vec::new();
    write_field(&mut out, s.as_bytes(), delim);
    String::from_utf8(out).unwrap()
}

#[test]
fn fields_are_quoted_only_when_needed() {
    assert_eq!(field("plain text", ';'), "plain text");
    assert_eq!(field("", ';'), "");
    assert_eq!(field("a,b", ';'), "a,b");
    assert_eq!(field("a,b", ','), "\"a,b\"");
    assert_eq!(field("a;b", ';'), "\"a;b\"");
    assert_eq!(field("say \"hi\"", ';'), "\"say \"\"hi\"\"\"");
    assert_eq!(field("\"", ';'), "\"\"\"\"");
    assert_eq!(field("line\nbreak", ';'), "\"line\nbreak\"");
    assert_eq!(field("cr\r", ';'), "\"cr\r\"");
    assert_eq!(field("a→b", '→'), "\"a→b\"");
    assert_eq!(field("a;b", '→'), "a;b");
}

#[test]
fn the_word_at_a_time_scan_finds_every_special_byte_at_every_position() {
    let naive = |f: &[u8], d: u8| {
        f.iter()
            .any(|&b| matches!(b, b'"' | b'\n' | b'\r') || b == d)
    };
    for d in [b';', b',', b'\t', b'|'] {
        for len in 0..=20 {
            for pos in 0..len {
                for special in 0..=255u8 {
                    let mut f = vec![b'a'; len];
                    f[pos] = special;
                    assert_eq!(needs_quotes(&f, d as char), naive(&f, d), "{f:?} {d}");
                }
            }
        }
    }
    // Bytes next to the special ones, and high bytes (UTF-8), do not need quotes.
    assert!(!needs_quotes("éà°μ_kind-01:".as_bytes(), ';'));
    assert!(!needs_quotes(
        &[0x21, 0x0b, 0x0c, 0x0e, 0x3a, 0x3c, 0xa2, 0xbb, 0xff],
        ';'
    ));
}

fn num(v: MeasurementValue) -> String {
    let mut out = Vec::new();
    match v {
        MeasurementValue::U64(v) => write_u64(&mut out, v),
        MeasurementValue::F64(v) => write_f64(&mut out, v),
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn numbers_are_shortest_and_parse_back() {
    use MeasurementValue::{F64, U64};
    assert_eq!(num(U64(0)), "0");
    assert_eq!(num(U64(u64::MAX)), "18446744073709551615");
    assert_eq!(num(F64(12.5)), "12.5");
    assert_eq!(num(F64(1.0)), "1.0");
    assert_eq!(num(F64(-0.0)), "-0.0");
    assert_eq!(num(F64(1e-7)), "1e-7");
    assert_eq!(num(F64(f64::NAN)), "NaN");
    assert_eq!(num(F64(f64::INFINITY)), "inf");
    assert_eq!(num(F64(f64::NEG_INFINITY)), "-inf");
    for v in [
        0.1 + 0.2,
        1e300,
        -2.5e-308,
        f64::MAX,
        f64::MIN_POSITIVE,
        123456.789,
    ] {
        assert_eq!(num(F64(v)).parse::<f64>().unwrap().to_bits(), v.to_bits());
    }
    for text in ["NaN", "inf", "-inf"] {
        assert!(text.parse::<f64>().is_ok(), "{text}");
    }
}

#[test]
fn metric_fields_carry_the_unit() {
    let f = |unit: Unit, suffix| {
        String::from_utf8(metric_field("m", &unit, suffix, ';').into()).unwrap()
    };
    assert_eq!(f(Unit::Joule, UnitSuffix::Code), "m_J");
    assert_eq!(f(Unit::Unity, UnitSuffix::Code), "m_1");
    assert_eq!(f(Unit::Byte, UnitSuffix::Code), "m_By");
    assert_eq!(f(Unit::Joule, UnitSuffix::None), "m");
    assert_eq!(f(Unit::Unity, UnitSuffix::Display), "m");
    assert_eq!(f(Unit::Byte, UnitSuffix::Display), "m_B");
    assert_eq!(f(Unit::DegreeCelsius, UnitSuffix::Display), "m_°C");
    assert_eq!(f(Unit::MicroJoule, UnitSuffix::Display), "m_μJ");
    assert_eq!(f(Unit::MilliWatt, UnitSuffix::Display), "m_mW");
    assert_eq!(f(Unit::Custom("a;b".into()), UnitSuffix::Code), "\"m_a;b\"");
}

#[test]
fn late_parts_escape_their_separators() {
    let mut out = Vec::new();
    write_late_part(&mut out, r"k=v,w\x", ',');
    assert_eq!(String::from_utf8(out).unwrap(), r"k\=v\,w\\x");
}

#[test]
fn rows_put_attributes_in_their_columns_and_the_rest_late() {
    let mut reg = MetricRegistry::new();
    let energy = reg.register::<f64>("energy", Unit::Joule, "e").unwrap();
    let columns = vec!["domain".into(), "note".into()];
    let mut format = RowFormat::new(';', ',', columns);
    let mut out = Vec::new();
    format.write_header(&mut out);
    let attrs = Attributes::new([
        ("extra", AttributeValue::from("a=b,c")),
        ("note", AttributeValue::from("x;y")),
        ("flag", AttributeValue::from(true)),
    ]);
    let point = MeasurementPoint::new(
        Timestamp::from_unix_nanos(S),
        energy,
        Resource::custom("pdu", "r,1"),
        ResourceConsumer::Process { pid: 7 },
        2.5,
    )
    .with_attributes(attrs);
    format.write_row(&mut out, b"energy_J", &point);
    let plain = MeasurementPoint::new(
        Timestamp::from_unix_nanos(S),
        energy,
        Resource::LocalMachine,
        ResourceConsumer::LocalMachine,
        f64::NAN,
    );
    format.write_row(&mut out, b"energy_J", &plain);
    let expected = "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;note;__late_attributes\n\
        energy_J;1970-01-01T00:00:01.000000000Z;2.5;pdu;r,1;process;7;;\"x;y\";extra=a\\=b\\,c,flag=true\n\
        energy_J;1970-01-01T00:00:01.000000000Z;NaN;local_machine;;local_machine;;;;\n";
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

/// Rows of points whose attribute sets alternate (each formatted once, then taken from
/// the cache) are the same as rows formatted one by one with fresh layouts.
#[test]
fn alternating_attribute_sets_keep_their_columns() {
    let mut reg = MetricRegistry::new();
    let energy = reg.register::<u64>("energy", Unit::Joule, "e").unwrap();
    let columns = || vec!["domain".into(), "socket".into()];
    let sets = [
        Attributes::new([
            ("domain", AttributeValue::from("package")),
            ("socket", 0.into()),
        ]),
        Attributes::new([
            ("socket", AttributeValue::from(1)),
            ("domain", "dram".into()),
        ]),
        Attributes::none(),
        Attributes::new([
            ("late", AttributeValue::from(2.5)),
            ("domain", "a;b".into()),
        ]),
    ];
    let expected_tails = [
        ";package;0;\n",
        ";dram;1;\n",
        ";;;\n",
        ";\"a;b\";;late=2.5\n",
    ];
    let mut cached = RowFormat::new(';', ',', columns());
    let mut out = Vec::new();
    for round in 0..3u64 {
        for (i, set) in sets.iter().enumerate() {
            let t = Timestamp::from_unix_nanos(S * (1 + round) + i as u64);
            // Resources and consumers change too, or stay the same, from row to row.
            let (consumer, consumer_text) = match i {
                0 | 1 => (ResourceConsumer::LocalMachine, "local_machine;".to_owned()),
                _ => (ResourceConsumer::Process { pid: 7 }, "process;7".to_owned()),
            };
            let point = MeasurementPoint::new(
                t,
                energy,
                Resource::CpuPackage { id: i as u32 / 2 },
                consumer,
                round,
            )
            .with_attributes(set.clone());
            out.clear();
            cached.write_row(&mut out, b"energy_J", &point);
            let mut fresh = Vec::new();
            RowFormat::new(';', ',', columns()).write_row(&mut fresh, b"energy_J", &point);
            let row = String::from_utf8(out.clone()).unwrap();
            assert_eq!(row, String::from_utf8(fresh).unwrap());
            let time = ts(t.unix_nanos());
            let head = format!(
                "energy_J;{time};{round};cpu_package;{};{consumer_text}",
                i / 2
            );
            assert_eq!(row, format!("{head}{}", expected_tails[i]));
        }
    }
}

/// The core's fixed kinds are copied as they are, unless the delimiter occurs in them.
#[test]
fn fixed_kinds_are_quoted_only_when_the_delimiter_is_in_them() {
    let mut reg = MetricRegistry::new();
    let m = reg.register::<u64>("m", Unit::Unity, "m").unwrap();
    let row = |delim: char, resource: Resource, consumer: ResourceConsumer| {
        let point = MeasurementPoint::new(Timestamp::from_unix_nanos(0), m, resource, consumer, 1);
        let mut out = Vec::new();
        RowFormat::new(delim, ',', Vec::new()).write_row(&mut out, b"m", &point);
        String::from_utf8(out).unwrap()
    };
    let t = "1970-01-01T00:00:00.000000000Z";
    let (r, c) = (
        Resource::Dram { pkg_id: 1 },
        ResourceConsumer::Process { pid: 2 },
    );
    assert_eq!(
        row(';', r.clone(), c.clone()),
        format!("m;{t};1;dram;1;process;2;\n")
    );
    let (r, c) = (
        Resource::CpuPackage { id: 0 },
        ResourceConsumer::LocalMachine,
    );
    assert_eq!(
        row('_', r, c),
        format!("m_{t}_1_\"cpu_package\"_0_\"local_machine\"__\n")
    );
    let r = Resource::custom("a;b", "x");
    let c = ResourceConsumer::custom("c_d", "y");
    assert_eq!(
        row(';', r.clone(), c.clone()),
        format!("m;{t};1;\"a;b\";x;c_d;y;\n")
    );
    assert_eq!(row('_', r, c), format!("m_{t}_1_a;b_x_\"c_d\"_y_\n"));
}

#[test]
fn headers_parse_back_to_their_columns() {
    let columns: Vec<Box<str>> = vec!["a".into(), "with;delim".into(), "q\"uote\nnl".into()];
    let mut out = Vec::new();
    RowFormat::new(';', ',', columns.clone()).write_header(&mut out);
    out.extend_from_slice(b"next;row\n");
    let text = String::from_utf8(out).unwrap();
    let record = first_record(&text, ';').unwrap();
    assert_eq!(attribute_columns(&record, ';').unwrap(), columns);

    let none = first_record("metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;__late_attributes\r\n", ';');
    assert_eq!(
        attribute_columns(&none.unwrap(), ';').unwrap(),
        Vec::<Box<str>>::new()
    );
}

#[test]
fn foreign_or_incomplete_headers_are_refused() {
    // A CR inside quotes is the field's; only the CR of an unquoted CRLF is dropped.
    assert_eq!(first_record("\"\r\"\n", ';'), Some(vec!["\r".to_owned()]));
    assert_eq!(first_record("\"a\"\r\n", ';'), Some(vec!["a".to_owned()]));
    assert_eq!(first_record("a;b", ';'), None);
    assert_eq!(first_record("\"a\nb", ';'), None);
    let other_delim = first_record("metric,timestamp,value,resource_kind,resource_id,consumer_kind,consumer_id,__late_attributes\n", ';');
    let err = attribute_columns(&other_delim.unwrap(), ';')
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a header of this output"), "{err}");
    let no_late = first_record(
        "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;x\n",
        ';',
    );
    assert!(attribute_columns(&no_late.unwrap(), ';').is_err());
}
