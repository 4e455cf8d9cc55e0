//! Metrics: what a value means (name, unit, type, description), registered once.
//!
//! Registering a metric returns a typed id, [`MetricId<f64>`] or [`MetricId<u64>`], so
//! that a source cannot push a value of the wrong type.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use crate::measurement::{MeasurementType, ValueType};

/// The id of a registered metric, without its value type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawMetricId(u32);

impl RawMetricId {
    /// The index of the metric in its registry.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The id of a registered metric whose values are of type `T`.
pub struct MetricId<T> {
    raw: RawMetricId,
    _type: PhantomData<fn() -> T>,
}

impl<T> MetricId<T> {
    /// The id without its type.
    pub fn raw(self) -> RawMetricId {
        self.raw
    }
}

impl<T> Clone for MetricId<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for MetricId<T> {}
impl<T> PartialEq for MetricId<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for MetricId<T> {}
impl<T> fmt::Debug for MetricId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetricId({})", self.raw.0)
    }
}

/// A unit of measurement, written as its UCUM code.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A dimensionless number (`1`).
    Unity,
    /// Second (`s`).
    Second,
    /// Millisecond (`ms`).
    Millisecond,
    /// Microsecond (`us`).
    Microsecond,
    /// Nanosecond (`ns`).
    Nanosecond,
    /// Joule (`J`).
    Joule,
    /// Millijoule (`mJ`).
    MilliJoule,
    /// Microjoule (`uJ`).
    MicroJoule,
    /// Watt (`W`).
    Watt,
    /// Milliwatt (`mW`).
    MilliWatt,
    /// Byte (`By`).
    Byte,
    /// Percent (`%`).
    Percent,
    /// Degree Celsius (`Cel`).
    DegreeCelsius,
    /// Hertz (`Hz`).
    Hertz,
    /// Megahertz (`MHz`).
    MegaHertz,
    /// Any other unit, by its UCUM code.
    Custom(String),
}

const KNOWN_UNITS: [(Unit, &str); 15] = [
    (Unit::Unity, "1"),
    (Unit::Second, "s"),
    (Unit::Millisecond, "ms"),
    (Unit::Microsecond, "us"),
    (Unit::Nanosecond, "ns"),
    (Unit::Joule, "J"),
    (Unit::MilliJoule, "mJ"),
    (Unit::MicroJoule, "uJ"),
    (Unit::Watt, "W"),
    (Unit::MilliWatt, "mW"),
    (Unit::Byte, "By"),
    (Unit::Percent, "%"),
    (Unit::DegreeCelsius, "Cel"),
    (Unit::Hertz, "Hz"),
    (Unit::MegaHertz, "MHz"),
];

impl Unit {
    /// The UCUM code, for example `J` or `By`.
    pub fn code(&self) -> &str {
        if let Unit::Custom(code) = self {
            return code;
        }
        KNOWN_UNITS
            .iter()
            .find(|(u, _)| u == self)
            .map_or("", |(_, code)| code)
    }

    /// The symbol people write: the UCUM code, except `μs`, `μJ`, `B`, `°C`, and nothing
    /// for a dimensionless unit (the outputs' `use_unit_display_name`).
    pub fn display_name(&self) -> &str {
        match self {
            Unit::Unity => "",
            Unit::Microsecond => "μs",
            Unit::MicroJoule => "μJ",
            Unit::Byte => "B",
            Unit::DegreeCelsius => "°C",
            other => other.code(),
        }
    }

    /// Joules in one of this unit, for an energy unit (`J`, `mJ`, `uJ`); `None` otherwise.
    pub fn joules(&self) -> Option<f64> {
        match self {
            Unit::Joule => Some(1.0),
            Unit::MilliJoule => Some(1e-3),
            Unit::MicroJoule => Some(1e-6),
            _ => None,
        }
    }

    /// Seconds in one of this unit, for a time unit (`s`, `ms`, `us`, `ns`); `None`
    /// otherwise.
    pub fn seconds(&self) -> Option<f64> {
        match self {
            Unit::Second => Some(1.0),
            Unit::Millisecond => Some(1e-3),
            Unit::Microsecond => Some(1e-6),
            Unit::Nanosecond => Some(1e-9),
            _ => None,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Unit {
    type Err = std::convert::Infallible;

    /// Known codes give their variant; anything else is [`Unit::Custom`].
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Ok(KNOWN_UNITS
            .iter()
            .find(|(_, c)| *c == code)
            .map_or_else(|| Unit::Custom(code.to_owned()), |(u, _)| u.clone()))
    }
}

/// The definition of a metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Unique `snake_case` name, for example `rapl_consumed_energy`.
    pub name: String,
    /// Unit of the values.
    pub unit: Unit,
    /// Type of the values.
    pub value_type: ValueType,
    /// What the values mean, in one sentence.
    pub description: String,
}

/// Why a metric could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricError {
    /// The name is not `snake_case`.
    #[error("invalid metric name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The name is taken by a metric with another definition.
    #[error(
        "metric `{name}` is already registered as {existing}, cannot register it again as {requested}; \
         use another name or the same unit, type and description"
    )]
    Conflict {
        /// The name.
        name: String,
        /// The existing definition, in words.
        existing: String,
        /// The requested definition, in words.
        requested: String,
    },
    /// Too many metrics.
    #[error("too many metrics (more than {max})")]
    TooMany {
        /// The maximum.
        max: u32,
    },
}

fn describe(m: &Metric) -> String {
    format!("{} in `{}` ({:?})", m.value_type, m.unit, m.description)
}

fn check_name(name: &str) -> Result<(), &'static str> {
    let first = name.chars().next().ok_or("it is empty")?;
    if !first.is_ascii_lowercase() {
        return Err("it must start with a lowercase ASCII letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("use only lowercase ASCII letters, digits and `_` (snake_case)");
    }
    if name.len() > 128 {
        return Err("it is longer than 128 bytes");
    }
    Ok(())
}

/// All the metrics known to a pipeline. Metrics are only ever added: a plugin started
/// while the pipeline runs registers its own while the outputs read the others' (each
/// metric is stored once, where it stays, so a reader needs no lock;
/// [`boxcar`](https://docs.rs/boxcar) keeps that append-only vector).
#[derive(Default)]
pub struct MetricRegistry {
    metrics: boxcar::Vec<Metric>,
    /// Taken by registrations only, one at a time: they check the name and append.
    by_name: std::sync::RwLock<HashMap<String, RawMetricId>>,
}

impl Clone for MetricRegistry {
    fn clone(&self) -> Self {
        let copy = MetricRegistry::new();
        for (_, m) in self.iter() {
            // The same definitions in the same order: the same ids.
            let _ = copy.register_raw(m.clone());
        }
        copy
    }
}

impl fmt::Debug for MetricRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|(_, m)| m)).finish()
    }
}

impl MetricRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a metric of value type `T`. Registering the same name again with the same
    /// unit, type and description returns the same id; with another definition it fails.
    pub fn register<T: MeasurementType>(
        &mut self,
        name: &str,
        unit: Unit,
        description: &str,
    ) -> Result<MetricId<T>, MetricError> {
        self.register_shared(name, unit, description)
    }

    /// [`register`](Self::register) through a shared reference: while the pipeline runs
    /// (a plugin started then), the registry is shared with every output.
    pub fn register_shared<T: MeasurementType>(
        &self,
        name: &str,
        unit: Unit,
        description: &str,
    ) -> Result<MetricId<T>, MetricError> {
        let raw = self.register_raw(Metric {
            name: name.to_owned(),
            unit,
            value_type: T::VALUE_TYPE,
            description: description.to_owned(),
        })?;
        Ok(MetricId {
            raw,
            _type: PhantomData,
        })
    }

    /// Registers a metric whose value type is only known at run time.
    pub fn register_raw(&self, metric: Metric) -> Result<RawMetricId, MetricError> {
        check_name(&metric.name).map_err(|reason| MetricError::InvalidName {
            name: metric.name.clone(),
            reason,
        })?;
        let mut by_name = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = by_name.get(&metric.name) {
            let existing = &self.metrics[id.index()];
            return if *existing == metric {
                Ok(id)
            } else {
                Err(MetricError::Conflict {
                    name: metric.name.clone(),
                    existing: describe(existing),
                    requested: describe(&metric),
                })
            };
        }
        let index = u32::try_from(self.metrics.count())
            .ok()
            .filter(|&i| i < u32::MAX)
            .ok_or(MetricError::TooMany { max: u32::MAX })?;
        let name = metric.name.clone();
        // Appends are serialised by the lock: the index is the count before.
        let pushed = self.metrics.push(metric);
        debug_assert_eq!(pushed, index as usize);
        let id = RawMetricId(index);
        by_name.insert(name, id);
        Ok(id)
    }

    /// The definition of a metric.
    pub fn get(&self, id: RawMetricId) -> Option<&Metric> {
        self.metrics.get(id.index())
    }

    /// A metric by name.
    pub fn by_name(&self, name: &str) -> Option<(RawMetricId, &Metric)> {
        let id = *self
            .by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)?;
        Some((id, self.get(id)?))
    }

    /// The typed id of a metric registered elsewhere, if it has value type `T`.
    pub fn typed_id<T: MeasurementType>(&self, name: &str) -> Option<MetricId<T>> {
        let (raw, metric) = self.by_name(name)?;
        (metric.value_type == T::VALUE_TYPE).then_some(MetricId {
            raw,
            _type: PhantomData,
        })
    }

    /// Every metric, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = (RawMetricId, &Metric)> {
        (0..self.metrics.count())
            .filter_map(|i| Some((RawMetricId(i as u32), self.metrics.get(i)?)))
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.metrics.count()
    }

    /// Whether no metric is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_definition_same_id_other_definition_error() {
        let mut reg = MetricRegistry::new();
        let a = reg
            .register::<f64>("energy", Unit::Joule, "energy used")
            .unwrap();
        let b = reg
            .register::<f64>("energy", Unit::Joule, "energy used")
            .unwrap();
        assert_eq!(a, b);
        let other = reg.register::<u64>("count", Unit::Unity, "things").unwrap();
        assert_ne!(a.raw(), other.raw());

        let err = reg
            .register::<f64>("energy", Unit::Watt, "energy used")
            .unwrap_err();
        assert!(matches!(err, MetricError::Conflict { .. }), "{err}");
        assert!(
            err.to_string().contains("`J`") && err.to_string().contains("`W`"),
            "{err}"
        );
        assert!(reg
            .register::<u64>("energy", Unit::Joule, "energy used")
            .is_err());
        assert!(reg
            .register::<f64>("energy", Unit::Joule, "other words")
            .is_err());
        assert_eq!(reg.len(), 2);
    }

    #[test]
    fn names_must_be_snake_case() {
        let mut reg = MetricRegistry::new();
        for bad in ["", "Energy", "cpu-time", "1st", "a b"] {
            let err = reg.register::<u64>(bad, Unit::Unity, "x").unwrap_err();
            assert!(
                matches!(err, MetricError::InvalidName { .. }),
                "{bad}: {err}"
            );
        }
        assert!(reg
            .register::<u64>("cpu_time_2", Unit::Millisecond, "x")
            .is_ok());
    }

    #[test]
    fn typed_lookup_checks_the_type() {
        let mut reg = MetricRegistry::new();
        let id = reg.register::<u64>("bytes", Unit::Byte, "b").unwrap();
        assert_eq!(reg.typed_id::<u64>("bytes"), Some(id));
        assert_eq!(reg.typed_id::<f64>("bytes"), None);
        assert_eq!(reg.typed_id::<u64>("nope"), None);
    }

    #[test]
    fn unit_codes_round_trip() {
        for (unit, code) in KNOWN_UNITS.iter() {
            assert_eq!(unit.code(), *code);
            assert_eq!(code.parse::<Unit>().unwrap(), *unit);
        }
        assert_eq!("kWh".parse::<Unit>().unwrap(), Unit::Custom("kWh".into()));
        assert_eq!(Unit::Custom("kWh".into()).code(), "kWh");
    }
}

/// Metrics that several plugins measure, each for its own consumers (procfs for processes,
/// cgroups for control groups): one definition here, so that they register the same metric
/// (the registry refuses one name with two definitions) and the attribution and exec's
/// summary read them alike. Register one with [`Registrar::create_shared_metric`](crate::plugin::Registrar::create_shared_metric).
pub mod shared {
    use super::Unit;

    /// A metric's name, unit and description.
    #[derive(Debug, Clone)]
    pub struct Definition {
        /// The metric's name.
        pub name: &'static str,
        /// Its unit.
        pub unit: Unit,
        /// What it means, in one sentence.
        pub description: &'static str,
    }

    /// CPU time of a consumer since the previous reading (attribute `kind`).
    pub const CPU_TIME_DELTA: Definition = Definition {
        name: "cpu_time_delta",
        unit: Unit::Millisecond,
        description: "CPU time used by the consumer (a process or a control group) since the previous measurement (attribute kind)",
    };

    /// CPU time of a consumer over wall time since the previous reading.
    pub const CPU_PERCENT: Definition = Definition {
        name: "cpu_percent",
        unit: Unit::Percent,
        description: "CPU time used by the consumer (user and system) over wall time since the previous measurement; 100 is one full CPU",
    };

    /// Memory used by a consumer.
    pub const MEMORY_USAGE: Definition = Definition {
        name: "memory_usage",
        unit: Unit::Byte,
        description: "memory used by the consumer (a process: attribute kind resident, shared, virtual; a control group: all the memory charged to it)",
    };
}
