//! Plugin `agent`: the agent's own metrics (points written, dropped and lost per output,
//! its CPU time and memory), so that an operator sees in the data itself when an output
//! falls behind.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alumet::pipeline::PluginControl;
use alumet::prelude::*;
use serde::{Deserialize, Serialize};

/// Config of the `agent` plugin.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How often to measure the agent itself.
    #[serde(with = "alumet::humantime_serde::interval")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the measurements to the outputs.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_interval: Duration::from_secs(10),
            flush_interval: Duration::from_secs(10),
        }
    }
}

/// The agent's own metrics.
pub struct AgentPlugin {
    config: Config,
    control: Arc<OnceLock<PluginControl>>,
}

impl Plugin for AgentPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "agent"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        Trigger::from_config("", config.poll_interval, config.flush_interval)?;
        Ok(AgentPlugin {
            config,
            control: Arc::default(),
        })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let per_output = |alumet: &mut Registrar<'_>, name: &str, what: &str| {
            alumet.create_metric::<u64>(
                name,
                Unit::Unity,
                &format!("points {what} by each output since the agent started"),
            )
        };
        let source = SelfSource {
            written: per_output(alumet, "alumet_output_written_points", "written")?,
            dropped: per_output(
                alumet,
                "alumet_output_dropped_points",
                "dropped because its queue was full",
            )?,
            failed: per_output(
                alumet,
                "alumet_output_failed_points",
                "lost to write errors",
            )?,
            cpu: alumet.create_metric::<u64>(
                "alumet_agent_cpu_time",
                Unit::Millisecond,
                "CPU time used by the agent (user and system)",
            )?,
            control: Arc::clone(&self.control),
            output_attrs: Vec::new(),
            output_names: Vec::new(),
            me: ResourceConsumer::Process {
                pid: std::process::id(),
            },
        };
        let c = &self.config;
        let trigger = Trigger::from_config("", c.poll_interval, c.flush_interval)?;
        alumet.add_source("self", source, trigger)?;
        Ok(())
    }

    fn post_start(&mut self, control: &PluginControl) -> anyhow::Result<()> {
        let _ = self.control.set(control.clone());
        Ok(())
    }
}

struct SelfSource {
    written: MetricId<u64>,
    dropped: MetricId<u64>,
    failed: MetricId<u64>,
    cpu: MetricId<u64>,
    control: Arc<OnceLock<PluginControl>>,
    output_attrs: Vec<Attributes>,
    /// The outputs `output_attrs` are for.
    output_names: Vec<alumet::pipeline::ElementName>,
    me: ResourceConsumer,
}

fn cpu_time_ms() -> u64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    let ms = |t: libc::timeval| (t.tv_sec as u64) * 1000 + (t.tv_usec as u64) / 1000;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

impl Source for SelfSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        let local = || (Resource::LocalMachine, ResourceConsumer::LocalMachine);
        acc.push(MeasurementPoint::new(
            t,
            self.cpu,
            Resource::LocalMachine,
            self.me.clone(),
            cpu_time_ms(),
        ));
        let Some(control) = self.control.get() else {
            return Ok(());
        };
        // An output replaced by a reload is listed twice, the one in use first: the old
        // one's figures are final, and a series per output name goes on with the new one.
        let mut stats = control.output_stats();
        let mut i = 0;
        while i < stats.len() {
            if stats[..i].iter().any(|s| s.name == stats[i].name) {
                stats.remove(i);
            } else {
                i += 1;
            }
        }
        let names = stats.iter().map(|s| &s.name);
        if !names.eq(self.output_names.iter()) {
            self.output_names = stats.iter().map(|s| s.name.clone()).collect();
            self.output_attrs = stats
                .iter()
                .map(|s| Attributes::new([("output", s.name.to_string())]))
                .collect();
        }
        for (s, attrs) in stats.iter().zip(&self.output_attrs) {
            for (metric, value) in [
                (self.written, s.written_points),
                (self.dropped, s.dropped_points),
                (self.failed, s.failed_points),
            ] {
                let (r, c) = local();
                acc.push(
                    MeasurementPoint::new(t, metric, r, c, value).with_attributes(attrs.clone()),
                );
            }
        }
        Ok(())
    }
}
