//! The filter against a straightforward reference on random streams (seeded): globs as
//! regular expressions, include then exclude written out again.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use alumet::metrics::MetricRegistry;
use alumet::prelude::*;
use plugin_filter::{Config, Rule, Rules};

const METRICS: [&str; 4] = [
    "rapl_consumed_energy",
    "cpu_time_delta",
    "memory_usage",
    "rapl_power",
];
const PATTERNS: [&str; 8] = [
    "*",
    "rapl_*",
    "*_delta",
    "cpu*delta",
    "memory_usage",
    "x*",
    "*e*",
    "rapl",
];
const NAMESPACES: [&str; 3] = ["prod", "dev", "prod-eu"];
const NS_PATTERNS: [&str; 4] = ["prod", "prod*", "*", "dev"];

fn regex(glob: &str) -> regex_lite::Regex {
    let escaped: Vec<String> = glob.split('*').map(regex_lite::escape).collect();
    regex_lite::Regex::new(&format!("^{}$", escaped.join(".*"))).unwrap()
}

/// The reference: a point matches a rule when each given field's regex matches.
fn reference(config: &Config, metric: &str, p: &MeasurementPoint) -> bool {
    let rule_matches = |r: &Rule| {
        let field = |g: &Option<String>, v: &str| g.as_ref().is_none_or(|g| regex(g).is_match(v));
        let attrs = r.attributes.iter().all(|(k, g)| match p.attributes.get(k) {
            Some(v) => regex(g).is_match(&v.to_string()),
            None => false,
        });
        field(&r.metric, metric)
            && field(&r.resource_kind, p.resource.kind())
            && field(&r.consumer_kind, p.consumer.kind())
            && field(&r.consumer_id, &p.consumer.id().to_string())
            && attrs
    };
    let mut kept = config.include.is_empty();
    for r in &config.include {
        if rule_matches(r) {
            kept = true;
        }
    }
    for r in &config.exclude {
        if rule_matches(r) {
            kept = false;
        }
    }
    kept
}

fn random_rule(rng: &mut fastrand::Rng) -> Rule {
    let pick = |rng: &mut fastrand::Rng, list: &[&str]| list[rng.usize(..list.len())].to_owned();
    let mut rule = Rule::default();
    if rng.bool() {
        rule.metric = Some(pick(rng, &PATTERNS));
    }
    if rng.u8(..4) == 0 {
        rule.consumer_kind = Some(pick(rng, &["process", "cgroup", "*", "local_machine"]));
    }
    if rng.u8(..4) == 0 {
        rule.consumer_id = Some(pick(rng, &["/kubepods/*", "/system.slice/*", "1*", "*"]));
    }
    if rng.u8(..3) == 0 {
        rule.attributes = BTreeMap::from([("namespace".to_owned(), pick(rng, &NS_PATTERNS))]);
    }
    rule
}

#[test]
fn the_filter_agrees_with_the_reference_on_random_streams() {
    let mut registry = MetricRegistry::new();
    let ids: Vec<MetricId<u64>> = METRICS
        .iter()
        .map(|m| registry.register::<u64>(m, Unit::Unity, "x").unwrap())
        .collect();
    let mut rng = fastrand::Rng::with_seed(0xA1_0E7);
    let mut kept_some = false;
    let mut dropped_some = false;
    for _ in 0..300 {
        let config = Config {
            include: (0..rng.usize(..3)).map(|_| random_rule(&mut rng)).collect(),
            exclude: (0..rng.usize(..3)).map(|_| random_rule(&mut rng)).collect(),
            outputs: Vec::new(),
        };
        let rules = Rules::of(&config);
        for _ in 0..50 {
            let m = rng.usize(..METRICS.len());
            let consumer = match rng.u8(..3) {
                0 => ResourceConsumer::Process {
                    pid: rng.u32(1..200),
                },
                1 => ResourceConsumer::ControlGroup {
                    path: ["/kubepods/pod1", "/system.slice/ssh.service", "/user"][rng.usize(..3)]
                        .into(),
                },
                _ => ResourceConsumer::LocalMachine,
            };
            let mut p = MeasurementPoint::new(
                Timestamp::now(),
                ids[m],
                Resource::LocalMachine,
                consumer,
                1u64,
            );
            if rng.bool() {
                let ns = NAMESPACES[rng.usize(..NAMESPACES.len())];
                p = p.with_attributes(Attributes::new([("namespace", ns)]));
            }
            let expected = reference(&config, METRICS[m], &p);
            assert_eq!(rules.keeps(&p, &registry), expected, "{config:?}\n{p:?}");
            kept_some |= expected;
            dropped_some |= !expected;
        }
    }
    assert!(
        kept_some && dropped_some,
        "the streams exercised both outcomes"
    );
}
