//! The agent's side, in process: C plugins built with gcc, loaded, run in a real pipeline;
//! and every load error, with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet::measurement::{AttributeValue, MeasurementValue, Resource, ResourceConsumer};
use alumet::prelude::*;
use alumet::test_util::PipelineTester;
use alumet_dynamic::host::{LoadError, PluginLibrary};

fn load(path: &Path) -> Result<PluginLibrary, LoadError> {
    PluginLibrary::open(path)
}

#[test]
fn dynamic_c_plugin_source_and_output_run_in_a_pipeline() {
    if !common::gcc_here("dynamic_c_plugin_source_and_output_run_in_a_pipeline") {
        return;
    }
    let dir = common::temp_dir("pipeline");
    let lib = load(&common::c_example(&dir)).unwrap();
    assert_eq!((lib.name(), lib.version()), ("c_example", "1.0.0"));
    let lines = dir.join("lines.txt");
    // Polled only when triggered: an hour between polls.
    let config = format!(
        "output_path = {:?}\npoll_interval_ms = 3600000\n",
        lines.to_str().unwrap()
    );
    let plugin = lib.init("c_example", &config).unwrap();

    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    let feeder = tester.feeder("fed");
    let run = tester.start().unwrap();
    let fed = run.metric::<u64>("test_fed").unwrap();
    let attrs = Attributes::new([
        ("domain", AttributeValue::from("package")),
        ("n", 7u64.into()),
    ]);
    feeder.push(
        MeasurementPoint::new(
            Timestamp::from_unix_nanos(5),
            fed,
            Resource::CpuPackage { id: 1 },
            ResourceConsumer::Process { pid: 42 },
            99,
        )
        .with_attributes(attrs),
    );
    assert_eq!(run.trigger("test/fed"), 1);
    assert_eq!(run.trigger("c_example/counter"), 1);
    assert_eq!(run.trigger("c_example/counter"), 1);
    let (report, points) = run.shutdown();
    assert!(!report.timed_out);

    let polls = points
        .iter()
        .filter(|p| p.metric != fed.raw())
        .collect::<Vec<_>>();
    assert_eq!(polls.len(), 2, "{points:?}");
    for (p, n) in polls.iter().zip([1u64, 2]) {
        assert_eq!(p.value, MeasurementValue::U64(n));
        assert_eq!(
            (p.resource.kind(), p.resource.id().to_string().as_str()),
            ("pdu", "outlet-1")
        );
        assert_eq!(p.consumer, ResourceConsumer::LocalMachine);
        assert_eq!(p.attributes.get("origin"), Some(&AttributeValue::from("c")));
    }
    // The C output read every point, with names, kinds and ids (numbers rendered).
    let text = std::fs::read_to_string(&lines).unwrap();
    let mut got: Vec<&str> = text.lines().collect();
    got.sort();
    assert_eq!(
        got,
        [
            "c_example_polls pdu outlet-1 1",
            "c_example_polls pdu outlet-1 2",
            "test_fed cpu_package 1 99"
        ]
    );
}

#[test]
fn dynamic_c_plugin_pushing_a_wrong_point_stops_that_source_only() {
    if !common::gcc_here("dynamic_c_plugin_pushing_a_wrong_point_stops_that_source_only") {
        return;
    }
    let dir = common::temp_dir("wrong-point");
    let source = r#"
#include "alumet.h"
static const AlumetHost *host;
static uint32_t metric;
uint32_t alumet_plugin_abi_version(void) { return ALUMET_ABI_VERSION; }
const char *alumet_plugin_name(void) { return "wrong"; }
const char *alumet_plugin_version(void) { return "0"; }
AlumetStatus alumet_plugin_init(const AlumetHost *h, AlumetStr c, void **p, AlumetError *e) {
    (void)c; (void)e; host = h; *p = (void *)1; return ALUMET_OK;
}
static AlumetStatus bad(void *d, AlumetAccumulator *acc, uint64_t t, AlumetError *e) {
    (void)d; (void)e;
    AlumetPoint p = { .metric = metric, .value_type = ALUMET_F64, .timestamp_ns = t, .value_f64 = 1.5 };
    host->push(acc, &p);
    return ALUMET_OK;
}
static AlumetStatus good(void *d, AlumetAccumulator *acc, uint64_t t, AlumetError *e) {
    (void)d; (void)e;
    AlumetPoint p = { .metric = metric, .value_type = ALUMET_U64, .timestamp_ns = t, .value_u64 = 3 };
    return host->push(acc, &p);
}
AlumetStatus alumet_plugin_start(void *p, AlumetRegistrar *r, AlumetError *e) {
    (void)p;
    AlumetStatus s = host->create_metric(r, ALUMET_STR("wrong_u64"), ALUMET_STR("W"), ALUMET_U64,
                                         ALUMET_STR("A u64 metric."), &metric, e);
    if (s != ALUMET_OK) return s;
    s = host->add_source(r, ALUMET_STR("bad"), 0, 0, bad, NULL, NULL, e);
    if (s != ALUMET_OK) return s;
    /* A duplicate name fails, with the agent's reason in `e`. */
    if (host->add_source(r, ALUMET_STR("bad"), 0, 0, good, NULL, NULL, e) == ALUMET_OK) return ALUMET_ERROR;
    AlumetStr reason = host->error_message(e);
    if (reason.len == 0) return ALUMET_ERROR;
    return host->add_source(r, ALUMET_STR("good"), 0, 0, good, NULL, NULL, e);
}
AlumetStatus alumet_plugin_stop(void *p, AlumetError *e) { (void)p; (void)e; return ALUMET_OK; }
void alumet_plugin_drop(void *p) { (void)p; }
"#;
    let path = common::shared_library_from(source, &dir, "wrong");
    let plugin = load(&path).unwrap().init("wrong", "").unwrap();
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    let run = tester.start().unwrap();
    for _ in 0..2 {
        run.trigger("wrong/*");
    }
    let stats = run.control().element_stats();
    let (_, points) = run.shutdown();
    // The bad source pushed nothing and was stopped; the good one polled twice.
    assert_eq!(
        points.iter().map(|p| p.value).collect::<Vec<_>>(),
        [MeasurementValue::U64(3); 2]
    );
    let bad = stats
        .iter()
        .find(|s| s.name.to_string() == "wrong/bad")
        .unwrap();
    assert!(bad.stopped, "{bad:?}");
}

#[test]
fn dynamic_load_errors_name_the_library_and_what_to_do() {
    if !common::gcc_here("dynamic_load_errors_name_the_library_and_what_to_do") {
        return;
    }
    let dir = common::temp_dir("errors");
    let missing = dir.join("libnothere.so");
    let e = load(&missing).unwrap_err().to_string();
    assert!(
        e.contains(missing.to_str().unwrap()) && e.contains("does not exist"),
        "{e}"
    );

    let text = dir.join("libtext.so");
    std::fs::write(&text, "not an ELF file").unwrap();
    let e = load(&text).unwrap_err().to_string();
    assert!(
        e.contains(text.to_str().unwrap())
            && e.contains("is not a shared library")
            && e.contains("-shared -fPIC"),
        "{e}"
    );

    let none = common::shared_library_from("int unrelated = 1;\n", &dir, "none");
    let e = load(&none).unwrap_err().to_string();
    assert!(
        e.contains(none.to_str().unwrap())
            && e.contains("does not export the symbol `alumet_plugin_abi_version`"),
        "{e}"
    );

    let partial = common::shared_library_from(
        "#include \"alumet.h\"\nuint32_t alumet_plugin_abi_version(void) { return ALUMET_ABI_VERSION; }\n",
        &dir,
        "partial",
    );
    let e = load(&partial).unwrap_err().to_string();
    assert!(
        e.contains("does not export the symbol `alumet_plugin_name`"),
        "{e}"
    );

    let future = common::shared_library_from(
        "unsigned alumet_plugin_abi_version(void) { return 999; }\n",
        &dir,
        "future",
    );
    let e = load(&future).unwrap_err().to_string();
    assert!(
        e.contains(future.to_str().unwrap())
            && e.contains("plugin ABI version 999")
            && e.contains("implements version 1"),
        "{e}"
    );

    let lib = load(&common::c_example(&dir)).unwrap();
    let e = lib
        .init("c_example", "poll_interval_ms = 5\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("plugin `c_example`")
            && e.contains("failed to initialize: c_example: `output_path` is required"),
        "{e}"
    );
}

#[test]
fn dynamic_plugin_unavailable_at_start_is_left_out_with_its_reason() {
    if !common::gcc_here("dynamic_plugin_unavailable_at_start_is_left_out_with_its_reason") {
        return;
    }
    let dir = common::temp_dir("unavailable");
    let source = r#"
#include "alumet.h"
static const AlumetHost *host;
uint32_t alumet_plugin_abi_version(void) { return ALUMET_ABI_VERSION; }
const char *alumet_plugin_name(void) { return "pdu"; }
const char *alumet_plugin_version(void) { return "2.1"; }
AlumetStatus alumet_plugin_init(const AlumetHost *h, AlumetStr c, void **p, AlumetError *e) {
    (void)c; (void)e; host = h; *p = NULL; return ALUMET_OK;
}
AlumetStatus alumet_plugin_start(void *p, AlumetRegistrar *r, AlumetError *e) {
    (void)p; (void)r;
    host->set_error(e, ALUMET_STR("no PDU answers on /dev/ttyUSB0"));
    return ALUMET_UNAVAILABLE;
}
AlumetStatus alumet_plugin_stop(void *p, AlumetError *e) { (void)p; (void)e; return ALUMET_OK; }
void alumet_plugin_drop(void *p) { (void)p; }
"#;
    let path = common::shared_library_from(source, &dir, "pdu");
    let plugin = load(&path).unwrap().init("pdu", "").unwrap();
    let mut tester = PipelineTester::new();
    tester.any_plugin(plugin);
    let run = tester.start().unwrap();
    let unavailable = run.pipeline().unavailable_plugins().to_vec();
    assert_eq!(unavailable.len(), 1);
    assert_eq!(unavailable[0].0, "pdu");
    assert_eq!(unavailable[0].1.reason, "no PDU answers on /dev/ttyUSB0");
    assert!(unavailable[0].1.fix.contains(path.to_str().unwrap()));
    assert!(!run.pipeline().plugin_names().contains(&"pdu".to_owned()));
}
