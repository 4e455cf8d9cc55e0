//! A fake NVML for tests: devices whose readings a test sets between polls. It goes
//! through the same sources as the real library ([`crate::NvidiaPlugin::with_backend`]).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::*;

/// What a fake GPU answers. Each field is what the matching query returns.
#[derive(Clone, Debug)]
pub struct FakeState {
    /// Opening the device.
    pub open: Result<(), GpuError>,
    /// PCI bus id.
    pub bus_id: String,
    /// Total energy counter, mJ.
    pub energy_mj: Result<u64, GpuError>,
    /// Power, mW.
    pub power_mw: Result<u32, GpuError>,
    /// Temperature, °C.
    pub temperature_c: Result<u32, GpuError>,
    /// Utilization.
    pub utilization: Result<Utilization, GpuError>,
    /// Memory.
    pub memory: Result<MemoryInfo, GpuError>,
    /// Clocks in [`ClockKind::ALL`] order, MHz.
    pub clocks_mhz: Result<[u32; 4], GpuError>,
    /// Compute processes.
    pub compute: Result<Vec<ProcessMemory>, GpuError>,
    /// Graphics processes.
    pub graphics: Result<Vec<ProcessMemory>, GpuError>,
    /// Every per-process sample; a query returns those newer than its `since`.
    pub samples: Result<Vec<ProcessSample>, GpuError>,
}

impl FakeState {
    /// A healthy GPU with every feature, at bus id `bus_id`, idle.
    pub fn new(bus_id: &str) -> Self {
        FakeState {
            open: Ok(()),
            bus_id: bus_id.into(),
            energy_mj: Ok(0),
            power_mw: Ok(0),
            temperature_c: Ok(40),
            utilization: Ok(Utilization::default()),
            memory: Ok(MemoryInfo::default()),
            clocks_mhz: Ok([1000, 1100, 1200, 900]),
            compute: Ok(Vec::new()),
            graphics: Ok(Vec::new()),
            samples: Ok(Vec::new()),
        }
    }
}

/// A fake GPU; clones share the state, so a test keeps one to change the readings.
#[derive(Clone, Debug)]
pub struct FakeGpu(Arc<Mutex<FakeState>>);

impl FakeGpu {
    /// A GPU in `state`.
    pub fn new(state: FakeState) -> Self {
        FakeGpu(Arc::new(Mutex::new(state)))
    }

    /// Changes what it answers.
    pub fn set(&self, change: impl FnOnce(&mut FakeState)) {
        change(&mut self.state());
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        match self.0.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A machine with fake GPUs.
pub struct FakeBackend(pub Vec<FakeGpu>);

impl Backend for FakeBackend {
    fn device_count(&self) -> Result<u32, GpuError> {
        u32::try_from(self.0.len()).map_err(|e| GpuError::Other(e.to_string()))
    }

    fn open(&self, index: u32) -> Result<Box<dyn Gpu>, GpuError> {
        let gpu = self
            .0
            .get(index as usize)
            .ok_or_else(|| GpuError::Other(format!("no GPU {index}")))?;
        gpu.state().open.clone()?;
        Ok(Box::new(gpu.clone()))
    }
}

impl Gpu for FakeGpu {
    fn bus_id(&self) -> Result<String, GpuError> {
        Ok(self.state().bus_id.clone())
    }
    fn name(&self) -> Result<String, GpuError> {
        Ok("Fake GPU".into())
    }
    fn total_energy_mj(&self) -> Result<u64, GpuError> {
        self.state().energy_mj.clone()
    }
    fn power_mw(&self) -> Result<u32, GpuError> {
        self.state().power_mw.clone()
    }
    fn temperature_c(&self) -> Result<u32, GpuError> {
        self.state().temperature_c.clone()
    }
    fn utilization(&self) -> Result<Utilization, GpuError> {
        self.state().utilization.clone()
    }
    fn memory(&self) -> Result<MemoryInfo, GpuError> {
        self.state().memory.clone()
    }
    fn clock_mhz(&self, clock: ClockKind) -> Result<u32, GpuError> {
        let i = ClockKind::ALL.iter().position(|c| *c == clock).unwrap_or(0);
        self.state().clocks_mhz.clone().map(|c| c[i])
    }
    fn compute_processes(&self) -> Result<Vec<ProcessMemory>, GpuError> {
        self.state().compute.clone()
    }
    fn graphics_processes(&self) -> Result<Vec<ProcessMemory>, GpuError> {
        self.state().graphics.clone()
    }
    fn process_utilization(&self, since_us: u64) -> Result<Vec<ProcessSample>, GpuError> {
        let samples = self.state().samples.clone()?;
        Ok(samples
            .into_iter()
            .filter(|s| s.timestamp_us > since_us)
            .collect())
    }
}
