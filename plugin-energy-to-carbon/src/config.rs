//! The `[plugins.energy-to-carbon]` table.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::intensity::Intensity;

/// Config of the `energy-to-carbon` plugin: one of `intensity`, `country` and
/// `intensity_file`. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A fixed carbon intensity of the electricity, in g CO2e per kWh (0: not used); `emission_intensity_override` is the public Alumet agent's name of it.
    #[serde(alias = "emission_intensity_override")]
    pub intensity: f64,
    /// A country code (ISO 3166-1 alpha-2 such as "FR", or alpha-3 such as "FRA"): its yearly average intensity from the table shipped with the plugin (Electricity Maps, 2024); empty: not used. `country_code` is the public Alumet agent's name of it.
    #[serde(alias = "country_code")]
    pub country: String,
    /// A CSV file of intensity over time, lines `TIME,GRAMS_PER_KWH` (RFC 3339 or Unix seconds), each figure holding until the next; empty: not used.
    pub intensity_file: PathBuf,
    /// The energy metrics to convert; empty: every metric in joules (J, mJ, uJ) but the attribution's imbalance.
    pub metrics: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            intensity: 0.0,
            country: String::new(),
            intensity_file: PathBuf::new(),
            metrics: Vec::new(),
        }
    }
}

impl Config {
    /// The intensity the config names; an error unless exactly one source is given.
    pub fn intensity(&self) -> anyhow::Result<Intensity> {
        let given = [
            self.intensity != 0.0,
            !self.country.is_empty(),
            !self.intensity_file.as_os_str().is_empty(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => anyhow::bail!(
                "give the grid's carbon intensity: `intensity` (g CO2e/kWh), `country` (such as \"FR\") or `intensity_file` (a CSV of TIME,GRAMS_PER_KWH); the public Alumet agent falls back to a world average of 475 g/kWh, which `intensity = 475` gives here"
            ),
            1 => {}
            _ => anyhow::bail!(
                "give only one of `intensity`, `country` and `intensity_file`"
            ),
        }
        if self.intensity != 0.0 {
            anyhow::ensure!(
                self.intensity.is_finite() && self.intensity > 0.0,
                "intensity is {}: give grams of CO2e per kWh, above 0 (e.g. 56)",
                self.intensity
            );
            return Ok(Intensity::Fixed {
                grams_per_kwh: self.intensity,
                source: format!("fixed {} g/kWh", self.intensity),
            });
        }
        if !self.country.is_empty() {
            return Intensity::country(&self.country);
        }
        Intensity::from_file(&self.intensity_file)
    }
}
