//! Reading `/proc` files cheaply: files stay open and are re-read from offset 0 with
//! `pread` into a buffer that is kept between polls; and the one-time warnings about
//! files that cannot be read.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
pub(crate) use linux_parse::read::read_whole;

/// An open `/proc` file with its own read buffer.
pub(crate) struct ProcFile {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    single_record: bool,
    /// The length of the content read by [`ProcFile::open`], until a `read` returns it.
    unread: Option<usize>,
}

impl ProcFile {
    /// Opens `path` and reads it once, so that an unreadable file fails here; the next
    /// [`ProcFile::read`] returns that content rather than reading again (the callers
    /// take their baseline right after opening: procfs files such as `/proc/stat` cost
    /// the kernel a walk of every CPU per read). See [`read_whole`] for `single_record`.
    pub(crate) fn open(path: PathBuf, single_record: bool) -> io::Result<Self> {
        let file = File::open(&path)?;
        Self::from_file(file, path, single_record)
    }

    /// [`ProcFile::open`] for `file`, already open at `path`.
    pub(crate) fn from_file(file: File, path: PathBuf, single_record: bool) -> io::Result<Self> {
        let mut f = ProcFile {
            file,
            path,
            buf: Vec::new(),
            single_record,
            unread: None,
        };
        let len = read_whole(&f.file, &mut f.buf, single_record)?.len();
        f.unread = Some(len);
        Ok(f)
    }

    /// The current content (the first call after `open`: the content read there).
    pub(crate) fn read(&mut self) -> anyhow::Result<&[u8]> {
        if let Some(len) = self.unread.take() {
            return Ok(&self.buf[..len]);
        }
        let path = &self.path;
        read_whole(&self.file, &mut self.buf, self.single_record)
            .with_context(|| format!("reading {}", path.display()))
    }
}

/// Whether an error means that the process is gone (it exited between listing and
/// reading, or its pid now belongs to another process): skipped without a word.
pub(crate) fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// Whether an error is a refused access (hidepid, ptrace rules, file modes).
pub(crate) fn is_denied(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EPERM)
}

/// A warning that is logged once per flag, however often its cause repeats.
#[derive(Default)]
pub(crate) struct Once(AtomicBool);

impl Once {
    /// Runs `log` the first time only.
    pub(crate) fn call(&self, log: impl FnOnce()) {
        if !self.0.swap(true, Ordering::Relaxed) {
            log();
        }
    }
}

/// The warning for a process file that cannot be read: what is lost, and what fixes it.
pub(crate) fn warn_process_denied(what: &str) {
    log::warn!(
        "procfs: cannot read {what}; processes of other users are skipped. \
         Mount procfs with `hidepid=0` (or with `gid=` a group of the agent's user), or run \
         the agent as root or with CAP_SYS_PTRACE; this warning is not repeated"
    );
}

/// The warning for `exe` links that cannot be read (`exe_regex` cannot match them).
pub(crate) fn warn_exe_denied(path: &Path, error: &io::Error) {
    log::warn!(
        "procfs: cannot read the link {}: {error}; `exe_regex` cannot match processes of \
         other users. Run the agent as root or with CAP_SYS_PTRACE; this warning is not \
         repeated",
        path.display()
    );
}

/// Whether an error means that this process has no file descriptor left.
pub(crate) fn is_out_of_files(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The warning for a process that cannot be measured for lack of file descriptors.
pub(crate) fn warn_out_of_files(pid: u32, error: &io::Error) {
    log::warn!(
        "procfs: cannot open the files of process {pid}: {error}; processes beyond this \
         limit are not measured. Raise the open files limit (LimitNOFILE= in the systemd \
         unit) or narrow processes.groups; this warning is not repeated"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_read_after_open_is_the_content_read_at_open() {
        let dir = alumet::test_util::TempDir::new("procfile");
        let path = dir.path().join("stat");
        std::fs::write(&path, "first\n").unwrap();
        let mut file = ProcFile::open(path.clone(), true).unwrap();
        std::fs::write(&path, "second\n").unwrap();
        assert_eq!(file.read().unwrap(), b"first\n");
        assert_eq!(file.read().unwrap(), b"second\n");
        assert_eq!(file.read().unwrap(), b"second\n");
    }
}
