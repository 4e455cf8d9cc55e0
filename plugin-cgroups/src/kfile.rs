//! A cgroup file opened once and re-read from offset 0 with `pread` into a buffer that
//! only grows, and what a read error says.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// An open cgroup file.
pub(crate) struct KFile {
    file: File,
    pub(crate) path: PathBuf,
}

impl KFile {
    pub(crate) fn open(path: PathBuf) -> io::Result<Self> {
        Ok(KFile {
            file: File::open(&path)?,
            path,
        })
    }

    /// The whole file, read from offset 0 into `buf` (which only grows).
    pub(crate) fn read<'b>(&self, buf: &'b mut Vec<u8>) -> io::Result<&'b [u8]> {
        if buf.is_empty() {
            buf.resize(4096, 0);
        }
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            match self.file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => return Ok(&buf[..filled]),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether a read error means that the cgroup was removed (kernfs answers ENODEV on the
/// files of a removed cgroup that stay open).
pub(crate) fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}

/// Reads `f` and parses it; an error names the file.
pub(crate) fn read_with<T>(
    f: &KFile,
    buf: &mut Vec<u8>,
    parse: fn(&[u8]) -> Option<T>,
) -> anyhow::Result<T> {
    let text = f
        .read(buf)
        .map_err(|e| anyhow::Error::new(e).context(format!("reading {}", f.path.display())))?;
    parse(text).ok_or_else(|| {
        let shown = String::from_utf8_lossy(&text[..text.len().min(120)]).into_owned();
        anyhow::anyhow!(
            "cannot parse {}: {shown:?} is not what this kernel file holds",
            f.path.display()
        )
    })
}
