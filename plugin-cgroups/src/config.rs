//! The `[plugins.cgroups]` table.

use alumet::plugin::host_paths;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pattern::PathPattern;

/// Config of the `cgroups` plugin: the `[plugins.cgroups]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the cgroup tree is mounted: `/sys/fs/cgroup` takes the general `cgroup_root` (itself `/sys/fs/cgroup` by default); another path (a container's `/host/sys/fs/cgroup`) overrides it for this plugin.
    pub cgroup_root: PathBuf,
    /// How often to measure each cgroup (a cgroup created while running gets its first reading when it is found, counted from its creation).
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the buffered points to the outputs (at least every poll when it is shorter than `poll_interval`).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// How often to read the costlier or slower-moving figures, the memory limit, the memory breakdown (`memory.stat`) and the pressure stall times (`*.pressure`): in whole poll intervals, at least one; CPU time, memory usage and I/O are read at every poll.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub details_interval: Duration,
    /// How often to list the whole tree again, besides following it with inotify (a safety net for events the kernel drops).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub rescan_interval: Duration,
    /// The cgroups to measure, as paths from the hierarchy's root: `*` matches within one path segment, `?` one character, `**` any number of segments; the default measures services, user sessions, pods, containers and batch jobs, not every leaf.
    pub include: Vec<String>,
    /// Cgroups not to measure even when `include` matches them (same syntax).
    pub exclude: Vec<String>,
    /// How deep below the root to look for cgroups (`/system.slice/nginx.service` is at depth 2).
    pub max_depth: usize,
    /// Docker's state directory, where a container's name is read (`containers/ID/config.v2.json`) for the cgroups of Docker containers outside Kubernetes (in a container: the host's, mounted read-only).
    pub docker_root: PathBuf,
    /// The containers storage of Podman (and CRI-O), where a Podman container's name is read (`overlay-containers/containers.json`).
    pub containers_storage: PathBuf,
    /// The names of the pods (`name`, `namespace`, `node`) and of their containers (`container_name`), asked of Kubernetes for the pod uids found in the paths.
    pub kubernetes: KubeConfig,
}

/// The `[plugins.cgroups.kubernetes]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KubeConfig {
    /// `"auto"`: on when `token_file` exists (the agent runs in a pod with a service account); `true` or `false` to choose.
    #[schemars(with = "String")]
    pub enabled: Switch,
    /// Where to list the pods: empty for the cluster's API server (`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, else `https://kubernetes.default.svc`); an API server's URL, to which `/api/v1/pods?fieldSelector=spec.nodeName=NODE` is added; or a URL ending in `/pods`, taken as it is (the kubelet's `https://NODE:10250/pods`).
    pub api_url: String,
    /// The node whose pods are listed: empty for the environment variable `NODE_NAME` (the DaemonSet of deploy/kubernetes sets it); with neither, every pod of the cluster is listed.
    pub node_name: String,
    /// The bearer token sent with each request over HTTPS, read again each time (tokens rotate); empty for none.
    pub token_file: PathBuf,
    /// The CA certificates (PEM) that the server's certificate must chain to; empty for the public roots.
    pub ca_file: PathBuf,
    /// How often to list the pods again, besides when the cgroup of a pod missing from the last list appears (at most one request a second).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub refresh_interval: Duration,
}

/// The service account's files in a pod.
pub const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// The cluster's CA in a pod.
pub const CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

impl Default for KubeConfig {
    fn default() -> Self {
        KubeConfig {
            enabled: Switch::Auto,
            api_url: String::new(),
            node_name: String::new(),
            token_file: PathBuf::from(TOKEN_FILE),
            ca_file: PathBuf::from(CA_FILE),
            refresh_interval: Duration::from_secs(60),
        }
    }
}

impl KubeConfig {
    /// Whether to ask Kubernetes: `enabled`, or with `"auto"`, whether the token file exists.
    pub fn is_on(&self) -> bool {
        match self.enabled {
            Switch::On => true,
            Switch::Off => false,
            Switch::Auto => !self.token_file.as_os_str().is_empty() && self.token_file.exists(),
        }
    }
}

/// `true`, `false`, or `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// `true`
    On,
    /// `false`
    Off,
    /// `"auto"`: decided by what the host has.
    Auto,
}

impl Serialize for Switch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Switch::On => s.serialize_bool(true),
            Switch::Off => s.serialize_bool(false),
            Switch::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Switch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Switch;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Switch, E> {
                Ok(if v { Switch::On } else { Switch::Off })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Switch, E> {
                match v {
                    "auto" => Ok(Switch::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The cgroups measured by default: what a user of each system expects to see as one
/// consumer. Pods and their containers are both measured (a pod's figures include its
/// containers'); a Slurm job and its steps likewise.
pub const DEFAULT_INCLUDE: [&str; 16] = [
    // systemd services and user sessions
    "/system.slice/*.service",
    "/user.slice/user-*.slice",
    // Kubernetes pods and containers, systemd and cgroupfs drivers (nested runtimes too)
    "**/kubepods*.slice/**/kubepods-*pod*.slice",
    "**/kubepods*.slice/**/kubepods-*pod*.slice/*.scope",
    "**/kubepods/pod*",
    "**/kubepods/pod*/*",
    "**/kubepods/*/pod*",
    "**/kubepods/*/pod*/*",
    // Docker and Podman containers outside Kubernetes
    "/system.slice/docker-*.scope",
    "/docker/*",
    "**/libpod-*.scope",
    // Slurm jobs and steps
    "**/slurmstepd.scope/job_*",
    "**/slurmstepd.scope/job_*/step_*",
    "**/slurm/uid_*/job_*",
    "**/slurm/uid_*/job_*/step_*",
    // OAR jobs
    "/oar/*_*",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            cgroup_root: PathBuf::from(alumet::plugin::host_paths::CGROUP_ROOT),
            poll_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(5),
            details_interval: Duration::from_secs(10),
            rescan_interval: Duration::from_secs(30),
            include: DEFAULT_INCLUDE.map(String::from).to_vec(),
            exclude: Vec::new(),
            max_depth: 6,
            docker_root: PathBuf::from("/var/lib/docker"),
            containers_storage: PathBuf::from("/var/lib/containers/storage"),
            kubernetes: KubeConfig::default(),
        }
    }
}

impl Config {
    /// Checks what serde cannot; the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        host_paths::ensure_root("cgroup_root", &self.cgroup_root, host_paths::CGROUP_ROOT)?;
        alumet::pipeline::Trigger::from_config("", self.poll_interval, self.flush_interval)?;
        for (key, d) in [
            ("rescan_interval", self.rescan_interval),
            ("details_interval", self.details_interval),
            (
                "kubernetes.refresh_interval",
                self.kubernetes.refresh_interval,
            ),
        ] {
            anyhow::ensure!(!d.is_zero(), "{key} must be longer than zero");
        }
        anyhow::ensure!(
            self.max_depth >= 1,
            "max_depth is 0: give at least 1 (the cgroups right under the root)"
        );
        anyhow::ensure!(
            !self.include.is_empty(),
            "include is empty: nothing would be measured; give patterns such as \"/system.slice/*.service\" (\"/**\" measures every cgroup)"
        );
        let url = &self.kubernetes.api_url;
        anyhow::ensure!(
            url.is_empty() || url.starts_with("https://") || url.starts_with("http://"),
            "kubernetes.api_url = {url:?} is not an http:// or https:// URL"
        );
        self.patterns()?;
        Ok(())
    }

    /// Every how many polls the costlier figures are read (see `details_interval`).
    pub(crate) fn details_every(&self) -> u32 {
        let polls = self.details_interval.as_nanos() / self.poll_interval.as_nanos().max(1);
        u32::try_from(polls).unwrap_or(u32::MAX).max(1)
    }

    /// `include` and `exclude`, compiled.
    pub(crate) fn patterns(&self) -> anyhow::Result<(Vec<PathPattern>, Vec<PathPattern>)> {
        let compile = |key: &str, list: &[String]| {
            (list.iter().enumerate())
                .map(|(i, p)| {
                    PathPattern::new(p).map_err(|e| anyhow::anyhow!("{key}[{i}] = {p:?}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        Ok((
            compile("include", &self.include)?,
            compile("exclude", &self.exclude)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube(toml_text: &str) -> Result<KubeConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn enabled_is_true_false_or_auto() {
        assert_eq!(kube("enabled = true").unwrap().enabled, Switch::On);
        assert_eq!(kube("enabled = false").unwrap().enabled, Switch::Off);
        assert_eq!(kube("enabled = \"auto\"").unwrap().enabled, Switch::Auto);
        assert_eq!(kube("").unwrap().enabled, Switch::Auto);
        let e = kube("enabled = \"yes\"").unwrap_err().to_string();
        assert!(e.contains("true, false or \"auto\""), "{e}");
        assert!(kube("enable = true").is_err(), "unknown keys are refused");
    }

    #[test]
    fn auto_is_on_where_the_token_file_exists() {
        let dir = std::env::temp_dir().join(format!("cgroups-switch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        let _ = std::fs::remove_file(&token);
        let mut c = KubeConfig {
            token_file: token.clone(),
            ..KubeConfig::default()
        };
        assert!(!c.is_on(), "no token file: off");
        std::fs::write(&token, "t").unwrap();
        assert!(c.is_on(), "a token file: on");
        c.enabled = Switch::Off;
        assert!(!c.is_on());
        c.enabled = Switch::On;
        c.token_file = dir.join("absent");
        assert!(c.is_on(), "true is on without a token file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_api_url_must_be_http() {
        let mut c = Config::default();
        c.kubernetes.api_url = "kubernetes.default.svc".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("kubernetes.api_url"), "{e}");
        c.kubernetes.api_url = "https://10.0.0.1:6443".into();
        c.validate().unwrap();
    }
}
