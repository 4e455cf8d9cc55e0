//! The agent's side of the control socket: bound before the pipeline starts, served by a
//! thread of its own, each connection on a short-lived thread with read and write
//! timeouts (an idle client holds only its own thread, and only until the timeout).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alumet::pipeline::{ElementKind, PipelineControl, Selector};
use serde_json::{json, Value};

use super::{ElementStatus, OutputStatus, Request, Status, MAX_REQUEST};
use crate::config::ConfigError;

/// How long a client may take to send its request, and to read the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `trigger` waits for the polls.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; more are answered "busy" and closed.
const MAX_CONNECTIONS: usize = 16;

/// How long `reload` waits for the agent to apply the config.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// What the control socket acts on.
#[derive(Clone)]
pub struct Agent {
    /// The pipeline's control handle.
    pub control: PipelineControl,
    /// The plugins that run, in start order (a reload changes them).
    pub plugins: Arc<Mutex<Vec<String>>>,
    /// The main thread, which reloads.
    pub reload: std::sync::mpsc::Sender<crate::reload::MainEvent>,
}

/// A bound control socket, not served yet. Dropping it (or the [`SocketFile`] that
/// [`ControlSocket::serve`] returns) removes the socket file.
pub struct ControlSocket {
    listener: UnixListener,
    file: SocketFile,
}

/// The socket file, removed when dropped if it is still the one the agent bound.
pub struct SocketFile {
    path: PathBuf,
    inode: (u64, u64),
    /// `PATH.lock`, locked for as long as the agent runs: two agents starting at once on
    /// one path cannot both take a stale socket for theirs.
    _lock: std::fs::File,
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!("removing the control socket {}: {e}", self.path.display());
            }
        }
    }
}

impl ControlSocket {
    /// Binds `path`, mode 0600. A socket file that nobody listens on (left by an agent
    /// that crashed) is replaced; one that another process listens on, or a file that is
    /// not a socket, is an error.
    ///
    /// The mode: `bind` creates the file with the process's umask, and a `chmod` after it
    /// would leave a moment where another user could connect. So the umask is set to
    /// 0177 around `bind`, and the file is created 0600. The umask is the process's: this
    /// runs before the pipeline starts, when no other thread of the agent creates files.
    pub fn bind(path: &Path, group: Option<&str>) -> Result<ControlSocket, ConfigError> {
        let shown = path.display();
        let lock = lock_beside(path)?;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(ConfigError(format!(
                    "control_socket: {shown} exists and is not a socket; remove it or choose another path"
                )));
            }
            // Only a refused connection says that nobody listens: a socket that cannot be
            // reached (another user's, mode 0600) may well be live, and is left alone.
            match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(ConfigError(format!(
                        "control_socket: another process listens on {shown} (another agent?); stop it or choose another path"
                    )))
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    return Err(ConfigError(format!(
                        "control_socket: {shown} exists and cannot be checked ({e}); remove it if no agent uses it, or choose another path"
                    )))
                }
            }
            std::fs::remove_file(path).map_err(|e| {
                ConfigError(format!(
                    "control_socket: removing the stale socket {shown}: {e}"
                ))
            })?;
            log::info!("replaced the stale control socket {shown}");
        }
        // SAFETY: umask only changes the process's file creation mask.
        let previous = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(previous) };
        let listener =
            bound.map_err(|e| ConfigError(format!("control_socket: binding {shown}: {e}")))?;
        if let Some(group) = group {
            // Still 0600: the group gets the socket first, then the right to use it.
            let shared = share_with_group(path, group);
            if let Err(e) = shared {
                let _ = std::fs::remove_file(path);
                return Err(ConfigError(format!("control_socket_group: {e}")));
            }
        }
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| ConfigError(format!("control_socket: {shown}: {e}")))?;
        Ok(ControlSocket {
            listener,
            file: SocketFile {
                path: path.to_owned(),
                inode: (meta.dev(), meta.ino()),
                _lock: lock,
            },
        })
    }

    /// Serves the socket on a thread of its own until the process exits; returns the
    /// file, to drop at exit.
    pub fn serve(self, agent: Agent) -> SocketFile {
        let ControlSocket { listener, file } = self;
        log::info!("control socket: {}", file.path.display());
        let served = std::thread::Builder::new()
            .name("alumet-control".into())
            .spawn(move || accept_loop(&listener, &agent));
        if let Err(e) = served {
            log::error!("control socket: could not start its thread: {e}");
        }
        file
    }
}

/// Gives the socket at `path` to group `group` and makes it mode 0660.
fn share_with_group(path: &Path, group: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let gid = group_id(group)?;
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
        format!(
            "giving {} to group `{group}`: {e} (the agent's user must belong to it)",
            path.display()
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("making {} mode 0660: {e}", path.display()))
}

/// The id of the group named `name` (getgrnam_r).
fn group_id(name: &str) -> Result<u32, String> {
    let c_name =
        std::ffi::CString::new(name).map_err(|_| format!("`{name}` is not a group name"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed group struct, filled by getgrnam_r.
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives it.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut group,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(format!(
            "no group named `{name}` on this machine (see /etc/group)"
        ));
    }
    Ok(group.gr_gid)
}

/// Opens and locks `PATH.lock` (created mode 0600): held by another agent, an error.
fn lock_beside(path: &Path) -> Result<std::fs::File, ConfigError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let shown = lock_path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| {
            ConfigError(if e.kind() == ErrorKind::NotFound {
                format!(
                    "control_socket: the directory of {} does not exist ({e}); create it or choose another path",
                    path.display()
                )
            } else {
                format!("control_socket: opening {shown}: {e}")
            })
        })?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(ConfigError(if e.kind() == ErrorKind::WouldBlock {
            format!("control_socket: another agent holds {shown} (it uses this socket path); stop it or choose another path")
        } else {
            format!("control_socket: locking {shown}: {e}")
        }));
    }
    Ok(file)
}

fn accept_loop(listener: &UnixListener, agent: &Agent) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("control socket: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            let _ = reply(
                &mut stream,
                Err("busy: too many control connections at once".into()),
            );
            continue;
        }
        let (agent, count) = (agent.clone(), Arc::clone(&busy));
        let spawned = std::thread::Builder::new()
            .name("alumet-control-conn".into())
            .spawn(move || {
                serve_connection(stream, &agent);
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            busy.fetch_sub(1, Ordering::SeqCst);
            log::warn!("control socket: could not start a connection thread: {e}");
        }
    }
}

fn serve_connection(mut stream: UnixStream, agent: &Agent) {
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let answer = read_request(&stream).and_then(|r| handle(&r, agent));
    if let Err(e) = &answer {
        log::debug!("control socket: request refused: {e}");
    }
    let _ = reply(&mut stream, answer);
}

/// Reads one line of at most [`MAX_REQUEST`] bytes, within [`IO_TIMEOUT`] in all (a
/// client that sends a byte now and then cannot hold the connection longer), and parses it.
fn read_request(mut stream: &UnixStream) -> Result<Request, String> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(format!("no complete request within {IO_TIMEOUT:?}"));
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("no complete request within {IO_TIMEOUT:?}"))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the request: {e}")),
        };
        let newline = buf[..n].iter().position(|&b| b == b'\n');
        line.extend_from_slice(&buf[..newline.unwrap_or(n)]);
        if line.len() > MAX_REQUEST {
            return Err(format!(
                "request too large: at most {MAX_REQUEST} bytes on one line"
            ));
        }
        if n == 0 || newline.is_some() {
            break;
        }
    }
    serde_json::from_slice(&line).map_err(|e| {
        format!(
            "malformed request ({e}): expected one line of JSON such as {{\"command\":\"status\"}}"
        )
    })
}

fn reply(stream: &mut UnixStream, answer: Result<Value, String>) -> std::io::Result<()> {
    let value = match answer {
        Ok(ok) => json!({ "ok": ok }),
        Err(error) => json!({ "error": error }),
    };
    let mut text = value.to_string();
    text.push('\n');
    stream.write_all(text.as_bytes())
}

/// Carries out one request.
pub fn handle(request: &Request, agent: &Agent) -> Result<Value, String> {
    let control = &agent.control;
    let count = |n: usize, verb: &str, selector: &str| {
        if n == 0 {
            Err(format!("selector `{selector}` matches no source"))
        } else {
            Ok(json!(format!("{verb} {n} source(s)")))
        }
    };
    let error = |e: alumet::pipeline::ControlError| e.to_string();
    match request {
        Request::Status {} => {
            let plugins = agent
                .plugins
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            serde_json::to_value(status(control, &plugins)).map_err(|e| e.to_string())
        }
        Request::Pause { selector } => count(
            control.pause(parse(selector)?).map_err(error)?,
            "paused",
            selector,
        ),
        Request::Resume { selector } => count(
            control.resume(parse(selector)?).map_err(error)?,
            "resumed",
            selector,
        ),
        Request::SetInterval { selector, interval } => {
            let d = humantime_serde::re::humantime::parse_duration(interval).map_err(|e| {
                format!("invalid interval `{interval}`: {e} (write it like \"500ms\" or \"10s\")")
            })?;
            let n = control.set_interval(parse(selector)?, d).map_err(error)?;
            count(n, &format!("set the interval to {interval} of"), selector)
        }
        Request::Trigger { selector } => {
            let polled = control
                .trigger_now(parse(selector)?)
                .wait_timeout(TRIGGER_TIMEOUT);
            match polled {
                Some(0) => Err(format!("selector `{selector}` matches no active source")),
                Some(n) => Ok(json!(format!("polled {n} source(s)"))),
                None => Err(format!(
                    "the polls did not end within {TRIGGER_TIMEOUT:?}: a source is slow or blocked"
                )),
            }
        }
        Request::Stop {} => {
            log::info!(
                "stop requested on the control socket: writing what was measured, then stopping"
            );
            control.request_shutdown();
            Ok(json!("stopping: writing what was measured"))
        }
        Request::Reload {} => {
            let (reply, answer) = std::sync::mpsc::channel();
            let request = crate::reload::Request {
                origin: "the control socket",
                reply: Some(reply),
            };
            agent
                .reload
                .send(crate::reload::MainEvent::Reload(request))
                .map_err(|_| "the agent is stopping: no reload".to_owned())?;
            match answer.recv_timeout(RELOAD_TIMEOUT) {
                Ok(Ok(summary)) => Ok(json!(format!("reloaded: {summary}"))),
                Ok(Err(why)) => Err(format!("reload: {why}")),
                Err(_) => Err(format!(
                    "the reload did not end within {RELOAD_TIMEOUT:?} (or the agent is stopping); see the agent's log"
                )),
            }
        }
    }
}

fn parse(selector: &str) -> Result<Selector, String> {
    Selector::parse(selector).map_err(|e| format!("invalid selector `{selector}`: {e}"))
}

/// The agent's figures now.
pub fn status(control: &PipelineControl, plugins: &[String]) -> Status {
    let active: std::collections::HashMap<String, bool> = control
        .sources()
        .into_iter()
        .map(|(name, active)| (name.to_string(), active))
        .collect();
    let elements = control
        .element_stats()
        .into_iter()
        .map(|e| {
            let name = e.name.to_string();
            let state = if e.stopped {
                "stopped"
            } else if e.kind == ElementKind::Source && active.get(&name) == Some(&false) {
                "paused"
            } else {
                "active"
            };
            ElementStatus {
                kind: e.kind.as_str().to_owned(),
                state: state.to_owned(),
                polls: e.polls,
                points: e.points,
                errors: e.retryable_errors,
                skipped: e.skipped_polls,
                interval: e
                    .poll_interval
                    .map(|d| humantime_serde::re::humantime::format_duration(d).to_string()),
                name,
            }
        })
        .collect();
    let outputs = control
        .output_stats()
        .into_iter()
        .map(|o| OutputStatus {
            name: o.name.to_string(),
            written: o.written_points,
            dropped: o.dropped_points,
            lost: o.failed_points,
            queued: o.queued_points,
            capacity: o.queue_capacity,
        })
        .collect();
    Status {
        plugins: plugins.to_vec(),
        elements,
        outputs,
    }
}
