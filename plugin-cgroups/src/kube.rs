//! Asking Kubernetes for the node's pods (the API server's `/api/v1/pods`, or the kubelet's
//! `/pods`: both answer a PodList), from a task of the plugin, never from a source: a
//! request when a source's pod is missing from the cache (at most one a second), and
//! every `refresh_interval`. When the server cannot be reached or refuses, the points keep
//! the pod's `uid`; the first failure is a warning that names the URL and what to fix, the
//! next ones are retried quietly, further and further apart (up to `refresh_interval`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alumet::prelude::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::time::Instant;

use crate::config::KubeConfig;
use crate::podlist::{parse_pod_list, Pod};
use crate::pods::PodNames;

/// At most one request this often.
const MIN_GAP: Duration = Duration::from_secs(1);
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read (a PodList of a whole large cluster is tens of MB).
const MAX_BODY: u64 = 256 << 20;

/// Why a request gave no pods, and what to check.
#[derive(Debug)]
pub struct Failure {
    /// What happened.
    pub reason: String,
    /// What to check.
    pub fix: &'static str,
}

fn failure(reason: String, fix: &'static str) -> Failure {
    Failure { reason, fix }
}

/// The URL to ask, from `api_url`, `node_name` and the environment (`env`): see the doc
/// lines of [`KubeConfig`].
pub fn pods_url(c: &KubeConfig, env: &dyn Fn(&str) -> Option<String>) -> String {
    let base = if c.api_url.is_empty() {
        match env("KUBERNETES_SERVICE_HOST").filter(|h| !h.is_empty()) {
            Some(h) => {
                let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".into());
                let host = if h.contains(':') { format!("[{h}]") } else { h };
                format!("https://{host}:{port}")
            }
            None => "https://kubernetes.default.svc".to_owned(),
        }
    } else {
        c.api_url.trim_end_matches('/').to_owned()
    };
    if base.ends_with("/pods") {
        return base;
    }
    let node = Some(c.node_name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| env("NODE_NAME"))
        .unwrap_or_default();
    if node.is_empty() {
        format!("{base}/api/v1/pods")
    } else {
        format!("{base}/api/v1/pods?fieldSelector=spec.nodeName={node}")
    }
}

/// The HTTP client of one URL.
pub struct Client {
    url: String,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    /// Built at the first request (it reads `ca_file`).
    agent: Option<ureq::Agent>,
}

impl Client {
    /// The client that `c` describes, the URL completed from the process's environment.
    pub fn new(c: &KubeConfig) -> Self {
        let url = pods_url(c, &|k| std::env::var(k).ok());
        let https = url.starts_with("https://");
        let given = |p: &Path| Some(p.to_owned()).filter(|p| !p.as_os_str().is_empty());
        Client {
            // A bearer token never travels in clear text.
            token_file: given(&c.token_file).filter(|_| https),
            ca_file: given(&c.ca_file),
            url,
            agent: None,
        }
    }

    /// The URL asked.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn agent(&mut self) -> Result<ureq::Agent, Failure> {
        if let Some(a) = &self.agent {
            return Ok(a.clone());
        }
        let mut builder = ureq::AgentBuilder::new().timeout(TIMEOUT);
        if let Some(ca) = &self.ca_file {
            let tls = tls_config(ca).map_err(|e| {
                failure(
                    format!("reading the CA certificates of {}: {e}", ca.display()),
                    "set ca_file to the cluster's CA in PEM (a pod's is /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)",
                )
            })?;
            builder = builder.tls_config(tls);
        }
        let agent = builder.build();
        self.agent = Some(agent.clone());
        Ok(agent)
    }

    /// The pods, in one request; the token file is read again each time.
    pub fn fetch(&mut self) -> Result<Vec<Pod>, Failure> {
        let agent = self.agent()?;
        let mut request = agent.get(&self.url).set("Accept", "application/json");
        if let Some(file) = &self.token_file {
            let token = std::fs::read_to_string(file).map_err(|e| {
                failure(
                    format!("reading the token {}: {e}", file.display()),
                    "mount the service account's token (automountServiceAccountToken: true), or set token_file",
                )
            })?;
            request = request.set("Authorization", &format!("Bearer {}", token.trim()));
        }
        let response = request.call().map_err(|e| match e {
            ureq::Error::Status(code, _) => {
                failure(format!("HTTP status {code}"), status_fix(code))
            }
            ureq::Error::Transport(t) => failure(
                // Without the URL, which the warning shows once.
                match t.message() {
                    Some(m) => format!("{}: {m}", t.kind()),
                    None => t.kind().to_string(),
                },
                "check api_url (or KUBERNETES_SERVICE_HOST) and, for a certificate error, ca_file",
            ),
        })?;
        let mut body = Vec::new();
        (response.into_reader().take(MAX_BODY))
            .read_to_end(&mut body)
            .map_err(|e| failure(format!("reading the answer: {e}"), "check api_url"))?;
        parse_pod_list(&body).map_err(|e| {
            failure(
                format!("the answer is not a PodList: {e}"),
                "api_url must be an API server's or a kubelet's /pods URL",
            )
        })
    }
}

fn status_fix(code: u16) -> &'static str {
    match code {
        401 => "the token was refused: check token_file (an expired or another cluster's token)",
        403 => "the service account may not list pods: apply deploy/kubernetes/rbac.yaml (get, list, watch on pods) for the agent's service account",
        404 => "api_url is not an API server's or a kubelet's /pods URL",
        _ => "check the server's log",
    }
}

/// A TLS config that trusts the certificates of `ca` (PEM) and nothing else.
fn tls_config(ca: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    anyhow::ensure!(!roots.is_empty(), "no certificate in it");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The task: fills `names` until shutdown (see the module's doc).
pub async fn run(
    client: Client,
    names: Arc<PodNames>,
    refresh: Duration,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut r = Refresher {
        client: Some(client),
        names,
        refresh,
        last: None,
        next: None,
        failures: 0,
    };
    while r.wait(&mut shutdown).await {
        let mut client = r
            .client
            .take()
            .expect("the client is back after each request");
        let (client, result) = tokio::task::spawn_blocking(move || {
            let result = client.fetch();
            (client, result)
        })
        .await?;
        r.client = Some(client);
        r.record(result);
    }
    Ok(())
}

/// The state of the task between requests.
struct Refresher {
    /// `None` while a request is made on a blocking thread.
    client: Option<Client>,
    names: Arc<PodNames>,
    refresh: Duration,
    /// When the last request was made.
    last: Option<Instant>,
    /// The next request in any case: none before a pod's cgroup is found.
    next: Option<Instant>,
    /// Requests failed in a row.
    failures: u32,
}

impl Refresher {
    /// Waits until the next request is due (a missing pod, the refresh or the backoff,
    /// and at least [`MIN_GAP`] after the last one); `false` at shutdown.
    async fn wait(&mut self, shutdown: &mut Shutdown) -> bool {
        loop {
            let next = self.next;
            let deadline = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait() => return false,
                // While failing, only the backoff's deadline (a new pod's cgroup waits for it).
                _ = self.names.wanted(), if self.failures == 0 => {
                    if !self.names.has_missing() {
                        continue; // a wake-up for what the last answer already had
                    }
                }
                _ = deadline => {}
            }
            break;
        }
        if let Some(at) = self
            .last
            .map(|l| l + MIN_GAP)
            .filter(|at| *at > Instant::now())
        {
            tokio::select! {
                _ = shutdown.wait() => return false,
                _ = tokio::time::sleep_until(at) => {}
            }
        }
        self.last = Some(Instant::now());
        true
    }

    /// Keeps the pods of an answer, or says why there are none (once in a row of failures)
    /// and backs off.
    fn record(&mut self, result: Result<Vec<Pod>, Failure>) {
        let url = self.client.as_ref().map_or("", Client::url);
        match result {
            Ok(pods) => {
                if self.failures > 0 {
                    log::info!("cgroups: {url} answers again");
                }
                log::debug!("cgroups: {} pods from {url}", pods.len());
                self.names.replace(pods);
                self.failures = 0;
                self.next = Some(Instant::now() + self.refresh);
            }
            Err(f) => {
                if self.failures == 0 {
                    log::warn!(
                        "cgroups: cannot list the pods at {url}: {}; the points of pods carry their uid only until it answers ({}); retrying quietly",
                        f.reason, f.fix
                    );
                } else {
                    log::debug!("cgroups: {url} still fails: {}", f.reason);
                }
                self.failures = self.failures.saturating_add(1);
                let backoff = MIN_GAP.saturating_mul(1 << self.failures.min(16));
                self.next = Some(Instant::now() + backoff.min(self.refresh));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(api_url: &str, node: &str, env: &[(&str, &str)]) -> String {
        let c = KubeConfig {
            api_url: api_url.into(),
            node_name: node.into(),
            ..KubeConfig::default()
        };
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        pods_url(&c, &env)
    }

    #[test]
    fn the_url_comes_from_config_then_the_environment() {
        let q = "/api/v1/pods?fieldSelector=spec.nodeName=n1";
        assert_eq!(
            url("", "n1", &[]),
            format!("https://kubernetes.default.svc{q}")
        );
        let in_pod = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "6443"),
            ("NODE_NAME", "n1"),
        ];
        assert_eq!(url("", "", &in_pod), format!("https://10.96.0.1:6443{q}"));
        let v6 = [("KUBERNETES_SERVICE_HOST", "fd00::1")];
        assert_eq!(url("", "n1", &v6), format!("https://[fd00::1]:443{q}"));
        assert_eq!(
            url("https://api:6443/", "n2", &in_pod),
            "https://api:6443/api/v1/pods?fieldSelector=spec.nodeName=n2"
        );
        assert_eq!(
            url("https://api:6443", "", &[]),
            "https://api:6443/api/v1/pods"
        );
        // The kubelet's endpoint is taken as it is.
        assert_eq!(
            url("https://10.0.0.5:10250/pods", "n1", &[]),
            "https://10.0.0.5:10250/pods"
        );
    }

    #[test]
    fn no_token_in_clear_text() {
        let c = KubeConfig {
            api_url: "http://127.0.0.1:10255/pods".into(),
            ..KubeConfig::default()
        };
        assert_eq!(Client::new(&c).token_file, None);
        let c = KubeConfig {
            api_url: "https://127.0.0.1:10250/pods".into(),
            ..KubeConfig::default()
        };
        assert!(Client::new(&c).token_file.is_some());
    }
}
