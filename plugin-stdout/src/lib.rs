//! stdout output: the plugin `stdout` writes every point it receives as one line on the
//! standard output, human-readable or JSON lines (see `README.md`).
//!
//! ```toml
//! [plugins.stdout]
//! format = "json"
//! ```

mod config;
mod format;
mod output;

use alumet::pipeline::OutputOptions;
use alumet::prelude::*;

pub use config::{Config, Format};
pub use output::StdoutOutput;

/// The `stdout` plugin: one output, `stdout/stdout`.
pub struct StdoutPlugin {
    config: Config,
}

impl Plugin for StdoutPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "stdout"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        Ok(StdoutPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let output = StdoutOutput::new(self.config.format, std::io::stdout());
        // Written by the flushing thread only when stdout is a regular file, whose writes
        // are quick. A pipe or a terminal gets the output's own thread: a reader that
        // stops reading (`alumet-agent | less`, paused) must not stop the measurements.
        let options = if stdout_is_regular_file() {
            OutputOptions::default().inline_when_idle()
        } else {
            OutputOptions::default()
        };
        alumet.add_output_with("stdout", output, options)?;
        Ok(())
    }
}

/// Whether standard output is a regular file (not a pipe, a terminal or a socket).
fn stdout_is_regular_file() -> bool {
    use std::os::fd::AsFd;
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.file_type().is_file())
}
