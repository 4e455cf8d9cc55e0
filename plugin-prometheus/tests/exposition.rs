//! The endpoint's output for fixed points, parsed back; counters; staleness; 50
//! concurrent scrapes while points flow.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alumet::prelude::*;
use common::{get, point, wait_for, Exporter};

const T0: u64 = 1_795_674_359_123_456_789;
const T1: u64 = 1_795_674_360_000_000_000;

#[test]
fn fixed_points_parse_back_with_names_labels_help_and_types() {
    let x = Exporter::start("");
    let energy = x.metric::<f64>("rapl_consumed_energy");
    let gpu = x.metric::<u64>("gpu_energy");
    let memory = x.metric::<u64>("memory_usage");
    let latency = x.metric::<f64>("latency");
    let input = x.metric::<u64>("test_input");
    use Resource as R;
    use ResourceConsumer as C;
    let cg = C::ControlGroup {
        path: "/system.slice/nginx.service".into(),
    };
    x.feed([
        point(
            T0,
            energy,
            12.5,
            R::CpuPackage { id: 0 },
            C::LocalMachine,
            &[("domain", "package")],
        ),
        point(
            T0,
            energy,
            0.25,
            R::Dram { pkg_id: 1 },
            C::LocalMachine,
            &[("domain", "dram")],
        ),
        point(
            T0,
            gpu,
            1500,
            R::Gpu {
                bus_id: "00000000:3B:00.0".into(),
            },
            C::LocalMachine,
            &[],
        ),
        point(
            T0,
            memory,
            1_048_576,
            R::LocalMachine,
            C::Process { pid: 4242 },
            &[("note", "a \"q\"\nb\\c"), ("weird-key", "x")],
        ),
        point(T0, latency, 250.0, R::LocalMachine, cg, &[]),
        point(T0, input, 42, R::LocalMachine, C::LocalMachine, &[]),
    ]);
    let e = x.scrape_after(6);
    let name = "alumet_rapl_consumed_energy_joules_total";
    assert_eq!(e.types[name], "counter");
    assert_eq!(
        e.help[name],
        "Energy used since the previous point.\nIn \"joules\" \\ J."
    );
    let pkg = [
        ("resource_kind", "cpu_package"),
        ("resource_id", "0"),
        ("consumer_kind", "local_machine"),
        ("domain", "package"),
    ];
    assert_eq!(e.value(name, &pkg), Some(12.5));
    assert_eq!(
        e.value(name, &[("resource_kind", "dram"), ("resource_id", "1")]),
        Some(0.25)
    );
    // The local machine has no id: no empty label.
    assert!(e
        .of(name)
        .iter()
        .all(|s| !s.labels.contains_key("consumer_id")));
    assert_eq!(e.types["alumet_gpu_energy_joules_total"], "counter");
    assert_eq!(
        e.value(
            "alumet_gpu_energy_joules_total",
            &[("resource_id", "00000000:3B:00.0")]
        ),
        Some(1.5)
    );
    assert_eq!(e.types["alumet_memory_usage_bytes"], "gauge");
    let mem = e.of("alumet_memory_usage_bytes");
    assert_eq!(mem.len(), 1);
    assert_eq!(mem[0].value, 1_048_576.0);
    assert_eq!(mem[0].labels["note"], "a \"q\"\nb\\c");
    assert_eq!(mem[0].labels["weird_key"], "x");
    assert_eq!(mem[0].labels["consumer_id"], "4242");
    assert_eq!(mem[0].timestamp, None, "add_timestamps is off by default");
    let lat = "alumet_latency_seconds";
    assert_eq!(
        e.value(lat, &[("consumer_id", "/system.slice/nginx.service")]),
        Some(0.25)
    );
    assert_eq!(e.types["alumet_test_input"], "gauge");
    assert_eq!(e.value("alumet_test_input", &[]), Some(42.0));
    // Every sample has HELP and TYPE.
    for s in &e.samples {
        assert!(
            e.types.contains_key(&s.name) && e.help.contains_key(&s.name),
            "{}",
            s.name
        );
    }
    // The agent's health: per-output counts from the control handle.
    let written = wait_for(20, "the collector's count", || {
        let e = x.scrape();
        let v = e.value(
            "alumet_output_points_written_total",
            &[("output", "test/collector")],
        )?;
        (v == 6.0).then_some(e)
    });
    assert_eq!(
        written.types["alumet_output_points_dropped_total"],
        "counter"
    );
    assert!(written
        .value(
            "alumet_output_points_dropped_total",
            &[("output", "prometheus/prometheus")]
        )
        .is_some());
    assert_eq!(written.value("alumet_prometheus_series", &[]), Some(6.0));
    // Per element: the feeder source's polls and points, no error, not stopped.
    let source = [("element", "test/input"), ("kind", "source")];
    assert_eq!(written.types["alumet_source_polls_total"], "counter");
    assert!(written.value("alumet_source_polls_total", &source).unwrap() >= 1.0);
    assert!(
        written
            .value("alumet_source_points_total", &source)
            .unwrap()
            >= 1.0
    );
    assert_eq!(
        written.value("alumet_element_errors_total", &source),
        Some(0.0)
    );
    assert_eq!(written.value("alumet_element_stopped", &source), Some(0.0));
    assert!(
        written
            .value("alumet_source_last_success_timestamp_seconds", &source)
            .unwrap()
            > 1.7e9
    );
    // Other paths.
    assert_eq!(get(x.addr, "/nope").0, 404);
    assert_eq!(get(x.addr, "/").0, 200);
    let (report, _) = x.run.shutdown();
    assert_eq!(report.undelivered_points, 0);
}

#[test]
fn counters_only_grow_across_buffers_and_timestamps_are_optional() {
    let x = Exporter::start("prefix = \"\"\nadd_timestamps = true");
    let energy = x.metric::<f64>("rapl_consumed_energy");
    let name = "rapl_consumed_energy_joules_total";
    let mut expected = 0.0;
    let mut received = 0;
    for (i, delta) in [1.5, 2.0, -1.0, f64::NAN, 0.5].into_iter().enumerate() {
        let t = T1 + i as u64 * 1_000_000_000;
        x.feed([point(
            t,
            energy,
            delta,
            Resource::CpuPackage { id: 0 },
            ResourceConsumer::LocalMachine,
            &[],
        )]);
        received += 1;
        if delta.is_finite() && delta >= 0.0 {
            expected += delta;
        }
        let e = x.scrape_after(received);
        let s = e.of(name);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, expected, "after buffer {i}");
        assert_eq!(s[0].timestamp, Some((t / 1_000_000) as i64));
    }
    assert_eq!(expected, 4.0);

    // A scraper asking for OpenMetrics gets it: counter families named without `_total`,
    // samples with it, timestamps in seconds, `# EOF` at the end.
    let accept = "Accept: application/openmetrics-text; version=1.0.0,text/plain;q=0.5\r\n";
    let (status, head, body) = common::get_with(x.addr, "/metrics", accept).unwrap();
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE rapl_consumed_energy_joules counter\n"),
        "{body}"
    );
    let t = T1 + 4 * 1_000_000_000;
    let sample = format!(
        "{name}{{resource_kind=\"cpu_package\",resource_id=\"0\",consumer_kind=\"local_machine\"}} 4.0 {}.000",
        t / 1_000_000_000
    );
    assert!(body.lines().any(|l| l == sample), "{sample} not in {body}");
}

#[test]
fn stale_series_are_removed() {
    let x = Exporter::start("stale_after = \"2s\"");
    let input = x.metric::<u64>("test_input");
    let p = |pid| {
        point(
            T0,
            input,
            1,
            Resource::LocalMachine,
            ResourceConsumer::Process { pid },
            &[],
        )
    };
    x.feed([p(1), p(2)]);
    let e = x.scrape_after(2);
    assert_eq!(e.of("alumet_test_input").len(), 2);
    // Process 1 ended: only process 2 keeps reporting.
    let mut fed = 2;
    let e = wait_for(30, "the series of process 1 to go", || {
        x.feed([p(2)]);
        fed += 1;
        let e = x.scrape_after(fed);
        std::thread::sleep(std::time::Duration::from_millis(150));
        (e.value("alumet_test_input", &[("consumer_id", "1")])
            .is_none())
        .then_some(e)
    });
    assert_eq!(
        e.value("alumet_test_input", &[("consumer_id", "2")]),
        Some(1.0)
    );
}

#[test]
fn fifty_concurrent_scrapes_while_points_flow() {
    let x = Exporter::start("");
    let energy = x.metric::<f64>("rapl_consumed_energy");
    let done = Arc::new(AtomicBool::new(false));
    let scrapers: Vec<_> = (0..50)
        .map(|_| {
            let (addr, done) = (x.addr, Arc::clone(&done));
            std::thread::spawn(move || {
                let mut ok = 0;
                // At least one scrape each, more while the points flow.
                while ok == 0 || (!done.load(Ordering::SeqCst) && ok < 20) {
                    let (status, _, body) = get(addr, "/metrics");
                    assert_eq!(status, 200);
                    common::parse(&body);
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    const BUFFERS: u64 = 200;
    const PER_BUFFER: u64 = 20;
    for b in 0..BUFFERS {
        let points = (0..PER_BUFFER).map(|i| {
            point(
                T0 + b,
                energy,
                0.5,
                Resource::CpuCore { id: i as u32 },
                ResourceConsumer::LocalMachine,
                &[],
            )
        });
        x.feed(points);
    }
    done.store(true, Ordering::SeqCst);
    let scrapes: u32 = scrapers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(scrapes >= 50);
    let total = BUFFERS * PER_BUFFER;
    let e = x.scrape_after(total);
    let name = "alumet_rapl_consumed_energy_joules_total";
    for core in 0..PER_BUFFER {
        let id = core.to_string();
        assert_eq!(
            e.value(name, &[("resource_id", &id)]),
            Some(0.5 * BUFFERS as f64)
        );
    }
    let (report, collected) = x.run.shutdown();
    assert_eq!(collected.len() as u64, total);
    for o in &report.outputs {
        assert_eq!(
            (o.written_points, o.dropped_points, o.failed_points),
            (total, 0, 0),
            "{}",
            o.name
        );
    }
}

#[test]
fn the_public_alumet_exporter_keys_name_the_port_the_suffix_and_the_labels() {
    let port = common::free_port();
    let x = Exporter::start(&format!(
        "host = \"127.0.0.1\"\nport = {port}\nprefix = \"\"\nsuffix = \"_alumet\"\nadd_attributes_to_labels = false"
    ));
    let energy = x.metric::<f64>("rapl_consumed_energy");
    let latency = x.metric::<f64>("latency");
    x.feed([
        point(
            T0,
            energy,
            12.5,
            Resource::CpuPackage { id: 0 },
            ResourceConsumer::LocalMachine,
            &[("domain", "package")],
        ),
        point(
            T0,
            latency,
            3.0,
            Resource::LocalMachine,
            ResourceConsumer::Process { pid: 7 },
            &[("kind", "p99")],
        ),
    ]);
    // `port` replaces the port of `address`.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let e = wait_for(20, "both points on the endpoint", || {
        let (status, _, body) = get(addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        let e = common::parse(&body);
        (!e.of("latency_seconds_alumet").is_empty()).then_some(e)
    });
    // The suffix after the unit, before a counter's `_total`; no prefix.
    assert_eq!(
        e.types.get("rapl_consumed_energy_joules_alumet_total"),
        Some(&"counter".to_owned())
    );
    let energy = e.of("rapl_consumed_energy_joules_alumet_total");
    assert_eq!(energy.len(), 1);
    assert_eq!(energy[0].value, 12.5);
    // No attribute labels: the resource and consumer ones only.
    let keys: Vec<&str> = energy[0].labels.keys().map(String::as_str).collect();
    assert!(!keys.contains(&"domain"), "{keys:?}");
    assert!(keys.contains(&"resource_kind"), "{keys:?}");
    let latency = e.of("latency_seconds_alumet");
    assert_eq!(latency.len(), 1);
    assert!(!latency[0].labels.contains_key("kind"));
    assert_eq!(
        latency[0].labels.get("consumer_id").map(String::as_str),
        Some("7")
    );
}

#[test]
fn a_host_that_is_not_an_ip_address_is_refused_naming_the_key() {
    let c: plugin_prometheus::Config = toml::from_str("host = \"localhost\"").unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("host") && err.contains("localhost"), "{err}");
    let c: plugin_prometheus::Config = toml::from_str("suffix = \"-x\"").unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("suffix"));
}
