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
    /// A series not updated for this long (an ended process, say) is removed from the endpoint.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub stale_after: Duration,
    /// Write the time of each series' last point (in ms) after its value; Prometheus then uses it instead of the scrape time.
    pub add_timestamps: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::from(([127, 0, 0, 1], 9091)),
            prefix: "alumet_".to_owned(),
            stale_after: Duration::from_secs(300),
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
