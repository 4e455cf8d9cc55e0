//! Following the tree while running, on a fixture tree: a cgroup that appears (moved into
//! place, as a fixture cannot be created atomically) gets a source, measured from zero at
//! once; a cgroup that disappears loses its source. Found through inotify: the rescan
//! timer is set to an hour.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::TempDir;
use common::{consumers, lines_of, move_in_cgroup, start_on_copy, wait_source};

#[test]
fn a_new_cgroup_is_measured_from_zero_and_a_removed_one_loses_its_source() {
    let (tree, run) = start_on_copy("v2", "");
    let staging = TempDir::new("cgroups-follow-staging");
    let control = run.control();
    assert!(wait_source(&control, "/system.slice/nginx.service", true));

    // A new service, with its counters at what it used since its creation.
    move_in_cgroup(
        tree.path(),
        staging.path(),
        "system.slice/redis.service",
        "usage_usec 30000\nuser_usec 20000\nsystem_usec 10000\n",
    );
    assert!(
        wait_source(&control, "/system.slice/redis.service", true),
        "no source for the new cgroup"
    );

    // A removed one: its source goes.
    std::fs::remove_dir_all(tree.path().join("system.slice/docker-6a7c1f0b3e2d.scope")).unwrap();
    assert!(
        !wait_source(&control, "/system.slice/docker-6a7c1f0b3e2d.scope", false),
        "the source of the removed cgroup is still there"
    );
    assert!(wait_source(&control, "/system.slice/nginx.service", true));

    // The measured cgroups, as published in the core's consumer registry for other
    // plugins (perf counts them).
    let published = |path: &str| {
        let listing = run.pipeline().consumers().cgroups().current();
        listing.entries.iter().any(|c| &*c.path == path)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while published("/system.slice/docker-6a7c1f0b3e2d.scope")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(published("/system.slice/redis.service"));
    assert!(published("/system.slice/nginx.service"));
    assert!(!published("/system.slice/docker-6a7c1f0b3e2d.scope"));
    assert_eq!(
        run.pipeline().consumers().cgroups().publisher(),
        Some("cgroups")
    );

    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    // Measured from zero at once (the first reading is a difference, not a baseline).
    let redis = lines_of(&points, &metrics, "/system.slice/redis.service");
    assert_eq!(
        redis,
        [
            "cpu_time_delta [unit=redis.service,kind=system] = 10",
            "cpu_time_delta [unit=redis.service,kind=user] = 20",
            "memory_usage [unit=redis.service] = 4096",
        ]
    );
    assert!(consumers(&points).contains(&"/system.slice/redis.service".to_string()));
}
