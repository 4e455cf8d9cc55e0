//! Which plugin the current thread is running: set around every call into a plugin, so
//! that the lines it logs through `AlumetHost.log` carry its name.

use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static CURRENT: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// While it lives, the current thread runs the plugin it names; dropping it restores the
/// plugin of the enclosing call, if any.
#[must_use = "the scope ends when this is dropped"]
pub(crate) struct PluginScope {
    previous: Option<Arc<str>>,
}

impl PluginScope {
    /// Enters the plugin named `name` (the `NAME` of its `[plugins.NAME]` table).
    pub(crate) fn enter(name: &Arc<str>) -> Self {
        let previous = CURRENT.with(|c| c.replace(Some(Arc::clone(name))));
        PluginScope { previous }
    }
}

impl Drop for PluginScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // `try_with`: a scope dropped while the thread's locals are destroyed does nothing.
        let _ = CURRENT.try_with(|c| c.replace(previous));
    }
}

/// Runs `f` with the name of the plugin the current thread runs, if any (a thread that
/// the plugin started itself runs none).
pub(crate) fn with_current<T>(f: impl FnOnce(Option<&str>) -> T) -> T {
    let current = CURRENT.try_with(|c| c.borrow().clone()).ok().flatten();
    f(current.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_end() {
        let outer: Arc<str> = "outer".into();
        let inner: Arc<str> = "inner".into();
        assert_eq!(with_current(|c| c.map(str::to_owned)), None);
        let a = PluginScope::enter(&outer);
        {
            let _b = PluginScope::enter(&inner);
            assert_eq!(
                with_current(|c| c.map(str::to_owned)).as_deref(),
                Some("inner")
            );
        }
        assert_eq!(
            with_current(|c| c.map(str::to_owned)).as_deref(),
            Some("outer")
        );
        drop(a);
        assert_eq!(with_current(|c| c.map(str::to_owned)), None);
        // Another thread runs no plugin.
        let _c = PluginScope::enter(&outer);
        let other = std::thread::spawn(|| with_current(|c| c.is_none()));
        assert!(other.join().unwrap_or(false));
    }
}
