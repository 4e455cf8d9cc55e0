//! Resolvers: what a cgroup's path says about what runs in it, as attributes put on every
//! point of that cgroup. Pure functions of the path (from the hierarchy's root), so that
//! the same path gives the same attributes on v1, v2 and hybrid hosts; the layouts they
//! know are listed in the README.

use alumet::prelude::AttributeValue;

/// The attributes of the cgroup at `path` (`/system.slice/nginx.service`), in a fixed key
/// order: `uid`, `qos` (Kubernetes pod), `container`, `runtime`, `job_id`, `step`,
/// `user`, `user_id` (Slurm, OAR, systemd users), `unit` (systemd).
pub fn resolve(path: &str) -> Vec<(&'static str, AttributeValue)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut r = Resolved::default();
    for (i, seg) in segments.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| segments[p]);
        let grandparent = i.checked_sub(2).map(|p| segments[p]);
        let used = kubernetes(&mut r, seg, parent, grandparent)
            || container(&mut r, seg, parent)
            || slurm(&mut r, seg, parent)
            || oar(&mut r, seg, parent)
            || user(&mut r, seg);
        if !used && (seg.ends_with(".service") || seg.ends_with(".scope")) {
            r.unit = Some(seg.to_string());
        }
    }
    r.into_attributes()
}

#[derive(Default)]
struct Resolved {
    uid: Option<String>,
    qos: Option<&'static str>,
    container: Option<String>,
    runtime: Option<&'static str>,
    job_id: Option<u64>,
    step: Option<String>,
    user: Option<String>,
    user_id: Option<u64>,
    unit: Option<String>,
}

impl Resolved {
    fn into_attributes(self) -> Vec<(&'static str, AttributeValue)> {
        let mut out = Vec::new();
        let mut put = |k, v: Option<AttributeValue>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        put("uid", self.uid.map(Into::into));
        put("qos", self.qos.map(Into::into));
        put("container", self.container.map(Into::into));
        put("runtime", self.runtime.map(Into::into));
        put("job_id", self.job_id.map(Into::into));
        put("step", self.step.map(Into::into));
        put("user", self.user.map(Into::into));
        put("user_id", self.user_id.map(Into::into));
        put("unit", self.unit.map(Into::into));
        out
    }
}

const QOS: [&str; 2] = ["burstable", "besteffort"];

/// Pods and their containers, kubelet's systemd driver
/// (`kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope`) and cgroupfs
/// driver (`kubepods/burstable/pod<uid>/<id>`).
fn kubernetes(r: &mut Resolved, seg: &str, parent: Option<&str>, gp: Option<&str>) -> bool {
    // systemd driver
    if let Some(rest) = seg
        .strip_prefix("kubepods-")
        .and_then(|s| s.strip_suffix(".slice"))
    {
        let (qos, pod) = match QOS.iter().find_map(|q| Some((*q, rest.strip_prefix(q)?))) {
            Some((q, tail)) => (q, tail.strip_prefix('-').unwrap_or(tail)),
            None => ("guaranteed", rest),
        };
        if let Some(uid) = pod.strip_prefix("pod").filter(|u| !u.is_empty()) {
            r.uid = Some(uid.replace('_', "-"));
            r.qos = Some(qos);
            return true;
        }
        return QOS.contains(&rest);
    }
    // cgroupfs driver
    let in_kubepods = parent == Some("kubepods")
        || (gp == Some("kubepods") && parent.is_some_and(|p| QOS.contains(&p)));
    if in_kubepods {
        if let Some(uid) = seg.strip_prefix("pod").filter(|u| !u.is_empty()) {
            r.uid = Some(uid.to_string());
            r.qos = Some(
                parent
                    .and_then(|p| QOS.into_iter().find(|q| *q == p))
                    .unwrap_or("guaranteed"),
            );
            return true;
        }
        return seg == "kubepods" || QOS.contains(&seg);
    }
    if r.uid.is_some() && parent.is_some_and(|p| p.starts_with("pod") && !p.contains('.')) {
        // A container right under a cgroupfs pod: a bare id or a runtime's name.
        let (id, runtime) = runtime_scope(seg).unwrap_or((seg, "unknown"));
        r.container = Some(id.to_string());
        r.runtime = Some(runtime).filter(|r| *r != "unknown");
        return true;
    }
    false
}

/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`, `libpod-<id>.scope`
/// (and, under the cgroupfs driver, the same without `.scope`): the id and the runtime.
fn runtime_scope(seg: &str) -> Option<(&str, &'static str)> {
    let base = seg.strip_suffix(".scope").unwrap_or(seg);
    let known = [
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("docker-", "docker"),
        ("libpod-", "podman"),
    ];
    let (id, runtime) = known
        .iter()
        .find_map(|(prefix, rt)| Some((base.strip_prefix(prefix)?, *rt)))?;
    // `crio-conmon-<id>` and `libpod-conmon-<id>` hold the runtime's monitor, not the container.
    (!id.is_empty() && !id.starts_with("conmon-")).then_some((id, runtime))
}

/// Containers: the runtime scopes above (under a pod or not), and Docker's cgroupfs
/// driver (`/docker/<id>`).
fn container(r: &mut Resolved, seg: &str, parent: Option<&str>) -> bool {
    if let Some((id, runtime)) = runtime_scope(seg) {
        r.container = Some(id.to_string());
        r.runtime = Some(runtime);
        return true;
    }
    if parent == Some("docker") && seg.len() >= 12 && seg.bytes().all(|b| b.is_ascii_hexdigit()) {
        r.container = Some(seg.to_string());
        r.runtime = Some("docker");
        return true;
    }
    false
}

/// Slurm: `slurmstepd.scope/job_<id>/step_<n>` (v2) and `slurm/uid_<uid>/job_<id>/step_<n>`
/// (v1).
fn slurm(r: &mut Resolved, seg: &str, parent: Option<&str>) -> bool {
    if parent == Some("slurm") {
        if let Some(uid) = seg.strip_prefix("uid_").and_then(|u| u.parse().ok()) {
            r.user_id = Some(uid);
            return true;
        }
    }
    let under_slurm = |p: &str| p.ends_with("slurmstepd.scope") || p.starts_with("uid_");
    if parent.is_some_and(under_slurm) {
        if let Some(job) = seg.strip_prefix("job_").and_then(|j| j.parse().ok()) {
            r.job_id = Some(job);
            return true;
        }
    }
    if r.job_id.is_some() && parent.is_some_and(|p| p.starts_with("job_")) {
        if let Some(step) = seg.strip_prefix("step_").filter(|s| !s.is_empty()) {
            r.step = Some(step.to_string());
            return true;
        }
    }
    false
}

/// OAR: `oar/<user>_<jobid>` (OAR 2) and `oar-u<uid>-j<jobid>.slice` (OAR 3).
fn oar(r: &mut Resolved, seg: &str, parent: Option<&str>) -> bool {
    if parent == Some("oar") {
        if let Some((user, job)) = seg.rsplit_once('_') {
            if let (false, Ok(job)) = (user.is_empty(), job.parse()) {
                r.user = Some(user.to_string());
                r.job_id = Some(job);
                return true;
            }
        }
    }
    let oar3 = seg
        .strip_prefix("oar-u")
        .and_then(|s| s.strip_suffix(".slice"))
        .and_then(|s| s.split_once("-j"));
    if let Some((Ok(uid), Ok(job))) = oar3.map(|(u, j)| (u.parse(), j.parse())) {
        r.user_id = Some(uid);
        r.job_id = Some(job);
        return true;
    }
    false
}

/// systemd's per-user cgroups: `user-<uid>.slice` and `user@<uid>.service` (a unit too).
fn user(r: &mut Resolved, seg: &str) -> bool {
    let slice = seg
        .strip_prefix("user-")
        .and_then(|s| s.strip_suffix(".slice"));
    if let Some(uid) = slice.and_then(|u| u.parse().ok()) {
        r.user_id = Some(uid);
        return true;
    }
    let service = seg
        .strip_prefix("user@")
        .and_then(|s| s.strip_suffix(".service"));
    if let Some(uid) = service.and_then(|u| u.parse().ok()) {
        r.user_id = Some(uid);
        r.unit = Some(seg.to_string());
        return true;
    }
    false
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
