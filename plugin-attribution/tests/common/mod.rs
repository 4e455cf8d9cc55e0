//! Fake input points with the names, units, resources and attributes of the real plugins
//! (rapl, procfs, nvidia), and a harness that runs the attribution on buffers of them.
#![allow(dead_code)]

use alumet::measurement::AttributeValue;
use alumet::metrics::MetricRegistry;
use alumet::prelude::*;
use plugin_attribution::{Attribution, Config, OutputMetrics};

/// Nanoseconds per millisecond, to write times in ms.
pub const MS: u64 = 1_000_000;
/// An arbitrary origin (2023-11-14), in ns.
pub const T0: u64 = 1_700_000_000_000_000_000;

/// The input metrics, registered as the real plugins do.
#[derive(Clone, Copy)]
pub struct Inputs {
    pub rapl: MetricId<f64>,
    pub kernel: MetricId<u64>,
    pub cpu: MetricId<u64>,
    pub gpu_energy: MetricId<f64>,
    pub gpu_util: MetricId<f64>,
}

impl Inputs {
    /// Registers them (through a registry or a registrar: `create` registers one).
    pub fn register(metrics: &mut MetricRegistry) -> Self {
        Self::register_with_cpu_energy(metrics, "rapl_consumed_energy")
    }

    /// [`Inputs::register`], with CPU energy under `name` (`estimated_energy`: the
    /// energy-estimation plugin's).
    pub fn register_with_cpu_energy(metrics: &mut MetricRegistry, name: &str) -> Self {
        Inputs {
            rapl: metrics.register(name, Unit::Joule, "energy").expect("rapl"),
            kernel: metrics
                .register("kernel_cpu_time", Unit::Millisecond, "cpu")
                .expect("kernel"),
            cpu: metrics
                .register("cpu_time_delta", Unit::Millisecond, "cpu")
                .expect("cpu"),
            gpu_energy: metrics
                .register("nvml_energy_consumption", Unit::MilliJoule, "gpu")
                .expect("gpu"),
            gpu_util: metrics
                .register("nvml_sm_utilization", Unit::Percent, "sm")
                .expect("sm"),
        }
    }

    /// Registers them from a plugin (a pipeline test).
    pub fn create(alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        alumet.create_metric::<f64>("rapl_consumed_energy", Unit::Joule, "energy")?;
        alumet.create_metric::<u64>("kernel_cpu_time", Unit::Millisecond, "cpu")?;
        alumet.create_metric::<u64>("cpu_time_delta", Unit::Millisecond, "cpu")?;
        alumet.create_metric::<f64>("nvml_energy_consumption", Unit::MilliJoule, "gpu")?;
        alumet.create_metric::<f64>("nvml_sm_utilization", Unit::Percent, "sm")?;
        Ok(())
    }

    /// The ids registered by [`Inputs::create`].
    pub fn from_registry(metrics: &MetricRegistry) -> Self {
        Inputs {
            rapl: metrics.typed_id("rapl_consumed_energy").expect("rapl"),
            kernel: metrics.typed_id("kernel_cpu_time").expect("kernel"),
            cpu: metrics.typed_id("cpu_time_delta").expect("cpu"),
            gpu_energy: metrics.typed_id("nvml_energy_consumption").expect("gpu"),
            gpu_util: metrics.typed_id("nvml_sm_utilization").expect("sm"),
        }
    }

    /// `rapl_consumed_energy` of `domain` in package 0 at `t_ms`.
    pub fn rapl(&self, t_ms: u64, domain: &str, joules: f64) -> MeasurementPoint {
        let p = MeasurementPoint::new(
            ts(t_ms),
            self.rapl,
            Resource::CpuPackage { id: 0 },
            ResourceConsumer::LocalMachine,
            joules,
        );
        p.with_attributes(Attributes::new([("domain", domain)]))
    }

    /// `kernel_cpu_time` at `t_ms`: `busy_ms` as user time, the rest of `total_ms` idle.
    pub fn kernel(&self, t_ms: u64, busy_ms: u64, total_ms: u64) -> Vec<MeasurementPoint> {
        let point = |state: &str, v: u64| {
            MeasurementPoint::new(
                ts(t_ms),
                self.kernel,
                Resource::LocalMachine,
                ResourceConsumer::LocalMachine,
                v,
            )
            .with_attributes(Attributes::new([("cpu_state", state)]))
        };
        vec![
            point("user", busy_ms),
            point("system", 0),
            point("idle", total_ms - busy_ms),
        ]
    }

    /// `cpu_time_delta` of process `pid` at `t_ms`: `user_ms` and `system_ms`, and a guest
    /// point (already part of user time: it must not count).
    pub fn proc(&self, t_ms: u64, pid: u32, user_ms: u64, system_ms: u64) -> Vec<MeasurementPoint> {
        let point = |kind: &str, v: u64| {
            MeasurementPoint::new(
                ts(t_ms),
                self.cpu,
                Resource::LocalMachine,
                ResourceConsumer::Process { pid },
                v,
            )
            .with_attributes(Attributes::new([("kind", kind)]))
        };
        vec![
            point("user", user_ms),
            point("system", system_ms),
            point("guest", user_ms),
        ]
    }

    /// `cpu_time_delta` of the cgroup at `path` at `t_ms`, as the cgroups plugin gives it:
    /// `user_ms` and `system_ms`.
    pub fn cgroup(
        &self,
        t_ms: u64,
        path: &str,
        user_ms: u64,
        system_ms: u64,
    ) -> Vec<MeasurementPoint> {
        let point = |kind: &str, v: u64| {
            MeasurementPoint::new(ts(t_ms), self.cpu, Resource::LocalMachine, cgroup(path), v)
                .with_attributes(Attributes::new([("kind", kind)]))
        };
        vec![point("user", user_ms), point("system", system_ms)]
    }

    /// `nvml_energy_consumption` (mJ) of GPU `bus` at `t_ms`.
    pub fn gpu_energy(&self, t_ms: u64, bus: &str, millijoules: f64) -> MeasurementPoint {
        MeasurementPoint::new(
            ts(t_ms),
            self.gpu_energy,
            gpu(bus),
            ResourceConsumer::LocalMachine,
            millijoules,
        )
    }

    /// `nvml_sm_utilization` of `pid` on GPU `bus` at `t_ms`.
    pub fn gpu_util(&self, t_ms: u64, bus: &str, pid: u32, percent: f64) -> MeasurementPoint {
        MeasurementPoint::new(
            ts(t_ms),
            self.gpu_util,
            gpu(bus),
            ResourceConsumer::Process { pid },
            percent,
        )
    }
}

pub fn cgroup(path: &str) -> ResourceConsumer {
    ResourceConsumer::ControlGroup { path: path.into() }
}

pub fn gpu(bus: &str) -> Resource {
    Resource::Gpu { bus_id: bus.into() }
}

pub fn ts(t_ms: u64) -> Timestamp {
    Timestamp::from_unix_nanos(T0 + t_ms * MS)
}

/// The attribution run directly on buffers.
pub struct Harness {
    pub metrics: MetricRegistry,
    pub inputs: Inputs,
    pub outputs: OutputMetrics,
    pub attribution: Attribution,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self::with_cpu_energy(config, "rapl_consumed_energy")
    }

    /// [`Harness::new`], with CPU energy under the metric `name`.
    pub fn with_cpu_energy(config: Config, name: &str) -> Self {
        let mut metrics = MetricRegistry::new();
        let inputs = Inputs::register_with_cpu_energy(&mut metrics, name);
        let outputs = OutputMetrics::register(&mut metrics).expect("outputs");
        Harness {
            attribution: Attribution::new(config, outputs),
            metrics,
            inputs,
            outputs,
        }
    }

    /// One flushed buffer; returns the points the attribution added to it.
    pub fn feed(&mut self, points: Vec<MeasurementPoint>) -> Out {
        let n = points.len();
        let mut buffer = MeasurementBuffer::new();
        for p in points {
            buffer.push(p);
        }
        self.attribution.process(&mut buffer, &self.metrics);
        Out {
            points: buffer.as_slice()[n..].to_vec(),
            outputs: self.outputs,
        }
    }

    /// A tick of the pipeline's clock, with its watermark; returns the points it added.
    pub fn tick(&mut self, watermark_ms: Option<u64>) -> Out {
        let mut buffer = MeasurementBuffer::new();
        self.attribution.tick(&mut buffer, watermark_ms.map(ts));
        Out {
            points: buffer.as_slice().to_vec(),
            outputs: self.outputs,
        }
    }

    /// Shutdown.
    pub fn finish(&mut self) -> Out {
        let mut buffer = MeasurementBuffer::new();
        self.attribution.finish(&mut buffer);
        Out {
            points: buffer.as_slice().to_vec(),
            outputs: self.outputs,
        }
    }
}

/// Output points, with accessors.
pub struct Out {
    pub points: Vec<MeasurementPoint>,
    pub outputs: OutputMetrics,
}

fn text(p: &MeasurementPoint, key: &str) -> Option<String> {
    match p.attributes.get(key) {
        Some(AttributeValue::Str(s)) => Some(s.to_string()),
        _ => None,
    }
}

impl Out {
    fn sum(&self, keep: impl Fn(&MeasurementPoint) -> bool) -> f64 {
        self.points
            .iter()
            .filter(|p| keep(p))
            .map(|p| p.value.as_f64())
            .sum()
    }

    /// Energy attributed to `consumer` (all intervals, all resources) in `domain`.
    pub fn attributed(&self, consumer: &ResourceConsumer, domain: &str) -> f64 {
        let m = self.outputs.attributed.raw();
        self.sum(|p| {
            p.metric == m && p.consumer == *consumer && text(p, "domain").as_deref() == Some(domain)
        })
    }

    /// Energy attributed to process `pid` in `domain`.
    pub fn process(&self, pid: u32, domain: &str) -> f64 {
        self.attributed(&ResourceConsumer::Process { pid }, domain)
    }

    pub fn idle(&self, domain: &str) -> f64 {
        let m = self.outputs.idle.raw();
        self.sum(|p| p.metric == m && text(p, "domain").as_deref() == Some(domain))
    }

    pub fn unattributed(&self, domain: &str, reason: &str) -> f64 {
        let m = self.outputs.unattributed.raw();
        self.sum(|p| {
            p.metric == m
                && text(p, "domain").as_deref() == Some(domain)
                && text(p, "reason").as_deref() == Some(reason)
        })
    }

    /// The intervals (end times in ms) that were attributed: one imbalance point each.
    pub fn intervals(&self) -> Vec<u64> {
        let m = self.outputs.imbalance.raw();
        let mut v: Vec<u64> = self
            .points
            .iter()
            .filter(|p| p.metric == m)
            .map(|p| (p.timestamp.unix_nanos() - T0) / MS)
            .collect();
        v.sort_unstable();
        v
    }

    /// The largest imbalance, in absolute value.
    pub fn max_imbalance(&self) -> f64 {
        let m = self.outputs.imbalance.raw();
        self.points
            .iter()
            .filter(|p| p.metric == m)
            .map(|p| p.value.as_f64().abs())
            .fold(0.0, f64::max)
    }

    /// Sum of every part (attributed, idle, unattributed) in `domain`.
    pub fn total(&self, domain: &str) -> f64 {
        let o = self.outputs;
        let parts = [o.attributed.raw(), o.idle.raw(), o.unattributed.raw()];
        self.sum(|p| parts.contains(&p.metric) && text(p, "domain").as_deref() == Some(domain))
    }
}

/// The output metrics registered by the plugin.
pub fn outputs_from(metrics: &MetricRegistry) -> OutputMetrics {
    let id = |name: &str| metrics.typed_id::<f64>(name).expect("output metric");
    OutputMetrics {
        attributed: id("attributed_energy"),
        idle: id("idle_energy"),
        unattributed: id("unattributed_energy"),
        imbalance: id("attribution_imbalance"),
    }
}

/// Asserts `a == b` within `tol`.
#[track_caller]
pub fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} != {b} (tolerance {tol})");
}
