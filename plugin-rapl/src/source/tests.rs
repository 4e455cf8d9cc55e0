use std::sync::{Arc, Mutex};

use super::*;
use crate::domains::Domain;

/// A counter whose next readings the test sets.
#[derive(Clone, Default)]
struct Script(Arc<Mutex<Vec<io::Result<u64>>>>);

impl Script {
    fn then(&self, r: io::Result<u64>) -> &Self {
        self.0.lock().unwrap().push(r);
        self
    }
}

struct Scripted(Script, String);

impl EnergyReader for Scripted {
    fn read(&mut self) -> io::Result<u64> {
        let mut next = self.0 .0.lock().unwrap();
        if next.is_empty() {
            return Err(io::Error::other("script exhausted"));
        }
        next.remove(0)
    }
    fn label(&self) -> &str {
        &self.1
    }
}

fn counter(script: &Script, max: u64) -> Counter {
    Counter::new(
        Box::new(Scripted(script.clone(), "zone".into())),
        CounterDiff::with_max(max),
    )
}

#[test]
fn first_reading_is_the_baseline_then_exact_differences() {
    let s = Script::default();
    s.then(Ok(900)).then(Ok(950)).then(Ok(950)).then(Ok(20));
    let mut c = counter(&s, 999);
    assert_eq!(c.update(), None);
    assert_eq!(c.update(), Some(50));
    assert_eq!(c.update(), Some(0));
    // 49 to 999, 1 to wrap to 0, 20 after.
    assert_eq!(c.update(), Some(70));
}

#[test]
fn out_of_range_and_failures_keep_or_reset_the_baseline() {
    let s = Script::default();
    s.then(Ok(100)).then(Ok(5000)).then(Ok(6000)).then(Ok(130));
    s.then(Err(io::Error::from_raw_os_error(libc::ENODEV)))
        .then(Ok(500))
        .then(Ok(510));
    let mut c = counter(&s, 1000);
    assert_eq!(c.update(), None);
    assert_eq!(c.update(), None, "above max: skipped");
    assert!(c.out_of_range);
    assert_eq!(c.update(), None, "still above max");
    assert_eq!(
        c.update(),
        Some(30),
        "baseline kept across the bad readings"
    );
    assert!(!c.out_of_range);
    assert_eq!(c.update(), None, "failed read");
    assert!(c.failing);
    assert_eq!(c.update(), None, "after a failure, a new baseline");
    assert!(!c.failing);
    assert_eq!(c.update(), Some(10));
}

#[test]
fn a_group_sums_its_dies_only_when_all_have_a_difference() {
    let (a, b) = (Script::default(), Script::default());
    a.then(Ok(0)).then(Ok(1_000_000)).then(Ok(3_000_000));
    b.then(Ok(0))
        .then(Err(io::Error::other("gone")))
        .then(Ok(500_000));
    let key = Key::new(0, Domain::Package);
    let mut g = Group::new(
        key,
        Scale::MicroJoules,
        vec![counter(&a, u64::MAX), counter(&b, u64::MAX)],
    );
    assert_eq!(g.update(), None);
    assert_eq!(g.update(), None, "die b failed: no partial sum");
    assert_eq!(g.update(), None, "die b is at its new baseline");
    a.then(Ok(4_000_000));
    b.then(Ok(2_000_000));
    assert_eq!(g.update(), Some(2.5));
    assert_eq!(g.key(), key);
    assert_eq!(g.counters().len(), 2);
}

#[test]
fn scales() {
    assert_eq!(Scale::MicroJoules.joules(2_500_001), 2.500001);
    assert_eq!(Scale::JoulesPerCount(2f64.powi(-32)).joules(3 << 32), 3.0);
}

/// The group of package 0's `domain`, of one counter read from `script` and named `label`
/// (in the warnings), in µJ without wrap-around.
fn watched(domain: Domain, script: &Script, label: &str) -> Group {
    let counter = Counter::new(
        Box::new(Scripted(script.clone(), label.into())),
        CounterDiff::without_wrap(),
    );
    Group::new(Key::new(0, domain), Scale::MicroJoules, vec![counter])
}

#[test]
fn a_counter_that_never_moves_is_reported_once_after_a_tenth_of_a_second() {
    alumet::test_util::logs::capture();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let warned =
        |label: &str| alumet::test_util::logs::lines_with(&format!("({label}) has not moved"));

    // A stub: always 0 (a KVM guest's energy-psys).
    let stub = Script::default();
    for _ in 0..5 {
        stub.then(Ok(0));
    }
    let mut g = watched(Domain::Platform, &stub, "still-stub");
    assert_eq!(g.update_at(at(0)), None);
    assert_eq!(g.update_at(at(60)), Some(0.0));
    assert!(warned("still-stub").is_empty(), "too early to tell");
    assert_eq!(g.update_at(at(120)), Some(0.0), "still reported, as read");
    assert_eq!(warned("still-stub").len(), 1, "{:?}", warned("still-stub"));
    assert!(warned("still-stub")[0].starts_with("WARN rapl: platform (still-stub)"));
    g.update_at(at(2000));
    assert_eq!(warned("still-stub").len(), 1, "once");

    // A failed read gives a new baseline: the span starts again there.
    let gap = Script::default();
    gap.then(Ok(0))
        .then(Err(io::Error::other("busy")))
        .then(Ok(0));
    gap.then(Ok(0)).then(Ok(0));
    let mut g = watched(Domain::Package, &gap, "still-gap");
    g.update_at(at(0));
    assert_eq!(g.update_at(at(90)), None);
    assert_eq!(g.update_at(at(100)), None, "the new baseline");
    assert_eq!(g.update_at(at(150)), Some(0.0));
    assert!(warned("still-gap").is_empty(), "50 ms since the baseline");
    assert_eq!(g.update_at(at(210)), Some(0.0));
    assert_eq!(warned("still-gap").len(), 1, "110 ms since the baseline");

    // A real counter may stay still between two close readings, then moves: no warning.
    let live = Script::default();
    live.then(Ok(10)).then(Ok(10)).then(Ok(11)).then(Ok(11));
    let mut g = watched(Domain::Dram, &live, "still-live");
    g.update_at(at(0));
    g.update_at(at(1));
    g.update_at(at(150));
    g.update_at(at(1400));
    assert!(
        warned("still-live").is_empty(),
        "{:?}",
        warned("still-live")
    );

    // An integrated GPU's domain rightly stays at 0 while the GPU sleeps.
    let igpu = Script::default();
    for _ in 0..3 {
        igpu.then(Ok(7));
    }
    let mut g = watched(Domain::Pp1, &igpu, "still-igpu");
    g.update_at(at(0));
    g.update_at(at(600));
    g.update_at(at(1200));
    assert!(
        warned("still-igpu").is_empty(),
        "{:?}",
        warned("still-igpu")
    );
}
