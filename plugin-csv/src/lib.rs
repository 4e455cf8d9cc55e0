//! CSV file output: the plugin `csv` writes every point it receives as one row of a CSV
//! file, in the format of the public Alumet project's CSV output (see `README.md`).
//!
//! ```toml
//! [plugins.csv]
//! output_path = "alumet-output.csv"
//! ```

mod config;
// Public for the property tests of the header reader (tests/fuzz_header.rs) only.
#[doc(hidden)]
pub mod format;
mod output;

use alumet::pipeline::OutputOptions;
use alumet::prelude::*;

pub use config::Config;
pub use output::CsvOutput;

/// The `csv` plugin: one output, `csv/csv`, that appends rows to `output_path`.
pub struct CsvPlugin {
    config: Config,
}

impl Plugin for CsvPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "csv"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(CsvPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        // Opened here, not in `init`: an unwritable path stops the agent before it measures.
        let output = CsvOutput::open(&self.config)?;
        // A row counts as written once it is in the file (see `output.rs`).
        let options = OutputOptions::default().reports_delivery();
        alumet.add_output_with("csv", output, options)?;
        Ok(())
    }
}
