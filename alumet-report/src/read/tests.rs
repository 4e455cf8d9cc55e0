use super::*;

fn write(dir: &alumet::test_util::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const HEADER: &str =
    "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;__late_attributes\n";

#[test]
fn rows_become_machine_series_and_consumer_sums_with_quoted_fields_and_late_attributes() {
    let dir = alumet::test_util::TempDir::new("report-read");
    let text = format!(
        "{HEADER}\
         rapl_consumed_energy_J;2026-11-26T06:25:59.000000000Z;12.5;cpu_package;0;local_machine;;package;\n\
         rapl_consumed_energy_J;2026-11-26T06:26:00.000000000Z;13.0;cpu_package;0;local_machine;;package;\n\
         attributed_energy_J;2026-11-26T06:26:00.000000000Z;1.5;cpu_package;0;process;42;package;source=rapl\n\
         attributed_energy_J;2026-11-26T06:26:00.000000000Z;2.5;cpu_package;0;cgroup;\"/a;\"\"b\"\"\n\";package;source=rapl\n\
         attributed_energy_J;2026-11-26T06:26:01.000000000Z;1.0;cpu_package;0;process;42;package;source=rapl\n"
    );
    let data = read_csv(&write(&dir, "a.csv", &text), None).unwrap();
    assert_eq!(data.rows, 5);
    assert!(data.left_out.is_empty(), "{:?}", data.left_out);
    let [series] = data.machine.as_slice() else {
        panic!("{:?}", data.machine)
    };
    assert_eq!(series.key.metric, "rapl_consumed_energy");
    assert_eq!(series.key.unit, "J");
    assert_eq!(series.key.attr("domain"), Some("package"));
    let t0 = 1_795_674_359_000_000_000;
    assert_eq!(series.points, vec![(t0, 12.5), (t0 + 1_000_000_000, 13.0)]);
    let [group] = data.groups.as_slice() else {
        panic!("{:?}", data.groups)
    };
    assert_eq!(group.key.attr("source"), Some("rapl"));
    assert_eq!(
        group.totals,
        vec![
            ("process 42".to_owned(), 2.5),
            ("cgroup /a;\"b\"\n".to_owned(), 2.5)
        ]
    );
    assert_eq!(
        group.over_time,
        vec![(t0 + 1_000_000_000, 4.0), (t0 + 2_000_000_000, 1.0)]
    );
    assert_eq!(data.window(), Some((t0, t0 + 2_000_000_000)));
    // Rows before `since` are not counted.
    let since = read_csv(&dir.path().join("a.csv"), Some(t0 + 2_000_000_000)).unwrap();
    assert_eq!((since.rows, since.older_rows), (1, 4));
}

#[test]
fn a_file_that_is_not_the_agents_csv_is_an_error_that_names_what_is_wrong() {
    let dir = alumet::test_util::TempDir::new("report-not-csv");
    let cases = [
        ("empty.csv", "", "it is empty"),
        (
            "other.csv",
            "time,watts\n1,2\n",
            "does not start with `metric`",
        ),
        (
            "columns.csv",
            "metric;time;value\n",
            "column 2 of its header is `time`, not `timestamp`",
        ),
        (
            "binary.csv",
            "\u{7f}ELF\u{2}\u{1}",
            "does not start with `metric`",
        ),
    ];
    for (name, text, expected) in cases {
        let err = read_csv(&write(&dir, name, text), None).unwrap_err();
        assert!(
            matches!(err, ReportError::NotAgentCsv { .. }),
            "{name}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(expected), "{name}: {message}");
        assert!(message.contains("--output-file"), "{name}: {message}");
    }
    let missing = read_csv(&dir.path().join("missing.csv"), None).unwrap_err();
    assert!(matches!(missing, ReportError::Io { .. }), "{missing:?}");
    let header_only = read_csv(&write(&dir, "header.csv", HEADER), None).unwrap_err();
    assert!(
        matches!(header_only, ReportError::NoData { .. }),
        "{header_only:?}"
    );
}

#[test]
fn bad_rows_are_left_out_and_counted_by_reason_with_their_first_line() {
    let dir = alumet::test_util::TempDir::new("report-bad-rows");
    let good = "mem_total_By;2026-11-26T06:25:59.000000000Z;1024;local_machine;;local_machine;;;\n";
    let text = format!(
        "{HEADER}{good}\
         mem_total_By;yesterday;1024;local_machine;;local_machine;;;\n\
         mem_total_By;2026-11-26T06:26:00.000000000Z;lots;local_machine;;local_machine;;;\n\
         gpu_power_W;2026-11-26T06:26:00.000000000Z;NaN;gpu;0;local_machine;;;\n\
         mem_total_By;2026-11-26T06:26:01.000000000Z;10"
    );
    let data = read_csv(&write(&dir, "bad.csv", &text), None).unwrap();
    assert_eq!(data.rows, 1);
    let reasons: Vec<(&str, (u64, u64))> = data.left_out.iter().map(|(r, n)| (*r, *n)).collect();
    assert_eq!(
        reasons,
        vec![
            ("rows whose timestamp is not RFC 3339", (1, 3)),
            ("rows whose value is not a number", (1, 4)),
            ("rows with missing columns (a file cut short?)", (1, 6)),
            ("values that are not finite (NaN, inf)", (1, 5)),
        ]
    );
}

#[test]
fn units_are_split_from_metric_names_only_when_they_are_units() {
    let split = |c: &str| split_unit(c);
    assert_eq!(
        split("rapl_consumed_energy_J"),
        ("rapl_consumed_energy".into(), "J".into())
    );
    assert_eq!(
        split("memory_usage_By"),
        ("memory_usage".into(), "By".into())
    );
    assert_eq!(
        split("kernel_new_forks_1"),
        ("kernel_new_forks".into(), "1".into())
    );
    assert_eq!(
        split("rapl_consumed_energy"),
        ("rapl_consumed_energy".into(), String::new())
    );
    assert_eq!(split("_J"), ("_J".into(), String::new()));
    assert_eq!(
        split_late("a=1,b\\,c=x\\=y"),
        vec![("a".into(), "1".into()), ("b,c".into(), "x=y".into())]
    );
}

#[test]
fn another_delimiter_is_read_from_the_header() {
    let dir = alumet::test_util::TempDir::new("report-delimiter");
    let text = "metric,timestamp,value,resource_kind,resource_id,consumer_kind,consumer_id,__late_attributes\n\
                mem_total_By,2026-11-26T06:25:59.000000000Z,1024,local_machine,,local_machine,,\n";
    let data = read_csv(&write(&dir, "comma.csv", text), None).unwrap();
    assert_eq!(
        data.machine[0].points,
        vec![(1_795_674_359_000_000_000, 1024.0)]
    );
}
