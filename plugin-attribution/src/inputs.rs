//! The metrics the transform reads, found by name in the pipeline's registry, and the
//! metrics it writes.

use alumet::metrics::{Metric, MetricError, MetricRegistry, RawMetricId};
use alumet::prelude::*;

use crate::config::{Config, Consumers};

/// An input metric: its id and the factor that turns its values into the unit the
/// transform works in (joules for energy, seconds for CPU time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Input {
    pub(crate) id: RawMetricId,
    pub(crate) factor: f64,
}

/// The input metrics present in this pipeline (`None`: no plugin registered it).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Inputs {
    pub(crate) rapl: Option<Input>,
    /// The `source` attribute of CPU energy's parts: `rapl`, or `estimated` when the CPU
    /// energy is the energy-estimation plugin's.
    pub(crate) cpu_source: &'static str,
    pub(crate) cpu_time: Option<Input>,
    pub(crate) machine: Option<Input>,
    pub(crate) gpu_energy: Option<Input>,
    pub(crate) gpu_utilization: Option<Input>,
    /// The hwmon plugin's energy (its GPU points only) and per-process GPU use (amdgpu).
    pub(crate) hwmon_energy: Option<Input>,
    pub(crate) hwmon_gpu_utilization: Option<Input>,
}

/// The energy-estimation plugin's metric: CPU energy where no RAPL measures it.
const ESTIMATED: &str = "estimated_energy";

/// Looks `name` up; a metric whose unit `factor` does not know is left out, with a warning.
fn find(
    metrics: &MetricRegistry,
    name: &str,
    factor: impl Fn(&Unit) -> Option<f64>,
) -> Option<Input> {
    let (id, Metric { unit, .. }) = metrics.by_name(name)?;
    match factor(unit) {
        Some(factor) => Some(Input { id, factor }),
        None => {
            log::warn!(
                "attribution: metric `{name}` has the unexpected unit `{unit}`: it is ignored"
            );
            None
        }
    }
}

impl Inputs {
    /// Finds the configured metrics in the registry (every plugin has registered its
    /// metrics once the pipeline runs) and logs what is missing, once.
    pub(crate) fn resolve(config: &Config, metrics: &MetricRegistry) -> Self {
        let measured = find(metrics, &config.rapl_metric, Unit::joules);
        // Where nothing measures CPU energy, the estimate is split instead, its parts
        // marked `source = estimated`.
        let estimated = measured
            .is_none()
            .then(|| find(metrics, ESTIMATED, Unit::joules))
            .flatten();
        if estimated.is_some() {
            log::info!(
                "attribution: `{}` is not registered: attributing `{ESTIMATED}` (energy-estimation), its parts marked source=estimated",
                config.rapl_metric
            );
        }
        let inputs = Inputs {
            rapl: measured.or(estimated),
            cpu_source: if estimated.is_some() {
                "estimated"
            } else {
                "rapl"
            },
            cpu_time: find(metrics, &config.cpu_time_metric, Unit::seconds),
            machine: find(metrics, &config.machine_cpu_time_metric, Unit::seconds),
            gpu_energy: find(metrics, &config.gpu_energy_metric, Unit::joules),
            gpu_utilization: find(metrics, &config.gpu_utilization_metric, |_| Some(1.0)),
            hwmon_energy: find(metrics, &config.hwmon_energy_metric, Unit::joules),
            hwmon_gpu_utilization: find(metrics, &config.hwmon_gpu_utilization_metric, |_| {
                Some(1.0)
            }),
        };
        if inputs.rapl.is_none() && inputs.gpu_energy.is_none() && inputs.hwmon_energy.is_none() {
            log::warn!(
                "attribution: neither `{}` nor `{}` is registered: nothing to attribute (enable the rapl or nvidia plugin, or energy-estimation)",
                config.rapl_metric,
                config.gpu_energy_metric
            );
        }
        if inputs.rapl.is_some() && inputs.machine.is_none() {
            log::warn!(
                "attribution: `{}` is not registered: CPU energy is reported as unattributed (enable the kernel section of the procfs plugin)",
                config.machine_cpu_time_metric
            );
        }
        if inputs.rapl.is_some() && inputs.cpu_time.is_none() {
            let fix = match config.consumers {
                Consumers::Cgroup => "no cgroup receives CPU energy (enable the cgroups plugin)",
                _ => "no process receives CPU energy (enable the processes section of the procfs plugin)",
            };
            log::warn!(
                "attribution: `{}` is not registered: {fix}",
                config.cpu_time_metric
            );
        }
        if inputs.gpu_energy.is_some() && inputs.gpu_utilization.is_none() {
            log::warn!(
                "attribution: `{}` is not registered: GPU energy is reported as unattributed",
                config.gpu_utilization_metric
            );
        }
        if inputs.hwmon_energy.is_some() && inputs.hwmon_gpu_utilization.is_none() {
            log::info!(
                "attribution: `{}` is not registered: AMD GPU energy (`{}`) is reported as unattributed, reason no_usage_data (hwmon's amdgpu_processes is off)",
                config.hwmon_gpu_utilization_metric,
                config.hwmon_energy_metric
            );
        }
        inputs
    }
}

/// The metrics the transform writes, all `f64` joules over one interval of the energy
/// source, at the end of that interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputMetrics {
    /// `attributed_energy`: a consumer's part (consumer = process, cgroup...).
    pub attributed: MetricId<f64>,
    /// `idle_energy`: the idle part (consumer = local machine).
    pub idle: MetricId<f64>,
    /// `unattributed_energy`: what could not be attributed (attribute `reason`).
    pub unattributed: MetricId<f64>,
    /// `attribution_imbalance`: attributed + idle + unattributed - measured; 0 up to rounding.
    pub imbalance: MetricId<f64>,
}

const OUTPUTS: [(&str, &str); 4] = [
    (
        "attributed_energy",
        "energy of the interval attributed to the consumer (attributes domain, source)",
    ),
    (
        "idle_energy",
        "idle part of the interval's energy, attributed to no consumer (attributes domain, source)",
    ),
    (
        "unattributed_energy",
        "energy of the interval that could not be attributed (attributes domain, source, reason)",
    ),
    (
        "attribution_imbalance",
        "attributed + idle + unattributed energy minus the measured energy of the interval; 0 up to rounding",
    ),
];

impl OutputMetrics {
    /// Registers the output metrics through `create` (a registrar's or a registry's).
    fn with(
        mut create: impl FnMut(&str, &str) -> Result<MetricId<f64>, MetricError>,
    ) -> Result<Self, MetricError> {
        let [a, i, u, b] = OUTPUTS;
        Ok(OutputMetrics {
            attributed: create(a.0, a.1)?,
            idle: create(i.0, i.1)?,
            unattributed: create(u.0, u.1)?,
            imbalance: create(b.0, b.1)?,
        })
    }

    /// Registers them in a plugin's registrar.
    pub fn create(alumet: &mut Registrar<'_>) -> Result<Self, MetricError> {
        Self::with(|name, description| alumet.create_metric(name, Unit::Joule, description))
    }

    /// Registers them in a registry (to run the transform outside a pipeline).
    pub fn register(metrics: &mut MetricRegistry) -> Result<Self, MetricError> {
        Self::with(|name, description| metrics.register(name, Unit::Joule, description))
    }
}
