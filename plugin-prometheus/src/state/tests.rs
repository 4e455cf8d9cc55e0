use super::*;
use crate::format;

/// Families 0 (`a`, a gauge) and 1 (`b_joules_total`, a counter).
fn defs() -> Vec<Def> {
    [("a", Unit::Unity), ("b", Unit::Joule)]
        .into_iter()
        .map(|(name, unit)| {
            let def = format::family("", name, &unit, "help");
            let (n, h) = (Arc::from(def.name.as_str()), Arc::from(def.help.as_str()));
            Some((def, n, h))
        })
        .collect()
}

fn update(family: usize, pid: u32) -> Update {
    Update {
        family,
        labels: format!("{{consumer_id=\"{pid}\"}}"),
        consumer: ResourceConsumer::Process { pid },
        value: 1.0,
        timestamp_ms: 0,
    }
}

fn apply(state: &mut State, at: Instant, updates: impl IntoIterator<Item = Update>) {
    let mut updates: Vec<_> = updates.into_iter().collect();
    state.apply(&defs(), &mut updates, at);
}

fn pids(state: &mut State, family: &str, at: Instant) -> Vec<String> {
    let _ = state.snapshot(at);
    state
        .families
        .get(family)
        .map(|f| f.series.keys().map(|k| k.to_string()).collect())
        .unwrap_or_default()
}

const S: Duration = Duration::from_secs(1);

#[test]
fn an_ended_consumer_loses_every_series_at_once() {
    let t0 = Instant::now();
    let mut state = State::new(300 * S, 100);
    apply(
        &mut state,
        t0,
        [update(0, 1), update(1, 1), update(0, 2), update(1, 2)],
    );
    assert_eq!(state.series(), 4);
    state.consumer_ended(&ResourceConsumer::Process { pid: 1 });
    assert_eq!(state.series(), 2);
    assert_eq!(pids(&mut state, "a", t0), ["{consumer_id=\"2\"}"]);
    assert_eq!(
        pids(&mut state, "b_joules_total", t0),
        ["{consumer_id=\"2\"}"]
    );
    // Another kind with the same id is another consumer.
    state.consumer_ended(&ResourceConsumer::custom("process", "2"));
    assert_eq!(state.series(), 2);
    state.consumer_ended(&ResourceConsumer::Process { pid: 2 });
    assert_eq!(state.series(), 0);
    assert!(state.families.is_empty());
}

#[test]
fn a_series_goes_after_three_of_its_intervals_and_stale_after_at_most() {
    let t0 = Instant::now();
    let mut state = State::new(300 * S, 100);
    // Process 1 every 2 s, process 2 every 10 min: 3 intervals would be 30 min.
    for i in 0..3 {
        apply(&mut state, t0 + i * 2 * S, [update(0, 1)]);
    }
    let last = t0 + 4 * S;
    assert_eq!(
        pids(&mut state, "a", last + Duration::from_millis(5900)).len(),
        1
    );
    assert!(pids(&mut state, "a", last + 6 * S).is_empty());
    apply(&mut state, t0, [update(1, 2)]);
    apply(&mut state, t0 + 600 * S, [update(1, 2)]);
    let t = t0 + 600 * S;
    assert_eq!(pids(&mut state, "b_joules_total", t + 299 * S).len(), 1);
    assert!(pids(&mut state, "b_joules_total", t + 300 * S).is_empty());
    assert_eq!(state.series(), 0);
}

#[test]
fn one_early_point_does_not_make_a_series_expire_before_its_next_regular_one() {
    let t0 = Instant::now();
    let mut state = State::new(300 * S, 100);
    for i in 0..3 {
        apply(&mut state, t0 + i * 10 * S, [update(0, 1)]);
    }
    // A triggered poll 1 s after the last regular one; the next regular one is 9 s later.
    let early = t0 + 21 * S;
    apply(&mut state, early, [update(0, 1)]);
    assert_eq!(pids(&mut state, "a", early + 9 * S).len(), 1);
    apply(&mut state, early + 9 * S, [update(0, 1)]);
    assert_eq!(pids(&mut state, "a", early + 9 * S + 25 * S).len(), 1);
    assert!(pids(&mut state, "a", early + 9 * S + 31 * S).is_empty());
}

#[test]
fn a_series_seen_once_goes_after_three_intervals_of_its_family() {
    let t0 = Instant::now();
    let mut state = State::new(300 * S, 100);
    // Polls every 500 ms; process 7 lived through one poll only.
    let half = Duration::from_millis(500);
    apply(&mut state, t0, [update(0, 1)]);
    apply(&mut state, t0 + half, [update(0, 1), update(0, 7)]);
    apply(&mut state, t0 + 2 * half, [update(0, 1)]);
    let at = |ms| t0 + Duration::from_millis(ms);
    assert_eq!(pids(&mut state, "a", at(1400)).len(), 2);
    // 3 × 500 ms after its point; process 1 keeps going.
    apply(&mut state, at(1500), [update(0, 1)]);
    assert_eq!(pids(&mut state, "a", at(2000)), ["{consumer_id=\"1\"}"]);
}

#[test]
fn max_series_refuses_new_series_counts_them_and_admits_again_after_removal() {
    let t0 = Instant::now();
    let mut state = State::new(300 * S, 3);
    apply(&mut state, t0, (1..=5).map(|pid| update(0, pid)));
    assert_eq!(state.series(), 3);
    assert_eq!(state.series_dropped, 2);
    // The kept series still update; the refused ones count at each point.
    apply(&mut state, t0 + S, (1..=5).map(|pid| update(0, pid)));
    assert_eq!((state.series(), state.series_dropped), (3, 4));
    let snapshot = state.snapshot(t0 + S);
    assert_eq!(
        (snapshot.series(), snapshot.series_dropped),
        (3, 4),
        "what a scrape shows"
    );
    state.consumer_ended(&ResourceConsumer::Process { pid: 1 });
    apply(&mut state, t0 + 2 * S, [update(1, 9)]);
    assert_eq!((state.series(), state.series_dropped), (3, 4));
}
