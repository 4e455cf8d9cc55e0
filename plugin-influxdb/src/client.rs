//! One write request: the URL and headers of each API version.

use alumet_delivery::http::{basic_auth, HttpClient};

use crate::config::{ApiVersion, Config};

/// Sends line-protocol bodies to one server, through the delivery engine's HTTP client.
pub struct Client {
    http: HttpClient,
}

impl Client {
    /// A client for the server, API and credentials of `config`.
    pub fn new(config: &Config) -> Self {
        let mut headers = vec![(
            "Content-Type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        )];
        if let Some(auth) = authorization(config) {
            headers.push(("Authorization".to_owned(), auth));
        }
        Client {
            http: HttpClient::new(write_url(config), config.timeout, headers),
        }
    }

    /// The HTTP client (its URL holds no secret).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

/// The write URL of `config`'s API version.
pub fn write_url(config: &Config) -> String {
    let host = config.host.trim_end_matches('/');
    let q = percent_encode;
    match config.api_version {
        ApiVersion::V1 => format!("{host}/write?db={}&precision=ns", q(&config.database)),
        ApiVersion::V2 => format!(
            "{host}/api/v2/write?org={}&bucket={}&precision=ns",
            q(&config.org),
            q(&config.bucket)
        ),
        ApiVersion::V3 => format!(
            "{host}/api/v3/write_lp?db={}&precision=nanosecond",
            q(&config.database)
        ),
    }
}

/// The `Authorization` header of `config`'s API version, if any.
pub fn authorization(config: &Config) -> Option<String> {
    match config.api_version {
        ApiVersion::V1 if config.username.is_empty() => None,
        ApiVersion::V1 => Some(basic_auth(&config.username, &config.password)),
        ApiVersion::V2 => Some(format!("Token {}", config.token)),
        ApiVersion::V3 => Some(format!("Bearer {}", config.token)),
    }
}

/// Percent-encodes a query parameter value (everything but RFC 3986's unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_headers_of_each_version() {
        let v1 = Config {
            api_version: ApiVersion::V1,
            host: "http://h:8086/".into(),
            database: "my db".into(),
            username: "u".into(),
            password: "p:w".into(),
            ..Config::default()
        };
        assert_eq!(
            write_url(&v1),
            "http://h:8086/write?db=my%20db&precision=ns"
        );
        assert_eq!(authorization(&v1).as_deref(), Some("Basic dTpwOnc="));
        let v2 = Config {
            token: "t".into(),
            org: "o&x".into(),
            bucket: "b".into(),
            ..Config::default()
        };
        assert_eq!(
            write_url(&v2),
            "http://localhost:8086/api/v2/write?org=o%26x&bucket=b&precision=ns"
        );
        assert_eq!(authorization(&v2).as_deref(), Some("Token t"));
        let v3 = Config {
            api_version: ApiVersion::V3,
            database: "d".into(),
            ..v2
        };
        assert_eq!(
            write_url(&v3),
            "http://localhost:8086/api/v3/write_lp?db=d&precision=nanosecond"
        );
        assert_eq!(authorization(&v3).as_deref(), Some("Bearer t"));
    }
}
