//! The real backend: NVML, loaded at run time (`libnvidia-ml.so.1`) by `nvml-wrapper`.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use alumet::plugin::Unavailable;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::{Device, Nvml};

use crate::backend::*;

/// NVML, shared by the sources of every device.
pub struct NvmlBackend {
    nvml: Arc<Nvml>,
}

impl NvmlBackend {
    /// Loads the library (`library`, or the system's `libnvidia-ml.so.1` when `None`) and
    /// initializes it. A missing library or driver is [`Unavailable`].
    pub fn load(library: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = Nvml::builder();
        if let Some(path) = library {
            builder.lib_path(OsStr::new(path));
        }
        let name = library.map_or("libnvidia-ml.so.1".into(), |p| p.display().to_string());
        match builder.init() {
            Ok(nvml) => Ok(NvmlBackend {
                nvml: Arc::new(nvml),
            }),
            Err(e) => Err(load_error(&name, e)),
        }
    }
}

/// Why NVML could not start, as the error the agent shows.
fn load_error(library: &str, e: NvmlError) -> anyhow::Error {
    let unavailable = |reason: String, fix: &str| anyhow::Error::new(Unavailable::new(reason, fix));
    match e {
        NvmlError::LibloadingError(e) => unavailable(
            format!("cannot load the NVML library {library}: {e}"),
            "install the NVIDIA driver (it ships libnvidia-ml.so.1), or set `nvml_library` to where the library is",
        ),
        NvmlError::LibraryNotFound => unavailable(
            format!("the NVML library {library} was not found"),
            "install the NVIDIA driver, or set `nvml_library`",
        ),
        NvmlError::DriverNotLoaded => unavailable(
            "the NVIDIA driver is not loaded".into(),
            "load it (`modprobe nvidia`) or disable the nvidia plugin on machines without an NVIDIA GPU",
        ),
        NvmlError::NoPermission => anyhow::anyhow!(
            "NVML refused access to the driver: run the agent as a user allowed to open /dev/nvidia*"
        ),
        other => anyhow::anyhow!("initializing NVML from {library}: {other}"),
    }
}

impl Backend for NvmlBackend {
    fn device_count(&self) -> Result<u32, GpuError> {
        self.nvml.device_count().map_err(convert)
    }

    fn open(&self, index: u32) -> Result<Box<dyn Gpu>, GpuError> {
        // Checks that the device answers now; each query looks it up again (a table
        // lookup in the library) because `Device` borrows the `Nvml` it came from.
        self.nvml.device_by_index(index).map_err(convert)?;
        Ok(Box::new(NvmlGpu {
            nvml: Arc::clone(&self.nvml),
            index,
        }))
    }
}

/// One device of [`NvmlBackend`].
struct NvmlGpu {
    nvml: Arc<Nvml>,
    index: u32,
}

impl NvmlGpu {
    fn query<T>(&self, f: impl FnOnce(&Device<'_>) -> Result<T, NvmlError>) -> Result<T, GpuError> {
        let device = self.nvml.device_by_index(self.index).map_err(convert)?;
        f(&device).map_err(convert)
    }
}

fn convert(e: NvmlError) -> GpuError {
    match e {
        NvmlError::NotSupported | NvmlError::FunctionNotFound => GpuError::NotSupported,
        NvmlError::GpuLost | NvmlError::ResetRequired => GpuError::Lost(e.to_string()),
        other => GpuError::Other(other.to_string()),
    }
}

fn processes(list: Vec<ProcessInfo>) -> Vec<ProcessMemory> {
    list.into_iter()
        .map(|p| ProcessMemory {
            pid: p.pid,
            used_bytes: match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes),
                UsedGpuMemory::Unavailable => None,
            },
        })
        .collect()
}

impl Gpu for NvmlGpu {
    fn bus_id(&self) -> Result<String, GpuError> {
        self.query(|d| d.pci_info().map(|p| p.bus_id))
    }

    fn name(&self) -> Result<String, GpuError> {
        self.query(|d| d.name())
    }

    fn total_energy_mj(&self) -> Result<u64, GpuError> {
        self.query(|d| d.total_energy_consumption())
    }

    fn power_mw(&self) -> Result<u32, GpuError> {
        self.query(|d| d.power_usage())
    }

    fn temperature_c(&self) -> Result<u32, GpuError> {
        self.query(|d| d.temperature(TemperatureSensor::Gpu))
    }

    fn utilization(&self) -> Result<Utilization, GpuError> {
        self.query(|d| d.utilization_rates()).map(|u| Utilization {
            gpu: u.gpu,
            memory: u.memory,
        })
    }

    fn memory(&self) -> Result<MemoryInfo, GpuError> {
        self.query(|d| d.memory_info()).map(|m| MemoryInfo {
            used: m.used,
            free: m.free,
            total: m.total,
            reserved: m.reserved,
        })
    }

    fn clock_mhz(&self, clock: ClockKind) -> Result<u32, GpuError> {
        let clock = match clock {
            ClockKind::Graphics => Clock::Graphics,
            ClockKind::Sm => Clock::SM,
            ClockKind::Memory => Clock::Memory,
            ClockKind::Video => Clock::Video,
        };
        self.query(|d| d.clock_info(clock))
    }

    fn compute_processes(&self) -> Result<Vec<ProcessMemory>, GpuError> {
        self.query(|d| d.running_compute_processes()).map(processes)
    }

    fn graphics_processes(&self) -> Result<Vec<ProcessMemory>, GpuError> {
        self.query(|d| d.running_graphics_processes())
            .map(processes)
    }

    fn process_utilization(&self, since_us: u64) -> Result<Vec<ProcessSample>, GpuError> {
        let device = self.nvml.device_by_index(self.index).map_err(convert)?;
        let samples = match device.process_utilization_stats(since_us) {
            Ok(samples) => samples,
            // No sample after `since_us`: no process used the device since.
            Err(NvmlError::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(convert(e)),
        };
        Ok(samples
            .into_iter()
            .map(|s| ProcessSample {
                pid: s.pid,
                timestamp_us: s.timestamp,
                sm: s.sm_util,
                memory: s.mem_util,
                encoder: s.enc_util,
                decoder: s.dec_util,
            })
            .collect())
    }
}
