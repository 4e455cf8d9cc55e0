//! `alumet-agent`: the standard measurement agent.

use std::process::ExitCode;

use alumet_agent::cli::{self, Cli, Command, ConfigCommand, PluginsCommand};
use alumet_agent::config::{self, ConfigError};
use alumet_agent::exec::{self, ExecOptions, Target};
use alumet_agent::{plugins, run};
use clap::Parser;

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
        Command::Exec(args) => {
            let mut command = args.command.into_iter();
            let program = command
                .next()
                .ok_or_else(|| anyhow::anyhow!("exec: no command given"))?;
            let opts = ExecOptions {
                target: Target::Command {
                    program,
                    args: command.collect(),
                },
                ignore_exit_code: args.ignore_exit_code,
                summary: !args.no_summary,
                summary_json: args.summary_json,
                repeat: args.repeat,
                proc_root: "/proc".into(),
            };
            run_exec(&cli.common, &entries, &opts)
        }
        Command::Watch {
            pid,
            no_summary,
            summary_json,
        } => {
            let opts = ExecOptions {
                target: Target::Pid(pid),
                ignore_exit_code: false,
                summary: !no_summary,
                summary_json,
                repeat: 1,
                proc_root: "/proc".into(),
            };
            run_exec(&cli.common, &entries, &opts)
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

fn run_exec(
    common: &cli::CommonArgs,
    entries: &[plugins::Entry],
    opts: &ExecOptions,
) -> anyhow::Result<ExitCode> {
    let loaded = config::load_adjusted(common, entries, &exec::adjust_config)?;
    let code = exec::exec(loaded, opts)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
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
            plugins::Role::Transform => "transform",
            plugins::Role::Output => "output",
        };
        let state = if *enabled { "enabled" } else { "disabled" };
        println!("{:<12} {:<8} {state}", entry.meta.name, role);
    }
    for d in &selection.dynamic {
        let state = if d.enabled { "enabled" } else { "disabled" };
        println!(
            "{:<12} {:<8} {state} ({})",
            d.name,
            "library",
            d.path.display()
        );
    }
    Ok(())
}
