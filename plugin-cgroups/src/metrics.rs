//! The metrics of the plugin, registered once.
//!
//! `cpu_time_delta`, `cpu_percent` and `memory_usage` are also the procfs plugin's (for
//! processes): same name, unit, type and description, so that both plugins run together
//! (`tests/with_procfs.rs` checks it).

use alumet::metrics::shared;
use alumet::prelude::*;

/// The metric ids.
pub(crate) struct Metrics {
    pub(crate) cpu_time: MetricId<u64>,
    pub(crate) cpu_percent: MetricId<f64>,
    pub(crate) memory: MetricId<u64>,
    pub(crate) memory_max: MetricId<u64>,
    /// Anonymous, file, kernel stack, page tables (the public Alumet's names).
    pub(crate) memory_parts: [MetricId<u64>; 4],
    pub(crate) io: MetricId<u64>,
    pub(crate) pressure: MetricId<u64>,
    /// Every how many polls a source reads `memory.stat` and `*.pressure` (at its first
    /// poll, then every that many).
    pub(crate) details_every: u32,
}

impl Metrics {
    pub(crate) fn register(alumet: &mut Registrar<'_>, details_every: u32) -> anyhow::Result<Self> {
        Ok(Metrics {
            details_every,
            cpu_time: alumet.create_shared_metric(&shared::CPU_TIME_DELTA)?,
            cpu_percent: alumet.create_shared_metric(&shared::CPU_PERCENT)?,
            memory: alumet.create_shared_metric(&shared::MEMORY_USAGE)?,
            memory_max: alumet.create_metric(
                "memory_max",
                Unit::Byte,
                "memory limit of the control group (memory.max, memory.limit_in_bytes), where one is set",
            )?,
            memory_parts: [
                alumet.create_metric(
                    "cgroup_memory_anonymous",
                    Unit::Byte,
                    "anonymous memory of the control group: process heaps and stacks, not backed by a file (memory.stat anon, total_rss)",
                )?,
                alumet.create_metric(
                    "cgroup_memory_file",
                    Unit::Byte,
                    "page cache charged to the control group: file contents in memory (memory.stat file, total_cache)",
                )?,
                alumet.create_metric(
                    "cgroup_memory_kernel_stack",
                    Unit::Byte,
                    "kernel stacks of the tasks of the control group (memory.stat kernel_stack, v2)",
                )?,
                alumet.create_metric(
                    "cgroup_memory_pagetables",
                    Unit::Byte,
                    "page tables of the processes of the control group (memory.stat pagetables, v2)",
                )?,
            ],
            io: alumet.create_metric(
                "io_bytes_delta",
                Unit::Byte,
                "bytes the control group read from or wrote to block devices since the previous measurement (attribute kind: read, write)",
            )?,
            pressure: alumet.create_metric(
                "pressure_stall_time_delta",
                Unit::Microsecond,
                "time the tasks of the control group stalled waiting for a resource since the previous measurement (PSI; attributes pressure: cpu, memory, io; kind: some, full)",
            )?,
        })
    }
}
