//! Docker and Podman containers outside Kubernetes get their name (`container_name`) from
//! their runtime's state: Docker's `containers/ID/config.v2.json`, Podman's
//! `overlay-containers/containers.json`. Absent or broken state: the id alone, no error.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::TempDir;
use common::{lines_of, move_in_cgroup, start_on_copy, wait_source};

const DOCKER: &str = "/system.slice/docker-6a7c1f0b3e2d.scope";
const PODMAN: &str = "/machine.slice/libpod-9c8b7a6f5e4d.scope";

/// `memory_usage [attributes] = value` of `consumer`, from one triggered poll.
fn memory_line(
    points: &[alumet::measurement::MeasurementPoint],
    metrics: &alumet::metrics::MetricRegistry,
    consumer: &str,
) -> String {
    let lines = lines_of(points, metrics, consumer);
    lines
        .into_iter()
        .find(|l| l.starts_with("memory_usage"))
        .unwrap_or_else(|| panic!("no memory_usage point of {consumer}"))
}

fn run_with_state(docker_config: &str, podman_list: &str) -> Vec<String> {
    let state = TempDir::new("cgroups-runtime-state");
    let docker = state.path().join("docker/containers/6a7c1f0b3e2d");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.v2.json"), docker_config).unwrap();
    let storage = state.path().join("storage/overlay-containers");
    std::fs::create_dir_all(&storage).unwrap();
    std::fs::write(storage.join("containers.json"), podman_list).unwrap();
    let extra = format!(
        "docker_root = {:?}\ncontainers_storage = {:?}\ninclude = [\"/system.slice/*\", \"/machine.slice/*\"]\n",
        state.path().join("docker").display().to_string(),
        state.path().join("storage").display().to_string()
    );
    let (tree, run) = start_on_copy("v2", &extra);
    let control = run.control();
    // A Podman container appears while running.
    std::fs::create_dir_all(tree.path().join("machine.slice")).unwrap();
    let staging = TempDir::new("cgroups-runtime-staging");
    let cpu = "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n";
    move_in_cgroup(tree.path(), staging.path(), &PODMAN[1..], cpu);
    assert!(wait_source(&control, PODMAN, true));
    assert!(wait_source(&control, DOCKER, true));
    let selector = alumet::pipeline::Selector::parse("cgroups/*").unwrap();
    control.trigger_now(selector).wait();
    let metrics = run.metrics().clone();
    let (_, points) = run.shutdown();
    vec![
        memory_line(&points, &metrics, DOCKER),
        memory_line(&points, &metrics, PODMAN),
    ]
}

#[test]
fn docker_and_podman_containers_are_named_from_their_runtime_s_state() {
    let lines = run_with_state(
        r#"{"ID":"6a7c1f0b3e2d","Name":"/web","Config":{"Image":"nginx"}}"#,
        r#"[{"id":"0000","names":["other"]},{"id":"9c8b7a6f5e4d","names":["db","db-alias"]}]"#,
    );
    assert_eq!(
        lines[0],
        "memory_usage [container=6a7c1f0b3e2d,runtime=docker,container_name=web] = 4194304"
    );
    assert_eq!(
        lines[1],
        "memory_usage [container=9c8b7a6f5e4d,runtime=podman,container_name=db] = 4096"
    );
}

#[test]
fn broken_or_absent_runtime_state_leaves_the_id_alone() {
    let lines = run_with_state("{not json", r#"[{"id":"0000","names":["other"]}]"#);
    assert_eq!(
        lines[0],
        "memory_usage [container=6a7c1f0b3e2d,runtime=docker] = 4194304"
    );
    assert_eq!(
        lines[1],
        "memory_usage [container=9c8b7a6f5e4d,runtime=podman] = 4096"
    );
}
