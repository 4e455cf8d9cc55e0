//! Container names from the container runtimes' own state, where it is readable: Docker's
//! `<docker_root>/containers/<id>/config.v2.json` (`"Name": "/web"`) and Podman's
//! `<containers_storage>/overlay-containers/containers.json` (a list of `{"id", "names"}`).
//! Read once per cgroup, when its source is created (off the poll path); a file that is
//! absent or does not parse gives no name (the points keep the container's id).

use std::path::{Path, PathBuf};

use alumet::prelude::AttributeValue;

use crate::pods::CONTAINER_NAME;

/// Where the runtimes keep their state.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeState {
    docker_root: PathBuf,
    containers_storage: PathBuf,
}

impl RuntimeState {
    pub(crate) fn new(docker_root: &Path, containers_storage: &Path) -> Self {
        RuntimeState {
            docker_root: docker_root.to_owned(),
            containers_storage: containers_storage.to_owned(),
        }
    }

    /// Adds `container_name` to the attributes of a Docker or Podman container outside
    /// Kubernetes (a pod's containers are named by the Kubernetes API), when its runtime
    /// says it.
    pub(crate) fn name(&self, attrs: &mut Vec<(&'static str, AttributeValue)>) {
        let get = |key: &str| {
            attrs
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| match v {
                    AttributeValue::Str(s) => Some(s.to_string()),
                    _ => None,
                })
        };
        if get("uid").is_some() {
            return;
        }
        let (Some(runtime), Some(id)) = (get("runtime"), get("container")) else {
            return;
        };
        let name = match runtime.as_str() {
            "docker" => docker_name(&self.docker_root, &id),
            "podman" => podman_name(&self.containers_storage, &id),
            _ => None,
        };
        if let Some(name) = name {
            attrs.push((CONTAINER_NAME, name.into()));
        }
    }
}

/// The id as a file name: hexadecimal only (a path from a cgroup name never climbs out).
fn safe(id: &str) -> Option<&str> {
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn docker_name(root: &Path, id: &str) -> Option<String> {
    let file = root
        .join("containers")
        .join(safe(id)?)
        .join("config.v2.json");
    let text = std::fs::read(&file).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let name = config.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_owned())
}

fn podman_name(storage: &Path, id: &str) -> Option<String> {
    let id = safe(id)?;
    let file = storage.join("overlay-containers").join("containers.json");
    let text = std::fs::read(&file).ok()?;
    let list: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let entry = list
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(|v| v.as_str()) == Some(id))?;
    let name = entry.get("names")?.as_array()?.first()?.as_str()?;
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_hexadecimal_name_no_file() {
        assert_eq!(safe("../../etc"), None);
        assert_eq!(safe(""), None);
        assert_eq!(safe("6a7c1f0b3e2d"), Some("6a7c1f0b3e2d"));
    }
}
