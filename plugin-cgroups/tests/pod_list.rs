//! The PodList JSON of the API server and of the kubelet (`tests/fixtures/pods/`), and how
//! the pods and containers it lists are matched with the uids and container ids that the
//! cgroup paths hold: containerd, CRI-O and Docker ids, both kubelet cgroup drivers, a
//! static pod through its mirror.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use alumet::prelude::AttributeValue;
use common::fixture;
use plugin_cgroups::podlist::parse_pod_list;
use plugin_cgroups::pods::PodNames;
use plugin_cgroups::resolve::resolve;

fn names_from(file: &str) -> Arc<PodNames> {
    let json = std::fs::read(fixture("pods").join(file)).unwrap();
    let names = PodNames::new();
    names.replace(parse_pod_list(&json).unwrap());
    names
}

fn text(attrs: &[(&str, AttributeValue)], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// `k=v` for what the cache says of the cgroup at `path`, or `None` when it does not
/// know its pod.
fn kube(names: &PodNames, path: &str) -> Option<Vec<String>> {
    let from_path = resolve(path);
    let uid = text(&from_path, "uid").expect("a pod's path");
    let container = text(&from_path, "container");
    let attrs = names.attributes(&uid, container.as_deref())?;
    Some(attrs.iter().map(|(k, v)| format!("{k}={v}")).collect())
}

const POD_A: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b8e6f4c_91c2_4d1e_a5b1_0c2d6a3f9e10.slice";

#[test]
fn the_api_servers_pod_list_is_read_whole() {
    let json = std::fs::read(fixture("pods").join("api-server-containerd.json")).unwrap();
    let pods = parse_pod_list(&json).unwrap();
    let shown: Vec<String> = pods
        .iter()
        .map(|p| {
            let mut c: Vec<String> = (p.containers.iter())
                .map(|(id, name)| format!("{name}:{id}"))
                .collect();
            c.sort();
            format!(
                "{} {}/{} on {} mirror {:?} [{}]",
                p.uid,
                p.namespace,
                p.name,
                p.node,
                p.mirror_of,
                c.join(",")
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            "3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10 shop/web-0 on node-a mirror None [init-config:0c0ffee0c0ffee,nginx:4f7d1e2a9b]",
            "5d0c0e1a-7b7e-4a3c-9f77-2f0b8e1d4c11 kube-system/etcd-node-a on node-a mirror Some(\"8c5a0b6e2f1d4e3c9b7a6d5e4f3a2b1c\") [etcd:e7cdaa11]",
            // Pending: its container has no id yet.
            "9f1e2d3c-4b5a-4697-8a8b-c0d1e2f3a4b5 jobs/batch-x7k2p on node-a mirror None []",
        ]
    );
}

#[test]
fn containerd_ids_match_the_systemd_drivers_scopes() {
    let names = names_from("api-server-containerd.json");
    let pod = ["name=web-0", "namespace=shop", "node=node-a"];
    assert_eq!(kube(&names, POD_A).unwrap(), pod);
    let nginx = format!("{POD_A}/cri-containerd-4f7d1e2a9b.scope");
    assert_eq!(
        kube(&names, &nginx).unwrap(),
        [&pod[..], &["container_name=nginx"]].concat()
    );
    let init = format!("{POD_A}/cri-containerd-0c0ffee0c0ffee.scope");
    assert_eq!(
        kube(&names, &init).unwrap().last().unwrap(),
        "container_name=init-config"
    );
    // Another pod's container id under this pod: the pod is named, the container not.
    let stranger = format!("{POD_A}/cri-containerd-e7cdaa11.scope");
    assert_eq!(kube(&names, &stranger).unwrap(), pod);
    // A uid that the list does not have.
    let unknown = "/kubepods.slice/kubepods-pod11111111_2222_3333_4444_555555555555.slice";
    assert_eq!(kube(&names, unknown), None);
}

#[test]
fn a_static_pod_is_found_by_its_mirrors_annotation() {
    let names = names_from("api-server-containerd.json");
    let etcd = "/kubepods/burstable/pod8c5a0b6e2f1d4e3c9b7a6d5e4f3a2b1c/e7cdaa11";
    assert_eq!(
        kube(&names, etcd).unwrap(),
        [
            "name=etcd-node-a",
            "namespace=kube-system",
            "node=node-a",
            "container_name=etcd"
        ]
    );
}

#[test]
fn cri_o_ids_match_including_ephemeral_containers() {
    let names = names_from("kubelet-cri-o.json");
    let pod = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podc4a1e2b3_5d6f_4a7b_8c9d_0e1f2a3b4c5d.slice";
    let api = format!(
        "{pod}/crio-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b.scope"
    );
    assert_eq!(
        kube(&names, &api).unwrap(),
        [
            "name=api-7d9f8c6b5-qwxz2",
            "namespace=backend",
            "node=worker-2",
            "container_name=api"
        ]
    );
    let envoy = format!(
        "{pod}/crio-ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100.scope"
    );
    assert_eq!(
        kube(&names, &envoy).unwrap().last().unwrap(),
        "container_name=envoy"
    );
    let debug = format!("{pod}/crio-abcdef0123456789.scope");
    assert_eq!(
        kube(&names, &debug).unwrap().last().unwrap(),
        "container_name=debugger-8xk2"
    );
    // The runtime's monitor is no container.
    let conmon = format!(
        "{pod}/crio-conmon-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b.scope"
    );
    assert_eq!(kube(&names, &conmon).unwrap().len(), 3);
}

#[test]
fn docker_ids_match_under_both_drivers() {
    let names = names_from("docker.json");
    let id = "6a7c1f0b3e2d4c5b6a7980a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f";
    let want = [
        "name=legacy-0",
        "namespace=default",
        "node=old-node",
        "container_name=app",
    ];
    let cgroupfs = format!("/kubepods/pod0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b/{id}");
    assert_eq!(kube(&names, &cgroupfs).unwrap(), want);
    let systemd = format!(
        "/kubepods.slice/kubepods-pod0e9d8c7b_6a5f_4e3d_2c1b_0a9f8e7d6c5b.slice/docker-{id}.scope"
    );
    assert_eq!(kube(&names, &systemd).unwrap(), want);
}

#[test]
fn what_is_wanted_and_missing_until_an_answer_has_it() {
    let names = names_from("api-server-containerd.json");
    names.want("3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10", Some("4f7d1e2a9b"));
    assert!(!names.has_missing(), "a known container is not missing");
    // The pending pod is known, its container not yet.
    names.want("9f1e2d3c-4b5a-4697-8a8b-c0d1e2f3a4b5", Some("77aa"));
    assert!(names.has_missing());
    // An answer without it keeps it missing for one more answer, then forgets it.
    let json = std::fs::read(fixture("pods").join("docker.json")).unwrap();
    names.replace(parse_pod_list(&json).unwrap());
    assert!(names.has_missing());
    names.replace(parse_pod_list(&json).unwrap());
    assert!(!names.has_missing());
    // An answer with it: no longer missing.
    names.want("0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b", None);
    assert!(!names.has_missing());
    names.want("3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10", None);
    assert!(names.has_missing());
    let json = std::fs::read(fixture("pods").join("api-server-containerd.json")).unwrap();
    names.replace(parse_pod_list(&json).unwrap());
    assert!(!names.has_missing());
}
