//! The agent's functions that a plugin calls (the `AlumetHost` table), and the structs
//! behind the opaque handles it receives. None of them lets a panic cross the boundary.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alumet::measurement::{MeasurementAccumulator, MeasurementBuffer, ValueType};
use alumet::metrics::Unit;
use alumet::pipeline::Trigger;
use alumet::plugin::Registrar;

use crate::abi::*;

use super::convert::{point_from_abi, point_to_abi, LabelCache, MetricTable};
use super::elements::{DynOutput, DynSource, ElementData};
use super::plugin::Instance;

/// The table given to every plugin.
pub(crate) static HOST: AlumetHost = AlumetHost {
    abi_version: ALUMET_ABI_VERSION,
    set_error,
    error_message,
    log,
    create_metric,
    add_source,
    add_output,
    push,
    buffer_len,
    buffer_get,
    metric_name,
};

/// Behind `AlumetError*`: the message of a failing call.
#[derive(Default)]
pub(crate) struct ErrorSlot {
    message: Option<String>,
}

impl ErrorSlot {
    pub(crate) fn as_abi(&mut self) -> *mut AlumetError {
        (self as *mut ErrorSlot).cast()
    }

    /// The message the plugin set, or one that says it set none.
    pub(crate) fn take_message(&mut self, status: AlumetStatus) -> String {
        self.message
            .take()
            .unwrap_or_else(|| format!("the plugin returned status {status} and no message"))
    }
}

/// Behind `AlumetRegistrar*`, during `alumet_plugin_start`.
pub(crate) struct RegistrarCtx<'r, 'a> {
    pub(crate) registrar: &'r mut Registrar<'a>,
    pub(crate) instance: &'r Arc<Instance>,
    /// The metrics created so far by this start.
    pub(crate) created: MetricTable,
    /// Where the sources find the metrics, once start returns.
    pub(crate) table: &'r Arc<OnceLock<MetricTable>>,
}

/// Behind `AlumetAccumulator*`, during a poll.
pub(crate) struct AccumulatorCtx<'a> {
    pub(crate) acc: &'a mut MeasurementAccumulator,
    pub(crate) metrics: &'a MetricTable,
    pub(crate) labels: &'a mut LabelCache,
    /// The first rejected point's reason: it fails the poll.
    pub(crate) error: Option<String>,
}

/// Behind `AlumetBuffer*`, during a write.
pub(crate) struct BufferCtx<'a> {
    pub(crate) buffer: &'a MeasurementBuffer,
    pub(crate) names: &'a [Box<str>],
    pub(crate) scratch: &'a mut String,
    pub(crate) attributes: &'a mut Vec<AlumetAttribute>,
}

/// Runs `f`, turning a panic into `fallback`.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Sets the message of `error` (if non-null) and returns `ALUMET_ERROR`.
///
/// # Safety
/// `error` is null or an `AlumetError*` given by the agent for the current call.
unsafe fn fail(error: *mut AlumetError, message: impl Into<String>) -> AlumetStatus {
    // SAFETY: forwarded from the caller.
    if let Some(slot) = unsafe { error.cast::<ErrorSlot>().as_mut() } {
        slot.message = Some(message.into());
    }
    ALUMET_ERROR
}

/// # Safety
/// As alumet.h says for the string.
unsafe fn arg<'a>(s: AlumetStr, what: &str) -> Result<&'a str, String> {
    // SAFETY: forwarded from the caller.
    unsafe { s.as_str() }.map_err(|e| format!("the {what} is not UTF-8: {e}"))
}

unsafe extern "C" fn set_error(error: *mut AlumetError, message: AlumetStr) {
    guard((), || {
        // SAFETY: the plugin passes a string valid for this call, and the handle it got.
        let text = unsafe { message.as_str() }.map_or_else(
            |_| "(a message that is not UTF-8)".to_owned(),
            str::to_owned,
        );
        // SAFETY: as above.
        unsafe { fail(error, text) };
    })
}

unsafe extern "C" fn error_message(error: *const AlumetError) -> AlumetStr {
    guard(AlumetStr::EMPTY, || {
        // SAFETY: an error handle the agent gave for the current call (checked for null).
        let slot = unsafe { error.cast::<ErrorSlot>().as_ref() };
        slot.and_then(|s| s.message.as_deref())
            .map_or(AlumetStr::EMPTY, AlumetStr::new)
    })
}

unsafe extern "C" fn log(level: u32, message: AlumetStr) {
    guard((), || {
        // SAFETY: the plugin passes a string valid for this call.
        let Ok(text) = (unsafe { message.as_str() }) else {
            return;
        };
        let level = match level {
            ALUMET_LOG_ERROR => log::Level::Error,
            ALUMET_LOG_WARN => log::Level::Warn,
            ALUMET_LOG_INFO => log::Level::Info,
            ALUMET_LOG_DEBUG => log::Level::Debug,
            _ => log::Level::Trace,
        };
        // The plugin's name is the target (`RUST_LOG=NAME=debug` selects its lines); a
        // thread the plugin started itself runs no plugin of the agent's.
        super::scope::with_current(|plugin| match plugin {
            Some(name) => log::log!(target: name, level, "{text}"),
            None => {
                log::log!(target: "alumet_dynamic::plugin", level, "(a thread of a dynamic plugin) {text}")
            }
        });
    })
}

/// # Safety
/// As alumet.h says for the strings.
unsafe fn metric_strings<'a>(
    name: AlumetStr,
    unit: AlumetStr,
    description: AlumetStr,
) -> Result<(&'a str, &'a str, &'a str), String> {
    // SAFETY: forwarded from the caller.
    unsafe {
        Ok((
            arg(name, "metric name")?,
            arg(unit, "unit")?,
            arg(description, "description")?,
        ))
    }
}

unsafe extern "C" fn create_metric(
    registrar: *mut AlumetRegistrar,
    name: AlumetStr,
    unit: AlumetStr,
    value_type: u32,
    description: AlumetStr,
    metric: *mut u32,
    error: *mut AlumetError,
) -> AlumetStatus {
    guard(ALUMET_ERROR, || {
        // SAFETY: during start, `registrar` is the RegistrarCtx the agent gave the plugin.
        let Some(ctx) = (unsafe { registrar.cast::<RegistrarCtx<'_, '_>>().as_mut() }) else {
            // SAFETY: the plugin's error handle.
            return unsafe { fail(error, "create_metric: the registrar is NULL") };
        };
        // SAFETY: the plugin's strings, valid for this call.
        let strings = unsafe { metric_strings(name, unit, description) };
        let (name, unit, description) = match strings {
            Ok(s) => s,
            // SAFETY: the plugin's error handle.
            Err(e) => return unsafe { fail(error, e) },
        };
        let unit = Unit::from_str(unit).unwrap_or(Unit::Unity);
        let created = match value_type {
            ALUMET_U64 => ctx
                .registrar
                .create_metric::<u64>(name, unit, description)
                .map(|id| (id.raw(), ValueType::U64)),
            ALUMET_F64 => ctx
                .registrar
                .create_metric::<f64>(name, unit, description)
                .map(|id| (id.raw(), ValueType::F64)),
            other => {
                let msg = format!("metric `{name}`: value type {other} is neither ALUMET_U64 (0) nor ALUMET_F64 (1)");
                // SAFETY: the plugin's error handle.
                return unsafe { fail(error, msg) };
            }
        };
        match created {
            Ok((id, vt)) => {
                ctx.created.insert(id, vt);
                // SAFETY: the plugin passes a pointer to a u32 it owns (checked for null).
                if let Some(out) = unsafe { metric.as_mut() } {
                    *out = id.index() as u32;
                }
                ALUMET_OK
            }
            // SAFETY: the plugin's error handle.
            Err(e) => unsafe { fail(error, e.to_string()) },
        }
    })
}

fn interval(ns: u64) -> Option<Duration> {
    (ns > 0).then(|| Duration::from_nanos(ns))
}

/// What `add_source` and `add_output` share: the registrar, ownership of `data` (from
/// here on, dropping it calls `drop_data`, also when the registration fails), the
/// element's name; `register` does the rest and returns the message of a failure.
///
/// # Safety
/// The arguments as the plugin passed them to `add_source` or `add_output` (`kind`).
unsafe fn register_element(
    registrar: *mut AlumetRegistrar,
    name: AlumetStr,
    data: *mut c_void,
    drop_data: Option<AlumetDropFn>,
    error: *mut AlumetError,
    kind: &str,
    register: impl FnOnce(&mut RegistrarCtx<'_, '_>, &str, ElementData) -> Result<(), String>,
) -> AlumetStatus {
    guard(ALUMET_ERROR, || {
        // SAFETY: during start, `registrar` is the RegistrarCtx the agent gave the plugin.
        let Some(ctx) = (unsafe { registrar.cast::<RegistrarCtx<'_, '_>>().as_mut() }) else {
            // SAFETY: the plugin's error handle.
            return unsafe { fail(error, format!("add_{kind}: the registrar is NULL")) };
        };
        let data = ElementData::new(data, drop_data, Arc::clone(ctx.instance));
        // SAFETY: the plugin's string, valid for this call.
        let name = match unsafe { arg(name, &format!("{kind} name")) } {
            Ok(n) => n,
            // SAFETY: the plugin's error handle.
            Err(e) => return unsafe { fail(error, e) },
        };
        match register(ctx, name, data) {
            Ok(()) => ALUMET_OK,
            // SAFETY: the plugin's error handle.
            Err(e) => unsafe { fail(error, e) },
        }
    })
}

#[allow(clippy::too_many_arguments)] // The ABI's signature.
unsafe extern "C" fn add_source(
    registrar: *mut AlumetRegistrar,
    name: AlumetStr,
    poll_interval_ns: u64,
    flush_interval_ns: u64,
    poll: Option<AlumetPollFn>,
    data: *mut c_void,
    drop_data: Option<AlumetDropFn>,
    error: *mut AlumetError,
) -> AlumetStatus {
    let register = |ctx: &mut RegistrarCtx<'_, '_>, name: &str, data| {
        let poll = poll.ok_or_else(|| format!("source `{name}`: poll is NULL"))?;
        let trigger = match (interval(poll_interval_ns), interval(flush_interval_ns)) {
            (Some(p), Some(f)) => Trigger::every(p).flush_every(f),
            (Some(p), None) => Trigger::every(p),
            (None, Some(f)) => Trigger::manual().flush_every(f),
            (None, None) => Trigger::manual(),
        };
        let source = DynSource::new(poll, data, Arc::clone(ctx.table));
        ctx.registrar
            .add_source(name, source, trigger)
            .map(|_id| ())
            .map_err(|e| e.to_string())
    };
    // SAFETY: the plugin's arguments, as the ABI defines them.
    unsafe { register_element(registrar, name, data, drop_data, error, "source", register) }
}

unsafe extern "C" fn add_output(
    registrar: *mut AlumetRegistrar,
    name: AlumetStr,
    write: Option<AlumetWriteFn>,
    finish: Option<AlumetFinishFn>,
    data: *mut c_void,
    drop_data: Option<AlumetDropFn>,
    error: *mut AlumetError,
) -> AlumetStatus {
    let register = |ctx: &mut RegistrarCtx<'_, '_>, name: &str, data| {
        let write = write.ok_or_else(|| format!("output `{name}`: write is NULL"))?;
        let output = DynOutput::new(write, finish, data);
        ctx.registrar
            .add_output(name, output)
            .map_err(|e| e.to_string())
    };
    // SAFETY: the plugin's arguments, as the ABI defines them.
    unsafe { register_element(registrar, name, data, drop_data, error, "output", register) }
}

unsafe extern "C" fn push(acc: *mut AlumetAccumulator, point: *const AlumetPoint) -> AlumetStatus {
    guard(ALUMET_ERROR, || {
        // SAFETY: during a poll, `acc` is the AccumulatorCtx the agent gave the source.
        let Some(ctx) = (unsafe { acc.cast::<AccumulatorCtx<'_>>().as_mut() }) else {
            return ALUMET_ERROR;
        };
        // SAFETY: the plugin passes a point valid for this call (checked for null).
        let Some(point) = (unsafe { point.as_ref() }) else {
            ctx.error
                .get_or_insert_with(|| "push: the point is NULL".into());
            return ALUMET_ERROR;
        };
        // SAFETY: the point's strings and attributes are valid for this call (alumet.h).
        match unsafe { point_from_abi(point, ctx.metrics, ctx.labels) } {
            Ok(p) => {
                ctx.acc.push(p);
                ALUMET_OK
            }
            Err(e) => {
                ctx.error.get_or_insert(e);
                ALUMET_ERROR
            }
        }
    })
}

unsafe extern "C" fn buffer_len(buffer: *const AlumetBuffer) -> usize {
    guard(0, || {
        // SAFETY: during a write, `buffer` is the BufferCtx the agent gave the output.
        unsafe { buffer.cast::<BufferCtx<'_>>().as_ref() }.map_or(0, |b| b.buffer.len())
    })
}

unsafe extern "C" fn buffer_get(
    buffer: *mut AlumetBuffer,
    index: usize,
    point: *mut AlumetPoint,
) -> AlumetStatus {
    guard(ALUMET_ERROR, || {
        // SAFETY: during a write, `buffer` is the BufferCtx the agent gave the output.
        let Some(ctx) = (unsafe { buffer.cast::<BufferCtx<'_>>().as_mut() }) else {
            return ALUMET_ERROR;
        };
        // SAFETY: the plugin passes a point it owns, for writing (checked for null).
        let (Some(p), Some(out)) = (ctx.buffer.as_slice().get(index), unsafe { point.as_mut() })
        else {
            return ALUMET_ERROR;
        };
        *out = point_to_abi(p, ctx.scratch, ctx.attributes);
        ALUMET_OK
    })
}

unsafe extern "C" fn metric_name(buffer: *const AlumetBuffer, metric: u32) -> AlumetStr {
    guard(AlumetStr::EMPTY, || {
        // SAFETY: during a write, `buffer` is the BufferCtx the agent gave the output.
        let Some(ctx) = (unsafe { buffer.cast::<BufferCtx<'_>>().as_ref() }) else {
            return AlumetStr::EMPTY;
        };
        ctx.names
            .get(metric as usize)
            .map_or(AlumetStr::EMPTY, |n| AlumetStr::new(n))
    })
}
