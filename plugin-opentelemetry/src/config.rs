//! The `[plugins.opentelemetry]` table.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How requests are encoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`): the smallest, what collectors expect.
    Protobuf,
    /// OTLP/JSON (`application/json`), for receivers that read only JSON.
    Json,
}

/// How request bodies are compressed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `Content-Encoding: gzip`.
    Gzip,
    /// No compression.
    None,
}

/// Config of the `opentelemetry` plugin. Missing keys take their default.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Base URL of the OTLP/HTTP receiver (an OpenTelemetry Collector's `otlp` receiver listens on port 4318); requests go to `{endpoint}/v1/metrics`. `collector_host` is accepted as another name for it.
    pub endpoint: String,
    /// Alumet's name for `endpoint` (set one of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collector_host: Option<String>,
    /// "protobuf" (default) or "json".
    pub encoding: Encoding,
    /// "gzip" (default) or "none".
    pub compression: Compression,
    /// Extra HTTP headers of every request, e.g. an API key: `headers = { "api-key" = "${OTLP_API_KEY}" }`.
    pub headers: BTreeMap<String, String>,
    /// Most data points in one export request.
    pub batch_size: usize,
    /// Longest time a point waits for its batch to fill before it is sent anyway.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Time limit of one export request (connection, upload and response).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Most points kept while the receiver is unreachable; past that the oldest are dropped and counted.
    pub max_buffered_points: usize,
    /// Prepended to every metric name (the public Alumet agent's key; empty by default).
    pub prefix: String,
    /// Appended to every metric name, after its unit if appended (the public Alumet agent's key; empty by default).
    pub suffix: String,
    /// Append `_` and the unit to metric names (`rapl_consumed_energy_J`); the unit is in each metric's `unit` field in any case (the public Alumet agent's key).
    pub append_unit_to_metric_name: bool,
    /// With `append_unit_to_metric_name`: the unit's display symbol (`μs`, `B`, `°C`) instead of its UCUM code (`us`, `By`, `Cel`).
    pub use_unit_display_name: bool,
    /// Send the points' attributes as data-point attributes; `false` keeps only the resource and consumer ones, and points that differ only by their attributes then form one series (the public Alumet agent's key).
    pub add_attributes_to_labels: bool,
    /// The public Alumet agent's name of `flush_interval`, in whole seconds (set one of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_interval_seconds: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            collector_host: None,
            encoding: Encoding::Protobuf,
            compression: Compression::Gzip,
            headers: BTreeMap::new(),
            batch_size: 2000,
            flush_interval: DEFAULT_FLUSH,
            timeout: Duration::from_secs(5),
            max_buffered_points: 100_000,
            prefix: String::new(),
            suffix: String::new(),
            append_unit_to_metric_name: false,
            use_unit_display_name: false,
            add_attributes_to_labels: true,
            push_interval_seconds: None,
        }
    }
}

/// By hand: header values may be secrets.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&String> = self.headers.keys().collect();
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("collector_host", &self.collector_host)
            .field("encoding", &self.encoding)
            .field("compression", &self.compression)
            .field("headers (values redacted)", &headers)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("timeout", &self.timeout)
            .field("max_buffered_points", &self.max_buffered_points)
            .field("prefix", &self.prefix)
            .field("suffix", &self.suffix)
            .field(
                "append_unit_to_metric_name",
                &self.append_unit_to_metric_name,
            )
            .field("use_unit_display_name", &self.use_unit_display_name)
            .field("add_attributes_to_labels", &self.add_attributes_to_labels)
            .field("push_interval_seconds", &self.push_interval_seconds)
            .finish()
    }
}

/// The default of `flush_interval`.
const DEFAULT_FLUSH: Duration = Duration::from_secs(1);

/// Where an OpenTelemetry Collector's OTLP/HTTP receiver listens by default.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";

/// Headers the output sets itself.
const OWN_HEADERS: [&str; 3] = ["content-type", "content-encoding", "content-length"];

impl Config {
    /// Checks what serde cannot: the errors name the key and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.collector_host.is_none() || self.endpoint == DEFAULT_ENDPOINT,
            "endpoint and collector_host are two names of one setting: keep one (endpoint)"
        );
        let key = if self.collector_host.is_some() {
            "collector_host"
        } else {
            "endpoint"
        };
        let endpoint = self.endpoint();
        let e = endpoint.trim_end_matches('/');
        anyhow::ensure!(
            e.starts_with("http://") || e.starts_with("https://"),
            "{key} {endpoint:?} must start with http:// or https:// (e.g. \"http://127.0.0.1:4318\")"
        );
        anyhow::ensure!(
            !e.ends_with("/v1/metrics"),
            "{key} {endpoint:?} must be the base URL: the output adds /v1/metrics itself"
        );
        alumet_delivery::http::check_headers(&self.headers, &OWN_HEADERS)
            .map_err(|e| anyhow::anyhow!("{e} (from encoding and compression)"))?;
        anyhow::ensure!(
            self.push_interval_seconds.is_none() || self.flush_interval == DEFAULT_FLUSH,
            "flush_interval and push_interval_seconds are two names of one setting: keep one (flush_interval)"
        );
        anyhow::ensure!(
            self.push_interval_seconds != Some(0),
            "push_interval_seconds is 0: give a number of seconds, 1 or more"
        );
        alumet_delivery::batch::check_limits(
            self.batch_size,
            self.max_buffered_points,
            self.timeout,
            self.flush_interval(),
        )
        .map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// How long a point may wait for its batch: `push_interval_seconds` when set, else
    /// `flush_interval`.
    pub fn flush_interval(&self) -> Duration {
        self.push_interval_seconds
            .map_or(self.flush_interval, Duration::from_secs)
    }

    /// The name a metric is sent under: `prefix`, the name, `_` and its unit when
    /// `append_unit_to_metric_name` (and the unit has a symbol), `suffix`.
    pub fn metric_name(&self, name: &str, unit: &alumet::metrics::Unit) -> String {
        let unit = match (self.append_unit_to_metric_name, self.use_unit_display_name) {
            (false, _) => "",
            (true, false) => unit.code(),
            (true, true) => unit.display_name(),
        };
        let mut out = String::with_capacity(
            self.prefix.len() + name.len() + unit.len() + self.suffix.len() + 1,
        );
        out.push_str(&self.prefix);
        out.push_str(name);
        if !unit.is_empty() && unit != "1" {
            out.push('_');
            out.push_str(unit);
        }
        out.push_str(&self.suffix);
        out
    }

    /// The receiver's base URL: `collector_host` when set, else `endpoint`.
    pub fn endpoint(&self) -> &str {
        self.collector_host.as_deref().unwrap_or(&self.endpoint)
    }

    /// The export URL.
    pub fn url(&self) -> String {
        format!("{}/v1/metrics", self.endpoint().trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_host_is_an_alias_and_unknown_keys_are_refused() {
        let c: Config = serde_json::from_str(r#"{"collector_host": "http://c:4318/"}"#).unwrap();
        assert_eq!(c.url(), "http://c:4318/v1/metrics");
        assert!(c.validate().is_ok());
        let both = Config {
            endpoint: "http://a:4318".into(),
            ..c
        };
        let e = both.validate().unwrap_err().to_string();
        assert!(e.contains("keep one"), "{e}");
        let e = serde_json::from_str::<Config>(r#"{"endpont": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `endpont`"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |c: Config| c.validate().unwrap_err().to_string();
        let scheme = Config {
            endpoint: "c:4318".into(),
            ..Config::default()
        };
        assert!(bad(scheme).contains("must start with http://"));
        let path = Config {
            endpoint: "http://c:4318/v1/metrics".into(),
            ..Config::default()
        };
        assert!(bad(path).contains("adds /v1/metrics itself"));
        let mut own = Config::default();
        own.headers.insert("Content-Type".into(), "x".into());
        assert!(bad(own).contains("set by the output"));
        let mut broken = Config::default();
        broken.headers.insert("api key".into(), "x".into());
        assert!(bad(broken).contains("not a valid HTTP header name"));
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn debug_hides_header_values() {
        let mut c = Config::default();
        c.headers.insert("api-key".into(), "s3cret".into());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("api-key") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
