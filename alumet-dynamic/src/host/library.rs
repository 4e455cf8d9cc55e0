//! Opening a plugin library: the file, the symbols, the ABI version, then `init`.

use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::abi::{self, symbols, AbiVersionFn, AlumetStr, StaticStrFn, ALUMET_ABI_VERSION};

use super::callbacks::{ErrorSlot, HOST};
use super::plugin::{DynamicPlugin, Instance};
use super::scope::PluginScope;

/// Why a plugin library could not be loaded or initialized. Each message names the library
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file does not exist.
    #[error("plugin library {} does not exist: check its path, or build and install the plugin there", .0.display())]
    Missing(PathBuf),
    /// The file is not a shared library that this process can load.
    #[error("{} is not a shared library that can be loaded here ({reason}): build the plugin as a shared library for this machine (gcc -shared -fPIC, or crate-type = [\"cdylib\"] in Rust)", .path.display())]
    NotALibrary {
        /// The library.
        path: PathBuf,
        /// The loader's words.
        reason: String,
    },
    /// A symbol of the ABI is not exported.
    #[error("plugin library {} does not export the symbol `{symbol}`: is it an alumet plugin? Export every function of alumet.h (in Rust: alumet_dynamic::export_plugin!)", .path.display())]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// The plugin was built for another ABI version.
    #[error("plugin library {} was built for plugin ABI version {plugin}, but this agent implements version {host}: rebuild the plugin against the alumet.h (or alumet-dynamic) of this agent", .path.display())]
    AbiMismatch {
        /// The library.
        path: PathBuf,
        /// The version the plugin was built for.
        plugin: u32,
        /// The version of this agent.
        host: u32,
    },
    /// The plugin's name or version is not valid UTF-8, or is empty.
    #[error("plugin library {} exports an invalid {what}: it must be a non-empty NUL-terminated UTF-8 string", .path.display())]
    BadString {
        /// The library.
        path: PathBuf,
        /// `name` or `version`.
        what: &'static str,
    },
    /// `alumet_plugin_init` failed.
    #[error("plugin `{plugin}` ({}) failed to initialize: {message}", .path.display())]
    Init {
        /// The plugin's name.
        plugin: String,
        /// The library.
        path: PathBuf,
        /// The message the plugin gave.
        message: String,
    },
}

/// The functions a plugin library exports, after `alumet_plugin_abi_version` was checked.
#[derive(Clone, Copy)]
pub(crate) struct Symbols {
    pub(crate) init: abi::InitFn,
    pub(crate) start: abi::StartFn,
    pub(crate) stop: abi::StopFn,
    pub(crate) drop: abi::DropFn,
}

/// A loaded plugin library whose ABI version matches, before `init`.
pub struct PluginLibrary {
    path: PathBuf,
    library: Arc<libloading::Library>,
    symbols: Symbols,
    name: String,
    version: String,
}

impl std::fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

impl PluginLibrary {
    /// Loads the library at `path` and checks that it is a plugin of this ABI version.
    /// A relative path is taken from the current directory (never searched for in the
    /// system's library path).
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        if !path.exists() {
            return Err(LoadError::Missing(path));
        }
        // SAFETY: loading a library runs its initializers; the operator chose this file
        // as a plugin, which is trusted code of the agent by design.
        let library =
            unsafe { libloading::Library::new(&path) }.map_err(|e| LoadError::NotALibrary {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let abi_version: AbiVersionFn = symbol(&library, &path, symbols::ABI_VERSION)?;
        // SAFETY: the symbol has the signature of alumet.h, whatever its version: version 1
        // and every later one keep `uint32_t alumet_plugin_abi_version(void)`.
        let version = unsafe { abi_version() };
        if version != ALUMET_ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path,
                plugin: version,
                host: ALUMET_ABI_VERSION,
            });
        }
        let name_fn: StaticStrFn = symbol(&library, &path, symbols::NAME)?;
        let version_fn: StaticStrFn = symbol(&library, &path, symbols::VERSION)?;
        let symbols = Symbols {
            init: symbol(&library, &path, symbols::INIT)?,
            start: symbol(&library, &path, symbols::START)?,
            stop: symbol(&library, &path, symbols::STOP)?,
            drop: symbol(&library, &path, symbols::DROP)?,
        };
        // SAFETY: the ABI says these return static NUL-terminated strings (or null).
        let (name, version) = unsafe { (name_fn(), version_fn()) };
        let name = static_string(name).ok_or_else(|| LoadError::BadString {
            path: path.clone(),
            what: "name",
        })?;
        let version = static_string(version).ok_or_else(|| LoadError::BadString {
            path: path.clone(),
            what: "version",
        })?;
        Ok(PluginLibrary {
            path,
            library: Arc::new(library),
            symbols,
            name,
            version,
        })
    }

    /// The name the plugin gives itself.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The absolute path of the library.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the plugin from its config (its table as TOML text). `agent_name` is the
    /// name the agent gives it (the `NAME` of `[plugins.NAME]`), used for its elements.
    pub fn init(self, agent_name: &str, config_toml: &str) -> Result<DynamicPlugin, LoadError> {
        let mut error = ErrorSlot::default();
        let mut state: *mut c_void = std::ptr::null_mut();
        let name: Arc<str> = agent_name.into();
        let scope = PluginScope::enter(&name);
        // SAFETY: arguments as alumet.h says: the host table is static, the config string
        // outlives the call, `state` and `error` are valid for writes during it.
        let status = unsafe {
            (self.symbols.init)(
                &HOST,
                AlumetStr::new(config_toml),
                &mut state,
                error.as_abi(),
            )
        };
        drop(scope);
        if status != abi::ALUMET_OK {
            return Err(LoadError::Init {
                plugin: agent_name.to_owned(),
                path: self.path,
                message: error.take_message(status),
            });
        }
        let instance = Instance {
            name,
            state,
            drop: self.symbols.drop,
            _library: self.library,
        };
        Ok(DynamicPlugin::new(
            agent_name.to_owned(),
            self.path,
            self.symbols,
            Arc::new(instance),
        ))
    }
}

fn symbol<T: Copy>(
    library: &libloading::Library,
    path: &Path,
    name: &'static str,
) -> Result<T, LoadError> {
    // SAFETY: `T` is the function pointer type that alumet.h gives this symbol; the
    // pointer is used only while the library stays loaded (the plugin holds it).
    let found = unsafe { library.get::<T>(name.as_bytes()) };
    found.map(|s| *s).map_err(|_| LoadError::MissingSymbol {
        path: path.to_owned(),
        symbol: name,
    })
}

fn static_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the ABI says it is a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ptr) }.to_str().ok()?;
    (!s.is_empty()).then(|| s.to_owned())
}
