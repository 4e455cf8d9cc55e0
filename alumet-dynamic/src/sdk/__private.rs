//! What [`export_plugin!`](crate::export_plugin) expands to calls these: the plugin's
//! side of the boundary, where panics are caught and errors become statuses. Not a
//! public API.

use std::any::Any;
use std::ffi::{c_char, c_void, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::abi::*;

use super::{host, Accumulator, Buffer, Error, Output, Plugin, Registrar, Source, HOST};

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs `f`; a panic becomes a fatal error.
fn guard<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(Error::fatal(format!("panicked: {}", panic_message(&*p)))))
}

/// Reports `result` through the agent's error handle; returns the status.
fn report(result: Result<(), Error>, error: *mut AlumetError) -> AlumetStatus {
    match result {
        Ok(()) => ALUMET_OK,
        Err(e) => {
            if let Some(h) = host() {
                // SAFETY: the error handle of the current call, and a string valid for it.
                unsafe { (h.set_error)(error, AlumetStr::new(&e.message)) };
            }
            e.status
        }
    }
}

/// A static NUL-terminated copy of `s`, for `alumet_plugin_name` and `_version`.
pub fn c_string(cell: &'static OnceLock<CString>, s: &str) -> *const c_char {
    cell.get_or_init(|| CString::new(s.replace('\0', "")).unwrap_or_default())
        .as_ptr()
}

/// `alumet_plugin_init` for `P`.
///
/// # Safety
/// Called by the agent as alumet.h says.
pub unsafe fn init<P: Plugin>(
    host_table: *const AlumetHost,
    config: AlumetStr,
    plugin: *mut *mut c_void,
    error: *mut AlumetError,
) -> AlumetStatus {
    if host_table.is_null() || plugin.is_null() {
        return ALUMET_ERROR;
    }
    HOST.store(host_table.cast_mut(), Ordering::Release);
    let result = guard(|| {
        // SAFETY: the agent's config string, valid for this call.
        let text = unsafe { config.as_str() }
            .map_err(|e| Error::fatal(format!("the config is not UTF-8: {e}")))?;
        let state = P::init(text)?;
        // SAFETY: checked for null; the agent gives a pointer to write the state to.
        unsafe { *plugin = Box::into_raw(Box::new(state)).cast() };
        Ok(())
    });
    report(result, error)
}

/// `alumet_plugin_start` for `P`.
///
/// # Safety
/// Called by the agent as alumet.h says, with the state `init::<P>` returned.
pub unsafe fn start<P: Plugin>(
    plugin: *mut c_void,
    registrar: *mut AlumetRegistrar,
    error: *mut AlumetError,
) -> AlumetStatus {
    let Some(host) = host() else {
        return ALUMET_ERROR;
    };
    let result = guard(|| {
        // SAFETY: the state init returned, used by one call at a time (alumet.h).
        let state = unsafe { &mut *plugin.cast::<P>() };
        let mut registrar = Registrar {
            raw: registrar,
            error,
            host,
            _call: PhantomData,
        };
        state.start(&mut registrar)
    });
    report(result, error)
}

/// `alumet_plugin_stop` for `P`.
///
/// # Safety
/// Called by the agent as alumet.h says, with the state `init::<P>` returned.
pub unsafe fn stop<P: Plugin>(plugin: *mut c_void, error: *mut AlumetError) -> AlumetStatus {
    let result = guard(|| {
        // SAFETY: the state init returned, used by one call at a time (alumet.h).
        let state = unsafe { &mut *plugin.cast::<P>() };
        state.stop()
    });
    report(result, error)
}

/// `alumet_plugin_drop` for `P`, and the `drop_data` of elements of type `T`.
///
/// # Safety
/// Called once, with a pointer made by `Box::<T>::into_raw`.
pub unsafe extern "C" fn drop_box<T>(data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // A panic in a destructor is caught, not let across the boundary.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: made by Box::<T>::into_raw, dropped once (the caller's contract).
        drop(unsafe { Box::from_raw(data.cast::<T>()) });
    }));
}

pub(super) unsafe extern "C" fn poll<S: Source>(
    data: *mut c_void,
    acc: *mut AlumetAccumulator,
    timestamp_ns: u64,
    error: *mut AlumetError,
) -> AlumetStatus {
    let Some(host) = host() else {
        return ALUMET_ERROR;
    };
    let result = guard(|| {
        // SAFETY: the data registered with this function (a Box<S>), one call at a time.
        let source = unsafe { &mut *data.cast::<S>() };
        let mut acc = Accumulator {
            raw: acc,
            host,
            _call: PhantomData,
        };
        source.poll(&mut acc, timestamp_ns)
    });
    report(result, error)
}

pub(super) unsafe extern "C" fn write<O: Output>(
    data: *mut c_void,
    buffer: *mut AlumetBuffer,
    error: *mut AlumetError,
) -> AlumetStatus {
    let Some(host) = host() else {
        return ALUMET_ERROR;
    };
    let result = guard(|| {
        // SAFETY: the data registered with this function (a Box<O>), one call at a time.
        let output = unsafe { &mut *data.cast::<O>() };
        let mut buffer = Buffer {
            raw: buffer,
            host,
            _call: PhantomData,
        };
        output.write(&mut buffer)
    });
    report(result, error)
}

pub(super) unsafe extern "C" fn finish<O: Output>(
    data: *mut c_void,
    error: *mut AlumetError,
) -> AlumetStatus {
    let result = guard(|| {
        // SAFETY: the data registered with this function (a Box<O>), one call at a time.
        let output = unsafe { &mut *data.cast::<O>() };
        output.finish()
    });
    report(result, error)
}

/// Exports a [`Plugin`](crate::sdk::Plugin) through the C ABI of `alumet.h`: the seven
/// `alumet_plugin_*` functions. Use it once, in a `cdylib` crate (a complete one, built
/// and loaded by the tests: `dynamic-plugin-example/src/lib.rs`):
///
/// ```text
/// alumet_dynamic::export_plugin!(MyPlugin, name = "my_plugin", version = env!("CARGO_PKG_VERSION"));
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty, name = $name:expr, version = $version:expr $(,)?) => {
        /// The ABI version this plugin was built for.
        #[no_mangle]
        pub extern "C" fn alumet_plugin_abi_version() -> u32 {
            $crate::abi::ALUMET_ABI_VERSION
        }

        /// The plugin's name.
        #[no_mangle]
        pub extern "C" fn alumet_plugin_name() -> *const ::std::ffi::c_char {
            static CELL: ::std::sync::OnceLock<::std::ffi::CString> = ::std::sync::OnceLock::new();
            $crate::sdk::__private::c_string(&CELL, $name)
        }

        /// The plugin's version.
        #[no_mangle]
        pub extern "C" fn alumet_plugin_version() -> *const ::std::ffi::c_char {
            static CELL: ::std::sync::OnceLock<::std::ffi::CString> = ::std::sync::OnceLock::new();
            $crate::sdk::__private::c_string(&CELL, $version)
        }

        /// Creates the plugin.
        ///
        /// # Safety
        /// Called by the agent, as alumet.h says.
        #[no_mangle]
        pub unsafe extern "C" fn alumet_plugin_init(
            host: *const $crate::abi::AlumetHost,
            config: $crate::abi::AlumetStr,
            plugin: *mut *mut ::std::ffi::c_void,
            error: *mut $crate::abi::AlumetError,
        ) -> $crate::abi::AlumetStatus {
            // SAFETY: the agent's arguments, forwarded as they came.
            unsafe { $crate::sdk::__private::init::<$plugin>(host, config, plugin, error) }
        }

        /// Starts the plugin.
        ///
        /// # Safety
        /// Called by the agent, as alumet.h says.
        #[no_mangle]
        pub unsafe extern "C" fn alumet_plugin_start(
            plugin: *mut ::std::ffi::c_void,
            registrar: *mut $crate::abi::AlumetRegistrar,
            error: *mut $crate::abi::AlumetError,
        ) -> $crate::abi::AlumetStatus {
            // SAFETY: the agent's arguments, forwarded as they came.
            unsafe { $crate::sdk::__private::start::<$plugin>(plugin, registrar, error) }
        }

        /// Stops the plugin.
        ///
        /// # Safety
        /// Called by the agent, as alumet.h says.
        #[no_mangle]
        pub unsafe extern "C" fn alumet_plugin_stop(
            plugin: *mut ::std::ffi::c_void,
            error: *mut $crate::abi::AlumetError,
        ) -> $crate::abi::AlumetStatus {
            // SAFETY: the agent's arguments, forwarded as they came.
            unsafe { $crate::sdk::__private::stop::<$plugin>(plugin, error) }
        }

        /// Frees the plugin.
        ///
        /// # Safety
        /// Called by the agent, once, as alumet.h says.
        #[no_mangle]
        pub unsafe extern "C" fn alumet_plugin_drop(plugin: *mut ::std::ffi::c_void) {
            // SAFETY: the state made by init (a Box of the plugin), dropped once.
            unsafe { $crate::sdk::__private::drop_box::<$plugin>(plugin) }
        }
    };
}
