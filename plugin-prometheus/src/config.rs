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
        Ok(())
    }
}
