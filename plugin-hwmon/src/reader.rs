//! A sensor file kept open and re-read from offset 0 with `pread` into a buffer of its
//! own: no allocation per read, except to describe an error.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::parse;

/// One open sensor file. After a failed read it is closed and opened again at the next
/// read (a driver that was reloaded has new files).
pub struct SysFile {
    path: PathBuf,
    file: Option<File>,
    buf: [u8; 32],
}

impl SysFile {
    /// Opens `path`; a file that cannot be opened now is tried again at each read.
    pub fn new(path: PathBuf) -> Self {
        let file = File::open(&path).ok();
        SysFile {
            path,
            file,
            buf: [0; 32],
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the integer it holds.
    pub fn read(&mut self) -> io::Result<i64> {
        let result = self.read_open();
        if result.is_err() {
            self.file = None;
        }
        result
    }

    fn read_open(&mut self) -> io::Result<i64> {
        let file = match &self.file {
            Some(file) => file,
            None => self.file.insert(File::open(&self.path)?),
        };
        let n = loop {
            match file.read_at(&mut self.buf, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        let text = &self.buf[..n];
        if n == self.buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "value too long"));
        }
        parse::parse_int(text).ok_or_else(|| {
            let shown = String::from_utf8_lossy(text).trim().to_owned();
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an integer: {shown:?}"),
            )
        })
    }
}

/// Whether a read error says that the device is gone (sysfs answers ENODEV on the open
/// files of a removed device).
pub fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}
