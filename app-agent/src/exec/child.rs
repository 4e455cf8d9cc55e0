//! Spawning the measured command, waiting for it with its resource usage, and the exit
//! code conventions of shells (126, 127, 128+N).

use linux_parse::proc::parse_process_stat;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Exit code when the command is not found.
pub const NOT_FOUND: i32 = 127;
/// Exit code when the command is found but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;

/// A command that could not be started: the exit code a shell would give, and why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SpawnError {
    /// 127 (not found) or 126 (not executable).
    pub code: i32,
    /// What happened, with a hint when one helps.
    pub message: String,
}

/// How the command ended, and what the kernel accounted for it and its waited-for
/// descendants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ended {
    /// The exit code as a shell reports it: the status, or 128+N for signal N.
    pub code: i32,
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub system: Duration,
    /// Peak resident memory of the largest process of the tree, in kilobytes.
    pub max_rss_kb: u64,
}

/// Starts the command with inherited standard streams.
///
/// A file that is executable but neither a binary nor a `#!` script (ENOEXEC) is run with
/// `/bin/sh`, as `execvp(3)` and shells do (std spawns with `posix_spawnp`, which does not).
pub fn spawn(program: &OsString, args: &[OsString]) -> Result<u32, SpawnError> {
    match start(program.as_os_str(), args) {
        Ok(pid) => Ok(pid),
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
            let script = on_path(program).unwrap_or_else(|| PathBuf::from(program));
            // As bash: a binary (a NUL byte in its first 80) is not given to a shell.
            if head(&script, 80).is_some_and(|h| h.contains(&0)) {
                return Err(spawn_error(program, &e));
            }
            let sh_args: Vec<OsString> = std::iter::once(script.into_os_string())
                .chain(args.iter().cloned())
                .collect();
            let sh = OsString::from("/bin/sh");
            start(&sh, &sh_args).map_err(|e| spawn_error(&sh, &e))
        }
        Err(e) => Err(spawn_error(program, &e)),
    }
}

fn start(program: &OsStr, args: &[OsString]) -> io::Result<u32> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()?;
    // The child is reaped by `wait` (wait4), not by std: dropping the handle does not wait.
    Ok(child.id())
}

/// The file that running `program` executes: itself when it names a path, else the first
/// executable regular file of that name on PATH (an empty entry is the current directory).
fn on_path(program: &OsStr) -> Option<PathBuf> {
    if program.as_encoded_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn spawn_error(program: &OsStr, e: &io::Error) -> SpawnError {
    let name = program.to_string_lossy();
    let path = Path::new(program);
    let file = on_path(program).filter(|f| f.is_file());
    if let (io::ErrorKind::NotFound, Some(file)) = (e.kind(), &file) {
        // As shells: the command is there but cannot be found whole.
        return SpawnError {
            code: NOT_FOUND,
            message: format!("cannot execute `{name}`: {}", missing_interpreter(file)),
        };
    }
    if e.kind() == io::ErrorKind::NotFound {
        return SpawnError {
            code: NOT_FOUND,
            message: format!("command not found: `{name}`.{}", not_found_hint(&name)),
        };
    }
    let hint = if path.is_dir() {
        "it is a directory"
    } else if e.raw_os_error() == Some(libc::ENOEXEC) {
        "a binary for another architecture or system?"
    } else {
        "check that it is an executable file, with the x permission"
    };
    SpawnError {
        code: NOT_EXECUTABLE,
        message: format!("cannot execute `{name}`: {e} ({hint})"),
    }
}

/// Why `file`, which is there, was not found by the kernel: what it runs it with is not.
fn missing_interpreter(file: &Path) -> String {
    let Some(interp) = interpreter(file) else {
        return "the dynamic loader it names was not found (a binary built for another \
                system?)"
            .to_owned();
    };
    match interp.strip_suffix('\r') {
        Some(shown) => format!(
            "its #! line ends with a carriage return (Windows line endings), so the \
             interpreter `{shown}\\r` was not found: convert the file, e.g. with dos2unix"
        ),
        None => format!("its interpreter `{interp}` (its #! line) was not found"),
    }
}

/// The interpreter named by the `#!` line of `path`, if it has one, as the kernel reads
/// it (up to a space, a tab or the end of the line: a carriage return is part of it).
fn interpreter(path: &Path) -> Option<String> {
    let head = head(path, 256)?;
    let line = head.strip_prefix(b"#!")?.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let interp = line
        .trim_start_matches([' ', '\t'])
        .split([' ', '\t'])
        .next()?;
    Some(interp.to_owned())
}

/// The first bytes of the file at `path` (up to `len`).
fn head(path: &Path, len: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(len)
        .read_to_end(&mut head)
        .ok()?;
    Some(head)
}

/// Shell builtins that are not also programs on a usual PATH.
const SHELL_BUILTINS: &[&str] = &[
    "cd", "source", ".", "export", "alias", "unset", "set", "exit", "eval", "exec", "ulimit",
    "umask", "history", "declare", "local", "shopt", "trap", "wait", "jobs", "fg", "bg",
];

/// What to say after "command not found": the likely mistake.
fn not_found_hint(name: &str) -> String {
    if name.trim().is_empty() {
        return " The program name is empty.".to_owned();
    }
    if SHELL_BUILTINS.contains(&name) {
        return format!(
            " `{name}` is a shell builtin, not a program: run it in a shell, e.g. \
             `exec -- sh -c '{name} ...'`."
        );
    }
    if name.contains(char::is_whitespace) {
        return " The whole command line is one argument: give the program and its \
                arguments as separate words, or use `exec -- sh -c '...'`."
            .to_owned();
    }
    closest_on_path(name).map_or_else(String::new, |c| format!(" Did you mean `{c}`?"))
}

/// The executable on PATH whose name is closest to `name`, for a typo.
fn closest_on_path(name: &str) -> Option<String> {
    // Too short to tell a typo from another command.
    if name.contains('/') || name.chars().count() < 3 {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    let mut best: Option<(usize, String)> = None;
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let candidate = entry.file_name().to_string_lossy().into_owned();
            // A swap of two letters is one typo (`pyhton`); two typos only in a long name.
            let distance = strsim::osa_distance(name, &candidate);
            let limit = if name.chars().count() > 6 { 2 } else { 1 };
            if distance <= limit && best.as_ref().is_none_or(|(d, _)| distance < *d) {
                best = Some((distance, candidate));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// Waits until the child `pid` exits, without reaping it: its `/proc` entry stays readable
/// for a final measurement until [`wait`] reaps it.
pub fn wait_exit(pid: u32) -> io::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain data; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to our local; pid is our child.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Waits until the child `pid` exits or `deadline` passes, without reaping it; returns
/// whether it exited. Without a pidfd (kernels before 5.3, a seccomp filter) it returns
/// false at once, and the caller waits with [`wait_exit`].
pub fn wait_exit_until(pid: u32, deadline: Instant) -> io::Result<bool> {
    let Some(fd) = pidfd(pid) else {
        return Ok(false);
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up: poll's timeout is in milliseconds, and waking up early would only
        // poll again.
        let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        if exited(&fd, ms)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

/// Reaps the child `pid` (retrying on EINTR) and returns how it ended.
pub fn wait(pid: u32) -> io::Result<Ended> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to our locals; pid is our child.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if rc >= 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    Ok(Ended {
        code,
        user: time(usage.ru_utime),
        system: time(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss as u64,
    })
}

/// A running process that is not the agent's child, identified when the watch starts
/// (its start time, and a pidfd where there is one), so that a process that takes its pid
/// later is never taken for it.
pub struct Watched {
    stat: PathBuf,
    start: Vec<u8>,
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl Watched {
    /// Identifies process `pid` under `proc_root`; `NotFound` when there is none.
    ///
    /// With the agent's own procfs (`/proc`), [`Watched::wait`] waits on a pidfd (Linux
    /// 5.3 and later): no wake-up until the process exits, or `stop` is due. Elsewhere, or
    /// without pidfds, it reads `/proc/<pid>/stat` every 10 ms, until it disappears or
    /// belongs to a new process.
    pub fn open(pid: u32, proc_root: &Path) -> io::Result<Watched> {
        let stat = proc_root.join(pid.to_string()).join("stat");
        let start = std::fs::read(&stat)?;
        let pidfd = pidfd(pid).filter(|_| proc_root == Path::new("/proc"));
        let watched = Watched { stat, start, pidfd };
        // The pidfd is of the process whose start time was read, not of a newer one.
        if watched.pidfd.is_some() && !watched.same() {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(watched)
    }

    /// Whether the process had already exited when identified: a zombie, not yet reaped
    /// by its parent (state `Z`).
    pub fn is_zombie(&self) -> bool {
        let leader_gone = parse_process_stat(&self.start).is_some_and(|s| s.state == b'Z');
        // A main thread that ended (pthread_exit) while others run shows `Z` too.
        let threads = self
            .stat
            .with_file_name("task")
            .read_dir()
            .map(Iterator::count);
        leader_gone && threads.map_or(true, |n| n <= 1)
    }

    /// Whether `<pid>/stat` still shows the process that was identified.
    fn same(&self) -> bool {
        std::fs::read(&self.stat).is_ok_and(|now| starttime(&now) == starttime(&self.start))
    }

    /// Waits until the process exits, or until `stop` says so (checked every 100 ms with
    /// a pidfd, 10 ms without). Returns whether the process exited.
    pub fn wait(&self, stop: impl Fn() -> bool) -> io::Result<bool> {
        if let Some(fd) = &self.pidfd {
            loop {
                if exited(fd, 100)? {
                    return Ok(true);
                }
                if stop() {
                    return Ok(false);
                }
            }
        }
        loop {
            if !self.same() {
                return Ok(true);
            }
            if stop() {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A pidfd of process `pid`; None where the kernel has none (before 5.3) or the process
/// is gone.
fn pidfd(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: a fresh descriptor that nothing else owns.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Whether the process of pidfd `fd` exits within `timeout_ms` (readable pidfd).
fn exited(fd: &std::os::fd::OwnedFd, timeout_ms: i32) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, ours.
    match unsafe { libc::poll(&mut poll, 1, timeout_ms) } {
        -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => Ok(false),
        -1 => Err(io::Error::last_os_error()),
        n => Ok(n > 0),
    }
}

/// The start time of a `/proc/<pid>/stat` line (field 22, in clock ticks since boot).
fn starttime(stat: &[u8]) -> Option<u64> {
    parse_process_stat(stat).map(|s| s.starttime)
}

/// Whether process `pid` is in the agent's process group (and so gets the signals that
/// the terminal sends to it). Async-signal-safe: two system calls.
pub fn in_our_process_group(pid: u32) -> bool {
    // SAFETY: both only query the kernel; getpgid fails (-1) for a pid that is gone.
    unsafe { libc::getpgid(pid as libc::pid_t) == libc::getpgrp() }
}

/// Sends `signal` to process `pid`.
pub fn forward(pid: u32, signal: i32) {
    // SAFETY: kill with a valid signal number; errors (already exited) are harmless.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_until_a_deadline_tells_an_exit_from_a_timeout() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let pid = spawn(&"sleep".into(), &args(&["5"])).unwrap();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(100);
        assert!(
            !wait_exit_until(pid, deadline).unwrap(),
            "sleep 5 still runs"
        );
        assert!(Instant::now() >= deadline, "not before the deadline");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "not until the exit"
        );
        forward(pid, libc::SIGKILL);
        let far = Instant::now() + Duration::from_secs(10);
        assert!(wait_exit_until(pid, far).unwrap(), "killed: exited");
        // Not reaped: the exit is still there for wait.
        assert_eq!(wait(pid).unwrap().code, 128 + libc::SIGKILL);
        let pid = spawn(&"true".into(), &args(&[])).unwrap();
        assert!(wait_exit_until(pid, far).unwrap());
        assert_eq!(wait(pid).unwrap().code, 0);
    }

    #[test]
    fn starttime_is_parsed_after_the_last_parenthesis() {
        let line = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(starttime(line.as_bytes()), Some(987654));
        assert_eq!(starttime(b"garbage"), None);
    }

    #[test]
    fn without_a_pidfd_the_watch_follows_the_stat_file() {
        // A procfs root other than /proc: the fallback that reads <pid>/stat.
        let root = alumet::test_util::TempDir::new("watch-stat");
        let stat = root.join("42/stat");
        std::fs::create_dir_all(root.join("42")).unwrap();
        let line =
            |start: &str| format!("42 (x) S 1 42 42 0 -1 0 0 0 0 0 5 3 0 0 20 0 1 0 {start} 1 1");
        std::fs::write(&stat, line("100")).unwrap();
        let watched = Watched::open(42, root.path()).unwrap();
        // `stop` ends the wait, the process still there.
        assert!(!watched.wait(|| true).unwrap());
        // A new process with the same pid (another start time) ends the watch.
        let path = stat.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(path, line("200")).unwrap();
        });
        assert!(watched.wait(|| false).unwrap());
        writer.join().unwrap();
        // Even when it came before the wait began; and so does the end of the file.
        assert!(watched.wait(|| false).unwrap());
        std::fs::remove_file(&stat).unwrap();
        assert!(watched.wait(|| false).unwrap());
        let missing = Watched::open(42, root.path()).err().map(|e| e.kind());
        assert_eq!(missing, Some(io::ErrorKind::NotFound));
    }

    #[test]
    fn a_zombie_is_a_leader_in_state_z_with_no_other_thread() {
        let root = alumet::test_util::TempDir::new("watch-zombie");
        std::fs::create_dir_all(root.join("42/task/42")).unwrap();
        let stat = "42 (x) Z 1 42 42 0 -1 0 0 0 0 0 5 3 0 0 20 0 1 0 100 1 1";
        std::fs::write(root.join("42/stat"), stat).unwrap();
        assert!(Watched::open(42, root.path()).unwrap().is_zombie());
        // Its main thread ended (pthread_exit), another one runs.
        std::fs::create_dir_all(root.join("42/task/43")).unwrap();
        assert!(!Watched::open(42, root.path()).unwrap().is_zombie());
        std::fs::write(root.join("42/stat"), stat.replace(" Z ", " S ")).unwrap();
        assert!(!Watched::open(42, root.path()).unwrap().is_zombie());
    }

    #[test]
    fn not_found_hints_name_the_likely_mistake() {
        assert!(not_found_hint("").contains("empty"));
        assert!(not_found_hint("cd").contains("`cd` is a shell builtin"));
        assert!(not_found_hint("sleep 0.1").contains("one argument"));
        assert_eq!(not_found_hint("slep"), " Did you mean `sleep`?");
        // A swapped pair is one typo; two typos in a short name are another command.
        assert_eq!(closest_on_path("sleeep").as_deref(), Some("sleep"));
        assert_eq!(closest_on_path("selep").as_deref(), Some("sleep"));
        assert_ne!(closest_on_path("nosuch").as_deref(), Some("touch"));
        assert_eq!(closest_on_path("["), None);
    }

    #[test]
    fn exit_codes_of_a_real_child() {
        let sh = OsString::from("/bin/sh");
        let run = |script: &str| wait(spawn(&sh, &["-c".into(), script.into()]).unwrap()).unwrap();
        assert_eq!(run("exit 0").code, 0);
        assert_eq!(run("exit 3").code, 3);
        assert_eq!(run("kill -TERM $$").code, 128 + 15);
        let err = spawn(&OsString::from("surely-not-a-command-xyz"), &[]).unwrap_err();
        assert_eq!(err.code, NOT_FOUND);
        let err = spawn(&OsString::from("/etc/passwd"), &[]).unwrap_err();
        assert_eq!(err.code, NOT_EXECUTABLE);
    }
}
