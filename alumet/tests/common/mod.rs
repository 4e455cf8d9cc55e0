//! Helpers shared by the pipeline tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alumet::prelude::*;

/// The statistics of output `element` in `report` (fails the test when it has none).
pub fn output_stats<'a>(
    report: &'a alumet::pipeline::ShutdownReport,
    element: &str,
) -> &'a alumet::pipeline::OutputStats {
    report
        .outputs
        .iter()
        .find(|s| s.name.element == element)
        .unwrap_or_else(|| panic!("no output `{element}` in {report:?}"))
}

/// Waits until `cond` holds; fails the test if it does not within 20 s (a liveness bound
/// for a loaded machine, not a timing assertion).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A point of `metric` with value `v`.
pub fn point(metric: MetricId<u64>, v: u64) -> MeasurementPoint {
    MeasurementPoint::new(
        Timestamp::now(),
        metric,
        Resource::LocalMachine,
        ResourceConsumer::LocalMachine,
        v,
    )
}

/// A source that pushes `per_poll` points per poll (values 0, 1, 2... over all polls) and
/// counts its polls.
pub fn counting_source(metric: MetricId<u64>, per_poll: u64, polls: Arc<AtomicU64>) -> impl Source {
    move |acc: &mut MeasurementAccumulator, t: Timestamp| {
        let n = polls.fetch_add(1, Ordering::SeqCst);
        for i in 0..per_poll {
            let v = n * per_poll + i;
            acc.push(MeasurementPoint::new(
                t,
                metric,
                Resource::LocalMachine,
                ResourceConsumer::LocalMachine,
                v,
            ));
        }
        Ok(())
    }
}

pub fn counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::SeqCst)
}

/// An autonomous source that sends one point of `metric` a millisecond (values 0, 1, 2...)
/// until its `Shutdown` fires, then a last point of value `u64::MAX`; `sent` counts the
/// points sent, `ended` is set when its task returns.
pub fn ticker(
    metric: MetricId<u64>,
    sent: Arc<AtomicU64>,
    ended: Arc<std::sync::atomic::AtomicBool>,
) -> impl FnOnce(
    SourceSink,
    Shutdown,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>> {
    move |sink, mut shutdown| {
        Box::pin(async move {
            let mut n = 0;
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {
                        sink.send(vec![point(metric, n)].into());
                        sent.fetch_add(1, Ordering::SeqCst);
                        n += 1;
                    }
                }
            }
            // A last buffer after the signal still arrives.
            sink.send(vec![point(metric, u64::MAX)].into());
            sent.fetch_add(1, Ordering::SeqCst);
            ended.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
}
