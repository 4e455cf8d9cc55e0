//! The task that follows the tree while the agent runs: it waits for inotify events or the
//! rescan timer, then lets [`Discovery::update`] add and remove sources (on a blocking
//! thread: the control calls wait for the source groups). An event lists again only the
//! directory it names (a pod's creation costs its own cgroups, not the whole tree); the
//! timer, and lost events, list the whole tree.

use std::io;

use alumet::prelude::*;
use inotify::{EventMask, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::discovery::{Discovery, TreeChanges};

/// Runs until shutdown; `inotify` is `None` where the kernel refused one (the rescan
/// timer alone then finds changes).
pub(crate) async fn run(
    mut discovery: Discovery,
    inotify: Option<Inotify>,
    control: PluginControl,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    // SAFETY: `Inotify` owns its descriptor and closes it only when dropped; the AsyncFd
    // owns that `Inotify`, and the `Watches` handles keep the same descriptor open.
    let registered =
        inotify.map(|i| unsafe { AsyncFd::register_with_interest(i, Interest::READABLE) });
    let mut events = match registered.transpose() {
        Ok(fd) => fd,
        Err(e) => {
            log::warn!("cgroups: cannot wait for inotify events: {e}; changes are found by the rescan every {:?}", discovery.rescan_interval);
            None
        }
    };
    let mut buf = vec![0u8; 4096];
    let period = discovery.rescan_interval;
    // A deadline, not a sleep per turn: events (a cgroup.events that changes every second)
    // must not put the listing off for ever.
    let mut next_listing = tokio::time::Instant::now() + period;
    loop {
        let mut seen = Seen::default();
        let listing = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            r = next_events(events.as_mut(), &mut buf, &mut seen) => match r {
                Ok(()) => seen.overflow,
                Err(e) => {
                    log::warn!("cgroups: reading inotify events: {e}; changes are found by the rescan every {period:?} from now on");
                    events = None;
                    true
                }
            },
            _ = tokio::time::sleep_until(next_listing) => true,
        };
        let tree = if listing {
            next_listing = tokio::time::Instant::now() + period;
            TreeChanges::All
        } else {
            // Only the directories that changed are listed again, not the whole tree.
            let paths = seen
                .tree
                .iter()
                .filter_map(|(wd, name)| discovery.child_of(wd, name));
            TreeChanges::Paths(paths.collect())
        };
        for wd in &seen.ignored {
            discovery.forget(wd);
        }
        let c = control.clone();
        discovery = tokio::task::spawn_blocking(move || {
            discovery.update(&c, &seen.changed, &tree);
            discovery
        })
        .await?;
    }
}

/// The events read in one turn.
#[derive(Default)]
struct Seen {
    /// Files that changed (`cgroup.events`).
    changed: Vec<WatchDescriptor>,
    /// Directories created, removed or renamed: their parent's watch and their name.
    tree: Vec<(WatchDescriptor, String)>,
    /// Watches the kernel dropped (their directory was removed).
    ignored: Vec<WatchDescriptor>,
    /// Events were lost: only a whole listing tells what changed.
    overflow: bool,
}

/// Waits for at least one event and reads every event queued into `seen`. Never returns
/// without `fd`.
async fn next_events(
    fd: Option<&mut AsyncFd<Inotify>>,
    buf: &mut [u8],
    seen: &mut Seen,
) -> io::Result<()> {
    let Some(fd) = fd else {
        return std::future::pending().await;
    };
    let mut sort = |events: inotify::Events<'_>| {
        for e in events {
            if e.mask.contains(EventMask::Q_OVERFLOW) {
                seen.overflow = true;
            } else if e.mask.contains(EventMask::IGNORED) {
                seen.ignored.push(e.wd);
            } else if e.mask.contains(EventMask::MODIFY) {
                seen.changed.push(e.wd);
            } else if e.mask.intersects(TREE) {
                // A name that is not UTF-8 is skipped, as by the listing.
                if let Some(name) = e.name.and_then(|n| n.to_str()) {
                    seen.tree.push((e.wd, name.to_owned()));
                }
            }
        }
    };
    loop {
        let mut guard = fd.readable_mut().await?;
        match guard.try_io(|inner| inner.get_mut().read_events(buf).map(&mut sort)) {
            Ok(Ok(())) => break,
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    // What else is queued: one update covers it all.
    loop {
        match fd.get_mut().read_events(buf) {
            Ok(events) => sort(events),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The events that change the tree.
const TREE: EventMask = EventMask::CREATE
    .union(EventMask::DELETE)
    .union(EventMask::MOVED_FROM)
    .union(EventMask::MOVED_TO);
