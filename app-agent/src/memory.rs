//! Giving back the pages that only start-up used.
//!
//! Start-up runs code that a running agent never runs again: the command line, the config
//! (every plugin's defaults and checks), the plugins' start. The kernel maps the binary's
//! pages around each one touched (fault-around, 64 kB at a time), so start-up leaves
//! about 4 MB of the binary resident that the measuring loops do not use. Once the agent
//! runs, [`release_startup_pages`] asks the kernel to reclaim the binary's read-only pages
//! (`MADV_PAGEOUT`, Linux 5.4 and later); those the loops use come back at their next
//! use, and stay. Writable pages (data, heap, stacks) are left alone.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long after start (or a reload) the pages that only start-up used are given back:
/// the plugins' first polls and flushes have run by then.
pub const RELEASE_AFTER: Duration = Duration::from_secs(2);

/// One read-only mapping of the agent's own binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// The read-only mappings of `exe` in a `/proc/PID/maps` text (the text, the read-only data;
/// not the writable data). A binary replaced on disk while running (a package upgrade) is
/// listed as `PATH (deleted)` and still matches.
fn readonly_mappings_of(maps: &str, exe: &Path) -> Vec<Mapping> {
    let exe = exe.to_string_lossy();
    let mut found = Vec::new();
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut fields = line.splitn(6, ' ');
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = fields.nth(3).unwrap_or("").trim_start();
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        if path != exe || perms.contains('w') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) {
            found.push(Mapping { start, end });
        }
    }
    found
}

/// Asks the kernel to reclaim the resident pages of this process's binary that are not
/// written to; returns how many bytes of mappings were advised. The pages still in use
/// come back on their next use (from the page cache, or from the file). An error: the
/// kernel cannot (before Linux 5.4: `EINVAL`), or `/proc/self` is unreadable.
pub fn release_startup_pages() -> io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let exe = Path::new(exe.to_str().unwrap_or("").trim_end_matches(" (deleted)")).to_owned();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut advised = 0;
    for m in readonly_mappings_of(&maps, &exe) {
        let len = m.end - m.start;
        // SAFETY: the range is a mapping of this process, read from /proc/self/maps, and
        // MADV_PAGEOUT only drops pages the kernel can read again: it changes no content.
        let rc = unsafe { libc::madvise(m.start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        advised += len;
    }
    Ok(advised)
}

/// [`release_startup_pages`], saying what it did in the debug log (and why not, if it
/// could not: an older kernel is no error).
pub fn release_startup_pages_logged() {
    match release_startup_pages() {
        Ok(bytes) => log::debug!(
            "gave back the start-up pages of the binary ({} kB of mappings advised)",
            bytes / 1024
        ),
        Err(e) => log::debug!("could not give back the start-up pages of the binary: {e}"),
    }
}

/// Gives back the start-up pages once, at the first call [`RELEASE_AFTER`] after `start`
/// (for the loops of exec and watch, which check often).
pub struct ReleaseOnce {
    start: Instant,
    done: std::cell::Cell<bool>,
}

impl ReleaseOnce {
    pub fn after(start: Instant) -> Self {
        ReleaseOnce {
            start,
            done: std::cell::Cell::new(false),
        }
    }

    /// Releases the pages if it is time and it was not done yet.
    pub fn check(&self) {
        if !self.done.get() && self.start.elapsed() >= RELEASE_AFTER {
            self.done.set(true);
            release_startup_pages_logged();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_only_mappings_of_the_binary_are_found_and_no_others() {
        let maps = "\
55d0c0000000-55d0c0100000 r--p 00000000 fd:01 42 /usr/bin/alumet-agent
55d0c0100000-55d0c0800000 r-xp 00100000 fd:01 42 /usr/bin/alumet-agent
55d0c0800000-55d0c0900000 rw-p 00800000 fd:01 42 /usr/bin/alumet-agent
55d0c0900000-55d0c0a00000 r--p 00000000 fd:01 43 /usr/bin/alumet-agent-other
7f0000000000-7f0000100000 r-xp 00000000 fd:01 7 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000200000-7f0000300000 rw-p 00000000 00:00 0 [heap]
7f0000400000-7f0000500000 r-xp 00000000 fd:01 42 /usr/bin/alumet-agent (deleted)
";
        let found = readonly_mappings_of(maps, Path::new("/usr/bin/alumet-agent"));
        assert_eq!(
            found,
            [
                Mapping {
                    start: 0x55d0c0000000,
                    end: 0x55d0c0100000
                },
                Mapping {
                    start: 0x55d0c0100000,
                    end: 0x55d0c0800000
                },
                Mapping {
                    start: 0x7f0000400000,
                    end: 0x7f0000500000
                },
            ]
        );
    }

    #[test]
    fn release_once_waits_for_its_time_and_releases_once() {
        let fresh = ReleaseOnce::after(Instant::now());
        fresh.check();
        assert!(!fresh.done.get(), "not before RELEASE_AFTER");
        let start = Instant::now()
            .checked_sub(RELEASE_AFTER)
            .expect("an earlier instant");
        let due = ReleaseOnce::after(start);
        due.check();
        assert!(due.done.get(), "due: released");
        due.check();
        assert!(due.done.get());
    }

    /// The resident kB of this test binary's read-only mappings (`/proc/self/smaps`).
    fn resident_binary_kb() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let exe = exe.to_string_lossy().into_owned();
        let (mut ours, mut total) = (false, 0);
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let first = fields.next().unwrap_or("");
            if !first.ends_with(':') {
                // A mapping's header: range, perms, offset, dev, inode, path.
                let perms = fields.next().unwrap_or("");
                ours = line.ends_with(exe.as_str()) && !perms.contains('w');
            } else if ours && first == "Rss:" {
                total += fields
                    .next()
                    .and_then(|kb| kb.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        total
    }

    #[test]
    fn released_pages_leave_the_binary_less_resident_and_it_runs_on() {
        let before = resident_binary_kb();
        assert!(before > 0, "the test binary has resident pages");
        let advised = release_startup_pages().expect("MADV_PAGEOUT (Linux 5.4 and later)");
        assert!(advised > 0, "the binary's read-only mappings were advised");
        let after = resident_binary_kb();
        assert!(
            after < before,
            "{after} kB resident after, {before} kB before: nothing was given back"
        );
        // The code runs on: what it needs comes back.
        assert_eq!(readonly_mappings_of("", Path::new("/x")), []);
        assert!(resident_binary_kb() > 0);
    }
}
