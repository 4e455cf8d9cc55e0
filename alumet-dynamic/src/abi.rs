//! The C ABI, as Rust types: the same layouts as `include/alumet.h` (a test compiles the
//! header and compares them). Read the header for the rules of each function.

use std::ffi::{c_char, c_void};
use std::marker::PhantomData;

/// The ABI version of this crate and of `alumet.h`; the agent refuses a plugin built for
/// another one.
pub const ALUMET_ABI_VERSION: u32 = 1;

/// Status of a call (`ALUMET_OK`, ...).
pub type AlumetStatus = i32;
/// Success.
pub const ALUMET_OK: AlumetStatus = 0;
/// Failure: the element stops, or the agent does not start (from `init` or `start`).
pub const ALUMET_ERROR: AlumetStatus = 1;
/// A failure of `poll` or `write` after which the element keeps its schedule.
pub const ALUMET_RETRY: AlumetStatus = 2;
/// From `start`: the hardware is absent; the agent warns and runs the other plugins.
pub const ALUMET_UNAVAILABLE: AlumetStatus = 3;

/// Value type `u64`.
pub const ALUMET_U64: u32 = 0;
/// Value type `f64`.
pub const ALUMET_F64: u32 = 1;

/// Log level: error.
pub const ALUMET_LOG_ERROR: u32 = 1;
/// Log level: warning.
pub const ALUMET_LOG_WARN: u32 = 2;
/// Log level: info.
pub const ALUMET_LOG_INFO: u32 = 3;
/// Log level: debug.
pub const ALUMET_LOG_DEBUG: u32 = 4;
/// Log level: trace.
pub const ALUMET_LOG_TRACE: u32 = 5;

/// A UTF-8 string: pointer and length in bytes, not necessarily NUL-terminated.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct AlumetStr {
    /// The first byte (may be null when `len` is 0).
    pub ptr: *const c_char,
    /// The length in bytes.
    pub len: usize,
}

impl AlumetStr {
    /// The empty string.
    pub const EMPTY: AlumetStr = AlumetStr {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows a Rust string (the caller keeps it alive while the pointer is used).
    pub const fn new(s: &str) -> Self {
        AlumetStr {
            ptr: s.as_ptr().cast(),
            len: s.len(),
        }
    }

    /// The string, if it is valid UTF-8.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes (or `len` be 0) that stay valid and
    /// unchanged for `'a`.
    pub unsafe fn as_str<'a>(self) -> Result<&'a str, std::str::Utf8Error> {
        if self.len == 0 || self.ptr.is_null() {
            return Ok("");
        }
        // SAFETY: the caller guarantees `len` readable bytes at `ptr`, valid for 'a.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) };
        std::str::from_utf8(bytes)
    }
}

/// One `key = value` attribute of a point.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct AlumetAttribute {
    /// The key.
    pub key: AlumetStr,
    /// The value.
    pub value: AlumetStr,
}

/// A measurement point, pushed by a source or read from a buffer.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct AlumetPoint {
    /// The metric id.
    pub metric: u32,
    /// `ALUMET_U64` or `ALUMET_F64`.
    pub value_type: u32,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The value, when `value_type` is `ALUMET_U64`.
    pub value_u64: u64,
    /// The value, when `value_type` is `ALUMET_F64`.
    pub value_f64: f64,
    /// What is measured: kind (`cpu_package`, a custom kind...).
    pub resource_kind: AlumetStr,
    /// What is measured: id within the kind.
    pub resource_id: AlumetStr,
    /// Who consumes it: kind (`process`, a custom kind...).
    pub consumer_kind: AlumetStr,
    /// Who consumes it: id within the kind.
    pub consumer_id: AlumetStr,
    /// The attributes (may be null when `attributes_len` is 0).
    pub attributes: *const AlumetAttribute,
    /// The number of attributes.
    pub attributes_len: usize,
}

impl AlumetPoint {
    /// A point of the local machine, without attributes and with both values 0.
    pub const fn empty() -> Self {
        AlumetPoint {
            metric: 0,
            value_type: ALUMET_U64,
            timestamp_ns: 0,
            value_u64: 0,
            value_f64: 0.0,
            resource_kind: AlumetStr::EMPTY,
            resource_id: AlumetStr::EMPTY,
            consumer_kind: AlumetStr::EMPTY,
            consumer_id: AlumetStr::EMPTY,
            attributes: std::ptr::null(),
            attributes_len: 0,
        }
    }
}

macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
            _not_send: PhantomData<*mut u8>,
        }
    )*};
}

opaque! {
    /// The registrar of a starting plugin (opaque).
    AlumetRegistrar;
    /// Where a source pushes its points (opaque).
    AlumetAccumulator;
    /// The buffer an output reads (opaque).
    AlumetBuffer;
    /// Where a failing call puts its message (opaque).
    AlumetError;
}

/// A source's poll.
pub type AlumetPollFn = unsafe extern "C" fn(
    data: *mut c_void,
    acc: *mut AlumetAccumulator,
    timestamp_ns: u64,
    error: *mut AlumetError,
) -> AlumetStatus;
/// An output's write.
pub type AlumetWriteFn = unsafe extern "C" fn(
    data: *mut c_void,
    buffer: *mut AlumetBuffer,
    error: *mut AlumetError,
) -> AlumetStatus;
/// An output's finish.
pub type AlumetFinishFn =
    unsafe extern "C" fn(data: *mut c_void, error: *mut AlumetError) -> AlumetStatus;
/// Frees an element's data.
pub type AlumetDropFn = unsafe extern "C" fn(data: *mut c_void);

/// The functions of the agent, given to `alumet_plugin_init`.
#[repr(C)]
pub struct AlumetHost {
    /// The agent's ABI version: which table this is (in version 1, always the plugin's
    /// own, since the agent refuses a plugin of any other version).
    pub abi_version: u32,
    /// Sets the message of a failure.
    pub set_error: unsafe extern "C" fn(error: *mut AlumetError, message: AlumetStr),
    /// The message set so far (empty if none).
    pub error_message: unsafe extern "C" fn(error: *const AlumetError) -> AlumetStr,
    /// Logs a line through the agent's logger.
    pub log: unsafe extern "C" fn(level: u32, message: AlumetStr),
    /// Creates a metric.
    pub create_metric: unsafe extern "C" fn(
        registrar: *mut AlumetRegistrar,
        name: AlumetStr,
        unit: AlumetStr,
        value_type: u32,
        description: AlumetStr,
        metric: *mut u32,
        error: *mut AlumetError,
    ) -> AlumetStatus,
    /// Adds a source.
    pub add_source: unsafe extern "C" fn(
        registrar: *mut AlumetRegistrar,
        name: AlumetStr,
        poll_interval_ns: u64,
        flush_interval_ns: u64,
        poll: Option<AlumetPollFn>,
        data: *mut c_void,
        drop_data: Option<AlumetDropFn>,
        error: *mut AlumetError,
    ) -> AlumetStatus,
    /// Adds an output.
    pub add_output: unsafe extern "C" fn(
        registrar: *mut AlumetRegistrar,
        name: AlumetStr,
        write: Option<AlumetWriteFn>,
        finish: Option<AlumetFinishFn>,
        data: *mut c_void,
        drop_data: Option<AlumetDropFn>,
        error: *mut AlumetError,
    ) -> AlumetStatus,
    /// Pushes a point.
    pub push: unsafe extern "C" fn(
        acc: *mut AlumetAccumulator,
        point: *const AlumetPoint,
    ) -> AlumetStatus,
    /// The number of points of a buffer.
    pub buffer_len: unsafe extern "C" fn(buffer: *const AlumetBuffer) -> usize,
    /// Reads one point of a buffer.
    pub buffer_get: unsafe extern "C" fn(
        buffer: *mut AlumetBuffer,
        index: usize,
        point: *mut AlumetPoint,
    ) -> AlumetStatus,
    /// The name of a metric.
    pub metric_name: unsafe extern "C" fn(buffer: *const AlumetBuffer, metric: u32) -> AlumetStr,
}

/// `alumet_plugin_abi_version`.
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// `alumet_plugin_name` and `alumet_plugin_version`.
pub type StaticStrFn = unsafe extern "C" fn() -> *const c_char;
/// `alumet_plugin_init`.
pub type InitFn = unsafe extern "C" fn(
    host: *const AlumetHost,
    config_toml: AlumetStr,
    plugin: *mut *mut c_void,
    error: *mut AlumetError,
) -> AlumetStatus;
/// `alumet_plugin_start`.
pub type StartFn = unsafe extern "C" fn(
    plugin: *mut c_void,
    registrar: *mut AlumetRegistrar,
    error: *mut AlumetError,
) -> AlumetStatus;
/// `alumet_plugin_stop`.
pub type StopFn =
    unsafe extern "C" fn(plugin: *mut c_void, error: *mut AlumetError) -> AlumetStatus;
/// `alumet_plugin_drop`.
pub type DropFn = unsafe extern "C" fn(plugin: *mut c_void);

/// The names of the exported symbols, in the order the agent looks them up.
pub mod symbols {
    /// `uint32_t alumet_plugin_abi_version(void)`.
    pub const ABI_VERSION: &str = "alumet_plugin_abi_version";
    /// `const char *alumet_plugin_name(void)`.
    pub const NAME: &str = "alumet_plugin_name";
    /// `const char *alumet_plugin_version(void)`.
    pub const VERSION: &str = "alumet_plugin_version";
    /// `AlumetStatus alumet_plugin_init(...)`.
    pub const INIT: &str = "alumet_plugin_init";
    /// `AlumetStatus alumet_plugin_start(...)`.
    pub const START: &str = "alumet_plugin_start";
    /// `AlumetStatus alumet_plugin_stop(...)`.
    pub const STOP: &str = "alumet_plugin_stop";
    /// `void alumet_plugin_drop(void *)`.
    pub const DROP: &str = "alumet_plugin_drop";
}
