//! Exec and watch modes: the plugin measures only the cgroup the agent announces
//! (`alumet-agent watch --cgroup PATH`), not what `include` selects; the announcement of
//! its end takes a last reading and removes its source.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::prelude::*;
use alumet::test_util::{PipelineTester, TestRun};
use common::{config, fixture, lines_of, rewrite};
use plugin_cgroups::CgroupsPlugin;

const NGINX: &str = "/system.slice/nginx.service";

fn start(root: &std::path::Path, mode: RunMode) -> TestRun {
    let mut tester = PipelineTester::new();
    tester
        .plugin_toml::<CgroupsPlugin>(&config(root, "include = ['/**']\n"))
        .unwrap();
    tester.run_mode(mode);
    tester.start().unwrap()
}

fn sources(run: &TestRun) -> Vec<String> {
    (run.control().sources().iter())
        .map(|(name, _)| name.to_string())
        .collect()
}

fn nginx() -> ResourceConsumer {
    ResourceConsumer::ControlGroup { path: NGINX.into() }
}

#[test]
fn watch_measures_the_announced_cgroup_alone_until_its_end() {
    let tree = alumet::test_util::TempDir::copy_of(&fixture("v2"), "cgroups-announced");
    let run = start(tree.path(), RunMode::Watch);
    assert!(sources(&run).is_empty(), "{:?}", sources(&run));
    // Ignored: a process, and a path that is no cgroup.
    run.control()
        .emit(&Event::ConsumerWatched(ResourceConsumer::Process {
            pid: 1,
        }));
    run.control()
        .emit(&Event::ConsumerWatched(ResourceConsumer::ControlGroup {
            path: "/no/such".into(),
        }));
    assert!(sources(&run).is_empty(), "{:?}", sources(&run));

    run.control().emit(&Event::ConsumerWatched(nginx()));
    assert_eq!(sources(&run), ["cgroups/system.slice:nginx.service"]);
    // The announcement's reading is the baseline; then 250 ms of user time more.
    run.trigger("cgroups/*");
    let file = "system.slice/nginx.service/cpu.stat";
    let text = std::fs::read_to_string(tree.path().join(file)).unwrap();
    let bumped: String = (text.lines())
        .map(|l| match l.split_once(' ') {
            Some((k @ ("usage_usec" | "user_usec"), v)) => {
                format!("{k} {}\n", v.parse::<u64>().unwrap() + 250_000)
            }
            _ => format!("{l}\n"),
        })
        .collect();
    rewrite(tree.path(), file, &bumped);
    run.control().emit(&Event::ConsumerEnded(nginx()));
    assert!(sources(&run).is_empty(), "{:?}", sources(&run));
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let lines = lines_of(&points, &metrics, NGINX);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cpu_time_delta [unit=nginx.service,kind=user] = 250")),
        "{lines:#?}"
    );
}

#[test]
fn exec_measures_no_cgroup_unless_announced() {
    let tree = alumet::test_util::TempDir::copy_of(&fixture("v2"), "cgroups-exec");
    let run = start(tree.path(), RunMode::Exec);
    assert!(sources(&run).is_empty(), "{:?}", sources(&run));
    run.shutdown();
    let run = start(tree.path(), RunMode::Run);
    assert!(sources(&run).len() > 3, "{:?}", sources(&run));
    run.shutdown();
}
