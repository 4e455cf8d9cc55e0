//! A dynamic plugin, started and stopped by the pipeline like a static one.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use alumet::plugin::{AnyPlugin, Registrar, Unavailable};

use crate::abi::{self, AlumetRegistrar};

use super::callbacks::{ErrorSlot, RegistrarCtx};
use super::convert::MetricTable;
use super::library::Symbols;
use super::scope::PluginScope;

/// The plugin's state and its library. Dropping the last reference calls
/// `alumet_plugin_drop`, then unloads the library: every element holds one, so this
/// happens after every `drop_data`.
pub(crate) struct Instance {
    /// The plugin's name in the agent: the target of its log lines.
    pub(crate) name: Arc<str>,
    pub(crate) state: *mut c_void,
    pub(crate) drop: abi::DropFn,
    pub(crate) _library: Arc<libloading::Library>,
}

// SAFETY: alumet.h allows `alumet_plugin_drop` on any thread, and the state is only used
// through the plugin's functions, one call at a time (start and stop take `&mut self`).
unsafe impl Send for Instance {}
// SAFETY: shared references to an Instance give no access to the state.
unsafe impl Sync for Instance {}

impl Drop for Instance {
    fn drop(&mut self) {
        let _scope = PluginScope::enter(&self.name);
        // SAFETY: the state returned by init, dropped once, while the library is loaded
        // (the `_library` field is dropped after this).
        unsafe { (self.drop)(self.state) };
    }
}

/// A plugin loaded from a shared library, created by
/// [`PluginLibrary::init`](super::PluginLibrary::init).
pub struct DynamicPlugin {
    name: String,
    path: PathBuf,
    symbols: Symbols,
    instance: Arc<Instance>,
}

impl std::fmt::Debug for DynamicPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicPlugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

impl DynamicPlugin {
    pub(crate) fn new(
        name: String,
        path: PathBuf,
        symbols: Symbols,
        instance: Arc<Instance>,
    ) -> Self {
        DynamicPlugin {
            name,
            path,
            symbols,
            instance,
        }
    }

    /// The library it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failure(&self, status: abi::AlumetStatus, mut error: ErrorSlot) -> anyhow::Error {
        let message = error.take_message(status);
        if status == abi::ALUMET_UNAVAILABLE {
            let fix = format!(
                "see the documentation of the plugin {}",
                self.path.display()
            );
            Unavailable::new(message, fix).into()
        } else {
            anyhow::anyhow!("{message} (plugin library {})", self.path.display())
        }
    }
}

impl AnyPlugin for DynamicPlugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let table = Arc::new(OnceLock::new());
        let mut ctx = RegistrarCtx {
            registrar: alumet,
            instance: &self.instance,
            created: MetricTable::default(),
            table: &table,
        };
        let mut error = ErrorSlot::default();
        let handle = (&mut ctx as *mut RegistrarCtx<'_, '_>).cast::<AlumetRegistrar>();
        let _scope = PluginScope::enter(&self.instance.name);
        // SAFETY: the plugin's start with the state its init returned, from one thread
        // (&mut self); the handles point to live structs for the duration of the call.
        let status = unsafe { (self.symbols.start)(self.instance.state, handle, error.as_abi()) };
        if status != abi::ALUMET_OK {
            return Err(self.failure(status, error));
        }
        // The sources read it from their first poll, which comes after every start.
        let _ = table.set(ctx.created);
        Ok(())
    }

    fn post_start(&mut self, _control: &alumet::pipeline::PluginControl) -> anyhow::Result<()> {
        Ok(())
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let mut error = ErrorSlot::default();
        let _scope = PluginScope::enter(&self.instance.name);
        // SAFETY: the plugin's stop with the state its init returned, from one thread.
        let status = unsafe { (self.symbols.stop)(self.instance.state, error.as_abi()) };
        if status != abi::ALUMET_OK {
            return Err(self.failure(status, error));
        }
        Ok(())
    }
}
