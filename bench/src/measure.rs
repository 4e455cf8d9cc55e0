//! What one case measures: CPU time, polls, latency; and the wake-up floor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alumet::measurement::{MeasurementBuffer, Timestamp};
use alumet::pipeline::{ElementError, OutputContext};
use serde::{Deserialize, Serialize};

/// User + system CPU time of this process.
pub fn cpu_time() -> Duration {
    let usage = rusage();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Peak resident memory of this process, in kB.
pub fn max_rss_kb() -> u64 {
    rusage().ru_maxrss as u64
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage
}

/// Sets the calling thread's timer slack to 1 ns, as the pipeline's source threads do.
pub fn precise_timers() {
    // SAFETY: PR_SET_TIMERSLACK only affects this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

/// Sleeps until `deadline` on the monotonic clock, with an absolute `clock_nanosleep`.
fn sleep_until(deadline: &libc::timespec) {
    // SAFETY: a valid timespec; EINTR just returns early, the loop goes on.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            deadline,
            std::ptr::null_mut(),
        )
    };
}

fn now_timespec() -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t
}

fn add_ns(t: &mut libc::timespec, ns: i64) {
    t.tv_nsec += ns;
    while t.tv_nsec >= 1_000_000_000 {
        t.tv_nsec -= 1_000_000_000;
        t.tv_sec += 1;
    }
}

/// CPU µs per wake-up of a loop that only sleeps to absolute deadlines every `period`.
pub fn floor(period: Duration, run: Duration) -> f64 {
    precise_timers();
    let n = (run.as_nanos() / period.as_nanos().max(1)) as u64;
    let cpu0 = cpu_time();
    let mut next = now_timespec();
    for _ in 0..n {
        add_ns(&mut next, period.as_nanos() as i64);
        sleep_until(&next);
    }
    (cpu_time() - cpu0).as_secs_f64() * 1e6 / n as f64
}

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

    #[test]
    fn timespec_arithmetic_carries_seconds() {
        let mut t = libc::timespec {
            tv_sec: 1,
            tv_nsec: 999_999_999,
        };
        add_ns(&mut t, 2);
        assert_eq!((t.tv_sec, t.tv_nsec), (2, 1));
    }
}
