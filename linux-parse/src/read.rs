//! Reading a kernel file whole, the one piece of I/O of this crate: the agent's sources
//! keep their files open and read them again at every poll, without allocating once warm.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads the whole of `file` into `buf` from offset 0 and returns the bytes read.
///
/// `buf` is used at its full length as room and only grows (doubling) when a file does
/// not fit, so that once it is warm no read allocates. the kernel regenerates a
/// `/proc`, `/sys` or cgroup file's content when it is read at offset 0.
///
/// With `single_record`, the file is one the kernel writes in one piece (`single_open`:
/// `/proc/stat`, `/proc/meminfo`, `/proc/PID/stat`, `/proc/PID/statm`; every cgroup
/// file, written whole by kernfs at each read from offset 0): a read that
/// leaves room in the buffer got the whole file, which saves the `pread` that would
/// only return end-of-file. Files made of many records (`/proc/net/dev`) can return
/// less than the room at a page boundary: they are read until end-of-file.
pub fn read_whole<'b>(
    file: &File,
    buf: &'b mut Vec<u8>,
    single_record: bool,
) -> io::Result<&'b [u8]> {
    if buf.is_empty() {
        buf.resize(4096, 0);
    }
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            let larger = buf.len() * 2;
            buf.resize(larger, 0);
        }
        let room = buf.len() - filled;
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if single_record && n < room {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(&buf[..filled])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &[u8]) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!("read-whole-{}-{name}", std::process::id()));
        std::fs::write(&path, content).expect("write");
        let file = File::open(&path).expect("open");
        (path, file)
    }

    #[test]
    fn files_of_the_buffer_size_and_beyond_are_read_whole_and_a_shorter_one_after() {
        for single_record in [true, false] {
            for len in [0, 5, 4095, 4096, 4097, 8192, 20_000] {
                let content: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                let name = format!("{single_record}-{len}");
                let (path, file) = temp_file(&name, &content);
                let mut buf = Vec::new();
                assert_eq!(
                    read_whole(&file, &mut buf, single_record).expect("read"),
                    &content[..]
                );
                std::fs::write(&path, b"7\n").expect("rewrite");
                assert_eq!(
                    read_whole(&file, &mut buf, single_record).expect("read"),
                    b"7\n"
                );
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
