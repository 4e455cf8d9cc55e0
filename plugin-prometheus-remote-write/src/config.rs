//! The `[plugins.prometheus-remote-write]` table.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Config of the `prometheus-remote-write` plugin. Missing keys take their default.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The full remote-write URL: Prometheus `http://host:9090/api/v1/write` (run with `--web.enable-remote-write-receiver`), VictoriaMetrics `http://host:8428/api/v1/write`, Mimir/Cortex `.../api/v1/push`.
    pub url: String,
    /// Prepended to every metric name, as the `prometheus` exporter does (`alumet_rapl_consumed_energy_joules_total`); may be empty.
    pub prefix: String,
    /// User name for basic authentication (optional).
    pub username: String,
    /// Password for basic authentication; write it as "${REMOTE_WRITE_PASSWORD}".
    pub password: String,
    /// Bearer token (optional, instead of basic authentication); write it as "${REMOTE_WRITE_TOKEN}".
    pub bearer_token: String,
    /// Extra HTTP headers of every request, e.g. Mimir's tenant: `headers = { "X-Scope-OrgID" = "fleet" }`; `${VAR}` reads a secret from the environment.
    pub headers: BTreeMap<String, String>,
    /// Most points (samples) in one write request.
    pub batch_size: usize,
    /// Longest time a point waits for its batch to fill before it is sent anyway.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Time limit of one write request (connection, upload and response).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Most points kept while the receiver is unreachable; past that the oldest are dropped and counted.
    pub max_buffered_points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: "http://localhost:9090/api/v1/write".to_owned(),
            prefix: "alumet_".to_owned(),
            username: String::new(),
            password: String::new(),
            bearer_token: String::new(),
            headers: BTreeMap::new(),
            batch_size: 2000,
            flush_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_buffered_points: 100_000,
        }
    }
}

/// By hand, so that secrets never reach a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("bearer_token", &redacted(&self.bearer_token))
            .field(
                "headers (values redacted)",
                &self.headers.keys().collect::<Vec<_>>(),
            )
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("timeout", &self.timeout)
            .field("max_buffered_points", &self.max_buffered_points)
            .finish()
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.url.starts_with("http://") || self.url.starts_with("https://"),
            "url {:?} must start with http:// or https:// (e.g. \"http://127.0.0.1:9090/api/v1/write\")",
            self.url
        );
        anyhow::ensure!(
            self.username.is_empty() == self.password.is_empty(),
            "username and password go together (basic authentication): set both or neither"
        );
        anyhow::ensure!(
            self.username.is_empty() || self.bearer_token.is_empty(),
            "set either username and password or bearer_token, not both"
        );
        let own = [
            "content-type",
            "content-encoding",
            "content-length",
            "x-prometheus-remote-write-version",
            "authorization",
        ];
        alumet_delivery::http::check_headers(&self.headers, &own).map_err(|e| {
            anyhow::anyhow!("{e} (credentials go in username/password or bearer_token)")
        })?;
        alumet_delivery::batch::check_limits(
            self.batch_size,
            self.max_buffered_points,
            self.timeout,
            self.flush_interval,
        )
        .map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// The `Authorization` header, if any (never logged).
    pub fn authorization(&self) -> Option<String> {
        if !self.bearer_token.is_empty() {
            Some(format!("Bearer {}", self.bearer_token))
        } else if !self.username.is_empty() {
            Some(alumet_delivery::http::basic_auth(
                &self.username,
                &self.password,
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let bad = |c: Config| c.validate().unwrap_err().to_string();
        let url = Config {
            url: "localhost:9090".into(),
            ..Config::default()
        };
        assert!(bad(url).contains("url \"localhost:9090\" must start with http://"));
        let half = Config {
            username: "u".into(),
            ..Config::default()
        };
        assert!(bad(half).contains("username and password go together"));
        let both = Config {
            username: "u".into(),
            password: "p".into(),
            bearer_token: "t".into(),
            ..Config::default()
        };
        assert!(bad(both).contains("not both"));
        let small = Config {
            max_buffered_points: 10,
            ..Config::default()
        };
        assert!(bad(small).contains("max_buffered_points (10) must be at least batch_size (2000)"));
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn authorization_and_debug_keep_secrets() {
        let basic = Config {
            username: "u".into(),
            password: "p:w".into(),
            ..Config::default()
        };
        assert_eq!(basic.authorization().as_deref(), Some("Basic dTpwOnc="));
        let bearer = Config {
            bearer_token: "tok3n".into(),
            ..Config::default()
        };
        assert_eq!(bearer.authorization().as_deref(), Some("Bearer tok3n"));
        assert_eq!(Config::default().authorization(), None);
        let shown = format!("{basic:?}{bearer:?}");
        assert!(
            !shown.contains("p:w") && !shown.contains("tok3n"),
            "{shown}"
        );
    }
}
