//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Measures energy and performance counters and writes them to files and databases.
#[derive(Debug, Parser)]
#[command(name = "alumet-agent", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags shared by every command.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// The config file. Generated with the defaults when missing, unless --no-default-config.
    #[arg(
        long,
        global = true,
        env = "ALUMET_CONFIG",
        default_value = "alumet-config.toml"
    )]
    pub config: PathBuf,

    /// Fail when the config file is missing instead of generating the default one.
    #[arg(long, global = true)]
    pub no_default_config: bool,

    /// Enable exactly these plugins (comma-separated), whatever the config file enables.
    #[arg(long, global = true, value_delimiter = ',')]
    pub plugins: Option<Vec<String>>,

    /// Override one config value, as `dotted.key=TOML value`, e.g.
    /// `plugins.csv.output_path="out.csv"`. Repeatable.
    #[arg(long, global = true, value_name = "KEY=VALUE")]
    pub config_override: Vec<String>,

    /// Where the CSV output writes (sets plugins.csv.output_path and enables it).
    #[arg(long, global = true, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent until SIGINT, SIGTERM or SIGHUP (the default command).
    Run,
    /// Run a command and measure it, from just before it starts to just after it ends,
    /// then print a summary (energy, power, CPU time, memory). Exits with its exit code.
    Exec(ExecArgs),
    /// Measure a running process until it exits (or a cgroup until it is removed), then
    /// print a summary.
    Watch {
        /// The process id.
        #[arg(
            value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX)),
            required_unless_present = "cgroup",
            conflicts_with = "cgroup"
        )]
        pid: Option<u32>,
        /// Measure this cgroup (a container, a job) until it is removed: its path from the
        /// cgroup root (`system.slice/docker-ID.scope`), or its directory under the root.
        #[arg(long, value_name = "PATH")]
        cgroup: Option<PathBuf>,
        /// Do not print the summary.
        #[arg(long)]
        no_summary: bool,
        /// Also write the summary as JSON to this file.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
        /// At the end, write a picture of the watch to this HTML file (charts from the CSV
        /// output, and the summary).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Manage the config file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List the plugins built into this agent.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Talk to a running agent through its control socket (`control_socket` in its config).
    Control(ControlArgs),
    /// Draw a run as one self-contained HTML page (charts as inline SVG): power over
    /// time, energy per consumer, CPU and memory, and the run's figures.
    Report(ReportArgs),
}

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The CSV file of the csv plugin, and/or the JSON file of `exec --summary-json`.
    #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// The HTML file to write (default: the first input with the extension `.html`).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `control`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The agent's control socket (default: `control_socket` in the config file).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the agent's reply as JSON, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to ask. SELECTOR is `plugin/element` with `*` wildcards (`procfs/*`, `*`); a
    /// plugin's name alone selects all its sources.
    #[command(subcommand)]
    pub command: crate::control::Request,
}

/// A command-line argument that names nothing usable (a cgroup that does not exist): the
/// agent exits with code 2, as for the arguments that the parser rejects.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Arguments of `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Exit 0 whatever the command's exit code.
    #[arg(long)]
    pub ignore_exit_code: bool,
    /// Do not print the summary.
    #[arg(long)]
    pub no_summary: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// At the end, write a picture of the run to this HTML file (charts from the CSV
    /// output, and the summary).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Run the command N times and report the mean and standard deviation of each figure.
    #[arg(short = 'r', long = "repeat", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "PROGRAM [ARGS]..."
    )]
    pub command: Vec<std::ffi::OsString>,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write the default config file (to --config), replacing an existing one.
    Regen,
}

/// `plugins` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Print the name of every plugin, in start order.
    List {
        /// Also say whether the config enables each plugin, and what it provides.
        #[arg(long)]
        status: bool,
    },
}
