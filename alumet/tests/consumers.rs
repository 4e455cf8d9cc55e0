//! The consumer registry: the shared process scan (on fixture `/proc` trees), what a
//! watch reports between two listings, and a kind published by one plugin.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alumet::consumers::{CgroupEntry, ConsumerRegistry, Watch};
use alumet::test_util::TempDir;

fn stat(pid: u32, ppid: u32, start: u64) -> String {
    let mut fields = vec!["0".to_owned(); 50];
    fields[1] = ppid.to_string(); // field 4
    fields[19] = start.to_string(); // field 22
    format!("{pid} (a b) S {}", fields[1..].join(" "))
}

fn tree(procs: &[(u32, u32, u64)]) -> TempDir {
    let dir = TempDir::new("consumers");
    for &(pid, ppid, start) in procs {
        let p = dir.path().join(pid.to_string());
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("stat"), stat(pid, ppid, start)).unwrap();
    }
    fs::create_dir_all(dir.path().join("self")).unwrap();
    dir
}

#[test]
fn a_scan_lists_processes_sorted_with_parents_and_start_times() {
    let dir = tree(&[(30, 1, 7), (4, 1, 5), (12, 4, 6)]);
    let registry = ConsumerRegistry::default();
    let procs = registry.processes(dir.path());
    let snap = procs.listing(Duration::ZERO).unwrap();
    let got: Vec<_> = snap
        .entries
        .iter()
        .map(|p| (p.pid, p.ppid, p.starttime))
        .collect();
    assert_eq!(got, vec![(4, 1, 5), (12, 4, 6), (30, 1, 7)]);
    assert_eq!(snap.generation, 1);
    assert_eq!(snap.process(12).map(|p| p.ppid), Some(4));
    assert!(snap.process(99).is_none());
}

#[test]
fn callers_share_a_listing_younger_than_what_they_accept() {
    let dir = tree(&[(4, 1, 5)]);
    let registry = ConsumerRegistry::default();
    let a = registry.processes(dir.path());
    let b = registry.processes(dir.path());
    let first = a.listing(Duration::from_secs(60)).unwrap();
    let second = b.listing(Duration::from_secs(60)).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "one scan for both");
    std::fs::create_dir_all(dir.path().join("9")).unwrap();
    std::fs::write(dir.path().join("9/stat"), stat(9, 4, 8)).unwrap();
    let third = b.listing(Duration::ZERO).unwrap();
    assert_eq!(third.generation, 2);
    assert_eq!(third.entries.len(), 2);
}

#[test]
fn a_watch_gives_what_appeared_and_what_is_gone_and_a_reused_pid_as_both() {
    let dir = tree(&[(4, 1, 5), (12, 4, 6)]);
    let procs = ConsumerRegistry::default().processes(dir.path());
    let mut watch = Watch::default();
    let c = watch.changes(&procs.listing(Duration::ZERO).unwrap());
    assert_eq!(
        c.appeared.iter().map(|p| p.pid).collect::<Vec<_>>(),
        vec![4, 12]
    );
    assert!(c.gone.is_empty());
    // 12 ends, its pid is reused by a younger process; 20 starts.
    std::fs::write(dir.path().join("12/stat"), stat(12, 1, 90)).unwrap();
    std::fs::create_dir_all(dir.path().join("20")).unwrap();
    std::fs::write(dir.path().join("20/stat"), stat(20, 4, 91)).unwrap();
    let snap = procs.listing(Duration::ZERO).unwrap();
    let c = watch.changes(&snap);
    assert_eq!(
        c.appeared
            .iter()
            .map(|p| (p.pid, p.starttime))
            .collect::<Vec<_>>(),
        vec![(12, 90), (20, 91)]
    );
    assert_eq!(
        c.gone
            .iter()
            .map(|p| (p.pid, p.starttime))
            .collect::<Vec<_>>(),
        vec![(12, 6)]
    );
    assert!(watch.changes(&snap).is_empty(), "the same listing again");
}

#[test]
fn an_unlistable_root_is_an_error_naming_it() {
    let procs = ConsumerRegistry::default().processes(Path::new("/nonexistent-proc-root"));
    let e = procs.listing(Duration::ZERO).unwrap_err();
    assert!(e.to_string().contains("/nonexistent-proc-root"), "{e}");
    assert_eq!(procs.current().generation, 0);
}

#[test]
fn one_plugin_publishes_a_kind_and_readers_are_woken() {
    let registry = ConsumerRegistry::default();
    let cgroups = registry.cgroups();
    let mut rx = cgroups.subscribe();
    assert!(!rx.has_changed().unwrap());
    cgroups
        .publish("cgroups", [CgroupEntry::new("/b"), CgroupEntry::new("/a")])
        .unwrap();
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    let snap = registry.cgroups().current();
    assert_eq!(
        &*snap.entries,
        &[CgroupEntry::new("/a"), CgroupEntry::new("/b")]
    );
    // The same set again: no new listing.
    cgroups
        .publish("cgroups", [CgroupEntry::new("/a"), CgroupEntry::new("/b")])
        .unwrap();
    assert!(!rx.has_changed().unwrap());
    assert_eq!(cgroups.current().generation, 1);
    let e = cgroups.publish("other", []).unwrap_err();
    assert!(e.contains("other") && e.contains("cgroups"), "{e}");
    assert_eq!(cgroups.publisher(), Some("cgroups"));
    // A published kind is not scanned: its listing is the latest publication.
    assert!(Arc::ptr_eq(
        &cgroups.listing(Duration::ZERO).unwrap(),
        &snap
    ));
}
