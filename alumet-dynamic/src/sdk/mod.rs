//! Write a dynamic plugin in Rust, without `unsafe` code.
//!
//! ```no_run
//! use alumet_dynamic::sdk::{Accumulator, MetricId, Plugin, Point, Registrar, Result, Source};
//! use std::time::Duration;
//!
//! struct Counter { metric: MetricId<u64>, n: u64 }
//!
//! impl Source for Counter {
//!     fn poll(&mut self, acc: &mut Accumulator<'_>, timestamp_ns: u64) -> Result<()> {
//!         self.n += 1;
//!         acc.push(Point::new(self.metric, timestamp_ns, self.n))
//!     }
//! }
//!
//! struct MyPlugin;
//!
//! impl Plugin for MyPlugin {
//!     fn init(_config_toml: &str) -> Result<Self> { Ok(MyPlugin) }
//!     fn start(&mut self, alumet: &mut Registrar<'_>) -> Result<()> {
//!         let metric = alumet.create_metric::<u64>("my_counter", "1", "polls so far")?;
//!         alumet.add_source("counter", Duration::from_secs(1), None, Counter { metric, n: 0 })
//!     }
//! }
//!
//! alumet_dynamic::export_plugin!(MyPlugin, name = "my_plugin", version = "0.1.0");
//! ```
//!
//! A panic in any of these methods is caught at the boundary: in `poll` or `write` it is
//! a fatal error of that element (the agent stops it and goes on), in `init` or `start`
//! a failure of the plugin.

#[doc(hidden)]
pub mod __private;
mod points;

use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use crate::abi::*;

pub use points::{Attribute, MetricId, MetricValue, Point, PointView, Value};

/// The agent's table, set by `alumet_plugin_init`.
static HOST: AtomicPtr<AlumetHost> = AtomicPtr::new(std::ptr::null_mut());

fn host() -> Option<&'static AlumetHost> {
    // SAFETY: null, or the table the agent gave to init, valid until the plugin is dropped
    // (alumet.h), which outlives every call that reads it.
    unsafe { HOST.load(Ordering::Acquire).as_ref() }
}

/// The error of a plugin, a source or an output: a message and how bad it is.
///
/// `?` turns any error that implements `Display` into a fatal one.
#[derive(Debug)]
pub struct Error {
    status: AlumetStatus,
    message: String,
}

impl Error {
    /// A failure: the element stops (from `poll`, `write`), or the agent does not start.
    pub fn fatal(message: impl fmt::Display) -> Self {
        Error {
            status: ALUMET_ERROR,
            message: message.to_string(),
        }
    }

    /// A failure of `poll` or `write` that may go away: the element keeps its schedule.
    pub fn retry(message: impl fmt::Display) -> Self {
        Error {
            status: ALUMET_RETRY,
            message: message.to_string(),
        }
    }

    /// From `start`: the hardware is absent here; the agent warns and runs the others.
    pub fn unavailable(message: impl fmt::Display) -> Self {
        Error {
            status: ALUMET_UNAVAILABLE,
            message: message.to_string(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: fmt::Display> From<E> for Error {
    fn from(e: E) -> Self {
        Error::fatal(e)
    }
}

/// The result of the SDK's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A dynamic plugin. Export it with [`export_plugin!`](crate::export_plugin).
pub trait Plugin: Sized + Send + 'static {
    /// Creates the plugin from its config: its `[plugins.NAME]` table as TOML text,
    /// without `path` and `enable`. Check the config here, open nothing yet.
    fn init(config_toml: &str) -> Result<Self>;

    /// Creates metrics and adds sources and outputs.
    fn start(&mut self, alumet: &mut Registrar<'_>) -> Result<()>;

    /// Called at shutdown, after every queue is drained.
    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Measures something when polled. Dropped at shutdown.
pub trait Source: Send + 'static {
    /// Pushes the points measured now. `timestamp_ns` is the time of this poll
    /// (nanoseconds since the Unix epoch).
    fn poll(&mut self, acc: &mut Accumulator<'_>, timestamp_ns: u64) -> Result<()>;
}

/// Writes the points of every buffer somewhere; runs on its own thread.
pub trait Output: Send + 'static {
    /// Reads one buffer.
    fn write(&mut self, buffer: &mut Buffer<'_>) -> Result<()>;

    /// Called once after the last write, at shutdown.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Through it, a starting plugin creates metrics and adds its elements.
pub struct Registrar<'a> {
    raw: *mut AlumetRegistrar,
    error: *mut AlumetError,
    host: &'static AlumetHost,
    _call: PhantomData<&'a mut ()>,
}

impl Registrar<'_> {
    /// Calls a registration function of the agent, which reports a failure through the
    /// error handle of the current start call.
    fn call(&self, f: impl FnOnce(*mut AlumetError) -> AlumetStatus) -> Result<()> {
        let status = f(self.error);
        if status == ALUMET_OK {
            return Ok(());
        }
        // SAFETY: the error handle of the current start call.
        let message = unsafe { (self.host.error_message)(self.error).as_str() }
            .unwrap_or("")
            .to_owned();
        Err(Error { status, message })
    }
}

impl Registrar<'_> {
    /// Creates a metric: a `snake_case` name, a UCUM unit (`"W"`, `"J"`, `"By"`, `"1"`)
    /// and a one-sentence description.
    pub fn create_metric<T: MetricValue>(
        &mut self,
        name: &str,
        unit: &str,
        description: &str,
    ) -> Result<MetricId<T>> {
        let mut id = 0u32;
        let (raw, create) = (self.raw, self.host.create_metric);
        self.call(|error| {
            // SAFETY: the registrar handle of the current start call; strings and the
            // id outlive the call.
            unsafe {
                create(
                    raw,
                    AlumetStr::new(name),
                    AlumetStr::new(unit),
                    T::VALUE_TYPE,
                    AlumetStr::new(description),
                    &mut id,
                    error,
                )
            }
        })?;
        Ok(MetricId::new(id))
    }

    /// Adds a source polled every `poll_interval`, whose points are handed on every
    /// `flush_interval` (`None`: after every poll).
    pub fn add_source<S: Source>(
        &mut self,
        name: &str,
        poll_interval: Duration,
        flush_interval: Option<Duration>,
        source: S,
    ) -> Result<()> {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        let data = Box::into_raw(Box::new(source)).cast::<c_void>();
        let (raw, add) = (self.raw, self.host.add_source);
        self.call(|error| {
            // SAFETY: the registrar handle of the current start call; the agent takes
            // `data` and frees it with the matching drop function.
            unsafe {
                add(
                    raw,
                    AlumetStr::new(name),
                    nanos(poll_interval),
                    flush_interval.map_or(0, nanos),
                    Some(__private::poll::<S>),
                    data,
                    Some(__private::drop_box::<S>),
                    error,
                )
            }
        })
    }

    /// Adds an output, run on its own thread.
    pub fn add_output<O: Output>(&mut self, name: &str, output: O) -> Result<()> {
        let data = Box::into_raw(Box::new(output)).cast::<c_void>();
        let (raw, add) = (self.raw, self.host.add_output);
        self.call(|error| {
            // SAFETY: as in add_source.
            unsafe {
                add(
                    raw,
                    AlumetStr::new(name),
                    Some(__private::write::<O>),
                    Some(__private::finish::<O>),
                    data,
                    Some(__private::drop_box::<O>),
                    error,
                )
            }
        })
    }
}

/// Where a source pushes its points, during a poll.
pub struct Accumulator<'a> {
    raw: *mut AlumetAccumulator,
    host: &'static AlumetHost,
    _call: PhantomData<&'a mut ()>,
}

impl Accumulator<'_> {
    /// Pushes a point. An error (a metric of another plugin...) also fails the poll.
    pub fn push(&mut self, point: Point<'_>) -> Result<()> {
        // SAFETY: the accumulator handle of the current poll; the point and what it
        // borrows outlive the call.
        let status = unsafe { (self.host.push)(self.raw, point.as_abi()) };
        if status == ALUMET_OK {
            Ok(())
        } else {
            Err(Error::fatal(
                "the agent rejected the point (its reason is in the agent's log)",
            ))
        }
    }
}

/// The buffer an output reads, during a write.
pub struct Buffer<'a> {
    raw: *mut AlumetBuffer,
    host: &'static AlumetHost,
    _call: PhantomData<&'a mut ()>,
}

impl Buffer<'_> {
    /// The number of points.
    pub fn len(&self) -> usize {
        // SAFETY: the buffer handle of the current write.
        unsafe { (self.host.buffer_len)(self.raw) }
    }

    /// Whether there is no point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The point at `index`; it borrows the buffer until it is dropped.
    pub fn get(&mut self, index: usize) -> Option<PointView<'_>> {
        let mut raw = AlumetPoint::empty();
        // SAFETY: the buffer handle of the current write, and a point to fill.
        let status = unsafe { (self.host.buffer_get)(self.raw, index, &mut raw) };
        if status != ALUMET_OK {
            return None;
        }
        // SAFETY: the buffer handle of the current write; the name is valid until it returns.
        let name = unsafe { (self.host.metric_name)(self.raw, raw.metric).as_str() }.unwrap_or("");
        // SAFETY: filled by the agent, its strings valid until the next get (the view
        // borrows `self` mutably, so there is none while it lives).
        Some(unsafe { PointView::from_abi(raw, name) })
    }

    /// Calls `f` with every point, in order.
    pub fn for_each(&mut self, mut f: impl FnMut(&PointView<'_>)) {
        for i in 0..self.len() {
            if let Some(p) = self.get(i) {
                f(&p);
            }
        }
    }

    /// The name of a metric, by the id found in a point (empty for an unknown id).
    pub fn metric_name(&self, metric: u32) -> &str {
        // SAFETY: the buffer handle of the current write; the name is valid until the
        // write returns, which the borrow of `self` ensures.
        unsafe { (self.host.metric_name)(self.raw, metric).as_str() }.unwrap_or("")
    }
}

/// Log levels for [`log`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something is wrong but the plugin goes on.
    Warn = 2,
    /// What an operator wants to know.
    Info = 3,
    /// Details.
    Debug = 4,
}

/// Logs a line through the agent's logger (to stderr before `init`), with the plugin's
/// name (the `NAME` of its `[plugins.NAME]` table) as the target when called from one of
/// the plugin's methods; from a thread the plugin started itself, the target is
/// `alumet_dynamic::plugin`.
pub fn log(level: Level, message: &str) {
    match host() {
        // SAFETY: the agent's log function, with a string valid for the call.
        Some(h) => unsafe { (h.log)(level as u32, AlumetStr::new(message)) },
        None => eprintln!("{message}"),
    }
}
