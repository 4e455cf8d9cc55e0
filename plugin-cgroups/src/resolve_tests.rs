//! The resolvers on paths as kubelet, container runtimes, systemd, Slurm and OAR write them.

use super::*;

fn attrs(path: &str) -> Vec<String> {
    resolve(path)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[test]
fn kubelet_systemd_driver_pods_and_containers() {
    assert_eq!(
        attrs("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b8e6f4c_91c2_4d1e_a5b1_0c2d6a3f9e10.slice"),
        ["uid=3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10", "qos=burstable"]
    );
    assert_eq!(
        attrs("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b_2c.slice/cri-containerd-4f7d1e2a9b.scope"),
        ["uid=0a1b-2c", "qos=besteffort", "container=4f7d1e2a9b", "runtime=containerd"]
    );
    assert_eq!(
        attrs("/kubepods.slice/kubepods-pod77aa_88bb.slice/crio-9e8d7c.scope"),
        [
            "uid=77aa-88bb",
            "qos=guaranteed",
            "container=9e8d7c",
            "runtime=cri-o"
        ]
    );
    assert_eq!(
        attrs("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/docker-abc123.scope"),
        ["uid=1-2", "qos=burstable", "container=abc123", "runtime=docker"]
    );
    // CRI-O's monitor is no container.
    assert_eq!(
        attrs("/kubepods.slice/kubepods-pod1_2.slice/crio-conmon-9e8d7c.scope"),
        ["uid=1-2", "qos=guaranteed", "unit=crio-conmon-9e8d7c.scope"]
    );
    // Parents of pods: nothing to say.
    assert!(attrs("/kubepods.slice").is_empty());
    assert!(attrs("/kubepods.slice/kubepods-burstable.slice").is_empty());
}

#[test]
fn kubelet_cgroupfs_driver_pods_and_containers() {
    assert_eq!(
        attrs("/kubepods/burstable/pod3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10/5d2c7be4f1a3"),
        [
            "uid=3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10",
            "qos=burstable",
            "container=5d2c7be4f1a3"
        ]
    );
    assert_eq!(
        attrs("/kubepods/pod11-22/crio-9e8d7c"),
        [
            "uid=11-22",
            "qos=guaranteed",
            "container=9e8d7c",
            "runtime=cri-o"
        ]
    );
    assert_eq!(
        attrs("/kubepods/besteffort/pod11-22"),
        ["uid=11-22", "qos=besteffort"]
    );
    assert!(attrs("/kubepods/burstable").is_empty());
    // kind, k3d: Kubernetes inside a Docker container.
    assert_eq!(
        attrs("/docker/0123456789abcdef/kubepods/burstable/pod11-22/feed"),
        ["uid=11-22", "qos=burstable", "container=feed"]
    );
}

#[test]
fn docker_and_podman_containers() {
    let id = "6a7c1f0b3e2d4c5b6a7c1f0b3e2d4c5b6a7c1f0b3e2d4c5b6a7c1f0b3e2d4c5b";
    assert_eq!(
        attrs(&format!("/system.slice/docker-{id}.scope")),
        [format!("container={id}"), "runtime=docker".into()]
    );
    assert_eq!(
        attrs(&format!("/docker/{id}")),
        [format!("container={id}"), "runtime=docker".into()]
    );
    assert_eq!(
        attrs("/machine.slice/libpod-0f0f0f0f.scope"),
        ["container=0f0f0f0f", "runtime=podman"]
    );
    assert_eq!(
        attrs(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-abcd.scope/container"
        ),
        [
            "container=abcd",
            "runtime=podman",
            "user_id=1000",
            "unit=user@1000.service"
        ]
    );
    assert_eq!(
        attrs("/machine.slice/libpod-conmon-0f0f.scope"),
        ["unit=libpod-conmon-0f0f.scope"]
    );
    // Not a container id: a directory named docker with a word in it.
    assert!(attrs("/docker/buildkit").is_empty());
}

#[test]
fn systemd_units_and_users() {
    assert_eq!(attrs("/system.slice/nginx.service"), ["unit=nginx.service"]);
    assert_eq!(
        attrs("/system.slice/system-getty.slice/getty@tty1.service"),
        ["unit=getty@tty1.service"]
    );
    assert_eq!(
        attrs("/user.slice/user-1000.slice/user@1000.service"),
        ["user_id=1000", "unit=user@1000.service"]
    );
    assert_eq!(
        attrs("/user.slice/user-1000.slice/session-3.scope"),
        ["user_id=1000", "unit=session-3.scope"]
    );
    assert_eq!(attrs("/user.slice/user-1000.slice"), ["user_id=1000"]);
    assert!(attrs("/system.slice").is_empty());
    assert!(attrs("/").is_empty());
}

#[test]
fn slurm_jobs_and_steps() {
    assert_eq!(
        attrs("/system.slice/slurmstepd.scope/job_4242/step_0"),
        ["job_id=4242", "step=0", "unit=slurmstepd.scope"]
    );
    assert_eq!(
        attrs("/system.slice/slurmstepd.scope/job_4242/step_batch/user/task_0"),
        ["job_id=4242", "step=batch", "unit=slurmstepd.scope"]
    );
    assert_eq!(
        attrs("/system.slice/node7_slurmstepd.scope/job_9"),
        ["job_id=9", "unit=node7_slurmstepd.scope"]
    );
    assert_eq!(
        attrs("/slurm/uid_1001/job_77/step_extern"),
        ["job_id=77", "step=extern", "user_id=1001"]
    );
    assert_eq!(attrs("/slurm/uid_1001"), ["user_id=1001"]);
    // job_ outside Slurm's trees is a name like any other.
    assert!(attrs("/batch/job_5").is_empty());
}

#[test]
fn oar_jobs() {
    assert_eq!(attrs("/oar/alice_4217"), ["job_id=4217", "user=alice"]);
    assert_eq!(attrs("/oar/bob_smith_12"), ["job_id=12", "user=bob_smith"]);
    assert_eq!(
        attrs("/oar.slice/oar-u1000.slice/oar-u1000-j4217.slice"),
        ["job_id=4217", "user_id=1000"]
    );
    assert!(attrs("/oar").is_empty());
    assert!(attrs("/oar/notajob").is_empty());
}

#[test]
fn odd_paths_give_no_attribute_and_no_panic() {
    for p in [
        "",
        "//",
        "/kubepods-.slice",
        "/kubepods/pod",
        "/oar/_1",
        "/slurm/uid_/job_",
        "/x/step_1",
        "/kubepods-burstable-pod.slice",
    ] {
        let _ = resolve(p);
    }
    assert!(attrs("/kubepods/pod").is_empty());
    assert!(attrs("/oar/_1").is_empty());
}
