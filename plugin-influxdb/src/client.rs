//! One write request: the URL and headers of each API version, and what the answer means.

use crate::config::{ApiVersion, Config};

/// How a write request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the server has the points.
    Delivered,
    /// Worth retrying: 5xx, 408, 429, a timeout, a refused or broken connection.
    Retry(String),
    /// Not worth retrying (another 4xx): the points are given up.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's message (truncated).
        message: String,
    },
}

/// The longest server message kept for a log line.
const MAX_MESSAGE: usize = 1000;

/// Sends line-protocol bodies to one server, reusing connections.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    /// The `Authorization` header; never logged.
    auth: Option<String>,
}

impl Client {
    /// A client for the server, API and credentials of `config`.
    pub fn new(config: &Config) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(config.timeout)
            .max_idle_connections_per_host(2)
            .build();
        Client {
            agent,
            url: write_url(config),
            auth: authorization(config),
        }
    }

    /// The write URL (it holds no secret).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one body of lines.
    pub fn send(&self, body: &[u8]) -> Outcome {
        let mut request = self
            .agent
            .post(&self.url)
            .set("Content-Type", "text/plain; charset=utf-8");
        if let Some(auth) = &self.auth {
            request = request.set("Authorization", auth);
        }
        match request.send_bytes(body) {
            Ok(_) => Outcome::Delivered,
            Err(ureq::Error::Status(status, response)) => {
                let mut message = response.into_string().unwrap_or_default();
                truncate(&mut message, MAX_MESSAGE);
                let message = message.trim().to_owned();
                if status >= 500 || status == 408 || status == 429 {
                    Outcome::Retry(format!("HTTP {status}: {message}"))
                } else {
                    Outcome::Rejected { status, message }
                }
            }
            Err(ureq::Error::Transport(t)) => Outcome::Retry(transport_reason(&t)),
        }
    }
}

fn transport_reason(t: &ureq::Transport) -> String {
    let timed_out = std::error::Error::source(t)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        });
    if timed_out {
        return "no answer within the timeout".to_owned();
    }
    match t.kind() {
        ureq::ErrorKind::ConnectionFailed => "connection failed (refused or unreachable)".into(),
        ureq::ErrorKind::Dns => "host name not resolved".into(),
        _ => format!("{t}"),
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
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
        ApiVersion::V1 => {
            let pair = format!("{}:{}", config.username, config.password);
            Some(format!("Basic {}", base64(pair.as_bytes())))
        }
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

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
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

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
