//! The control socket: a Unix socket (general key `control_socket`, off unless set) on
//! which `alumet-agent control` asks a running agent for its status, pauses, resumes,
//! re-times or triggers its sources, reloads its config, or stops it.
//!
//! Protocol: one request per connection, one line of JSON (at most [`MAX_REQUEST`]
//! bytes), such as `{"command":"pause","selector":"procfs/*"}`; one line of JSON in
//! reply, `{"ok":VALUE}` or `{"error":"MESSAGE"}`.

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};

/// The longest request line, in bytes (its newline excluded).
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request, as the client sends it.
/// The same enum is the `control` command line's subcommand. Variants without arguments
/// are written `{}` so that `deny_unknown_fields` applies to them too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The plugins, the elements with their figures, the outputs' accounting.
    Status {},
    /// Pause the sources that the selector matches.
    Pause {
        /// `plugin/element`, with `*` wildcards.
        selector: String,
    },
    /// Resume the sources that the selector matches.
    Resume {
        /// `plugin/element`, with `*` wildcards.
        selector: String,
    },
    /// Change the poll interval of the sources that the selector matches.
    SetInterval {
        /// `plugin/element`, with `*` wildcards.
        selector: String,
        /// The new interval, a humantime duration ("500ms", "10s").
        interval: String,
    },
    /// Poll the matching active sources once, now.
    Trigger {
        /// `plugin/element`, with `*` wildcards.
        selector: String,
    },
    /// Stop the agent, as SIGTERM does: what was measured is written first.
    Stop {},
    /// Read the config file again and apply what changed, as SIGHUP does.
    Reload {},
}

/// The status of a running agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The plugins that run, in start order.
    pub plugins: Vec<String>,
    /// The sources, transforms and outputs, with their counters.
    pub elements: Vec<ElementStatus>,
    /// What happened to each output's points.
    pub outputs: Vec<OutputStatus>,
}

/// One element's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementStatus {
    /// `plugin/element`.
    pub name: String,
    /// `source`, `transform` or `output`.
    pub kind: String,
    /// `active`, `paused` (sources only) or `stopped` (after a fatal error).
    pub state: String,
    /// Sources: polls. Others: 0.
    pub polls: u64,
    /// Sources: points produced. Outputs: points written. Transforms: 0.
    pub points: u64,
    /// Retryable errors.
    pub errors: u64,
    /// Sources: periodic polls skipped because their deadline had passed.
    pub skipped: u64,
    /// Managed sources: the poll interval ("10ms"); `None` for a source polled only on
    /// trigger, an autonomous source, and the other elements.
    #[serde(default)]
    pub interval: Option<String>,
}

/// One output's accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputStatus {
    /// `plugin/element`.
    pub name: String,
    /// Points that reached their destination.
    pub written: u64,
    /// Points dropped because its queue was full.
    pub dropped: u64,
    /// Points lost otherwise (rejected, write errors).
    pub lost: u64,
    /// Points waiting in its queue now.
    pub queued: u64,
    /// How many points its queue holds before it drops the oldest.
    #[serde(default)]
    pub capacity: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format that other clients write: a change here breaks them.
    #[test]
    fn requests_are_tagged_by_command_in_kebab_case() {
        let set = Request::SetInterval {
            selector: "procfs/*".into(),
            interval: "5s".into(),
        };
        let text = r#"{"command":"set-interval","selector":"procfs/*","interval":"5s"}"#;
        assert_eq!(serde_json::to_string(&set).unwrap(), text);
        assert_eq!(serde_json::from_str::<Request>(text).unwrap(), set);
        let stop: Request = serde_json::from_str(r#"{"command":"stop"}"#).unwrap();
        assert_eq!(stop, Request::Stop {});
        let extra = r#"{"command":"status","selector":"x"}"#;
        assert!(serde_json::from_str::<Request>(extra).is_err());
    }
}
