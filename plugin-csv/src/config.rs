//! The `[plugins.csv]` table.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Config of the `csv` plugin: the `[plugins.csv]` table. Missing keys take their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Path of the CSV file (relative to the working directory); an existing file is appended to, never truncated.
    pub output_path: PathBuf,
    /// Flush the file after each buffer of points, so that rows reach the file without delay.
    pub force_flush: bool,
    /// Append `_` and the metric's unit to the metric name, as in `rapl_consumed_energy_J`.
    pub append_unit_to_metric_name: bool,
    /// Use the unit's display symbol (`°C`, `B`, nothing for a dimensionless metric) instead of its UCUM code (`Cel`, `By`, `1`).
    pub use_unit_display_name: bool,
    /// The column delimiter: one character, not a letter, digit, quote, CR, LF, `.`, `-`, `+` or `:`.
    pub csv_delimiter: char,
    /// The separator of the `key=value` pairs in the `__late_attributes` column: one character, same rules, nor `=` or `\`.
    pub csv_late_delimiter: char,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            output_path: PathBuf::from("alumet-output.csv"),
            force_flush: true,
            append_unit_to_metric_name: true,
            use_unit_display_name: false,
            csv_delimiter: ';',
            csv_late_delimiter: ',',
        }
    }
}

impl Config {
    /// Checks what serde cannot: the errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.output_path.as_os_str().is_empty(),
            "output_path is empty: give the path of the CSV file"
        );
        check_delimiter("csv_delimiter", self.csv_delimiter)?;
        check_delimiter("csv_late_delimiter", self.csv_late_delimiter)?;
        anyhow::ensure!(
            !matches!(self.csv_late_delimiter, '=' | '\\'),
            "csv_late_delimiter {:?} is not allowed: `=` and `\\` are special in __late_attributes",
            self.csv_late_delimiter
        );
        Ok(())
    }
}

/// A delimiter must never occur in a number or a timestamp (so that those are never
/// quoted) and must not be a character that CSV quoting itself uses.
fn check_delimiter(key: &str, c: char) -> anyhow::Result<()> {
    let bad = c.is_alphanumeric() || matches!(c, '"' | '\r' | '\n' | '.' | '-' | '+' | ':');
    anyhow::ensure!(
        !bad,
        "{key} {c:?} is not allowed: use a character that is not a letter, digit, quote, CR, LF, `.`, `-`, `+` or `:` (`;` or `,`, say)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_delimiters_name_their_key() {
        assert!(Config::default().validate().is_ok());
        for (delim, late) in [('"', ','), ('.', ','), ('a', ','), ('\n', ','), (';', '=')] {
            let config = Config {
                csv_delimiter: delim,
                csv_late_delimiter: late,
                ..Config::default()
            };
            let err = config.validate().expect_err("invalid").to_string();
            let key = if delim == ';' {
                "csv_late_delimiter"
            } else {
                "csv_delimiter"
            };
            assert!(err.starts_with(key), "{err}");
        }
        let tab = Config {
            csv_delimiter: '\t',
            ..Config::default()
        };
        assert!(tab.validate().is_ok());
    }
}
