//! Time to render one scrape of N series (default 10 000):
//! `cargo run --release -p plugin-prometheus --example scrape_cost -- 10000`
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use alumet::metrics::MetricRegistry;
use alumet::prelude::*;
use plugin_prometheus::{Page, PrometheusOutput, State};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |a| a.parse().unwrap());
    let mut registry = MetricRegistry::new();
    let energy = registry
        .register::<f64>("rapl_consumed_energy", Unit::Joule, "energy")
        .unwrap();
    let memory = registry
        .register::<u64>("memory_usage", Unit::Byte, "memory")
        .unwrap();
    let ctx = OutputContext::new(Arc::new(registry));
    let state = Arc::new(Mutex::new(State::new(Duration::from_secs(300), usize::MAX)));
    let mut output = PrometheusOutput::new(Arc::clone(&state), "alumet_", &Default::default());
    // Half energy counters per (package, process), half memory gauges per process, with one attribute.
    let mut buffer = MeasurementBuffer::with_capacity(n);
    let attrs = Attributes::new([("domain", "package")]);
    let t = Timestamp::now();
    for i in 0..n as u32 {
        let consumer = ResourceConsumer::Process { pid: 1000 + i / 2 };
        let p = if i % 2 == 0 {
            MeasurementPoint::new(t, energy, Resource::CpuPackage { id: i % 4 }, consumer, 0.5)
        } else {
            MeasurementPoint::new(
                t,
                memory,
                Resource::LocalMachine,
                consumer,
                4096 * u64::from(i),
            )
        };
        buffer.push(p.with_attributes(attrs.clone()));
    }
    let start = Instant::now();
    output.write(&buffer, &ctx).unwrap();
    let update = start.elapsed();
    let page = Page {
        state,
        control: OnceLock::new(),
        prefix: "alumet_".into(),
        add_timestamps: false,
    };
    let body = page.render(Instant::now());
    let rounds = 50;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes += page.render(Instant::now()).len();
    }
    let render = start.elapsed() / rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        let _snapshot = plugin_prometheus::output_lock_snapshot(&page);
    }
    let locked = start.elapsed() / rounds;
    println!(
        "{n} series: one buffer of {n} points applied in {update:?}; scrape rendered in {render:?} ({} bytes), of which {locked:?} under the lock",
        body.len()
    );
    assert_eq!(bytes / rounds as usize, body.len());
}
