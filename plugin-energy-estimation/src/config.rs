//! The `[plugins.energy-estimation]` table.

use std::path::PathBuf;
use std::time::Duration;

use alumet::pipeline::{Trigger, TriggerConfigError};
use serde::{Deserialize, Serialize};

use crate::model::Model;

/// Which model turns CPU time into joules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    /// `tdp` watts with every logical CPU busy, nothing idle, proportional between.
    Tdp,
    /// The power curve `curve` (watts at utilisation points), idle power included.
    Curve,
}

/// When the plugin estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// Only when no plugin measures CPU energy (the rapl plugin is off or finds no RAPL).
    NoRapl,
    /// Always, beside measured energy (to compare the model with the measure).
    Always,
}

/// Config of the `energy-estimation` plugin. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `"tdp"`: busy CPU time times `tdp / nb_cpu` watts; `"curve"`: the power curve `curve`, idle power included (see the plugin's README).
    pub model: ModelName,
    /// Watts of the CPU package(s) at full load, from the processor's data sheet (a host's, for a virtual machine).
    pub tdp: f64,
    /// The logical CPUs (hardware threads) that `tdp` feeds: the host's, for a virtual machine; 0: this machine's CPUs.
    pub nb_cpu: f64,
    /// This machine's CPUs (a virtual machine's vCPUs); 0: the CPUs in `/proc/stat`.
    pub nb_vcpu: f64,
    /// For `model = "curve"`: the host's watts at CPU utilisation points, `[[percent, watts], ...]` from 0 to 100, interpolated linearly; empty: the Teads curve scaled to `tdp` (12 %, 32 %, 75 % and 102 % of it at 0, 10, 50 and 100 % utilisation).
    pub curve: Vec<[f64; 2]>,
    /// `"no-rapl"`: estimate only when no plugin measures CPU energy; `"always"`: beside it too.
    pub when: When,
    /// How often to read `/proc/stat` and estimate.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// How often to hand the estimates to the outputs.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// Where procfs is mounted: `/proc` takes the general `proc_root`; another path overrides it for this plugin.
    pub procfs_root: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: ModelName::Tdp,
            tdp: 100.0,
            nb_cpu: 0.0,
            nb_vcpu: 0.0,
            curve: Vec::new(),
            when: When::NoRapl,
            poll_interval: Duration::from_secs(1),
            flush_interval: Duration::from_secs(5),
            procfs_root: PathBuf::from(alumet::plugin::host_paths::PROC_ROOT),
        }
    }
}

/// The Teads curve: the share of the TDP a processor draws at 0, 10, 50 and 100 % CPU
/// utilisation (Teads Engineering, "Building an AWS EC2 Carbon Emissions Dataset", 2021,
/// from SPECpower results), the default of `curve`.
pub const TEADS_CURVE: [(f64, f64); 4] = [(0.0, 0.12), (10.0, 0.32), (50.0, 0.75), (100.0, 1.02)];

impl Config {
    /// Checks the values; an error names the key and what to write.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = |key: &str, v: f64| {
            anyhow::ensure!(
                v.is_finite() && v > 0.0,
                "{key} is {v}: give a number of watts greater than 0 (the data sheet's TDP, e.g. 100)"
            );
            Ok(())
        };
        positive("tdp", self.tdp)?;
        for (key, v) in [("nb_cpu", self.nb_cpu), ("nb_vcpu", self.nb_vcpu)] {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "{key} is {v}: give a number of CPUs, or 0 for this machine's"
            );
        }
        let mut previous = -1.0;
        for (i, [u, w]) in self.curve.iter().copied().enumerate() {
            anyhow::ensure!(
                (0.0..=100.0).contains(&u) && u > previous,
                "curve[{i}]: utilisation {u} must be between 0 and 100 and above the point before; list the points in increasing utilisation, e.g. [[0, 12], [10, 32], [50, 75], [100, 102]]"
            );
            anyhow::ensure!(
                w.is_finite() && w >= 0.0,
                "curve[{i}]: {w} watts: give 0 or more"
            );
            previous = u;
        }
        if self.model == ModelName::Curve && self.curve.len() == 1 {
            anyhow::bail!("curve has one point: give at least two (or none, for the Teads curve)");
        }
        self.trigger()?;
        Ok(())
    }

    /// The sources' trigger.
    pub fn trigger(&self) -> Result<Trigger, TriggerConfigError> {
        Trigger::from_config("", self.poll_interval, self.flush_interval)
    }

    /// The model, with `cpus` (the CPUs in `/proc/stat`) for the counts left at 0.
    pub fn model(&self, cpus: u32) -> Model {
        let auto = |v: f64| if v > 0.0 { v } else { f64::from(cpus.max(1)) };
        match self.model {
            ModelName::Tdp => Model::Tdp {
                tdp: self.tdp,
                nb_cpu: auto(self.nb_cpu),
            },
            ModelName::Curve => {
                let points = if self.curve.is_empty() {
                    TEADS_CURVE
                        .iter()
                        .map(|&(u, f)| (u, f * self.tdp))
                        .collect()
                } else {
                    self.curve.iter().map(|&[u, w]| (u, w)).collect()
                };
                Model::Curve {
                    points,
                    nb_cpu: auto(self.nb_cpu),
                    nb_vcpu: auto(self.nb_vcpu),
                }
            }
        }
    }
}
