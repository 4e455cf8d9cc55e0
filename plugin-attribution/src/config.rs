//! The `[plugins.attribution]` table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the idle part of an interval's energy is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdleMode {
    /// `idle_power` watts per domain (0 for a domain it does not list) times the interval.
    Fixed,
    /// The lowest average power seen so far for that counter, times the interval.
    Measured,
}

/// Which consumers receive CPU (and GPU) energy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Consumers {
    /// `run`: processes; `exec` and `watch`: whatever the agent announces (the command's
    /// processes, the watched process, or the watched cgroup), the only consumers measured then.
    Auto,
    /// Processes only (procfs's `processes` section).
    Process,
    /// Control groups only (the `cgroups` plugin), nested ones counted once: the deepest
    /// measured cgroups receive the energy.
    Cgroup,
}

/// Config of the `attribution` plugin: the `[plugins.attribution]` table. Missing keys
/// take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// RAPL energy metric to attribute (energy since the previous reading, attribute `domain`).
    pub rapl_metric: String,
    /// RAPL domains whose energy is attributed (`package`, `pp0`, `pp1`, `dram`, `platform`); the others are left alone.
    pub domains: Vec<String>,
    /// Per-consumer CPU time since the previous reading; the consumer of its points (process, cgroup...) receives the energy.
    pub cpu_time_metric: String,
    /// Which consumers of the CPU-time metric receive energy: "process", "cgroup" (the deepest measured cgroups; a parent's time outside its measured children is unattributed, reason parent_cgroup), or "auto" (processes in `run`; in `exec` and `watch`, what the agent measures: the command's processes, or the watched cgroup).
    pub consumers: Consumers,
    /// Values of the CPU-time metric's `kind` attribute that count (guest time is already part of user time); points without `kind` always count.
    pub cpu_time_kinds: Vec<String>,
    /// Machine CPU time per `cpu_state` since the previous reading (`/proc/stat`).
    pub machine_cpu_time_metric: String,
    /// Values of `cpu_state` that count as busy machine CPU time (guest and guest_nice are already part of user and nice).
    pub busy_states: Vec<String>,
    /// NVML energy metric to attribute (energy since the previous reading, per GPU).
    pub gpu_energy_metric: String,
    /// NVML per-process SM utilization (percent, consumer = process, resource = the GPU).
    pub gpu_utilization_metric: String,
    /// The hwmon plugin's energy metric (energy since the previous reading): its points on a GPU (amdgpu) are split like NVML's, by `hwmon_gpu_utilization_metric`; its other points (power meters, Grace) are left alone.
    pub hwmon_energy_metric: String,
    /// The hwmon plugin's per-process use of an AMD GPU (percent, consumer = process, resource = the GPU, from /proc/PID/fdinfo).
    pub hwmon_gpu_utilization_metric: String,
    /// How to estimate the idle part: "fixed" (idle_power) or "measured" (lowest power seen so far).
    pub idle: IdleMode,
    /// Idle power in watts per domain (`package`, `dram`, ..., `gpu`), for idle = "fixed"; a domain not listed has 0 W.
    pub idle_power: BTreeMap<String, f64>,
    /// How long (in measurement time) an interval may wait for CPU data that has not arrived before it is attributed with what has arrived: a bound for a stalled source; a consumer that ended is known from the pipeline's watermark (flush intervals included) without waiting for it.
    #[serde(with = "alumet::humantime_serde")]
    #[schemars(with = "String")]
    pub max_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Config {
            rapl_metric: "rapl_consumed_energy".into(),
            domains: strings(&["package", "dram"]),
            cpu_time_metric: "cpu_time_delta".into(),
            consumers: Consumers::Auto,
            cpu_time_kinds: strings(&["user", "system"]),
            machine_cpu_time_metric: "kernel_cpu_time".into(),
            busy_states: strings(&["user", "nice", "system", "irq", "softirq"]),
            gpu_energy_metric: "nvml_energy_consumption".into(),
            gpu_utilization_metric: "nvml_sm_utilization".into(),
            hwmon_energy_metric: "hwmon_energy".into(),
            hwmon_gpu_utilization_metric: "amdgpu_process_utilization".into(),
            idle: IdleMode::Fixed,
            idle_power: BTreeMap::new(),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let names = [
            ("rapl_metric", &self.rapl_metric),
            ("cpu_time_metric", &self.cpu_time_metric),
            ("machine_cpu_time_metric", &self.machine_cpu_time_metric),
            ("gpu_energy_metric", &self.gpu_energy_metric),
            ("gpu_utilization_metric", &self.gpu_utilization_metric),
            ("hwmon_energy_metric", &self.hwmon_energy_metric),
            (
                "hwmon_gpu_utilization_metric",
                &self.hwmon_gpu_utilization_metric,
            ),
        ];
        for (key, name) in names {
            anyhow::ensure!(!name.is_empty(), "{key} is empty: give a metric name");
        }
        anyhow::ensure!(
            self.domains.len() <= usize::from(u8::MAX),
            "domains lists more than 255 domains"
        );
        for (domain, watts) in &self.idle_power {
            anyhow::ensure!(
                watts.is_finite() && *watts >= 0.0,
                "idle_power.{domain} is {watts}: give a power in watts, 0 or more"
            );
        }
        anyhow::ensure!(
            !self.max_delay.is_zero(),
            "max_delay must be longer than zero"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_toml() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        let text = toml::to_string(&config).expect("serializes");
        let back: Config = toml::from_str(&text).expect("parses");
        assert_eq!(back, config);
        assert!(text.contains("max_delay = \"20s\""), "{text}");
        assert!(text.contains("consumers = \"auto\""), "{text}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<Config>("idle_powr = {}").is_err());
        assert!(toml::from_str::<Config>("consumers = \"pod\"").is_err());
        let config: Config = toml::from_str("consumers = \"cgroup\"").expect("parses");
        assert_eq!(config.consumers, Consumers::Cgroup);
        let config: Config =
            toml::from_str("idle = \"measured\"\nidle_power = { package = -1.0 }").expect("parses");
        assert_eq!(config.idle, IdleMode::Measured);
        let err = config.validate().expect_err("negative power").to_string();
        assert!(err.contains("idle_power.package"), "{err}");
    }
}
