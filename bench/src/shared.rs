//! What the bench binaries share (included with `#[path]`): a global allocator that counts
//! the allocations of the whole process, to check that a hot path allocates nothing once
//! warm, and an output that counts the points a pipeline delivers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alumet::measurement::MeasurementBuffer;
use alumet::pipeline::{ElementError, OutputContext, PipelineBuilder};
use alumet::test_util::TestPlugin;

/// Adds to `builder` a plugin `bench` with an output that counts the points it receives;
/// returns the count.
pub fn counting_output(builder: &mut PipelineBuilder) -> Arc<AtomicU64> {
    let written = Arc::new(AtomicU64::new(0));
    let w2 = Arc::clone(&written);
    builder.plugin(Box::new(TestPlugin::new("bench", move |alumet| {
        let output = move |b: &MeasurementBuffer, _: &OutputContext| -> Result<(), ElementError> {
            w2.fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(())
        };
        alumet.add_output("count", output)?;
        Ok(())
    })));
    written
}

/// Counts the allocations of the whole process.
pub struct Counting;

pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
