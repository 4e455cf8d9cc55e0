//! What one case measures: CPU time, polls, latency; and the wake-up floor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alumet::measurement::{MeasurementBuffer, Timestamp};
use alumet::pipeline::{ElementError, OutputContext};
use serde::{Deserialize, Serialize};

pub use alumet::test_util::cost::{cpu_time, floor, max_rss_kb};

/// Latencies from the poll's timestamp to the output's write, one per buffer.
#[derive(Clone, Default)]
pub struct Latencies(Arc<Mutex<Vec<u64>>>);

impl Latencies {
    /// Room for `n` samples, so that recording does not allocate during the run.
    pub fn with_capacity(n: usize) -> Self {
        Latencies(Arc::new(Mutex::new(Vec::with_capacity(n))))
    }

    /// An output that records the latency of each buffer and writes nothing.
    pub fn probe(
        &self,
    ) -> impl FnMut(&MeasurementBuffer, &OutputContext) -> Result<(), ElementError> + Send + 'static
    {
        let samples = Arc::clone(&self.0);
        move |buffer, _ctx| {
            if let Some(p) = buffer.iter().next() {
                let now = Timestamp::now().unix_nanos();
                let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
                if s.len() < s.capacity() {
                    s.push(now.saturating_sub(p.timestamp.unix_nanos()));
                }
            }
            Ok(())
        }
    }

    /// Forgets the samples so far (the warm-up).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// (p50, p99, max) in µs.
    pub fn percentiles(&self) -> (f64, f64, f64) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if s.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        s.sort_unstable();
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        (at(0.5), at(0.99), at(1.0))
    }
}

/// Counts polls of the measured sources.
#[derive(Clone, Default)]
pub struct PollCount(pub Arc<AtomicU64>);

impl PollCount {
    /// Polls so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The figures of one case, as in the JSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's name.
    pub case: String,
    /// Requested polls per second.
    pub hz: f64,
    /// Points per poll.
    pub points_per_poll: u64,
    /// Polls per second achieved.
    pub achieved_hz: f64,
    /// CPU µs per poll, the whole process.
    pub cpu_us_per_poll: f64,
    /// CPU µs per wake-up of an empty loop at the same frequency.
    pub floor_us_per_poll: f64,
    /// `cpu_us_per_poll / floor_us_per_poll`.
    pub ratio_to_floor: f64,
    /// CPU ns per point.
    pub cpu_ns_per_point: f64,
    /// Latency from the poll to the output's write, 50th percentile.
    pub latency_p50_us: f64,
    /// 99th percentile.
    pub latency_p99_us: f64,
    /// Maximum.
    pub latency_max_us: f64,
    /// Points dropped by full queues.
    pub dropped: u64,
    /// Peak resident memory of the case's process.
    pub max_rss_kb: u64,
}

/// Measures a running case for `run`: CPU and polls between two instants.
pub fn window(run: Duration, polls: &PollCount) -> (Duration, u64, Duration) {
    let (cpu0, p0, t0) = (cpu_time(), polls.get(), Instant::now());
    std::thread::sleep(run);
    (cpu_time() - cpu0, polls.get() - p0, t0.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_recorded_latencies() {
        let l = Latencies::with_capacity(200);
        l.0.lock().unwrap().extend((1..=100).map(|us| us * 1000));
        assert_eq!(l.percentiles(), (51.0, 99.0, 100.0));
        l.clear();
        assert_eq!(l.percentiles(), (0.0, 0.0, 0.0));
    }
}
