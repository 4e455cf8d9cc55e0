//! deploy/kubernetes/: the manifests parse, agree with each other, with the README and
//! with the agent, which runs on the ConfigMap's config and answers the probes.
//! Each check also runs on a copy broken on purpose, where it must fail.
#![allow(clippy::unwrap_used)]

#[path = "k8s_manifests/checks.rs"]
mod checks;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checks::{list, text, Check, Manifests};
use common::*;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

fn manifests() -> Manifests {
    Manifests::load(&deploy_dir(), &|_, text| text)
}

/// The manifests with `from` replaced by `to` in `file` (which must contain it).
fn broken(file: &'static str, from: &'static str, to: &'static str) -> Manifests {
    Manifests::load(&deploy_dir(), &move |name, text| {
        if name != file {
            return text;
        }
        assert!(text.contains(from), "{file} no longer contains {from:?}");
        text.replace(from, to)
    })
}

const CHECKS: [(&str, Check); 6] = [
    ("references", checks::references),
    ("host_paths_read_only", checks::host_paths_read_only),
    ("roots_are_mounts", checks::roots_are_mounts),
    ("least_privilege", checks::least_privilege),
    ("scrape_annotations", checks::scrape_annotations),
    ("read_only_role", checks::read_only_role),
];

#[test]
fn every_manifest_parses_and_every_check_passes() {
    let m = manifests();
    let mut kinds: Vec<&str> = m.docs.iter().map(|d| text(&d["kind"])).collect();
    kinds.sort_unstable();
    let want = [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "Namespace",
        "ServiceAccount",
    ];
    assert_eq!(kinds, want);
    let namespace = text(&m.one("Namespace")["metadata"]["name"]);
    for doc in &m.docs {
        let kind = text(&doc["kind"]);
        if !["Namespace", "ClusterRole", "ClusterRoleBinding"].contains(&kind) {
            assert_eq!(text(&doc["metadata"]["namespace"]), namespace, "{kind}");
        }
    }
    for (name, check) in CHECKS {
        if let Err(e) = check(&m) {
            panic!("check {name}: {e}");
        }
    }
}

/// Ways to break the manifests, each caught by one check: in `.0`, `.1` becomes `.2`;
/// the check `.3` must then fail saying `.4`.
#[rustfmt::skip]
const BREAKAGES: [(&str, &str, &str, Check, &str); 17] = [
    ("daemonset.yaml", "- name: NODE_NAME", "- name: NODENAME", checks::references, "uses ${NODE_NAME}"),
    ("daemonset.yaml", "- name: host-cgroup\n          hostPath", "- name: cgroup\n          hostPath", checks::references, "names no volume"),
    ("daemonset.yaml", "name: alumet-agent-config", "name: other-config", checks::references, "mounts ConfigMap"),
    ("rbac.yaml", "    name: alumet-agent\n    namespace", "    name: default\n    namespace", checks::references, "does not name ServiceAccount"),
    ("daemonset.yaml", "mountPath: /host/sys\n              readOnly: true", "mountPath: /host/sys\n              readOnly: false", checks::host_paths_read_only, "host-sys is mounted without readOnly"),
    ("configmap.yaml", "proc_root = \"/host/proc\"", "proc_root = \"/proc\"", checks::roots_are_mounts, "proc_root is"),
    ("daemonset.yaml", "mountPath: /host/sys/fs/cgroup", "mountPath: /host/cgroup", checks::roots_are_mounts, "cgroup_root is"),
    ("daemonset.yaml", "privileged: false", "privileged: true", checks::least_privilege, "is privileged"),
    ("daemonset.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", checks::least_privilege, "allowPrivilegeEscalation is not false"),
    ("daemonset.yaml", "add: [\"PERFMON\"]", "add: [\"PERFMON\", \"SYS_ADMIN\"]", checks::least_privilege, "capability table"),
    ("README.md", "| `CAP_PERFMON` |", "| CAP_PERFMON |", checks::least_privilege, "capability table"),
    ("daemonset.yaml", "drop: [\"ALL\"]", "drop: [\"NET_RAW\"]", checks::least_privilege, "not [\"ALL\"]"),
    ("daemonset.yaml", "hostPID: false", "hostPID: true", checks::least_privilege, "sets hostPID"),
    ("daemonset.yaml", "prometheus.io/port: \"9091\"", "prometheus.io/port: \"9100\"", checks::scrape_annotations, "prometheus.io/port is"),
    ("configmap.yaml", "address = \"0.0.0.0:9091\"", "address = \"0.0.0.0:9092\"", checks::scrape_annotations, "prometheus.io/port is"),
    ("daemonset.yaml", "containerPort: 9091", "containerPort: 9092", checks::scrape_annotations, "declares no port"),
    ("rbac.yaml", "[\"get\", \"list\", \"watch\"]", "[\"get\", \"list\", \"watch\", \"delete\"]", checks::read_only_role, "grants \"delete\""),
];

#[test]
fn each_check_fails_on_a_broken_copy() {
    for (file, from, to, check, says) in BREAKAGES {
        match check(&broken(file, from, to)) {
            Ok(()) => panic!("{file} with {to:?}: not caught"),
            Err(e) => assert!(e.contains(says), "{file} with {to:?}: {e}"),
        }
    }
}

/// The agent's command line from the DaemonSet, with `--config` pointing at `config`.
fn container_args(m: &Manifests, config: &Path) -> Vec<String> {
    let mut args: Vec<String> = list(&m.agent()["args"])
        .iter()
        .map(|a| text(a).to_owned())
        .collect();
    let at = args.iter().position(|a| a == "--config").expect("--config");
    args[at + 1] = config.display().to_string();
    args
}

/// The agent, started with the container's arguments on the ConfigMap's config; the host
/// roots and the exporter's address are moved to what this machine has (a sysfs without
/// RAPL, so that the rapl plugin is unavailable here as on most test machines).
fn agent_on(m: &Manifests, dir: &Path, port: u16) -> std::process::Command {
    let config = dir.join("alumet-config.toml");
    std::fs::write(&config, m.config_text()).unwrap();
    std::fs::create_dir_all(dir.join("sys")).unwrap();
    let mut cmd = agent(dir);
    cmd.args(container_args(m, &config));
    // The container's environment: values as written, the downward API's (valueFrom) with
    // a stand-in.
    for e in list(&m.agent()["env"]) {
        let value = e["value"].as_str().unwrap_or("k8s-manifests-test-node");
        cmd.env(text(&e["name"]), value);
    }
    for (key, value) in [
        ("proc_root", "/proc".to_owned()),
        ("sys_root", dir.join("sys").display().to_string()),
        ("cgroup_root", dir.join("sys").display().to_string()),
        ("plugins.prometheus.address", format!("127.0.0.1:{port}")),
    ] {
        cmd.arg("--config-override").arg(format!("{key}={value:?}"));
    }
    cmd
}

/// GET `path` on the loopback `port`: the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("port {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let code = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, reply)
}

#[test]
fn the_agent_runs_on_the_configmap_and_answers_the_probes() {
    let m = manifests();
    let dir = temp_dir("k8s-config");
    let port = checks::exporter_port(&m).unwrap();
    // The manifest's port may be taken on this machine: another free one stands for it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut running = Running::spawn(agent_on(&m, &dir, free));
    running.wait_for_log("running plugins");
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = text(&m.agent()[probe]["httpGet"]["path"]);
        let (code, reply) = get(free, path);
        assert_eq!(
            code, 200,
            "{probe} {path} (port {port} in the manifest): {reply}"
        );
    }
    let path = text(
        &m.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"],
    );
    let (_, page) = get(free, path);
    assert!(
        page.contains("alumet_output_points_written_total"),
        "{page}"
    );
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("plugin rapl is unavailable"), "{stderr}");
}

/// A typo in the ConfigMap stops the agent at once with a config error (78) that names it.
#[test]
fn a_typo_in_the_configmap_is_a_config_error() {
    let m = broken(
        "configmap.yaml",
        "idle = \"measured\"",
        "idel = \"measured\"",
    );
    let dir = temp_dir("k8s-typo");
    let (code, stderr) = run_to_exit(agent_on(&m, &dir, 9));
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("idel"), "{stderr}");
}
