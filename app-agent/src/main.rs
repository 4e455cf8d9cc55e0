//! The standard agent. For now the core framework exists without plugins: the agent with
//! its config file, run mode and plugins comes with its own issue.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "alumet-agent {}: no plugins yet. The core framework (crate `alumet`) is built; \
         the agent's commands and plugins come next.",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::SUCCESS
}
