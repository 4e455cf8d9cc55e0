//! A cgroup created or removed while running is found by listing that directory only, not
//! the whole tree: on a node where pods come and go, each change costs its own cgroups.
//! The whole tree is listed at start and by the rescan timer (an hour here).
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::logs;
use alumet::test_util::TempDir;
use common::{move_in_cgroup, start_on_copy, wait_source};

#[test]
fn a_cgroup_created_or_removed_lists_its_directory_not_the_whole_tree() {
    logs::capture();
    log::set_max_level(log::LevelFilter::Debug);
    let (tree, run) = start_on_copy("v2", "");
    let control = run.control();
    assert!(wait_source(&control, "/system.slice/nginx.service", true));
    let root = tree.path().display().to_string();
    let listings = || logs::lines_with(&format!("listing every cgroup under {root}")).len();
    assert_eq!(listings(), 1, "the listing at start");

    // A new service, then a new pod slice with a container in it (moved into place).
    let staging = TempDir::new("cgroups-incremental-staging");
    let cpu = "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n";
    let add = |rel: &str| move_in_cgroup(tree.path(), staging.path(), rel, cpu);
    add("system.slice/redis.service");
    assert!(wait_source(&control, "/system.slice/redis.service", true));
    add("system.slice/postgres.service");
    assert!(wait_source(
        &control,
        "/system.slice/postgres.service",
        true
    ));
    std::fs::remove_dir_all(tree.path().join("system.slice/redis.service")).unwrap();
    assert!(!wait_source(&control, "/system.slice/redis.service", false));
    // The others stay.
    assert!(wait_source(&control, "/system.slice/nginx.service", true));
    assert!(wait_source(
        &control,
        "/system.slice/postgres.service",
        true
    ));
    assert_eq!(
        listings(),
        1,
        "no whole listing for a change the events name"
    );
    run.shutdown();
}
