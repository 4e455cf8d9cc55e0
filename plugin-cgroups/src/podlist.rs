//! The PodList JSON that the API server (`/api/v1/pods`) and the kubelet (`/pods`) answer:
//! what the plugin keeps of each pod (uid, name, namespace, node, and its containers' ids
//! and names). Pure parsing, without I/O.

use std::collections::HashMap;

use serde::Deserialize;

/// What is kept of one pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pod {
    /// `metadata.uid`, as the cgroup path gives it (with `-`).
    pub uid: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.nodeName`.
    pub node: String,
    /// A static pod's mirror: the uid of the static pod on its node (the annotation
    /// `kubernetes.io/config.mirror`), which its cgroup path holds.
    pub mirror_of: Option<String>,
    /// Container id (without the runtime's `containerd://`) → container name, over the
    /// init, ordinary and ephemeral containers that have started.
    pub containers: HashMap<String, String>,
}

#[derive(Deserialize)]
struct PodList {
    // Required: a JSON object without `items` (a `Status`, another kind) is not a PodList.
    items: Vec<Item>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Item {
    metadata: Metadata,
    spec: Spec,
    status: Status,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata {
    uid: String,
    name: String,
    namespace: String,
    annotations: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    node_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    container_statuses: Vec<ContainerStatus>,
    init_container_statuses: Vec<ContainerStatus>,
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    #[serde(rename = "containerID")]
    container_id: String,
}

/// The annotation of a mirror pod that holds the static pod's uid.
const MIRROR: &str = "kubernetes.io/config.mirror";

/// The pods of a PodList, those without a uid left out. Unknown fields are ignored (a
/// PodList has many); a document that is not JSON, or has no `items`, is an error.
pub fn parse_pod_list(json: &[u8]) -> Result<Vec<Pod>, serde_json::Error> {
    let list: PodList = serde_json::from_slice(json)?;
    let pods = (list.items.into_iter())
        .filter(|i| !i.metadata.uid.is_empty())
        .map(|mut i| {
            let mirror_of = i.metadata.annotations.remove(MIRROR);
            let statuses = (i.status.init_container_statuses.into_iter())
                .chain(i.status.container_statuses)
                .chain(i.status.ephemeral_container_statuses);
            let containers = statuses
                .filter_map(|c| Some((container_id(&c.container_id)?.to_owned(), c.name)))
                .collect();
            Pod {
                uid: i.metadata.uid,
                name: i.metadata.name,
                namespace: i.metadata.namespace,
                node: i.spec.node_name,
                mirror_of,
                containers,
            }
        })
        .collect();
    Ok(pods)
}

/// The id in a container status's `containerID` (`containerd://<id>`, `cri-o://<id>`,
/// `docker://<id>`): what the cgroup path of the container holds (`cri-containerd-<id>`,
/// `crio-<id>`, `docker-<id>`). `None` for an empty one (a container not started yet).
pub fn container_id(status_id: &str) -> Option<&str> {
    let id = status_id.split_once("://").map_or(status_id, |(_, id)| id);
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_schemes_are_stripped() {
        assert_eq!(container_id("containerd://4f7d1e2a9b"), Some("4f7d1e2a9b"));
        assert_eq!(container_id("cri-o://0a1b2c"), Some("0a1b2c"));
        assert_eq!(container_id("docker://deadbeef"), Some("deadbeef"));
        assert_eq!(container_id("cafe"), Some("cafe"));
        assert_eq!(container_id(""), None);
        assert_eq!(container_id("containerd://"), None);
    }

    #[test]
    fn a_status_object_is_not_a_pod_list() {
        let status = br#"{"kind":"Status","status":"Failure","reason":"Forbidden","code":403}"#;
        assert!(parse_pod_list(status).is_err());
        assert!(parse_pod_list(b"<html>").is_err());
        assert_eq!(parse_pod_list(br#"{"items":[]}"#).unwrap(), []);
    }

    #[test]
    fn pods_without_uid_are_left_out_and_missing_fields_are_empty() {
        let json = br#"{"items":[{"metadata":{"name":"x"}},{"metadata":{"uid":"u1"}}]}"#;
        let pods = parse_pod_list(json).unwrap();
        assert_eq!(
            pods,
            [Pod {
                uid: "u1".into(),
                ..Pod::default()
            }]
        );
    }
}
