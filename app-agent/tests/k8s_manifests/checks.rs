//! The checks of deploy/kubernetes/: each returns what it found wrong, so that the tests
//! can run it on the real manifests (it must pass) and on a broken copy (it must fail).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

/// A check: `Err` says what is wrong.
pub type Check = fn(&Manifests) -> Result<(), String>;

/// Every document of every `*.yaml` file of the directory, and its README.
pub struct Manifests {
    pub docs: Vec<Yaml>,
    pub readme: String,
}

impl Manifests {
    /// Reads `dir`, passing each file's text through `edit(file name, text)` first.
    pub fn load(dir: &Path, edit: &dyn Fn(&str, String) -> String) -> Manifests {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut docs = Vec::new();
        let mut readme = None;
        for name in names {
            let text = edit(&name, std::fs::read_to_string(dir.join(&name)).unwrap());
            if name == "README.md" {
                readme = Some(text);
            } else if name.ends_with(".yaml") {
                let parsed = YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
                assert!(!parsed.is_empty(), "{name} holds no document");
                docs.extend(parsed);
            }
        }
        Manifests {
            docs,
            readme: readme.expect("deploy/kubernetes/README.md"),
        }
    }

    /// The one document of this kind.
    pub fn one(&self, kind: &str) -> &Yaml {
        let all: Vec<&Yaml> = self
            .docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some(kind))
            .collect();
        assert_eq!(all.len(), 1, "one {kind} in deploy/kubernetes/");
        all[0]
    }

    /// The pod template's spec.
    pub fn pod(&self) -> &Yaml {
        &self.one("DaemonSet")["spec"]["template"]["spec"]
    }

    /// The agent's container: the one that runs `alumet-agent`.
    pub fn agent(&self) -> &Yaml {
        let found = list(&self.pod()["containers"])
            .iter()
            .find(|c| text(&c["command"][0]) == "alumet-agent");
        found.expect("a container whose command is alumet-agent")
    }

    /// The agent's config file, as the ConfigMap holds it.
    pub fn config_text(&self) -> String {
        let data = self.one("ConfigMap")["data"]
            .as_hash()
            .expect("ConfigMap data");
        assert_eq!(data.len(), 1, "one file in the ConfigMap");
        let (_, value) = data.iter().next().unwrap();
        text(value).to_owned()
    }

    /// The agent's config file, parsed.
    pub fn config(&self) -> toml::Table {
        toml::from_str(&self.config_text()).expect("the ConfigMap's config is TOML")
    }

    /// Every container of the pod, init containers included.
    fn containers(&self) -> Vec<&Yaml> {
        let pod = self.pod();
        let init = list(&pod["initContainers"]);
        list(&pod["containers"]).iter().chain(init).collect()
    }
}

/// The names of the `${VAR}` of a config text.
pub fn config_variables(config: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = config;
    while let Some((_, after)) = rest.split_once("${") {
        let Some((name, tail)) = after.split_once('}') else {
            break;
        };
        out.push(name.to_owned());
        rest = tail;
    }
    out
}

/// The items of a YAML sequence (none when absent).
pub fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map_or(&[], |v| v.as_slice())
}

/// A YAML string ("" when absent or not a string).
pub fn text(y: &Yaml) -> &str {
    y.as_str().unwrap_or("")
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// Every volumeMount of the agent refers to a volume of the pod, the config volume to the
/// ConfigMap, the pod's account to the ServiceAccount, the binding to both.
pub fn references(m: &Manifests) -> Result<(), String> {
    let volumes: BTreeSet<&str> = list(&m.pod()["volumes"])
        .iter()
        .map(|v| text(&v["name"]))
        .collect();
    for mount in list(&m.agent()["volumeMounts"]) {
        let name = text(&mount["name"]);
        ensure(volumes.contains(name), || {
            format!("volumeMount {name:?} names no volume of the pod ({volumes:?})")
        })?;
    }
    let config_map = text(&m.one("ConfigMap")["metadata"]["name"]);
    let used = list(&m.pod()["volumes"])
        .iter()
        .any(|v| text(&v["configMap"]["name"]) == config_map);
    ensure(used, || {
        format!("no volume of the pod mounts ConfigMap {config_map}")
    })?;
    let env: BTreeSet<&str> = list(&m.agent()["env"])
        .iter()
        .map(|e| text(&e["name"]))
        .collect();
    for var in config_variables(&m.config_text()) {
        ensure(env.contains(var.as_str()), || {
            format!("the config uses ${{{var}}}, which the agent's env does not set ({env:?})")
        })?;
    }
    let account = text(&m.one("ServiceAccount")["metadata"]["name"]);
    let pod_account = text(&m.pod()["serviceAccountName"]);
    ensure(pod_account == account, || {
        format!("the pod runs as {pod_account:?}, the ServiceAccount is {account:?}")
    })?;
    let binding = m.one("ClusterRoleBinding");
    let role = text(&m.one("ClusterRole")["metadata"]["name"]);
    ensure(text(&binding["roleRef"]["name"]) == role, || {
        format!("the binding's roleRef is not {role}")
    })?;
    let bound = list(&binding["subjects"]).iter().any(|s| {
        text(&s["kind"]) == "ServiceAccount"
            && text(&s["name"]) == account
            && text(&s["namespace"]) == text(&m.one("ServiceAccount")["metadata"]["namespace"])
    });
    ensure(bound, || {
        format!("the binding does not name ServiceAccount {account}")
    })
}

/// Where the agent's container mounts the host's `host_path` (a hostPath volume).
pub fn host_mount(m: &Manifests, host_path: &str) -> Option<String> {
    let volume = list(&m.pod()["volumes"])
        .iter()
        .find(|v| text(&v["hostPath"]["path"]) == host_path)?;
    let name = text(&volume["name"]);
    list(&m.agent()["volumeMounts"])
        .iter()
        .find(|v| text(&v["name"]) == name)
        .map(|v| text(&v["mountPath"]).to_owned())
}

/// Every hostPath volume is mounted read-only, wherever it is mounted.
pub fn host_paths_read_only(m: &Manifests) -> Result<(), String> {
    let pod = m.pod();
    for volume in list(&pod["volumes"]) {
        if volume["hostPath"].is_badvalue() {
            continue;
        }
        let name = text(&volume["name"]);
        for container in m.containers() {
            for mount in list(&container["volumeMounts"]) {
                ensure(
                    text(&mount["name"]) != name || mount["readOnly"].as_bool() == Some(true),
                    || format!("hostPath volume {name} is mounted without readOnly: true"),
                )?;
            }
        }
    }
    Ok(())
}

/// The config's `proc_root`, `sys_root` and `cgroup_root` are where the container
/// mounts the host's `/proc`, `/sys` and `/sys/fs/cgroup`.
pub fn roots_are_mounts(m: &Manifests) -> Result<(), String> {
    let config = m.config();
    for (key, host) in [
        ("proc_root", "/proc"),
        ("sys_root", "/sys"),
        ("cgroup_root", "/sys/fs/cgroup"),
    ] {
        let mounted = host_mount(m, host)
            .ok_or_else(|| format!("the agent's container does not mount the host's {host}"))?;
        let root = config.get(key).and_then(toml::Value::as_str);
        ensure(root == Some(mounted.as_str()), || {
            format!("{key} is {root:?}; the host's {host} is mounted at {mounted}")
        })?;
    }
    Ok(())
}

/// No privileged container, no privilege escalation, no host namespace, a read-only root
/// file system, and every capability dropped but those the README's table lists.
pub fn least_privilege(m: &Manifests) -> Result<(), String> {
    for key in ["hostPID", "hostNetwork", "hostIPC"] {
        ensure(m.pod()[key].as_bool() != Some(true), || {
            format!("the pod sets {key}")
        })?;
    }
    for container in m.containers() {
        let name = text(&container["name"]);
        let security = &container["securityContext"];
        ensure(security["privileged"].as_bool() != Some(true), || {
            format!("container {name} is privileged")
        })?;
        for (key, want) in [
            ("allowPrivilegeEscalation", false),
            ("readOnlyRootFilesystem", true),
        ] {
            ensure(security[key].as_bool() == Some(want), || {
                format!("container {name}: {key} is not {want}")
            })?;
        }
        let drop: Vec<&str> = list(&security["capabilities"]["drop"])
            .iter()
            .map(text)
            .collect();
        ensure(drop == ["ALL"], || {
            format!("container {name} drops {drop:?}, not [\"ALL\"]")
        })?;
        let added: BTreeSet<String> = list(&security["capabilities"]["add"])
            .iter()
            .map(|c| format!("CAP_{}", text(c).trim_start_matches("CAP_")))
            .collect();
        let documented = documented_capabilities(&m.readme);
        ensure(added == documented, || {
            format!("container {name} adds {added:?}; README.md's capability table lists {documented:?}")
        })?;
    }
    Ok(())
}

/// The capabilities of the README's table: the rows that start with `` | `CAP_ ``.
pub fn documented_capabilities(readme: &str) -> BTreeSet<String> {
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `CAP_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("CAP_{name}"))
        .collect()
}

/// The exporter's port (from the config's `[plugins.prometheus] address`).
pub fn exporter_port(m: &Manifests) -> Result<u16, String> {
    let config = m.config();
    let address = config
        .get("plugins")
        .and_then(|p| p.get("prometheus"))
        .and_then(|p| p.get("address"))
        .and_then(toml::Value::as_str)
        .ok_or("the config sets no [plugins.prometheus] address")?;
    let (host, port) = address.rsplit_once(':').ok_or("address without a port")?;
    ensure(host == "0.0.0.0", || {
        format!("the exporter listens on {host}: Prometheus cannot reach the pod")
    })?;
    port.parse().map_err(|e| format!("port {port}: {e}"))
}

/// The prometheus.io annotations name the exporter's port and path; the container
/// declares that port; the probes use it.
pub fn scrape_annotations(m: &Manifests) -> Result<(), String> {
    let port = exporter_port(m)?;
    let ds = m.one("DaemonSet");
    let annotations = &ds["spec"]["template"]["metadata"]["annotations"];
    for (key, want) in [
        ("prometheus.io/scrape", "true".to_owned()),
        ("prometheus.io/port", port.to_string()),
        ("prometheus.io/path", "/metrics".to_owned()),
    ] {
        let got = text(&annotations[key]);
        ensure(got == want, || {
            format!("annotation {key} is {got:?}, not {want:?}")
        })?;
    }
    let ports = list(&m.agent()["ports"]);
    let declared = ports
        .iter()
        .find(|p| p["containerPort"].as_i64() == Some(i64::from(port)))
        .ok_or_else(|| format!("the agent's container declares no port {port}"))?;
    for probe in ["livenessProbe", "readinessProbe"] {
        let target = &m.agent()[probe]["httpGet"]["port"];
        let ok = target.as_i64() == Some(i64::from(port))
            || (target.as_str().is_some() && target == &declared["name"]);
        ensure(ok, || {
            format!("{probe} is not on the exporter's port {port}")
        })?;
    }
    Ok(())
}

/// The ClusterRole only reads.
pub fn read_only_role(m: &Manifests) -> Result<(), String> {
    const READ: [&str; 3] = ["get", "list", "watch"];
    for rule in list(&m.one("ClusterRole")["rules"]) {
        for verb in list(&rule["verbs"]).iter().map(text) {
            ensure(READ.contains(&verb), || {
                format!("the ClusterRole grants {verb:?}")
            })?;
        }
        for resource in list(&rule["resources"]).iter().map(text) {
            let forbidden = ["*", "secrets", "nodes/proxy"];
            ensure(!forbidden.contains(&resource), || {
                format!("the ClusterRole reaches {resource:?}")
            })?;
        }
    }
    Ok(())
}
