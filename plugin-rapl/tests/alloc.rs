//! Reading is cheap: once running, a poll of the source allocates nothing (files stay
//! open, values are read into the readers' own buffers, points share their attributes).
#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use alumet::metrics::MetricRegistry;
use alumet::prelude::*;
use common::Fixture;
use plugin_rapl::{setup, Config, RaplSource};

/// Counts the allocations of the current thread while `COUNTING` is set.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_poll_allocates_nothing() {
    for case in ["intel-server-2s", "intel-laptop", "amd-epyc"] {
        let f = Fixture::copy(case, "alloc");
        let config = Config {
            sysfs_root: f.root().to_owned(),
            no_perf_events: true,
            ..Config::default()
        };
        let opened = setup::open(&config).unwrap();
        let mut metrics = MetricRegistry::new();
        let metric = metrics
            .register::<f64>("rapl_consumed_energy", Unit::Joule, "energy")
            .unwrap();
        let mut source = RaplSource::new(metric, opened.groups);
        let mut buffer = MeasurementBuffer::with_capacity(16);
        source
            .poll(buffer.as_accumulator(), Timestamp::now())
            .unwrap();
        COUNTING.with(|c| c.set(true));
        for _ in 0..100 {
            buffer.clear();
            source
                .poll(buffer.as_accumulator(), Timestamp::now())
                .unwrap();
        }
        COUNTING.with(|c| c.set(false));
        assert_eq!(buffer.len(), 4, "{case}");
        assert_eq!(ALLOCATIONS.with(Cell::get), 0, "{case}");
    }
}
