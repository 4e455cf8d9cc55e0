//! The plugins' event handlers: registered at start or while running, removed while
//! running, and called by [`PipelineControl::emit`](super::PipelineControl::emit).
//!
//! The list is copied on write: an emit takes the current list (one reference count)
//! and calls its handlers without holding a lock, so a handler may itself subscribe or
//! unsubscribe; adding or removing a handler copies the list of pointers.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::element::Event;
use super::plugin_control::PluginControl;

/// A plugin's event handler: the event, and the plugin's own control handle.
pub(crate) type Handler = Box<dyn Fn(&Event, &PluginControl) + Send + Sync>;

/// An event handler, as returned by [`Registrar::on_event`](crate::plugin::Registrar::on_event)
/// and [`PluginControl::on_event`]: remove it with [`PluginControl::remove_subscriber`].
/// Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriberId(u64);

impl SubscriberId {
    /// A new id, unique in the process.
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        SubscriberId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event handler #{}", self.0)
    }
}

/// One plugin's handler.
pub(crate) struct Subscriber {
    pub(crate) id: SubscriberId,
    /// The plugin (instance) that registered it.
    pub(crate) plugin: Arc<str>,
    pub(crate) handler: Handler,
}

type List = Arc<Vec<Arc<Subscriber>>>;

/// The handlers, in the order they were registered.
#[derive(Default)]
pub(crate) struct Subscribers(Mutex<List>);

impl Subscribers {
    pub(crate) fn new(list: Vec<Subscriber>) -> Self {
        Subscribers(Mutex::new(Arc::new(
            list.into_iter().map(Arc::new).collect(),
        )))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, List> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handlers now: an emit calls these, even if one is removed meanwhile.
    pub(crate) fn current(&self) -> List {
        Arc::clone(&self.lock())
    }

    /// The plugin that registered the handler `id`, if it is still there.
    pub(crate) fn owner(&self, id: SubscriberId) -> Option<Arc<str>> {
        let list = self.current();
        let found = list.iter().find(|s| s.id == id);
        found.map(|s| Arc::clone(&s.plugin))
    }

    /// Adds a handler, called from the next emit on.
    pub(crate) fn add(&self, subscriber: Subscriber) {
        let mut list = self.lock();
        let mut copy = Vec::clone(&list);
        copy.push(Arc::new(subscriber));
        *list = Arc::new(copy);
    }

    /// Removes the handlers for which `remove` holds; returns how many. Emits that began
    /// before may still call them once; later ones do not.
    pub(crate) fn remove(&self, remove: impl Fn(&Subscriber) -> bool) -> usize {
        let mut list = self.lock();
        let copy: Vec<_> = list.iter().filter(|s| !remove(s)).cloned().collect();
        let removed = list.len() - copy.len();
        if removed > 0 {
            *list = Arc::new(copy);
        }
        removed
    }
}
