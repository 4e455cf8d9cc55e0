//! The `[plugins.influxdb]` table.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which write API of InfluxDB to use.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// InfluxDB 1.x: `POST /write?db=...&precision=ns`, optional basic authentication.
    V1,
    /// InfluxDB 2.x: `POST /api/v2/write?org=...&bucket=...&precision=ns`, `Authorization: Token ...`.
    V2,
    /// InfluxDB 3: `POST /api/v3/write_lp?db=...&precision=nanosecond`, `Authorization: Bearer ...`.
    V3,
}

/// Where the attributes of a point go by default.
///
/// A point's tags are part of its series key: InfluxDB keeps one point per series and
/// timestamp. Two points that differ only by an attribute written as a field would
/// overwrite each other; the output never sends the second one (it counts it as lost).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttributesAs {
    /// Fields: not indexed, typed (integer, float, boolean, string), not part of the series
    /// key: points that differ only by such an attribute collide (the later ones are lost).
    Field,
    /// Tags (the default): indexed strings, part of the series key; each distinct value is
    /// one more series.
    Tag,
}

/// Config of the `influxdb` plugin: the `[plugins.influxdb]` table. Missing keys take their default.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The write API: "v1" (InfluxDB 1.x), "v2" (InfluxDB 2.x) or "v3" (InfluxDB 3).
    pub api_version: ApiVersion,
    /// Base URL of the server, `http://` or `https://`, without a path.
    pub host: String,
    /// API token (v2 and v3); write it as "${INFLUX_TOKEN}" to read it from the environment.
    pub token: String,
    /// Organization (v2).
    pub org: String,
    /// Bucket (v2).
    pub bucket: String,
    /// Database (v1 and v3).
    pub database: String,
    /// User name for basic authentication (v1, optional).
    pub username: String,
    /// Password for basic authentication (v1, optional); write it as "${INFLUX_PASSWORD}".
    pub password: String,
    /// Where attributes go unless listed below: "tag" (each value its own series) or "field" (not indexed; points that differ only by a field attribute collide: the later ones are counted as lost).
    pub attributes_as: AttributesAs,
    /// Attributes always written as tags.
    pub attributes_as_tags: Vec<String>,
    /// Attributes always written as fields (for values too varied to index; points that differ only by them collide and are counted as lost).
    pub attributes_as_fields: Vec<String>,
    /// Most points in one write request.
    pub batch_size: usize,
    /// Longest time a point waits for its batch to fill before it is sent anyway.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Time limit of one write request (connection, upload and response).
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Most points kept while the server is unreachable; past that the oldest are dropped and counted.
    pub max_buffered_points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_version: ApiVersion::V2,
            host: "http://localhost:8086".to_owned(),
            token: String::new(),
            org: String::new(),
            bucket: String::new(),
            database: String::new(),
            username: String::new(),
            password: String::new(),
            attributes_as: AttributesAs::Tag,
            attributes_as_tags: Vec::new(),
            attributes_as_fields: Vec::new(),
            batch_size: 5000,
            flush_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_buffered_points: 100_000,
        }
    }
}

/// By hand, so that secrets never reach a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_version", &self.api_version)
            .field("host", &self.host)
            .field("token", &redacted(&self.token))
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("attributes_as", &self.attributes_as)
            .field("attributes_as_tags", &self.attributes_as_tags)
            .field("attributes_as_fields", &self.attributes_as_fields)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("timeout", &self.timeout)
            .field("max_buffered_points", &self.max_buffered_points)
            .finish()
    }
}

fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let host = self.host.trim_end_matches('/');
        anyhow::ensure!(
            host.starts_with("http://") || host.starts_with("https://"),
            "host {:?} must start with http:// or https://",
            self.host
        );
        anyhow::ensure!(
            !host.contains('?') && !host.contains('#'),
            "host {:?} must not hold a query",
            self.host
        );
        match self.api_version {
            ApiVersion::V1 => {
                need(&[("database", &self.database)], "v1")?;
                anyhow::ensure!(
                    self.username.is_empty() == self.password.is_empty(),
                    "username and password go together (api_version v1)"
                );
            }
            ApiVersion::V2 => {
                let keys = [
                    ("token", &self.token),
                    ("org", &self.org),
                    ("bucket", &self.bucket),
                ];
                need(&keys, "v2")?;
            }
            ApiVersion::V3 => {
                need(
                    &[("token", &self.token), ("database", &self.database)],
                    "v3",
                )?;
            }
        }
        if let Some(key) = self
            .attributes_as_tags
            .iter()
            .find(|k| self.attributes_as_fields.contains(k))
        {
            anyhow::bail!(
                "attribute {key:?} is in both attributes_as_tags and attributes_as_fields"
            );
        }
        alumet_delivery::batch::check_limits(
            self.batch_size,
            self.max_buffered_points,
            self.timeout,
            self.flush_interval,
        )
        .map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// Whether the attribute `key` is written as a tag.
    pub fn is_tag(&self, key: &str) -> bool {
        if self.attributes_as_tags.iter().any(|k| k == key) {
            return true;
        }
        if self.attributes_as_fields.iter().any(|k| k == key) {
            return false;
        }
        self.attributes_as == AttributesAs::Tag
    }

    /// Whether some attribute may be written as a field: then points of one batch can
    /// share measurement, tags and timestamp, and the output must look for collisions.
    pub fn may_write_field_attributes(&self) -> bool {
        self.attributes_as == AttributesAs::Field || !self.attributes_as_fields.is_empty()
    }
}

/// Fails when any of `keys` (name, value) is empty, naming all the empty ones at once.
fn need(keys: &[(&str, &String)], version: &str) -> anyhow::Result<()> {
    let empty: Vec<&str> = keys
        .iter()
        .filter(|(_, value)| value.trim().is_empty())
        .map(|(key, _)| *key)
        .collect();
    match empty.as_slice() {
        [] => Ok(()),
        [key] => anyhow::bail!("{key} is empty: api_version {version} needs it"),
        [first @ .., last] => anyhow::bail!(
            "{} and {last} are empty: api_version {version} needs them",
            first.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2() -> Config {
        Config {
            token: "s3cr3t-token".into(),
            org: "o".into(),
            bucket: "b".into(),
            ..Config::default()
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = Config {
            password: "hunter2".into(),
            ..v2()
        };
        let text = format!("{config:?} {config:#?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn every_empty_key_that_the_api_version_needs_is_named_at_once() {
        let message = |config: Config| format!("{}", config.validate().unwrap_err());
        assert_eq!(
            message(Config::default()),
            "token, org and bucket are empty: api_version v2 needs them"
        );
        let no_org = Config {
            org: " ".into(),
            ..v2()
        };
        assert_eq!(message(no_org), "org is empty: api_version v2 needs it");
        let v3 = Config {
            api_version: ApiVersion::V3,
            ..Config::default()
        };
        assert_eq!(
            message(v3),
            "token and database are empty: api_version v3 needs them"
        );
    }

    #[test]
    fn validation_names_the_key() {
        assert!(v2().validate().is_ok());
        let cases = [
            (Config::default(), "token"),
            (
                Config {
                    api_version: ApiVersion::V1,
                    ..Config::default()
                },
                "database",
            ),
            (
                Config {
                    host: "localhost:8086".into(),
                    ..v2()
                },
                "host",
            ),
            (
                Config {
                    batch_size: 0,
                    ..v2()
                },
                "batch_size",
            ),
            (
                Config {
                    max_buffered_points: 10,
                    ..v2()
                },
                "max_buffered_points",
            ),
            (
                Config {
                    attributes_as_tags: vec!["a".into()],
                    attributes_as_fields: vec!["a".into()],
                    ..v2()
                },
                "attribute",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().expect_err(key).to_string();
            assert!(err.starts_with(key), "{err}");
        }
    }

    #[test]
    fn attribute_placement() {
        assert!(v2().is_tag("any") && !v2().may_write_field_attributes());
        let config = Config {
            attributes_as: AttributesAs::Field,
            attributes_as_tags: vec!["domain".into()],
            ..v2()
        };
        assert!(config.is_tag("domain") && !config.is_tag("other"));
        assert!(config.may_write_field_attributes());
        let config = Config {
            attributes_as: AttributesAs::Tag,
            attributes_as_fields: vec!["x".into()],
            ..v2()
        };
        assert!(!config.is_tag("x") && config.is_tag("other"));
        assert!(config.may_write_field_attributes());
    }
}
