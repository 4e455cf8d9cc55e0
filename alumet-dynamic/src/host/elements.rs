//! The sources and outputs of a dynamic plugin, as the pipeline sees them.

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use alumet::measurement::{MeasurementAccumulator, MeasurementBuffer, Timestamp};
use alumet::pipeline::{ElementError, Output, OutputContext, Source};

use crate::abi::*;

use super::callbacks::{AccumulatorCtx, BufferCtx, ErrorSlot};
use super::convert::{LabelCache, MetricTable};
use super::plugin::Instance;
use super::scope::PluginScope;

/// The `data` of an element, owned by the agent: dropping it calls `drop_data` once. It
/// keeps the plugin (and so its library) alive.
pub(crate) struct ElementData {
    ptr: *mut c_void,
    drop: Option<AlumetDropFn>,
    instance: Arc<Instance>,
}

// SAFETY: alumet.h requires the data of an element to be usable from any thread (one call
// at a time, which `&mut self` on the element guarantees).
unsafe impl Send for ElementData {}

impl ElementData {
    pub(crate) fn new(
        ptr: *mut c_void,
        drop: Option<AlumetDropFn>,
        instance: Arc<Instance>,
    ) -> Self {
        ElementData {
            ptr,
            drop,
            instance,
        }
    }

    /// The current thread runs this element's plugin until the scope is dropped.
    fn scope(&self) -> PluginScope {
        PluginScope::enter(&self.instance.name)
    }
}

impl Drop for ElementData {
    fn drop(&mut self) {
        if let Some(drop) = self.drop {
            let _scope = self.scope();
            // SAFETY: called once, with the data the plugin registered, while its library
            // is loaded (the instance is dropped after this).
            unsafe { drop(self.ptr) };
        }
    }
}

/// Maps a plugin's status and message to the pipeline's error.
fn element_result(status: AlumetStatus, mut error: ErrorSlot) -> Result<(), ElementError> {
    match status {
        ALUMET_OK => Ok(()),
        ALUMET_RETRY => Err(ElementError::retryable(anyhow::anyhow!(
            error.take_message(status)
        ))),
        _ => Err(ElementError::fatal(anyhow::anyhow!(
            error.take_message(status)
        ))),
    }
}

/// A source of a dynamic plugin.
pub(crate) struct DynSource {
    poll: AlumetPollFn,
    data: ElementData,
    metrics: Arc<OnceLock<MetricTable>>,
    labels: LabelCache,
}

impl DynSource {
    pub(crate) fn new(
        poll: AlumetPollFn,
        data: ElementData,
        metrics: Arc<OnceLock<MetricTable>>,
    ) -> Self {
        DynSource {
            poll,
            data,
            metrics,
            labels: LabelCache::default(),
        }
    }
}

impl Source for DynSource {
    fn poll(
        &mut self,
        acc: &mut MeasurementAccumulator,
        timestamp: Timestamp,
    ) -> Result<(), ElementError> {
        let empty = MetricTable::default();
        let metrics = self.metrics.get().unwrap_or(&empty);
        let mut ctx = AccumulatorCtx {
            acc,
            metrics,
            labels: &mut self.labels,
            error: None,
        };
        let mut error = ErrorSlot::default();
        let handle = (&mut ctx as *mut AccumulatorCtx<'_>).cast::<AlumetAccumulator>();
        let _scope = self.data.scope();
        // SAFETY: the plugin's poll with its own data, one call at a time (&mut self); the
        // handles point to live structs for the duration of the call.
        let status = unsafe {
            (self.poll)(
                self.data.ptr,
                handle,
                timestamp.unix_nanos(),
                error.as_abi(),
            )
        };
        if let Some(reason) = ctx.error {
            return Err(ElementError::fatal(anyhow::anyhow!(
                "pushed an invalid point: {reason}"
            )));
        }
        element_result(status, error)
    }
}

/// An output of a dynamic plugin.
pub(crate) struct DynOutput {
    write: AlumetWriteFn,
    finish: Option<AlumetFinishFn>,
    data: ElementData,
    /// Metric names by index, built at the first write (the registry is complete then).
    names: Vec<Box<str>>,
    scratch: String,
    attributes: Vec<AlumetAttribute>,
}

// SAFETY: `attributes` only holds pointers during a write; the data is Send (ElementData).
unsafe impl Send for DynOutput {}

impl DynOutput {
    pub(crate) fn new(
        write: AlumetWriteFn,
        finish: Option<AlumetFinishFn>,
        data: ElementData,
    ) -> Self {
        DynOutput {
            write,
            finish,
            data,
            names: Vec::new(),
            scratch: String::new(),
            attributes: Vec::new(),
        }
    }
}

impl Output for DynOutput {
    fn write(
        &mut self,
        buffer: &MeasurementBuffer,
        ctx: &OutputContext,
    ) -> Result<(), ElementError> {
        if self.names.len() != ctx.metrics().len() {
            self.names = ctx
                .metrics()
                .iter()
                .map(|(_, m)| m.name.as_str().into())
                .collect();
        }
        let mut buf = BufferCtx {
            buffer,
            names: &self.names,
            scratch: &mut self.scratch,
            attributes: &mut self.attributes,
        };
        let mut error = ErrorSlot::default();
        let handle = (&mut buf as *mut BufferCtx<'_>).cast::<AlumetBuffer>();
        let _scope = self.data.scope();
        // SAFETY: the plugin's write with its own data, one call at a time (&mut self); the
        // handle points to a live struct for the duration of the call.
        let status = unsafe { (self.write)(self.data.ptr, handle, error.as_abi()) };
        self.attributes.clear();
        element_result(status, error)
    }

    fn finish(&mut self, _ctx: &OutputContext) -> Result<(), ElementError> {
        let Some(finish) = self.finish else {
            return Ok(());
        };
        let mut error = ErrorSlot::default();
        let _scope = self.data.scope();
        // SAFETY: the plugin's finish with its own data, once, after the last write.
        let status = unsafe { finish(self.data.ptr, error.as_abi()) };
        element_result(status, error)
    }
}
