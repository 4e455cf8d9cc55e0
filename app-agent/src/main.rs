//! `alumet-agent`: the standard measurement agent.

mod cli;
mod config;
mod plugins;
mod run;
mod self_plugin;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ConfigCommand, PluginsCommand};
use config::ConfigError;

/// Exit code of a configuration error (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let entries = plugins::all();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let loaded = config::load(&cli.common, &entries)?;
            let report = run::run(loaded)?;
            Ok(if report.timed_out {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Config {
            command: ConfigCommand::Regen,
        } => {
            let text = config::generate::default_config(&entries);
            let path = &cli.common.config;
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            println!("wrote the default config to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins {
            command: PluginsCommand::List { status },
        } => {
            list_plugins(&cli.common, &entries, status)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list_plugins(
    args: &cli::CommonArgs,
    entries: &[plugins::Entry],
    status: bool,
) -> anyhow::Result<()> {
    if !status {
        for e in entries {
            println!("{}", e.meta.name);
        }
        return Ok(());
    }
    let selection = config::select(args, entries)?;
    for (entry, _, enabled) in &selection.plugins {
        let role = match entry.role {
            plugins::Role::Source => "source",
            plugins::Role::Output => "output",
        };
        let state = if *enabled { "enabled" } else { "disabled" };
        println!("{:<12} {:<8} {state}", entry.meta.name, role);
    }
    Ok(())
}
