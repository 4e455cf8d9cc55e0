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
        alumet.add_output("stdout", output)?;
        Ok(())
    }
}
