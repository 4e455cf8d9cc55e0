//! Start: opens each GPU and finds what it answers, so that polls ask only that.

use alumet::plugin::Unavailable;

use crate::backend::{Backend, ClockKind, Gpu, GpuError};
use crate::config::Mode;
use crate::energy::{CounterMeter, PowerIntegrator};
use crate::source::{EnergyMode, Features, Probed};

/// Opens every GPU. A GPU that fails is skipped with a warning when `skip_failed`, and
/// stops the start otherwise. No GPU at all is [`Unavailable`].
pub fn open_all(
    backend: &dyn Backend,
    mode: Mode,
    skip_failed: bool,
) -> anyhow::Result<Vec<Probed>> {
    let count = backend
        .device_count()
        .map_err(|e| anyhow::anyhow!("asking NVML how many GPUs there are: {e}"))?;
    if count == 0 {
        return Err(Unavailable::new(
            "NVML sees no NVIDIA GPU",
            "disable the nvidia plugin on machines without an NVIDIA GPU",
        )
        .into());
    }
    let mut devices = Vec::new();
    let mut failures = Vec::new();
    for index in 0..count {
        match open(backend, index, mode) {
            Ok(probed) => devices.push(probed),
            Err(e) if skip_failed => {
                log::warn!("nvidia: GPU {index} is skipped: {e}");
                failures.push(format!("GPU {index}: {e}"));
            }
            Err(e) => anyhow::bail!(
                "GPU {index}: {e}; to measure the other GPUs anyway, set `skip_failed_devices = true` in [plugins.nvidia]"
            ),
        }
    }
    if devices.is_empty() {
        return Err(Unavailable::new(
            format!("no NVIDIA GPU could be measured ({})", failures.join("; ")),
            "check the driver with `nvidia-smi`",
        )
        .into());
    }
    Ok(devices)
}

/// Opens GPU `index` and probes it.
fn open(backend: &dyn Backend, index: u32, mode: Mode) -> Result<Probed, GpuError> {
    let gpu = backend.open(index)?;
    let bus_id = gpu.bus_id()?;
    let name = gpu.name().unwrap_or_else(|_| "unknown model".into());
    let label = format!("GPU {bus_id} ({name})");
    let power = supported(gpu.power_mw(), &label, "power")?;
    let energy = energy_mode(gpu.as_ref(), &label, power)?;
    if matches!(energy, EnergyMode::Unmeasured) && mode == Mode::Minimal {
        return Err(GpuError::Other(format!(
            "{label} reports neither energy nor power, all that minimal mode measures"
        )));
    }
    let full = mode == Mode::Full;
    let mut clocks = [false; 4];
    for (on, clock) in clocks.iter_mut().zip(ClockKind::ALL) {
        let what = format!("the {} clock", clock.name());
        *on = full && supported(gpu.clock_mhz(clock), &label, &what)?;
    }
    let features = Features {
        power,
        temperature: full && supported(gpu.temperature_c(), &label, "the temperature")?,
        utilization: full && supported(gpu.utilization(), &label, "the utilization")?,
        memory: full && supported(gpu.memory(), &label, "the memory")?,
        clocks,
        processes: full
            && supported(gpu.compute_processes(), &label, "the compute processes")?
            && supported(gpu.graphics_processes(), &label, "the graphics processes")?,
        process_utilization: full
            && supported(
                gpu.process_utilization(0),
                &label,
                "the per-process utilization",
            )?,
    };
    log::info!(
        "nvidia: measuring {label}: energy {}",
        energy_description(&energy)
    );
    Ok(Probed {
        gpu,
        bus_id,
        energy,
        features,
    })
}

fn energy_description(mode: &EnergyMode) -> &'static str {
    match mode {
        EnergyMode::Counter(_) => "from its total-energy counter",
        EnergyMode::Integrated(_) => "integrated from its power readings (no energy counter)",
        EnergyMode::Unmeasured => "not measured (no energy counter, no power reading)",
    }
}

/// The energy counter when the device has one, else its power readings (`power`: whether
/// it answers them).
fn energy_mode(gpu: &dyn Gpu, label: &str, power: bool) -> Result<EnergyMode, GpuError> {
    if supported(gpu.total_energy_mj(), label, "the total-energy counter")? {
        return Ok(EnergyMode::Counter(CounterMeter::default()));
    }
    if power {
        return Ok(EnergyMode::Integrated(PowerIntegrator::default()));
    }
    Ok(EnergyMode::Unmeasured)
}

/// Whether a query works: "not supported" and other errors switch it off (the other
/// errors with a warning), a lost GPU fails the device.
fn supported<T>(result: Result<T, GpuError>, label: &str, what: &str) -> Result<bool, GpuError> {
    match result {
        Ok(_) => Ok(true),
        Err(GpuError::NotSupported) => {
            log::debug!("nvidia: {label}: {what} is not supported");
            Ok(false)
        }
        Err(e @ GpuError::Lost(_)) => Err(e),
        Err(GpuError::Other(e)) => {
            log::warn!("nvidia: {label}: {what} cannot be read ({e}); it is not measured");
            Ok(false)
        }
    }
}
