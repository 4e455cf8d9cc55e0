//! The metrics, named as the public Alumet's NVIDIA plugin names them so that dashboards
//! carry over.

use alumet::prelude::*;

use crate::backend::ClockKind;

/// Metrics of every mode.
#[derive(Clone)]
pub struct EnergyMetrics {
    /// `nvml_energy_consumption`, mJ since the previous reading.
    pub energy: MetricId<f64>,
    /// `nvml_instant_power`, mW.
    pub power: MetricId<u64>,
}

/// The metrics of `full` mode.
#[derive(Clone)]
pub struct FullMetrics {
    /// `nvml_temperature_gpu`, °C.
    pub temperature: MetricId<u64>,
    /// `nvml_gpu_utilization`, %.
    pub gpu_utilization: MetricId<f64>,
    /// `nvml_memory_utilization`, %: the device's, and per process.
    pub memory_utilization: MetricId<f64>,
    /// `nvml_gpu_memory_info`, bytes, attribute `kind`.
    pub memory: MetricId<u64>,
    /// `kind` = used, free, total, reserved.
    pub memory_kinds: [Attributes; 4],
    /// `nvml_clock_info`, MHz, attribute `clock_type`.
    pub clock: MetricId<u64>,
    /// `clock_type` of each [`ClockKind::ALL`].
    pub clock_types: [Attributes; 4],
    /// `nvml_n_compute_processes`.
    pub n_compute: MetricId<u64>,
    /// `nvml_n_graphic_processes`.
    pub n_graphic: MetricId<u64>,
    /// `nvml_used_gpu_memory`, bytes, per process.
    pub process_memory: MetricId<u64>,
    /// `nvml_sm_utilization`, %, per process.
    pub sm_utilization: MetricId<f64>,
    /// `nvml_encoder_utilization`, %, per process.
    pub encoder_utilization: MetricId<f64>,
    /// `nvml_decoder_utilization`, %, per process.
    pub decoder_utilization: MetricId<f64>,
}

impl EnergyMetrics {
    /// Registers them.
    pub fn register(alumet: &mut Registrar<'_>) -> anyhow::Result<Self> {
        Ok(EnergyMetrics {
            energy: alumet.create_metric(
                "nvml_energy_consumption",
                Unit::MilliJoule,
                "energy used by the GPU since the previous reading",
            )?,
            power: alumet.create_metric(
                "nvml_instant_power",
                Unit::MilliWatt,
                "power drawn by the GPU and its memory",
            )?,
        })
    }
}

impl FullMetrics {
    /// Registers them.
    pub fn register(alumet: &mut Registrar<'_>) -> anyhow::Result<Self> {
        let attrs = |key: &str, values: [&str; 4]| values.map(|v| Attributes::new([(key, v)]));
        Ok(FullMetrics {
            temperature: alumet.create_metric(
                "nvml_temperature_gpu",
                Unit::DegreeCelsius,
                "temperature of the GPU die",
            )?,
            gpu_utilization: alumet.create_metric(
                "nvml_gpu_utilization",
                Unit::Percent,
                "time a kernel ran on the GPU, over the driver's sample period",
            )?,
            memory_utilization: alumet.create_metric(
                "nvml_memory_utilization",
                Unit::Percent,
                "time GPU memory was read or written, over the driver's sample period (per GPU, and per process)",
            )?,
            memory: alumet.create_metric(
                "nvml_gpu_memory_info",
                Unit::Byte,
                "GPU memory (attribute kind: used, free, total, reserved)",
            )?,
            memory_kinds: attrs("kind", ["used", "free", "total", "reserved"]),
            clock: alumet.create_metric(
                "nvml_clock_info",
                Unit::MegaHertz,
                "clock frequency (attribute clock_type: graphics, sm, memory, video)",
            )?,
            clock_types: attrs("clock_type", ClockKind::ALL.map(ClockKind::name)),
            n_compute: alumet.create_metric(
                "nvml_n_compute_processes",
                Unit::Unity,
                "processes with a compute context on the GPU",
            )?,
            n_graphic: alumet.create_metric(
                "nvml_n_graphic_processes",
                Unit::Unity,
                "processes with a graphics context on the GPU",
            )?,
            process_memory: alumet.create_metric(
                "nvml_used_gpu_memory",
                Unit::Byte,
                "GPU memory used by the process",
            )?,
            sm_utilization: alumet.create_metric(
                "nvml_sm_utilization",
                Unit::Percent,
                "time the process used the GPU's streaming multiprocessors, mean of the driver's samples since the previous reading",
            )?,
            encoder_utilization: alumet.create_metric(
                "nvml_encoder_utilization",
                Unit::Percent,
                "time the process used the video encoder, mean of the driver's samples since the previous reading",
            )?,
            decoder_utilization: alumet.create_metric(
                "nvml_decoder_utilization",
                Unit::Percent,
                "time the process used the video decoder, mean of the driver's samples since the previous reading",
            )?,
        })
    }
}
