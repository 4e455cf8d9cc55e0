//! The source of one chip: its sensor files, opened once and re-read each poll into
//! buffers of their own (no allocation per poll once warm, except to describe an error).
//! A sensor that cannot be read is logged when it starts failing and when it recovers;
//! the chip's other sensors go on. A chip that disappears ends its source.

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use alumet::prelude::*;

use crate::discover::{Chip, Sensor};
use crate::metrics::{Flavor, Metrics, Out};
use crate::parse::Kind;
use crate::processes::{GpuProcesses, ProcessList};
use crate::reader::{is_gone, SysFile};

/// Power integrated into energy, where the chip has no energy counter.
struct Integral {
    state: PowerIntegral,
    out: Out,
    attrs: Attributes,
}

impl Integral {
    fn new(energy: Option<Out>, attrs: &Attributes) -> Option<Self> {
        Some(Integral {
            state: PowerIntegral::default(),
            out: energy?,
            attrs: attrs.with("method", "integrated"),
        })
    }

    fn push(
        &mut self,
        acc: &mut MeasurementAccumulator,
        at: (Timestamp, Instant),
        r: &Resource,
        raw: f64,
    ) {
        if let Some(e) = self.state.update(raw, at.1) {
            acc.push(
                self.out
                    .point(at.0, r, e)
                    .with_attributes(self.attrs.clone()),
            );
        }
    }
}

/// What a channel's readings become.
enum Role {
    /// A point per reading (temperature, fan, power, current, voltage).
    Value(Option<Out>),
    /// An energy counter: a point per difference.
    Counter(CounterDiff, Out),
}

/// One sensor file.
struct Channel {
    file: SysFile,
    kind: Kind,
    index: u32,
    role: Role,
    attrs: Attributes,
    integral: Option<Integral>,
    /// This poll's reading.
    value: Option<i64>,
    failing: bool,
}

/// A rail whose power is its voltage times its current (INA3221 channels).
struct Rail {
    volt: usize,
    curr: usize,
    out: Option<Out>,
    attrs: Attributes,
    integral: Option<Integral>,
}

/// The source of one chip, `hwmon/NAME-hwmonN`.
pub struct ChipSource {
    /// `coretemp (hwmon0)`, for messages.
    label: String,
    dir: PathBuf,
    resource: Resource,
    channels: Vec<Channel>,
    rails: Vec<Rail>,
    /// amdgpu: the processes using the GPU.
    processes: Option<GpuProcesses>,
}

fn attributes(chip: &Chip, sensor: &Sensor, flavor: Flavor) -> Attributes {
    let label = match &sensor.label {
        Some(l) => l.clone(),
        None => format!("{}{}", sensor.kind.prefix(), sensor.index),
    };
    let mut attrs = Attributes::new([("chip", chip.name.as_str()), ("label", label.as_str())]);
    if let Some(socket) = chip.socket {
        attrs = attrs.with("socket", u64::from(socket));
        if sensor.kind == Kind::Power {
            attrs = attrs.with("sensor", label.to_lowercase());
        }
    }
    if flavor == Flavor::Jetson {
        attrs = attrs
            .with("ina_channel_id", u64::from(sensor.index))
            .with("ina_channel_label", label);
    }
    attrs
}

impl ChipSource {
    /// The source of `chip`, reporting into `metrics`; `None` when none of its sensors
    /// has a metric in this flavor. With `processes`, an amdgpu chip also reports the
    /// processes that use its GPU, found among them.
    pub fn new(
        chip: &Chip,
        metrics: &Metrics,
        flavor: Flavor,
        processes: Option<&ProcessList>,
    ) -> Option<Self> {
        let has = |kind| chip.sensors.iter().any(|s| s.kind == kind);
        let (counted, powered) = (has(Kind::Energy), has(Kind::Power));
        let mut channels = Vec::new();
        for sensor in &chip.sensors {
            let attrs = attributes(chip, sensor, flavor);
            let role = match (sensor.kind, metrics.of(sensor.kind)) {
                (Kind::Energy, Some(out)) => Role::Counter(CounterDiff::without_wrap(), out),
                (Kind::Energy, None) => continue,
                (_, out) => Role::Value(out),
            };
            let integral = match sensor.kind {
                Kind::Power if !counted => Integral::new(metrics.energy, &attrs),
                _ => None,
            };
            let attrs = match role {
                Role::Counter(..) => attrs.with("method", "counter"),
                Role::Value(_) => attrs,
            };
            channels.push(Channel {
                file: SysFile::new(sensor.path.clone()),
                kind: sensor.kind,
                index: sensor.index,
                role,
                attrs,
                integral,
                value: None,
                failing: false,
            });
        }
        let rails = if powered {
            Vec::new()
        } else {
            rails(chip, &channels, metrics, counted, flavor)
        };
        let reports = channels
            .iter()
            .any(|c| !matches!(c.role, Role::Value(None)) || c.integral.is_some());
        let resource = chip.resource();
        let processes = match (&resource, metrics.gpu_process, processes) {
            (Resource::Gpu { bus_id }, Some(out), Some(list)) if chip.name == "amdgpu" => {
                Some(GpuProcesses::new(list.clone(), bus_id.to_string(), out))
            }
            _ => None,
        };
        (reports || !rails.is_empty()).then(|| ChipSource {
            label: format!("{} ({})", chip.name, chip.hwmon),
            dir: chip.dir.clone(),
            resource,
            channels,
            rails,
            processes,
        })
    }

    /// Reads every sensor and pushes their points at `t`; `now` is the monotonic clock's
    /// time of the readings (for the integration of power).
    pub fn poll_at(
        &mut self,
        acc: &mut MeasurementAccumulator,
        t: Timestamp,
        now: Instant,
    ) -> Result<(), ElementError> {
        let mut gone = false;
        // The sensors that start failing now (no allocation while none does).
        let mut failed: Vec<(usize, io::Error)> = Vec::new();
        for (i, ch) in self.channels.iter_mut().enumerate() {
            match ch.file.read() {
                Ok(raw) => {
                    ch.value = Some(raw);
                    if ch.failing {
                        ch.failing = false;
                        log::info!("hwmon: {} can be read again", ch.file.path().display());
                    }
                    ch.push(acc, (t, now), &self.resource, raw);
                }
                Err(e) => {
                    ch.value = None;
                    gone |= is_gone(&e) && e.kind() != io::ErrorKind::NotFound;
                    if let Some(i) = &mut ch.integral {
                        i.state.forget();
                    }
                    if !ch.failing {
                        ch.failing = true;
                        failed.push((i, e));
                    }
                }
            }
        }
        if self.channels.iter().any(|c| c.failing) && (gone || !self.dir.exists()) {
            return Err(ElementError::fatal(anyhow::anyhow!(
                "hwmon chip {} disappeared ({} is gone): its source ends, the other chips are still read",
                self.label,
                self.dir.display()
            )));
        }
        for (i, e) in failed {
            log::warn!(
                "hwmon: reading {}: {e}; its readings are left out until it can be read again (logged once)",
                self.channels[i].file.path().display()
            );
        }
        for rail in &mut self.rails {
            rail.push(acc, (t, now), &self.resource, &self.channels);
        }
        if let Some(processes) = &mut self.processes {
            processes.scan(acc, t, now, &self.resource);
        }
        Ok(())
    }
}

impl Channel {
    fn push(
        &mut self,
        acc: &mut MeasurementAccumulator,
        at: (Timestamp, Instant),
        r: &Resource,
        raw: i64,
    ) {
        match &mut self.role {
            Role::Value(Some(out)) => acc.push(
                out.point(at.0, r, raw as f64)
                    .with_attributes(self.attrs.clone()),
            ),
            Role::Value(None) => {}
            Role::Counter(diff, out) => {
                let update = diff.update(u64::try_from(raw).unwrap_or(0));
                match update {
                    CounterUpdate::Difference(d) => {
                        acc.push(out.point(at.0, r, d as f64).with_attributes(self.attrs.clone()))
                    }
                    CounterUpdate::Reset { previous, current } => log::warn!(
                        "hwmon: {} went back from {previous} to {current} µJ: the counter was reset (driver reload, device reset), the energy of this interval is not reported",
                        self.file.path().display()
                    ),
                    CounterUpdate::First | CounterUpdate::OutOfRange { .. } => {}
                }
            }
        }
        if let Some(i) = &mut self.integral {
            i.push(acc, at, r, raw as f64);
        }
    }
}

impl Rail {
    fn push(
        &mut self,
        acc: &mut MeasurementAccumulator,
        at: (Timestamp, Instant),
        r: &Resource,
        channels: &[Channel],
    ) {
        let (Some(mv), Some(ma)) = (channels[self.volt].value, channels[self.curr].value) else {
            if let Some(i) = &mut self.integral {
                i.state.forget();
            }
            return;
        };
        // mV × mA = µW.
        let uw = mv as f64 * ma as f64;
        if let Some(out) = self.out {
            acc.push(out.point(at.0, r, uw).with_attributes(self.attrs.clone()));
        }
        if let Some(i) = &mut self.integral {
            i.push(acc, at, r, uw);
        }
    }
}

/// The rails of a chip without power sensors: each index with a voltage and a current,
/// labelled from `in*_label`.
fn rails(
    chip: &Chip,
    channels: &[Channel],
    metrics: &Metrics,
    counted: bool,
    flavor: Flavor,
) -> Vec<Rail> {
    let find = |kind, index| {
        channels
            .iter()
            .position(|c| c.kind == kind && c.index == index)
    };
    let mut rails = Vec::new();
    for (volt, channel) in channels.iter().enumerate() {
        let (kind, index) = (channel.kind, channel.index);
        let Some(curr) = (kind == Kind::In)
            .then(|| find(Kind::Curr, index))
            .flatten()
        else {
            continue;
        };
        let Some(sensor) = chip.sensor(Kind::In, index) else {
            continue;
        };
        let attrs = attributes(chip, sensor, flavor);
        rails.push(Rail {
            volt,
            curr,
            out: metrics.power,
            integral: if counted {
                None
            } else {
                Integral::new(metrics.energy, &attrs)
            },
            attrs,
        });
    }
    rails
}

impl Source for ChipSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        self.poll_at(acc, t, Instant::now())
    }
}
