//! The small interface the plugin needs from NVML, so that the same source code runs on
//! the real library ([`crate::nvml::NvmlBackend`]) and on a fake ([`crate::fake`]).

use std::fmt;

/// Why a query failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuError {
    /// The device does not offer this measurement: stop asking for it.
    NotSupported,
    /// The device is gone (fell off the bus, needs a reset): stop measuring it.
    Lost(String),
    /// Anything else; the next poll tries again.
    Other(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NotSupported => f.write_str("not supported by this device"),
            GpuError::Lost(e) => write!(f, "the GPU is lost: {e}"),
            GpuError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for GpuError {}

/// Memory of the device, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Allocated.
    pub used: u64,
    /// Not allocated.
    pub free: u64,
    /// Installed.
    pub total: u64,
    /// Reserved by the driver.
    pub reserved: u64,
}

/// A process that uses the device, with its memory when the driver tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Its pid.
    pub pid: u32,
    /// GPU memory it uses, in bytes.
    pub used_bytes: Option<u64>,
}

/// One per-process utilization sample, in percent of the sample period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessSample {
    /// The process.
    pub pid: u32,
    /// When the driver took it, in µs since the Unix epoch.
    pub timestamp_us: u64,
    /// Streaming multiprocessors (compute, 3D).
    pub sm: u32,
    /// Memory reads and writes.
    pub memory: u32,
    /// Video encoder.
    pub encoder: u32,
    /// Video decoder.
    pub decoder: u32,
}

/// Utilization of the whole device, in percent of the driver's sample period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utilization {
    /// Time a kernel ran.
    pub gpu: u32,
    /// Time device memory was read or written.
    pub memory: u32,
}

/// A clock domain of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// Graphics.
    Graphics,
    /// Streaming multiprocessors.
    Sm,
    /// Memory.
    Memory,
    /// Video encoder and decoder.
    Video,
}

impl ClockKind {
    /// Every clock, in the order they are reported.
    pub const ALL: [ClockKind; 4] = [
        ClockKind::Graphics,
        ClockKind::Sm,
        ClockKind::Memory,
        ClockKind::Video,
    ];

    /// The value of the `clock_type` attribute.
    pub fn name(self) -> &'static str {
        match self {
            ClockKind::Graphics => "graphics",
            ClockKind::Sm => "sm",
            ClockKind::Memory => "memory",
            ClockKind::Video => "video",
        }
    }
}

/// The GPUs of the machine.
pub trait Backend: Send {
    /// How many devices the driver sees.
    fn device_count(&self) -> Result<u32, GpuError>;
    /// Opens device number `index` (0-based).
    fn open(&self, index: u32) -> Result<Box<dyn Gpu>, GpuError>;
}

/// One GPU. Each method is one driver query.
pub trait Gpu: Send {
    /// Its PCI bus id, for example `00000000:3B:00.0`.
    fn bus_id(&self) -> Result<String, GpuError>;
    /// Its product name.
    fn name(&self) -> Result<String, GpuError>;
    /// Energy used since the driver was loaded, in millijoules.
    fn total_energy_mj(&self) -> Result<u64, GpuError>;
    /// Power now, in milliwatts.
    fn power_mw(&self) -> Result<u32, GpuError>;
    /// Temperature of the die, in degrees Celsius.
    fn temperature_c(&self) -> Result<u32, GpuError>;
    /// Device utilization.
    fn utilization(&self) -> Result<Utilization, GpuError>;
    /// Device memory.
    fn memory(&self) -> Result<MemoryInfo, GpuError>;
    /// A clock's frequency, in MHz.
    fn clock_mhz(&self, clock: ClockKind) -> Result<u32, GpuError>;
    /// Processes with a compute context on the device.
    fn compute_processes(&self) -> Result<Vec<ProcessMemory>, GpuError>;
    /// Processes with a graphics context on the device.
    fn graphics_processes(&self) -> Result<Vec<ProcessMemory>, GpuError>;
    /// Per-process utilization samples taken after `since_us` (µs since the Unix epoch).
    fn process_utilization(&self, since_us: u64) -> Result<Vec<ProcessSample>, GpuError>;
}
