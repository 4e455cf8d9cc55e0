//! The bench binary runs a case and reports every figure of the JSON format.
#![allow(clippy::unwrap_used)]

#[test]
fn one_case_reports_every_field() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--case", "null-1khz-10pts", "--seconds", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "case",
        "hz",
        "points_per_poll",
        "achieved_hz",
        "cpu_us_per_poll",
        "floor_us_per_poll",
        "cpu_ns_per_point",
        "latency_p50_us",
        "latency_p99_us",
        "dropped",
        "max_rss_kb",
    ] {
        assert!(json.get(field).is_some(), "{field} missing: {json}");
    }
    assert_eq!(json["case"], "null-1khz-10pts");
    assert_eq!(json["points_per_poll"], 10);
    assert_eq!(json["dropped"], 0);
    assert!(json["achieved_hz"].as_f64().unwrap() > 0.0);
    assert!(json["cpu_us_per_poll"].as_f64().unwrap() > 0.0);
}

#[test]
fn push_encoding_reports_every_case() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_push-encoding"))
        .args(["--seconds", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let cases: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "remote-write-protobuf-snappy",
            "otlp-protobuf-gzip",
            "otlp-protobuf",
            "otlp-json"
        ]
    );
    for c in &cases {
        assert_eq!(c["points"], 2000, "{c}");
        assert!(c["bytes_per_point"].as_f64().unwrap() > 1.0, "{c}");
    }
}
