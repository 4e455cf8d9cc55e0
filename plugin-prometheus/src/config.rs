//! The `[plugins.prometheus]` table.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Config of the `prometheus` plugin: the `[plugins.prometheus]` table. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port of the HTTP endpoint (`/metrics`); loopback by default, `0.0.0.0:9091` opens it to the network.
    #[schemars(with = "String")]
    pub address: SocketAddr,
    /// Prepended to every metric name (`alumet_rapl_consumed_energy_joules_total`); may be empty.
    pub prefix: String,
    /// A series not updated for this long is removed from the endpoint (sooner: after 3 of its usual update intervals, or when its consumer ends).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub stale_after: Duration,
    /// At most this many series are exposed; the points of new series beyond it are refused and counted (`prometheus_series_dropped_total`).
    pub max_series: usize,
    /// At most this many HTTP connections are open at once; a new one beyond it closes the oldest idle one.
    pub max_connections: usize,
    /// A client must send a request's headers within this time (an idle keep-alive connection is closed after it too).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub read_timeout: Duration,
    /// Write the time of each series' last point (in ms) after its value; Prometheus then uses it instead of the scrape time.
    pub add_timestamps: bool,
    /// Appended to every metric name, after its unit and before `_total` (the public Alumet agent's key; empty by default).
    pub suffix: String,
    /// Make the points' attributes labels (`domain`, `kind`, ...); `false` keeps only the resource and consumer labels, and points that differ only by their attributes then update one series (the public Alumet agent's key).
    pub add_attributes_to_labels: bool,
    /// The IP address to listen on, in place of the one in `address` (the public Alumet agent's key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The port to listen on, in place of the one in `address` (the public Alumet agent's key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::from(([127, 0, 0, 1], 9091)),
            prefix: "alumet_".to_owned(),
            stale_after: Duration::from_secs(300),
            max_series: 10_000,
            max_connections: 64,
            read_timeout: Duration::from_secs(5),
            add_timestamps: false,
            suffix: String::new(),
            add_attributes_to_labels: true,
            host: None,
            port: None,
        }
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.stale_after.is_zero(),
            "stale_after must be longer than zero (\"5m\", say)"
        );
        anyhow::ensure!(
            self.max_series > 0,
            "max_series must be at least 1 (10000, say)"
        );
        anyhow::ensure!(
            self.max_connections > 0,
            "max_connections must be at least 1 (64, say)"
        );
        anyhow::ensure!(
            !self.read_timeout.is_zero(),
            "read_timeout must be longer than zero (\"5s\", say)"
        );
        let ok = self.prefix.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
        anyhow::ensure!(
            ok,
            "prefix {:?} is not a valid start of a Prometheus metric name: use letters, digits (not first), `_` and `:`",
            self.prefix
        );
        anyhow::ensure!(
            self.suffix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "suffix {:?} is not a valid end of a Prometheus metric name: use letters, digits, `_` and `:`",
            self.suffix
        );
        self.listen_address()?;
        Ok(())
    }

    /// Where the endpoint listens: `address`, with its IP replaced by `host` and its port
    /// by `port` where given.
    pub fn listen_address(&self) -> anyhow::Result<SocketAddr> {
        let mut address = self.address;
        if let Some(host) = &self.host {
            let ip = host.trim_matches(|c| c == '[' || c == ']').parse().map_err(|_| {
                anyhow::anyhow!(
                    "host {host:?} is not an IP address: give one such as \"0.0.0.0\" (every interface) or \"127.0.0.1\""
                )
            })?;
            address.set_ip(ip);
        }
        if let Some(port) = self.port {
            address.set_port(port);
        }
        Ok(address)
    }
}
