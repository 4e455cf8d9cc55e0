//! The transform: it reads energy and usage points from every buffer, keeps them across
//! buffers, and adds the attribution of each energy interval once the usage data covering
//! it has arrived (see the crate docs for the method).

use std::collections::HashMap;
use std::path::PathBuf;

use alumet::measurement::AttributeValue;
use alumet::metrics::MetricRegistry;
use alumet::plugin::RunMode;
use alumet::prelude::*;

use crate::config::Config;
use crate::consumers::{cgroup_of, Kinds};
use crate::inputs::{Input, Inputs, OutputMetrics};
use crate::settle::{settle_cpu, settle_gpu, Kind, Sink, Stream};
use crate::usage::{CpuUsage, GpuUsage};

/// The `domain` of GPU energy (NVML has no domains).
const GPU_DOMAIN: &str = "gpu";
/// The index of [`GPU_DOMAIN`] in stream keys (RAPL domains use their index in the config).
const GPU_DOMAIN_INDEX: u8 = u8::MAX;

/// The attribution state: usage series, energy intervals waiting for their usage data.
///
/// The plugin runs it as a transform; tests and benchmarks can call
/// [`Attribution::process`] directly with buffers.
pub struct Attribution {
    config: Config,
    /// The consumers that receive energy.
    kinds: Kinds,
    /// Where procfs is mounted: the cgroup of a GPU process is read there.
    proc_root: PathBuf,
    outputs: OutputMetrics,
    /// Found on the first buffer: every plugin has registered its metrics by then.
    inputs: Option<Inputs>,
    cpu: CpuUsage,
    gpu: GpuUsage,
    /// Per (source, resource, domain index).
    streams: HashMap<(Kind, Resource, u8), Stream>,
    /// The newest timestamp of an input point, in nanoseconds.
    newest: u64,
    max_delay: u64,
    usages: Vec<(ResourceConsumer, f64)>,
    out: Vec<MeasurementPoint>,
    warned_non_finite: bool,
}

impl Attribution {
    /// A new state for the agent's `run` mode; `outputs` are the registered output metrics.
    pub fn new(config: Config, outputs: OutputMetrics) -> Self {
        Self::with_run_mode(config, outputs, RunMode::Run)
    }

    /// A new state for `mode` (with `consumers = "auto"`, exec and watch attribute to
    /// whatever consumer the agent announced).
    pub fn with_run_mode(config: Config, outputs: OutputMetrics, mode: RunMode) -> Self {
        let max_delay = u64::try_from(config.max_delay.as_nanos()).unwrap_or(u64::MAX);
        Attribution {
            kinds: Kinds::new(config.consumers, mode),
            proc_root: PathBuf::from(alumet::plugin::host_paths::PROC_ROOT),
            config,
            outputs,
            inputs: None,
            cpu: CpuUsage::default(),
            gpu: GpuUsage::default(),
            streams: HashMap::new(),
            newest: 0,
            max_delay,
            usages: Vec::new(),
            out: Vec::new(),
            warned_non_finite: false,
        }
    }

    /// Reads the cgroups of GPU processes (`consumers = "cgroup"`) under `proc_root`
    /// (`/proc` by default; the host's, mounted elsewhere, in a container).
    pub fn with_proc_root(mut self, proc_root: PathBuf) -> Self {
        self.proc_root = proc_root;
        self
    }

    /// Reads the buffer's input points, then appends to it the attribution of every
    /// interval whose data is complete, or older than `max_delay`. `metrics` is the
    /// pipeline's registry (input metrics are looked up by name in it, once).
    pub fn process(&mut self, buffer: &mut MeasurementBuffer, metrics: &MetricRegistry) {
        let inputs = match self.inputs {
            Some(inputs) => inputs,
            None => *self.inputs.insert(Inputs::resolve(&self.config, metrics)),
        };
        for point in buffer.iter() {
            self.ingest(point, &inputs);
        }
        self.settle(&inputs, false);
        self.prune();
        buffer.as_mut_vec().append(&mut self.out);
    }

    /// The pipeline's clock ticked: a consumer last read before `watermark` was not in
    /// its source's later readings (it has vanished), so the intervals that waited for
    /// it can be attributed; appends what is ready to `buffer`.
    pub fn tick(&mut self, buffer: &mut MeasurementBuffer, watermark: Option<Timestamp>) {
        if let Some(w) = watermark {
            self.cpu.set_watermark(w.unix_nanos());
        }
        let Some(inputs) = self.inputs else {
            return;
        };
        self.settle(&inputs, false);
        self.prune();
        buffer.as_mut_vec().append(&mut self.out);
    }

    /// Attributes every pending interval with the data that has arrived (at shutdown: no
    /// more will come) and appends the points to `buffer`. Intervals without CPU data
    /// become `unattributed_energy` (`reason = no_usage_data`).
    pub fn finish(&mut self, buffer: &mut MeasurementBuffer) {
        let Some(inputs) = self.inputs else {
            return;
        };
        let pending: usize = self.streams.values().map(|s| s.pending.len()).sum();
        if pending > 0 {
            log::info!(
                "attribution: attributing {pending} intervals still waiting for CPU data at shutdown with the data received"
            );
        }
        self.settle(&inputs, true);
        buffer.as_mut_vec().append(&mut self.out);
    }

    /// How many energy intervals wait for their usage data.
    pub fn pending_intervals(&self) -> usize {
        self.streams.values().map(|s| s.pending.len()).sum()
    }

    fn ingest(&mut self, p: &MeasurementPoint, inputs: &Inputs) {
        let is = |input: Option<Input>| input.filter(|i| i.id == p.metric);
        let t = p.timestamp.unix_nanos();
        let value = p.value.as_f64();
        if let Some(input) = is(inputs.rapl) {
            let Some(domain) = domain_index(&self.config.domains, &p.attributes) else {
                return;
            };
            let source = inputs.cpu_source;
            self.energy(
                (Kind::Rapl, source),
                &p.resource,
                domain,
                t,
                value * input.factor,
            );
        } else if let Some(input) = is(inputs.cpu_time) {
            if !self.kinds.accepts(&p.consumer) {
                return;
            }
            if attr_in(&p.attributes, "kind", &self.config.cpu_time_kinds) != Some(false) {
                self.cpu.add_consumer(&p.consumer, t, value * input.factor);
            }
        } else if let Some(input) = is(inputs.machine) {
            if p.resource != Resource::LocalMachine {
                return;
            }
            match attr_in(&p.attributes, "cpu_state", &self.config.busy_states) {
                Some(true) => self.cpu.add_machine(t, value * input.factor),
                Some(false) => self.cpu.add_machine(t, 0.0),
                None => return,
            }
        } else if let Some(input) = is(inputs.gpu_energy) {
            self.gpu_energy((Kind::Nvml, "nvml"), &p.resource, t, value * input.factor);
        } else if let Some(input) = is(inputs.hwmon_energy) {
            // Only a GPU's (amdgpu): a power meter's or Grace's energy is not split here.
            if !matches!(p.resource, Resource::Gpu { .. }) {
                return;
            }
            self.gpu_energy((Kind::Hwmon, "hwmon"), &p.resource, t, value * input.factor);
        } else if is(inputs.gpu_utilization)
            .or(is(inputs.hwmon_gpu_utilization))
            .is_some()
        {
            if self.kinds == Kinds::Cgroup {
                // Read now: the process may be gone when its interval is attributed.
                let cgroup = cgroup_of(&self.proc_root, &p.consumer);
                self.gpu.add_utilization(&p.resource, &cgroup, t, value);
            } else {
                self.gpu.add_utilization(&p.resource, &p.consumer, t, value);
            }
        } else {
            return;
        }
        self.newest = self.newest.max(t);
    }

    /// Adds `joules` of a GPU's energy (a reading of the GPU at `t`).
    fn gpu_energy(&mut self, kind: (Kind, &'static str), gpu: &Resource, t: u64, joules: f64) {
        self.gpu.poll(gpu, t);
        self.energy(kind, gpu, GPU_DOMAIN_INDEX, t, joules);
    }

    /// Adds `joules` of an energy input: `kind` with the `source` attribute of its parts.
    fn energy(
        &mut self,
        (kind, source): (Kind, &'static str),
        resource: &Resource,
        domain: u8,
        t: u64,
        joules: f64,
    ) {
        if !joules.is_finite() {
            if !self.warned_non_finite {
                self.warned_non_finite = true;
                log::warn!(
                    "attribution: ignoring an energy reading that is not a number ({joules}) on {}",
                    resource.kind()
                );
            }
            return;
        }
        let key = (kind, resource.clone(), domain);
        if !self.streams.contains_key(&key) {
            let name = match self.config.domains.get(usize::from(domain)) {
                Some(name) if domain != GPU_DOMAIN_INDEX => name.as_str(),
                _ => GPU_DOMAIN,
            };
            let stream = Stream::new((kind, source), resource.clone(), name, &self.config);
            self.streams.insert(key.clone(), stream);
        }
        if let Some(stream) = self.streams.get_mut(&key) {
            stream.push(t, joules);
        }
    }

    /// Attributes the intervals that are ready (all of them when `finishing`).
    fn settle(&mut self, inputs: &Inputs, finishing: bool) {
        let has_machine = inputs.machine.is_some();
        let has_gpu_usage = inputs.gpu_utilization.is_some();
        let has_hwmon_usage = inputs.hwmon_gpu_utilization.is_some();
        let has_consumers = inputs.cpu_time.is_some();
        let cpu_until =
            self.cpu
                .ready_until(has_machine, has_consumers, self.newest, self.max_delay);
        let Attribution {
            streams,
            cpu,
            gpu,
            outputs,
            usages,
            out,
            newest,
            max_delay,
            kinds,
            ..
        } = self;
        for stream in streams.values_mut() {
            while let Some(iv) = stream.pending.front().copied() {
                let overdue = newest.saturating_sub(iv.end) > *max_delay;
                let ready = iv.start.is_none()
                    || match stream.kind {
                        Kind::Rapl => iv.end <= cpu_until,
                        // Energy and utilization are read in the same poll (NVML, or
                        // the amdgpu chip's hwmon source).
                        Kind::Nvml | Kind::Hwmon => true,
                    };
                if !(ready || overdue || finishing) {
                    break;
                }
                stream.pending.pop_front();
                let sink = Sink {
                    outputs,
                    usages,
                    out,
                };
                match stream.kind {
                    Kind::Rapl => settle_cpu(stream, iv, cpu, has_machine, sink),
                    Kind::Nvml => settle_gpu(stream, iv, (gpu, cpu), has_gpu_usage, *kinds, sink),
                    Kind::Hwmon => {
                        settle_gpu(stream, iv, (gpu, cpu), has_hwmon_usage, *kinds, sink)
                    }
                }
            }
        }
    }

    /// Forgets the usage samples that no pending or future interval needs. Energy
    /// readings that have not arrived yet (a source that flushes less often than the CPU
    /// time's) are later than the pipeline's watermark: usage since then is kept for them.
    fn prune(&mut self) {
        let recent = self.newest.saturating_sub(self.max_delay);
        let unseen = match self.cpu.watermark() {
            0 => self.newest,
            w => w.min(self.newest),
        };
        let horizon = self
            .streams
            .values()
            .filter(|s| !s.pending.is_empty() || s.last_end.is_some_and(|t| t >= recent))
            .filter_map(Stream::horizon)
            .min()
            .map_or(unseen, |h| h.min(unseen));
        self.cpu.prune(horizon, self.newest, self.max_delay);
        self.gpu.prune(horizon);
    }
}

/// The index of the point's `domain` in `domains`, if listed.
fn domain_index(domains: &[String], attrs: &Attributes) -> Option<u8> {
    let Some(AttributeValue::Str(domain)) = attrs.get("domain") else {
        return None;
    };
    let i = domains.iter().position(|d| **d == **domain)?;
    u8::try_from(i).ok().filter(|i| *i != GPU_DOMAIN_INDEX)
}

/// Whether the text attribute `key` is one of `values`; `None` when the point lacks it.
fn attr_in(attrs: &Attributes, key: &str, values: &[String]) -> Option<bool> {
    match attrs.get(key)? {
        AttributeValue::Str(v) => Some(values.iter().any(|x| **x == **v)),
        _ => Some(false),
    }
}

/// The pipeline element.
pub(crate) struct AttributionTransform(pub(crate) Attribution);

impl Transform for AttributionTransform {
    fn apply(
        &mut self,
        buffer: &mut MeasurementBuffer,
        ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        self.0.process(buffer, ctx.metrics());
        Ok(())
    }

    /// The watermark tells which consumers have vanished (see [`Attribution::tick`]).
    fn on_tick(
        &mut self,
        buffer: &mut MeasurementBuffer,
        clock: &Clock,
        _ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        self.0.tick(buffer, clock.watermark());
        Ok(())
    }

    /// At shutdown, after the sources' final flush: the intervals still waiting for data,
    /// attributed with what arrived, so that nothing measured is lost.
    fn finish(
        &mut self,
        buffer: &mut MeasurementBuffer,
        _ctx: &TransformContext,
    ) -> Result<(), ElementError> {
        self.0.finish(buffer);
        Ok(())
    }
}

/// Registers the transform.
pub(crate) fn register(alumet: &mut Registrar<'_>, state: Attribution) -> anyhow::Result<()> {
    alumet.add_transform("attribution", AttributionTransform(state))?;
    Ok(())
}
