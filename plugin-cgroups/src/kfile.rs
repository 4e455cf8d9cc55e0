//! A cgroup file opened once and re-read from offset 0 with `pread` into a buffer that
//! only grows, and what a read error says.

use std::fs::File;
use std::io;
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

    /// The whole file, read from offset 0 into `buf` (which only grows), with one `pread`
    /// when it fits: a cgroup file is one record, written whole by kernfs at each read
    /// ([`linux_parse::read::read_whole`]).
    pub(crate) fn read<'b>(&self, buf: &'b mut Vec<u8>) -> io::Result<&'b [u8]> {
        linux_parse::read::read_whole(&self.file, buf, true)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Read system calls made by this thread so far (`syscr` of `/proc/thread-self/io`).
    fn reads_so_far() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").expect("/proc/thread-self/io");
        let line = io.lines().find_map(|l| l.strip_prefix("syscr: "));
        line.and_then(|v| v.trim().parse().ok())
            .expect("a syscr line")
    }

    fn temp_file(name: &str, content: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kfile-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("file");
        std::fs::write(&path, content).expect("write");
        path
    }

    #[test]
    fn a_file_shorter_than_the_buffer_takes_one_read() {
        let path = temp_file("short", b"usage_usec 1000\n");
        let f = KFile::open(path.clone()).expect("open");
        let mut buf = Vec::new();
        assert_eq!(f.read(&mut buf).expect("read"), b"usage_usec 1000\n");
        // The reads of /proc/thread-self/io itself, counted alone, then with one KFile read.
        let calibrate = {
            let r0 = reads_so_far();
            reads_so_far() - r0
        };
        let r0 = reads_so_far();
        let text = f.read(&mut buf).expect("read").to_vec();
        let used = reads_so_far() - r0 - calibrate;
        assert_eq!(text, b"usage_usec 1000\n");
        assert_eq!(used, 1, "a short file must take one read system call");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
