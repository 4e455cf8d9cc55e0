//! One HTTP POST with ureq, and what its answer means for the engine ([`Outcome`]).

use std::time::Duration;

use crate::transport::Outcome;

/// The longest server message kept for a log line.
const MAX_MESSAGE: usize = 1000;

/// Posts bodies to one URL with fixed headers, reusing connections.
pub struct HttpClient {
    agent: ureq::Agent,
    url: String,
    /// Sent with every request; values may be secrets: never logged.
    headers: Vec<(String, String)>,
}

impl HttpClient {
    /// A client for `url` whose every request (connection, upload and answer) takes at
    /// most `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration, headers: Vec<(String, String)>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .max_idle_connections_per_host(2)
            .build();
        HttpClient {
            agent,
            url: url.into(),
            headers,
        }
    }

    /// The URL (it must hold no secret: it is logged).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts one body.
    pub fn post(&self, body: &[u8]) -> Outcome {
        self.post_reading(body, 0).0
    }

    /// Posts one body; on success, also returns the first `max` bytes of the answer
    /// (for protocols whose 2xx answer can say that part of the request was refused).
    pub fn post_reading(&self, body: &[u8], max: u64) -> (Outcome, Vec<u8>) {
        let mut request = self.agent.post(&self.url);
        for (name, value) in &self.headers {
            request = request.set(name, value);
        }
        let outcome = match request.send_bytes(body) {
            Ok(answer) => {
                let mut read = Vec::new();
                if max > 0 {
                    use std::io::Read;
                    let _ = answer.into_reader().take(max).read_to_end(&mut read);
                }
                return (Outcome::Delivered, read);
            }
            Err(ureq::Error::Status(status, response)) => {
                let after = response.header("Retry-After").and_then(parse_retry_after);
                let mut message = response.into_string().unwrap_or_default();
                truncate(&mut message, MAX_MESSAGE);
                classify(status, message.trim(), after)
            }
            Err(ureq::Error::Transport(t)) => Outcome::Retry {
                reason: transport_reason(&t),
                after: None,
            },
        };
        (outcome, Vec::new())
    }
}

/// What an error status means: 5xx, 408 and 429 are retried (after `Retry-After` when
/// the server gave one), 413 splits the batch, any other status gives the batch up.
pub fn classify(status: u16, message: &str, retry_after: Option<Duration>) -> Outcome {
    match status {
        408 | 429 | 500.. => Outcome::Retry {
            reason: format!("HTTP {status}: {message}"),
            after: retry_after,
        },
        413 => Outcome::TooLarge {
            message: message.to_owned(),
        },
        _ => Outcome::Rejected {
            status,
            message: message.to_owned(),
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the stores we send to,
/// and is ignored: the backoff applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
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

/// Cuts `s` to at most `max` bytes (on a character boundary), marking the cut with `…`.
pub fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
}

/// Checks headers from a config: valid names, no line break in values, none of `own`
/// (the headers the output sets itself, lowercase). The error names the header.
pub fn check_headers<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
    own: &[&str],
) -> Result<(), String> {
    for (name, value) in headers {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err(format!(
                "header name {name:?} is not a valid HTTP header name"
            ));
        }
        if value.contains(['\r', '\n']) {
            return Err(format!("the value of header {name:?} holds a line break"));
        }
        if own.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "header {name:?} is set by the output itself: remove it"
            ));
        }
    }
    Ok(())
}

/// The `Authorization` value of HTTP basic authentication.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
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
    fn statuses_are_classified() {
        let s = Duration::from_secs;
        assert!(matches!(
            classify(503, "m", None),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(classify(500, "m", None), Outcome::Retry { .. }));
        assert!(matches!(classify(408, "m", None), Outcome::Retry { .. }));
        assert_eq!(
            classify(429, "slow down", Some(s(3))),
            Outcome::Retry {
                reason: "HTTP 429: slow down".into(),
                after: Some(s(3))
            }
        );
        assert!(matches!(
            classify(413, "big", None),
            Outcome::TooLarge { .. }
        ));
        assert_eq!(
            classify(400, "bad line", None),
            Outcome::Rejected {
                status: 400,
                message: "bad line".into()
            }
        );
        assert!(matches!(
            classify(404, "m", None),
            Outcome::Rejected { status: 404, .. }
        ));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(basic_auth("u", "p:w"), "Basic dTpwOnc=");
    }

    #[test]
    fn config_headers_are_checked() {
        let h = |k: &str, v: &str| [(k.to_owned(), v.to_owned())];
        let check = |pairs: [(String, String); 1]| {
            check_headers(pairs.iter().map(|(k, v)| (k, v)), &["content-type"])
        };
        assert!(check(h("X-Scope-OrgID", "tenant-1")).is_ok());
        assert!(check(h("api key", "x"))
            .unwrap_err()
            .contains("not a valid"));
        assert!(check(h("x", "a\nb")).unwrap_err().contains("line break"));
        assert!(check(h("Content-Type", "x"))
            .unwrap_err()
            .contains("set by the output"));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let mut s = "héllo".to_owned();
        truncate(&mut s, 2);
        assert_eq!(s, "h…");
    }
}
