//! The pods named through Kubernetes, end to end: the plugin on a fixture tree with a
//! kubepods path, asking a local HTTPS server (a certificate signed by a CA generated for
//! the run, a token file) that replays a PodList; then a server that refuses (403), one
//! that cannot be reached, and a token rotated between two requests.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alumet::measurement::MeasurementPoint;
use alumet::metrics::MetricRegistry;
use alumet::test_util::{logs, TempDir, TestRun};
use common::https::Server;
use common::{fixture, lines_of, start_on_copy};

const UID: &str = "3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10";
const POD: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b8e6f4c_91c2_4d1e_a5b1_0c2d6a3f9e10.slice";
const ONLY_PODS: &str = "include = [\"**/kubepods*.slice/**/kubepods-*pod*.slice\", \"**/kubepods*.slice/**/kubepods-*pod*.slice/*.scope\"]\n";

fn container() -> String {
    format!("{POD}/cri-containerd-4f7d1e2a9b.scope")
}

fn pod_list() -> Vec<u8> {
    std::fs::read(fixture("pods").join("api-server-containerd.json")).unwrap()
}

/// The plugin's extra config: only the pods' cgroups, the kubernetes table with `url`,
/// and the token and CA files in `dir`.
fn kube_config(url: &str, dir: &Path, refresh: &str) -> String {
    let file = |name: &str| format!("{:?}", dir.join(name).display().to_string());
    format!(
        "{ONLY_PODS}[kubernetes]\nenabled = true\napi_url = {url:?}\nnode_name = \"node-a\"\ntoken_file = {}\nca_file = {}\nrefresh_interval = {refresh:?}\n",
        file("token"),
        file("ca.crt"),
    )
}

/// The warnings that name `url`.
fn warnings_with(url: &str) -> Vec<String> {
    let lines = logs::lines_with(url);
    lines
        .into_iter()
        .filter(|l| l.starts_with("WARN"))
        .collect()
}

/// Polls once and stops; the one warning that names `url` (failing on none or more),
/// the metrics and the points.
fn stop_with_one_warning(
    run: TestRun,
    url: &str,
) -> (String, MetricRegistry, Vec<MeasurementPoint>) {
    assert_eq!(run.trigger("cgroups/*"), 2);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let mut warnings = warnings_with(url);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    (warnings.remove(0), metrics, points)
}

/// Polls every source until a point of `consumer` has the attribute `key` (up to a minute).
fn poll_until_named(run: &TestRun, consumer: &str, key: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        run.trigger("cgroups/*");
        let points = run.collected().points();
        let named = points
            .iter()
            .any(|p| p.consumer.id().to_string() == consumer && p.attributes.get(key).is_some());
        if named {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The attributes of the last `memory_usage` point of `consumer`.
fn last_memory_attrs(lines: &[String]) -> String {
    let mut with: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("memory_usage"))
        .collect();
    with.sort_by_key(|l| l.len());
    with.last().map(|l| l.to_string()).unwrap_or_default()
}

/// The plugin on a copy of the v2 tree, asking `server` with `token` in its token file:
/// the directory of the token and CA files, the tree, the run, and the server's URL.
fn start_asking(
    server: &Server,
    token: &str,
    refresh: &str,
) -> (TempDir, TempDir, TestRun, String) {
    start_asking_at(server, "", token, refresh)
}

/// [`start_asking`], with `path` after the server's address in `api_url`.
fn start_asking_at(
    server: &Server,
    path: &str,
    token: &str,
    refresh: &str,
) -> (TempDir, TempDir, TestRun, String) {
    let dir = TempDir::new("cgroups-kube");
    server.write_ca(&dir.path().join("ca.crt"));
    std::fs::write(dir.path().join("token"), token).unwrap();
    let url = format!("https://127.0.0.1:{}{path}", server.port);
    let (tree, run) = start_on_copy("v2", &kube_config(&url, dir.path(), refresh));
    (dir, tree, run, url)
}

#[test]
fn pods_are_named_over_tls_with_the_token() {
    let server = Server::start(&pod_list());
    let (_dir, _tree, run, _) = start_asking(&server, "secret-token-1\n", "1h");

    assert!(
        poll_until_named(&run, &container(), "container_name"),
        "the container was never named"
    );
    assert!(
        poll_until_named(&run, POD, "name"),
        "the pod was never named"
    );
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "one request for one new uid: {requests:#?}"
    );
    assert_eq!(
        requests[0].path,
        "/api/v1/pods?fieldSelector=spec.nodeName=node-a"
    );
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer secret-token-1")
    );

    let pod = lines_of(&points, &metrics, POD);
    assert!(
        pod.contains(&format!("memory_usage [uid={UID},qos=burstable,name=web-0,namespace=shop,node=node-a] = 33554432")),
        "{pod:#?}"
    );
    let c = lines_of(&points, &metrics, &container());
    let named = format!("uid={UID},qos=burstable,container=4f7d1e2a9b,runtime=containerd,name=web-0,namespace=shop,node=node-a,container_name=nginx");
    assert_eq!(
        last_memory_attrs(&c),
        format!("memory_usage [{named}] = 31457280"),
        "{c:#?}"
    );
    // The sets with `kind` and `pressure` are named too, those added after the base kept.
    let pressure = format!("pressure_stall_time_delta [{named},pressure=cpu,kind=some]");
    assert!(
        c.iter().any(|l| l.starts_with(&pressure)),
        "no {pressure} in {c:#?}"
    );
}

#[test]
fn a_kubelets_pods_url_is_asked_as_it_is() {
    let server = Server::start(&pod_list());
    let (_dir, _tree, run, _) = start_asking_at(&server, "/pods", "kubelet-token", "1h");
    assert!(poll_until_named(&run, &container(), "container_name"));
    run.shutdown();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path, "/pods");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer kubelet-token")
    );
}

#[test]
fn a_refusal_is_said_once_and_points_keep_the_uid() {
    logs::capture();
    let server = Server::start(b"{\"kind\":\"Status\",\"code\":403}");
    server.answer(403, b"{\"kind\":\"Status\",\"code\":403}");
    let (_dir, _tree, run, url) = start_asking(&server, "t", "1s");
    // Retried (backoff capped at refresh_interval), quietly.
    assert!(server.wait_requests(3).len() >= 3, "not retried");
    let (warning, metrics, points) = stop_with_one_warning(run, &url);
    assert!(warning.starts_with("WARN"), "{}", warning);
    assert!(warning.contains("HTTP status 403"), "{}", warning);
    assert!(warning.contains("rbac.yaml"), "{}", warning);
    let pod = lines_of(&points, &metrics, POD);
    assert!(
        pod.contains(&format!(
            "memory_usage [uid={UID},qos=burstable] = 33554432"
        )),
        "{pod:#?}"
    );
    assert!(pod.iter().all(|l| !l.contains("name=")), "{pod:#?}");
}

#[test]
fn an_unreachable_server_is_said_once_and_points_keep_the_uid() {
    logs::capture();
    // Accepts and closes at once: no TLS, no answer (a server that is down or not HTTPS).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tries);
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dir = TempDir::new("cgroups-kube-down");
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(dir.path().join("ca.crt"), Server::start(b"").ca_pem).unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let (_tree, run) = start_on_copy("v2", &kube_config(&url, dir.path(), "1s"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while tries.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(tries.load(Ordering::SeqCst) >= 2, "not retried");
    let (warning, metrics, points) = stop_with_one_warning(run, &url);
    assert!(warning.contains("check api_url"), "{}", warning);
    let c = lines_of(&points, &metrics, &container());
    let uid_only = format!(
        "memory_usage [uid={UID},qos=burstable,container=4f7d1e2a9b,runtime=containerd] = 31457280"
    );
    assert!(c.contains(&uid_only), "{c:#?}");
    assert!(c.iter().all(|l| !l.contains("name=")), "{c:#?}");
}

#[test]
fn a_rotated_token_is_read_again_for_a_new_pod() {
    let server = Server::start(&pod_list());
    let (dir, tree, run, _) = start_asking(&server, "first-token", "1h");
    assert!(poll_until_named(&run, POD, "name"));

    // The kubelet rotates the token; a new pod starts, which the next list has.
    std::fs::write(dir.path().join("token"), "second-token").unwrap();
    let list = String::from_utf8(pod_list()).unwrap();
    server.answer(
        200,
        list.replace("\"name\": \"web-0\"", "\"name\": \"web-1\"")
            .replace(UID, "77777777-8888-4999-aaaa-bbbbbbbbbbbb")
            .as_bytes(),
    );
    let staging = TempDir::new("cgroups-kube-staging");
    let new = staging.path().join("pod");
    alumet::test_util::copy_tree(&tree.path().join(POD.trim_start_matches('/')), &new);
    let new_path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod77777777_8888_4999_aaaa_bbbbbbbbbbbb.slice";
    std::fs::rename(&new, tree.path().join(new_path.trim_start_matches('/'))).unwrap();
    assert!(
        poll_until_named(&run, new_path, "name"),
        "the new pod was never named"
    );
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    let auth: Vec<Option<String>> = server
        .requests()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_eq!(
        auth,
        [
            Some("Bearer first-token".to_owned()),
            Some("Bearer second-token".to_owned())
        ]
    );
    let new_pod = lines_of(&points, &metrics, new_path);
    assert!(
        last_memory_attrs(&new_pod).contains("name=web-1,namespace=shop,node=node-a"),
        "{new_pod:#?}"
    );
}
