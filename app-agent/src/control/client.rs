//! `alumet-agent control`: sends one request to a running agent's control socket and
//! prints the reply (a table for people, the reply's JSON with `--json`).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::{Request, Status};
use crate::cli::{CommonArgs, ControlArgs};
use crate::plugins::Entry;

/// How long to wait for the reply (a pause waits up to the pipeline's control deadline).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What `control` prints, and its exit code (1 when the agent answered with an error).
pub struct Outcome {
    /// The text for standard output.
    pub text: String,
    /// 0 on success, 1 on an error reply.
    pub code: u8,
}

/// The socket `control` talks to: `--socket`, else the config's `control_socket`.
pub fn socket_path(
    args: &ControlArgs,
    common: &CommonArgs,
    entries: &[Entry],
) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.socket {
        return Ok(path.clone());
    }
    if !common.config.exists() {
        anyhow::bail!(
            "no --socket given and no config file at {} to read `control_socket` from",
            common.config.display()
        );
    }
    let selection = crate::config::select(common, entries)?;
    selection.general.control_socket.ok_or_else(|| {
        anyhow::anyhow!(
            "{} sets no `control_socket`: add `control_socket = \"/run/alumet/control.sock\"` at its top and restart the agent, or give --socket PATH",
            common.config.display()
        )
    })
}

/// Sends `request` to the socket at `path`; returns the reply (`{"ok":..}` or `{"error":..}`).
pub fn send(path: &Path, request: &Request) -> anyhow::Result<Value> {
    let shown = path.display();
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "no agent listens on {shown} ({e}): is it running, with `control_socket = \"{shown}\"` in its config?"
        ),
        _ => anyhow::anyhow!("connecting to {shown}: {e}"),
    })?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .with_context(|| format!("sending the request to {shown}"))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .with_context(|| format!("reading the reply from {shown}"))?;
    serde_json::from_str(&reply)
        .with_context(|| format!("the reply from {shown} is not JSON: {reply:?}"))
}

/// Runs `control`: sends the request, formats the reply.
pub fn run(args: &ControlArgs, common: &CommonArgs, entries: &[Entry]) -> anyhow::Result<Outcome> {
    let path = socket_path(args, common, entries)?;
    let reply = send(&path, &args.command)?;
    let code = u8::from(reply.get("ok").is_none());
    if args.json {
        return Ok(Outcome {
            text: format!("{reply}\n"),
            code,
        });
    }
    if let Some(error) = reply.get("error") {
        let message = error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_owned);
        anyhow::bail!("the agent refused: {message}");
    }
    let ok = reply.get("ok").cloned().unwrap_or(Value::Null);
    let text = match (&args.command, ok) {
        (Request::Status {}, ok) => {
            let status: Status = serde_json::from_value(ok).context("reading the status")?;
            status_table(&status)
        }
        (_, Value::String(s)) => format!("{s}\n"),
        (_, other) => format!("{other}\n"),
    };
    Ok(Outcome { text, code })
}

/// The status as tables.
pub fn status_table(status: &Status) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "plugins: {}\n", status.plugins.join(", "));
    let names = status.elements.iter().map(|e| e.name.len());
    let widths = [names.max().unwrap_or(0).max(7), 9, 7, 8, 8, 10, 6, 7];
    let header = [
        "ELEMENT", "KIND", "STATE", "INTERVAL", "POLLS", "POINTS", "ERRORS", "SKIPPED",
    ];
    row(&mut t, &widths, 4, &header.map(str::to_owned));
    for e in &status.elements {
        let numbers = [e.polls, e.points, e.errors, e.skipped].map(|n| n.to_string());
        let [p, n, r, k] = numbers;
        let interval = e.interval.clone().unwrap_or_else(|| "-".to_owned());
        let cells = [e.name.clone(), e.kind.clone(), e.state.clone(), interval];
        let mut cells = cells.to_vec();
        cells.extend([p, n, r, k]);
        row(&mut t, &widths, 4, &cells);
    }
    t.push('\n');
    let names = status.outputs.iter().map(|o| o.name.len());
    let widths = [names.max().unwrap_or(0).max(6), 10, 8, 8, 8, 9];
    let header = ["OUTPUT", "WRITTEN", "DROPPED", "LOST", "QUEUED", "CAPACITY"];
    row(&mut t, &widths, 1, &header.map(str::to_owned));
    for o in &status.outputs {
        let figures = [o.written, o.dropped, o.lost, o.queued, o.capacity];
        let [w, d, l, q, c] = figures.map(|n| n.to_string());
        row(&mut t, &widths, 1, &[o.name.clone(), w, d, l, q, c]);
    }
    t
}

/// One line of a table: the first `left` cells aligned left, the others right, two spaces
/// between them.
fn row(t: &mut String, widths: &[usize], left: usize, cells: &[String]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let _ = if i < left {
            write!(line, "{cell:<width$}")
        } else {
            write!(line, "{cell:>width$}")
        };
    }
    let _ = writeln!(t, "{}", line.trim_end());
}
