//! The pods' names, shared between the task that asks Kubernetes for them ([`crate::kube`])
//! and the sources of the pods' cgroups. A source reads one atomic counter per poll; only
//! when the cache changed does it look its pod up, and only when its pod's names changed
//! does it rebuild its attribute sets (the sole allocation, once per pod in practice).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use alumet::prelude::{AttributeValue, Attributes};
use tokio::sync::Notify;

use crate::podlist::Pod;

/// The attribute of a container's name (`container` holds its id, from the path).
pub const CONTAINER_NAME: &str = "container_name";

/// Attributes that Kubernetes gives, in order: `name`, `namespace`, `node` of the pod,
/// then the container's name.
pub type KubeAttributes = Vec<(&'static str, AttributeValue)>;

/// The last pod list, by uid.
#[derive(Default)]
pub struct PodNames {
    generation: AtomicU64,
    pods: RwLock<HashMap<String, Arc<Pod>>>,
    /// The pods (and containers) that sources wanted and the cache lacks, with the
    /// generation then: an answer drops those it has, and those older than the last
    /// answer (a pod that the API never listed, its cgroup already gone: no leak).
    missing: Mutex<Vec<(String, Option<String>, u64)>>,
    /// Something was added to `missing`: the task asks again.
    wanted: Notify,
}

impl PodNames {
    /// An empty cache.
    pub fn new() -> Arc<Self> {
        Arc::new(PodNames::default())
    }

    /// Changes each time the list is replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the list with `pods` (the whole of a new answer). A static pod is found
    /// by its uid on the node too (its mirror pod's `kubernetes.io/config.mirror`).
    pub fn replace(&self, pods: Vec<Pod>) {
        let mut map = HashMap::new();
        for pod in pods.into_iter().map(Arc::new) {
            if let Some(mirror) = &pod.mirror_of {
                map.insert(mirror.clone(), Arc::clone(&pod));
            }
            map.insert(pod.uid.clone(), pod);
        }
        let mut missing = self.missing.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation();
        missing.retain(|(uid, c, g)| *g == generation && !knows(&map, uid, c.as_deref()));
        *self.pods.write().unwrap_or_else(|e| e.into_inner()) = map;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether a pod or container that a source wanted is still missing.
    pub fn has_missing(&self) -> bool {
        !self
            .missing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// What the cache says of pod `uid` and (if given) its container `container`; `None`
    /// when it does not know the pod.
    pub fn attributes(&self, uid: &str, container: Option<&str>) -> Option<KubeAttributes> {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        let pod = pods.get(uid)?;
        let mut out: KubeAttributes = vec![
            ("name", pod.name.as_str().into()),
            ("namespace", pod.namespace.as_str().into()),
            ("node", pod.node.as_str().into()),
        ];
        out.retain(|(_, v)| !matches!(v, AttributeValue::Str(s) if s.is_empty()));
        if let Some(name) = container.and_then(|c| pod.containers.get(c)) {
            out.push((CONTAINER_NAME, name.as_str().into()));
        }
        Some(out)
    }

    /// Says that pod `uid` (and its `container`) should be known: wakes the task when the
    /// cache lacks it. Called where sources are made, never on a poll.
    pub fn want(&self, uid: &str, container: Option<&str>) {
        let mut missing = self.missing.lock().unwrap_or_else(|e| e.into_inner());
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        let listed =
            |(u, c, _): &(String, Option<String>, u64)| u == uid && c.as_deref() == container;
        if !knows(&pods, uid, container) && !missing.iter().any(listed) {
            missing.push((
                uid.to_owned(),
                container.map(str::to_owned),
                self.generation(),
            ));
            self.wanted.notify_one();
        }
    }

    /// Returns once some source wanted what the cache lacks (at once if it happened since
    /// the last call).
    pub async fn wanted(&self) {
        self.wanted.notified().await
    }
}

fn knows(pods: &HashMap<String, Arc<Pod>>, uid: &str, container: Option<&str>) -> bool {
    (pods.get(uid)).is_some_and(|p| container.is_none_or(|c| p.containers.contains_key(c)))
}

/// A source's tie to its pod in the cache.
pub(crate) struct PodLink {
    names: Arc<PodNames>,
    uid: String,
    container: Option<String>,
    /// The attributes of the cgroup's path, before those of Kubernetes.
    path: Attributes,
    /// The cache's generation when last looked at.
    seen: u64,
    /// The attributes last put on the points.
    applied: KubeAttributes,
}

impl PodLink {
    /// The link of the cgroup whose path gives `path` (`uid`, maybe `container`), or
    /// `None` outside a pod; with the attributes of its points now (the path's, and what
    /// the cache already knows).
    pub(crate) fn new(names: &Arc<PodNames>, path: Attributes) -> Option<(Self, Attributes)> {
        let Some(AttributeValue::Str(uid)) = path.get("uid") else {
            return None;
        };
        let uid = uid.to_string();
        let container = match path.get("container") {
            Some(AttributeValue::Str(c)) => Some(c.to_string()),
            _ => None,
        };
        let seen = names.generation();
        names.want(&uid, container.as_deref());
        let applied = (names.attributes(&uid, container.as_deref())).unwrap_or_default();
        let now = with_kube(&path, &applied);
        let link = PodLink {
            names: Arc::clone(names),
            uid,
            container,
            path,
            seen,
            applied,
        };
        Some((link, now))
    }

    /// The new attributes of the points when the cache changed and says something else of
    /// this pod than before (a pod gone from the list keeps its names).
    pub(crate) fn changed(&mut self) -> Option<Attributes> {
        let now = self.names.generation();
        if now == self.seen {
            return None;
        }
        self.seen = now;
        let kube = self
            .names
            .attributes(&self.uid, self.container.as_deref())?;
        if kube == self.applied {
            return None;
        }
        let attrs = with_kube(&self.path, &kube);
        self.applied = kube;
        Some(attrs)
    }
}

/// `set`, whose first `old_len` pairs were a base set, on `base` instead (the pairs added
/// after the base, such as `kind`, are kept in order).
pub(crate) fn rebase(set: &Attributes, old_len: usize, base: &Attributes) -> Attributes {
    let base = base.iter().map(|(k, v)| (k, v.clone()));
    let tail = set.iter().skip(old_len).map(|(k, v)| (k, v.clone()));
    Attributes::new(base.chain(tail))
}

/// `path` (the path's attributes) with `kube` after them.
fn with_kube(path: &Attributes, kube: &KubeAttributes) -> Attributes {
    if kube.is_empty() {
        return path.clone();
    }
    let path = path.iter().map(|(k, v)| (k, v.clone()));
    Attributes::new(path.chain(kube.iter().map(|(k, v)| (*k, v.clone()))))
}
