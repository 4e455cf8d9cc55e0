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
    /// Use the unit's display symbol (`°C`, `B`, nothing for a dimensionless metric) instead of its UCUM code (`Cel`, `By`, `1`), as the public Alumet agent does by default.
    pub use_unit_display_name: bool,
    /// The column delimiter: one character, not a letter, digit, quote, CR, LF, `.`, `-`, `+` or `:`.
    pub csv_delimiter: char,
    /// The separator of the `key=value` pairs in the `__late_attributes` column: one character, same rules, nor `=` or `\`.
    pub csv_late_delimiter: char,
    /// The public Alumet agent's key: how a quote inside a quoted field is written. This output always doubles it (RFC 4180), so only `"\"\""` is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv_escaped_quote: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            output_path: PathBuf::from("alumet-output.csv"),
            force_flush: true,
            append_unit_to_metric_name: true,
            use_unit_display_name: true,
            csv_delimiter: ';',
            csv_late_delimiter: ',',
            csv_escaped_quote: None,
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
        check_path(&self.output_path)?;
        check_delimiter("csv_delimiter", self.csv_delimiter)?;
        if let Some(q) = &self.csv_escaped_quote {
            anyhow::ensure!(
                q == "\"\"",
                "csv_escaped_quote {q:?} is not supported: this output doubles a quote inside a quoted field (RFC 4180, `\"\"`), which CSV readers expect; remove the key or set it to \"\\\"\\\"\""
            );
        }
        check_delimiter("csv_late_delimiter", self.csv_late_delimiter)?;
        anyhow::ensure!(
            !matches!(self.csv_late_delimiter, '=' | '\\'),
            "csv_late_delimiter {:?} is not allowed: `=` and `\\` are special in __late_attributes",
            self.csv_late_delimiter
        );
        Ok(())
    }
}

/// The output file can be opened for appending, or created: checked without creating
/// anything, so that a config error leaves no file behind.
fn check_path(path: &std::path::Path) -> anyhow::Result<()> {
    let shown = path.display();
    let fix = "set output_path (or --output-file) to a file in a writable directory";
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            anyhow::bail!("output_path {shown} is a directory: {fix}")
        }
        Ok(_) => {
            if let Err(e) = access(path, libc::W_OK) {
                anyhow::bail!("output_path {shown} cannot be written ({e}): {fix}");
            }
            return Ok(());
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            anyhow::bail!("output_path {shown}: {e}: {fix}")
        }
        Err(_) => {}
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => anyhow::bail!(
            "output_path {shown}: {} is not a directory: {fix}",
            parent.display()
        ),
        Err(e) => anyhow::bail!(
            "output_path {shown}: its directory {} cannot be used ({e}): {fix}",
            parent.display()
        ),
    }
    if let Err(e) = access(parent, libc::W_OK | libc::X_OK) {
        anyhow::bail!(
            "output_path {shown}: no file can be created in {} ({e}): {fix}",
            parent.display()
        );
    }
    Ok(())
}

/// `access(2)`: whether this process may use `path` in `mode` (a read-only filesystem is
/// `EROFS`).
fn access(path: &std::path::Path, mode: libc::c_int) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid, NUL-terminated path; access only reads it.
    match unsafe { libc::access(c_path.as_ptr(), mode) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// A delimiter must never occur in a number or a timestamp (so that those are never
/// quoted) and must not be a character that CSV quoting itself uses.
fn check_delimiter(key: &str, c: char) -> anyhow::Result<()> {
    let bad = c.is_alphanumeric()
        || (c.is_control() && c != '\t')
        || matches!(c, '"' | '.' | '-' | '+' | ':');
    anyhow::ensure!(
        !bad,
        "{key} {c:?} is not allowed: use a character that is not a letter, digit, quote, control character (tab excepted), `.`, `-`, `+` or `:` (`;` or `,`, say)"
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
