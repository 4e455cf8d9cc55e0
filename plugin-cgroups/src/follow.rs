//! The task that follows the tree while the agent runs: it waits for inotify events or the
//! rescan timer, then lets [`Discovery::update`] add and remove sources (on a blocking
//! thread: the control calls wait for the source groups).

use std::io;

use alumet::prelude::*;
use inotify::Inotify;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::oneshot;

use crate::discovery::Discovery;

/// Runs until shutdown. `control` arrives from `post_start`; `inotify` is `None` where the
/// kernel refused one (the rescan timer alone then finds changes).
pub(crate) async fn run(
    mut discovery: Discovery,
    inotify: Option<Inotify>,
    control: oneshot::Receiver<PluginControl>,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let control = tokio::select! {
        _ = shutdown.wait() => return Ok(()),
        c = control => match c {
            Ok(c) => c,
            Err(_) => return Ok(()), // never started (the plugin was only probed)
        },
    };
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
    loop {
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            r = next_events(events.as_mut(), &mut buf) => {
                if let Err(e) = r {
                    log::warn!("cgroups: reading inotify events: {e}; changes are found by the rescan every {period:?} from now on");
                    events = None;
                }
            }
            _ = tokio::time::sleep(period) => {}
        }
        let c = control.clone();
        discovery = tokio::task::spawn_blocking(move || {
            discovery.update(&c);
            discovery
        })
        .await?;
    }
}

/// Waits for at least one event and reads every event queued; never returns without
/// `fd`.
async fn next_events(fd: Option<&mut AsyncFd<Inotify>>, buf: &mut [u8]) -> io::Result<()> {
    let Some(fd) = fd else {
        return std::future::pending().await;
    };
    loop {
        let mut guard = fd.readable_mut().await?;
        match guard.try_io(|inner| inner.get_mut().read_events(buf).map(|e| e.count())) {
            Ok(Ok(_)) => break,
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    // What else is queued: one rescan covers it all.
    loop {
        match fd.get_mut().read_events(buf) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
