//! The metrics, and how raw sysfs values become their points: hwmon's own names, or the
//! public Alumet's grace-hopper and jetson plugins' names when the plugin runs under
//! those table names.

use alumet::metrics::{MetricError, MetricRegistry};
use alumet::prelude::*;

use crate::parse::Kind;

/// A registered metric of either type.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum AnyId {
    /// An `f64` metric.
    F64(MetricId<f64>),
    /// A `u64` metric (values rounded, negative ones clamped at 0).
    U64(MetricId<u64>),
}

/// Where a raw value goes: the metric, and the divisor that turns the raw unit into the
/// metric's (a division by the exactly representable 1000 is correctly rounded; a
/// multiplication by 0.001 is not).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Out {
    /// The metric.
    pub id: AnyId,
    /// Raw unit per metric unit.
    pub div: f64,
}

impl Out {
    /// The point of `raw` at `t`.
    pub fn point(&self, t: Timestamp, resource: &Resource, raw: f64) -> MeasurementPoint {
        let value = raw / self.div;
        let (r, c) = (resource.clone(), ResourceConsumer::LocalMachine);
        match self.id {
            AnyId::F64(id) => MeasurementPoint::new(t, id, r, c, value),
            AnyId::U64(id) => MeasurementPoint::new(t, id, r, c, value.round().max(0.0) as u64),
        }
    }
}

/// Which names the plugin uses, from the name of its table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `[plugins.hwmon]`: the `hwmon_*` metrics, every chip.
    Hwmon,
    /// `[plugins.grace-hopper]`: Grace's power meters only, as `grace_instant_power` (µW)
    /// and `grace_energy_consumption` (mJ).
    GraceHopper,
    /// `[plugins.jetson]`: INA3221 chips only, as `input_voltage` (mV), `input_current`
    /// (mA) and `input_power` (mW).
    Jetson,
}

impl Flavor {
    /// The flavor of the instance named `name`.
    pub fn of(name: &str) -> Self {
        match name {
            "grace-hopper" => Flavor::GraceHopper,
            "jetson" => Flavor::Jetson,
            _ => Flavor::Hwmon,
        }
    }
}

/// Registers a metric: name, unit, description, whether its values are `f64`.
type Create<'a> = dyn FnMut(&str, Unit, &str, bool) -> Result<AnyId, MetricError> + 'a;

/// Where each kind of reading goes; `None`: not reported in this flavor.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Temperatures (m°C).
    pub temp: Option<Out>,
    /// Fans (RPM).
    pub fan: Option<Out>,
    /// Power (µW), and a rail's power (mV × mA = µW).
    pub power: Option<Out>,
    /// Energy (µJ): counter differences, and power integrated (µW × s).
    pub energy: Option<Out>,
    /// Current (mA).
    pub curr: Option<Out>,
    /// Voltage (mV).
    pub volt: Option<Out>,
    /// A process's use of an amdgpu GPU (percent of the time, summed over its engines).
    pub gpu_process: Option<Out>,
}

impl Metrics {
    /// Registers the metrics of `flavor` in a plugin's registrar.
    /// Without `per_process`, `amdgpu_process_utilization` is not registered (the
    /// attribution then reports the GPU's energy as unattributed, `no_usage_data`).
    pub fn create(
        alumet: &mut Registrar<'_>,
        flavor: Flavor,
        per_process: bool,
    ) -> Result<Self, MetricError> {
        Self::with(flavor, per_process, &mut |name, unit, desc, float| {
            Ok(if float {
                AnyId::F64(alumet.create_metric(name, unit, desc)?)
            } else {
                AnyId::U64(alumet.create_metric(name, unit, desc)?)
            })
        })
    }

    /// Registers them in a registry (to poll a source outside a pipeline: tests, benches).
    pub fn register(metrics: &mut MetricRegistry, flavor: Flavor) -> Result<Self, MetricError> {
        Self::with(flavor, true, &mut |name, unit, desc, float| {
            Ok(if float {
                AnyId::F64(metrics.register(name, unit, desc)?)
            } else {
                AnyId::U64(metrics.register(name, unit, desc)?)
            })
        })
    }

    fn with(
        flavor: Flavor,
        per_process: bool,
        create: &mut Create<'_>,
    ) -> Result<Self, MetricError> {
        let mut out = |name: &str, unit: Unit, desc: &str, float: bool, div: f64| {
            create(name, unit, desc, float).map(|id| Some(Out { id, div }))
        };
        let custom = |u: &str| Unit::Custom(u.into());
        Ok(match flavor {
            Flavor::Hwmon => Metrics {
                temp: out("hwmon_temperature", Unit::DegreeCelsius, "temperature of the sensor (attributes chip, label)", true, 1e3)?,
                fan: out("hwmon_fan_speed", custom("{rpm}"), "fan speed in revolutions per minute (attributes chip, label)", false, 1.0)?,
                power: out("hwmon_power", Unit::Watt, "power measured by the sensor, or a rail's voltage times its current (attributes chip, label)", true, 1e6)?,
                energy: out("hwmon_energy", Unit::Joule, "energy since the previous reading, from the chip's counter or integrated from its power (attributes chip, label, method = counter or integrated)", true, 1e6)?,
                curr: out("hwmon_current", custom("A"), "current measured by the sensor (attributes chip, label)", true, 1e3)?,
                volt: out("hwmon_voltage", custom("V"), "voltage measured by the sensor (attributes chip, label)", true, 1e3)?,
                gpu_process: if !per_process { None } else { out("amdgpu_process_utilization", Unit::Percent, "time the process's contexts kept the AMD GPU's engines busy since the previous reading, summed over the engines (per process, from /proc/PID/fdinfo)", true, 1.0)? },
            },
            Flavor::GraceHopper => Metrics {
                temp: None,
                fan: None,
                power: out("grace_instant_power", custom("uW"), "power consumption (attributes chip, label, sensor, socket)", false, 1.0)?,
                energy: out("grace_energy_consumption", Unit::MilliJoule, "energy consumption since the previous reading, integrated from the power (attributes chip, label, sensor, socket, method)", true, 1e3)?,
                curr: None,
                volt: None,
                gpu_process: None,
            },
            Flavor::Jetson => Metrics {
                temp: None,
                fan: None,
                power: out("input_power", Unit::MilliWatt, "instantaneous electrical power on the channel's line", false, 1e3)?,
                energy: None,
                curr: out("input_current", custom("mA"), "current intensity on the channel's line", false, 1.0)?,
                volt: out("input_voltage", custom("mV"), "voltage on the channel's line", false, 1.0)?,
                gpu_process: None,
            },
        })
    }

    /// Where readings of `kind` go.
    pub fn of(&self, kind: Kind) -> Option<Out> {
        match kind {
            Kind::Temp => self.temp,
            Kind::Fan => self.fan,
            Kind::Power => self.power,
            Kind::Energy => self.energy,
            Kind::Curr => self.curr,
            Kind::In => self.volt,
        }
    }
}
