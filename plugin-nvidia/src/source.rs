//! One source per GPU: what the device supports is probed once at start, then each poll
//! queries exactly that.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alumet::measurement::MeasurementType;
use alumet::pipeline::ElementError;
use alumet::prelude::*;

use crate::backend::{ClockKind, Gpu, GpuError};
use crate::energy::{CounterMeter, EnergyStep, PowerIntegrator};
use crate::metrics::{EnergyMetrics, FullMetrics};
use crate::process::{HeldUtilization, Selection};

/// How the energy of a device is measured.
#[derive(Debug)]
pub enum EnergyMode {
    /// Differences of the total-energy counter.
    Counter(CounterMeter),
    /// Power integrated over time (no energy counter on this device).
    Integrated(PowerIntegrator),
    /// Neither a counter nor a power reading.
    Unmeasured,
}

/// The queries a device answered at start; one that fails with "not supported" later is
/// switched off too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Instant power.
    pub power: bool,
    /// Temperature.
    pub temperature: bool,
    /// Device utilization.
    pub utilization: bool,
    /// Device memory.
    pub memory: bool,
    /// Each clock of [`ClockKind::ALL`].
    pub clocks: [bool; 4],
    /// Process lists (compute and graphics).
    pub processes: bool,
    /// Per-process utilization samples.
    pub process_utilization: bool,
}

/// The source of one GPU.
pub struct GpuSource {
    gpu: Box<dyn Gpu>,
    label: String,
    resource: Resource,
    energy: EnergyMode,
    features: Features,
    energy_metrics: EnergyMetrics,
    full: Option<Arc<FullMetrics>>,
    selection: Selection,
    /// Per-process samples newer than this (µs since the Unix epoch) are new.
    last_sample_us: u64,
    /// The latest utilization of each process.
    held: HeldUtilization,
    reset_logged: bool,
}

/// What a device offers, found at start.
pub struct Probed {
    /// The device.
    pub gpu: Box<dyn Gpu>,
    /// Its PCI bus id.
    pub bus_id: String,
    /// How its energy is measured.
    pub energy: EnergyMode,
    /// The other queries it answers.
    pub features: Features,
}

impl GpuSource {
    /// A source for a probed device. `full` is `None` in minimal mode.
    pub fn new(
        probed: Probed,
        energy_metrics: EnergyMetrics,
        full: Option<Arc<FullMetrics>>,
        selection: Selection,
        poll_interval: Duration,
    ) -> Self {
        let bus_id: Arc<str> = probed.bus_id.as_str().into();
        GpuSource {
            gpu: probed.gpu,
            label: format!("GPU {}", probed.bus_id),
            resource: Resource::Gpu { bus_id },
            energy: probed.energy,
            features: probed.features,
            energy_metrics,
            full,
            selection,
            last_sample_us: now_us().saturating_sub(micros(poll_interval)),
            held: HeldUtilization::default(),
            reset_logged: false,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, micros)
}

/// Sorts the result of one query: the value, or `None` after switching the query off
/// ("not supported") or noting the error for the end of the poll. A lost GPU stops the
/// source.
fn check<T>(
    label: &str,
    what: &str,
    result: Result<T, GpuError>,
    enabled: &mut bool,
    failure: &mut Option<String>,
) -> Result<Option<T>, ElementError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(GpuError::NotSupported) => {
            log::info!("nvidia: {label}: {what} is not supported any more; not asked again");
            *enabled = false;
            Ok(None)
        }
        Err(GpuError::Lost(e)) => Err(ElementError::fatal(anyhow::anyhow!(
            "{label} is lost ({e}); its measurements stop, the other GPUs go on"
        ))),
        Err(GpuError::Other(e)) => {
            failure.get_or_insert_with(|| format!("{label}: reading {what}: {e}"));
            Ok(None)
        }
    }
}

impl Source for GpuSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        let mut failure = None;
        self.poll_energy(acc, t, &mut failure)?;
        if let Some(full) = self.full.clone() {
            self.poll_device(&full, acc, t, &mut failure)?;
            if self.selection.is_enabled() {
                self.poll_processes(&full, acc, t, &mut failure)?;
            }
        }
        match failure {
            Some(message) => Err(ElementError::retryable(anyhow::anyhow!(message))),
            None => Ok(()),
        }
    }
}

impl GpuSource {
    fn point<V: MeasurementType>(
        &self,
        t: Timestamp,
        metric: MetricId<V>,
        v: V,
    ) -> MeasurementPoint {
        MeasurementPoint::new(
            t,
            metric,
            self.resource.clone(),
            ResourceConsumer::LocalMachine,
            v,
        )
    }

    fn poll_energy(
        &mut self,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
        failure: &mut Option<String>,
    ) -> Result<(), ElementError> {
        let label = &self.label;
        let power = if self.features.power {
            let r = self.gpu.power_mw();
            check(label, "power", r, &mut self.features.power, failure)?
        } else {
            None
        };
        let step = match &mut self.energy {
            EnergyMode::Counter(meter) => {
                let mut on = true;
                let r = self.gpu.total_energy_mj();
                let counter = check(label, "the energy counter", r, &mut on, failure)?;
                let step = counter.map(|c| meter.update(c));
                if !on {
                    self.energy = EnergyMode::Integrated(PowerIntegrator::default());
                }
                step
            }
            EnergyMode::Integrated(integrator) => {
                power.map(|p| integrator.update(p, Instant::now()))
            }
            EnergyMode::Unmeasured => None,
        };
        match step {
            Some(EnergyStep::Energy(mj)) => acc.push(self.point(t, self.energy_metrics.energy, mj)),
            Some(EnergyStep::Reset { from, to }) if !self.reset_logged => {
                self.reset_logged = true;
                log::warn!(
                    "nvidia: {label}: the energy counter went down from {from} to {to} mJ (driver reloaded or GPU reset); that interval is not reported (logged once)"
                );
            }
            _ => {}
        }
        if let Some(p) = power {
            acc.push(self.point(t, self.energy_metrics.power, u64::from(p)));
        }
        Ok(())
    }

    fn poll_device(
        &mut self,
        m: &FullMetrics,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
        failure: &mut Option<String>,
    ) -> Result<(), ElementError> {
        let (label, f) = (&self.label, &mut self.features);
        if f.temperature {
            let r = self.gpu.temperature_c();
            if let Some(c) = check(label, "the temperature", r, &mut f.temperature, failure)? {
                acc.push(self.point(t, m.temperature, u64::from(c)));
            }
        }
        let f = &mut self.features;
        if f.utilization {
            let r = self.gpu.utilization();
            if let Some(u) = check(label, "the utilization", r, &mut f.utilization, failure)? {
                acc.push(self.point(t, m.gpu_utilization, f64::from(u.gpu)));
                acc.push(self.point(t, m.memory_utilization, f64::from(u.memory)));
            }
        }
        let f = &mut self.features;
        if f.memory {
            let r = self.gpu.memory();
            if let Some(mem) = check(label, "the memory", r, &mut f.memory, failure)? {
                let values = [mem.used, mem.free, mem.total, mem.reserved];
                for (v, attrs) in values.into_iter().zip(&m.memory_kinds) {
                    acc.push(self.point(t, m.memory, v).with_attributes(attrs.clone()));
                }
            }
        }
        for (i, clock) in ClockKind::ALL.into_iter().enumerate() {
            let f = &mut self.features;
            if f.clocks[i] {
                let r = self.gpu.clock_mhz(clock);
                let what = format!("the {} clock", clock.name());
                if let Some(mhz) = check(label, &what, r, &mut f.clocks[i], failure)? {
                    let p = self.point(t, m.clock, u64::from(mhz));
                    acc.push(p.with_attributes(m.clock_types[i].clone()));
                }
            }
        }
        Ok(())
    }
}

impl GpuSource {
    /// Process counts, and per-process memory and utilization of the selected processes.
    fn poll_processes(
        &mut self,
        m: &FullMetrics,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
        failure: &mut Option<String>,
    ) -> Result<(), ElementError> {
        let mut listed = HashSet::new();
        if self.features.processes {
            let label = &self.label;
            let f = &mut self.features;
            let compute = check(
                label,
                "the compute processes",
                self.gpu.compute_processes(),
                &mut f.processes,
                failure,
            )?;
            let graphics = check(
                label,
                "the graphics processes",
                self.gpu.graphics_processes(),
                &mut f.processes,
                failure,
            )?;
            if let (Some(compute), Some(graphics)) = (compute, graphics) {
                acc.push(self.point(t, m.n_compute, compute.len() as u64));
                acc.push(self.point(t, m.n_graphic, graphics.len() as u64));
                listed.extend(compute.iter().chain(&graphics).map(|p| p.pid));
                self.selection.retain_listed(&listed);
                // A process in both lists has one memory figure: keep the larger.
                let mut memory = std::collections::BTreeMap::new();
                for p in compute.iter().chain(&graphics) {
                    if let Some(bytes) = p.used_bytes {
                        let e = memory.entry(p.pid).or_insert(0);
                        *e = bytes.max(*e);
                    }
                }
                for (pid, bytes) in memory {
                    if self.selection.wants(pid) {
                        acc.push(self.process_point(t, m.process_memory, pid, bytes));
                    }
                }
            }
        }
        if self.features.process_utilization {
            let r = self.gpu.process_utilization(self.last_sample_us);
            let f = &mut self.features;
            let what = "the per-process utilization";
            if let Some(samples) = check(&self.label, what, r, &mut f.process_utilization, failure)?
            {
                self.held.update(&samples);
                self.last_sample_us = self.held.newest().max(self.last_sample_us);
                let listed = self.features.processes.then_some(&listed);
                for (pid, u) in self.held.current(now_us(), listed) {
                    if !self.selection.wants(pid) {
                        continue;
                    }
                    acc.push(self.process_point(t, m.sm_utilization, pid, u.sm));
                    acc.push(self.process_point(t, m.memory_utilization, pid, u.memory));
                    acc.push(self.process_point(t, m.encoder_utilization, pid, u.encoder));
                    acc.push(self.process_point(t, m.decoder_utilization, pid, u.decoder));
                }
            }
        }
        Ok(())
    }

    fn process_point<V: MeasurementType>(
        &self,
        t: Timestamp,
        metric: MetricId<V>,
        pid: u32,
        v: V,
    ) -> MeasurementPoint {
        let consumer = ResourceConsumer::Process { pid };
        MeasurementPoint::new(t, metric, self.resource.clone(), consumer, v)
    }
}
