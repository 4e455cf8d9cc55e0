//! `alumet-agent`: the standard measurement agent.
//!
//! The binary defines the C `main` itself (`no_main`): Rust's runtime start reads and
//! parses `/proc/self/maps` to place the main thread's stack guard and sets up alternate
//! signal stacks for every thread, about 0.3 ms of the start of `exec -- true` (issue
//! #5) for a stack-overflow message. What the agent needs from that start is done in
//! [`main`]: SIGPIPE ignored, standard file descriptors made valid, panics turned into
//! exit code 101, stdout flushed. A stack overflow is still a crash (SIGSEGV), without
//! the message.
#![no_main]

use std::ffi::{c_char, c_int};
use std::fmt::Write as _;
use std::io::Write;

use alumet_agent::cli::{self, Cli, Command, ConfigCommand, PluginsCommand};
use alumet_agent::config::{self, ConfigError};
use alumet_agent::exec::{self, ExecOptions, Target};
use alumet_agent::{control, plugins, run};
use clap::Parser;

/// Exit code of a command-line argument that names nothing usable (as clap's errors).
const EXIT_USAGE: u8 = 2;

/// Exit code of a configuration error (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

/// Exit code of a panic (as Rust's runtime start gives).
const EXIT_PANIC: c_int = 101;

#[no_mangle]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    standard_fds_open();
    // A panic's message is printed by the default hook; the unwinding stops here.
    let code = std::panic::catch_unwind(agent_main).map_or(EXIT_PANIC, c_int::from);
    let _ = std::io::stdout().flush();
    code
}

/// Opens /dev/null on whichever of stdin, stdout and stderr is closed, so that no file
/// the agent opens gets their number (and the log lines or the command's output).
fn standard_fds_open() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: a constant, NUL-terminated path; the lowest free number is `fd`.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

fn agent_main() -> u8 {
    let cli = Cli::parse();
    // exec and watch print their summary after the command's own output, as perf stat
    // does: no informational lines among the command's (RUST_LOG=info shows them).
    let default_level = match cli.command {
        Some(Command::Exec(_) | Command::Watch { .. }) => "warn",
        _ => "info",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                EXIT_CONFIG
            } else if e.downcast_ref::<cli::UsageError>().is_some() {
                EXIT_USAGE
            } else {
                1
            }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let entries = plugins::all();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let loaded = config::load(&cli.common, &entries)?;
            let common = cli.common.clone();
            let reloader = run::Reloader {
                load: Box::new(move || config::load(&common, &plugins::all())),
                instantiate: Box::new(|c| config::instantiate(c, &plugins::all())),
            };
            let report = run::run(loaded, reloader)?;
            Ok(run::exit_code(&report))
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
                report: args.report,
                repeat: args.repeat,
                proc_root: "/proc".into(),
            };
            run_exec(&cli.common, &entries, &opts)
        }
        Command::Watch {
            pid,
            cgroup,
            no_summary,
            summary_json,
            report,
        } => {
            let mut common = cli.common.clone();
            let target = match (pid, cgroup) {
                (Some(pid), _) => Target::Pid(pid),
                (None, Some(path)) => {
                    // The cgroups plugin measures the watched cgroup: enabled for it, unless
                    // --plugins chooses (then it must name it).
                    if common.plugins.is_none() {
                        common
                            .config_override
                            .push("plugins.cgroups.enable=true".into());
                    }
                    Target::Cgroup(path)
                }
                (None, None) => anyhow::bail!("watch: give a PID or --cgroup PATH"),
            };
            let opts = ExecOptions {
                target,
                ignore_exit_code: false,
                summary: !no_summary,
                summary_json,
                report,
                repeat: 1,
                proc_root: "/proc".into(),
            };
            run_exec(&common, &entries, &opts)
        }
        Command::Config {
            command: ConfigCommand::Regen,
        } => {
            let text = config::generate::default_config(&entries);
            let path = &cli.common.config;
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            print(&format!("wrote the default config to {}\n", path.display()))?;
            Ok(0)
        }
        Command::Plugins {
            command: PluginsCommand::List { status },
        } => {
            list_plugins(&cli.common, &entries, status)?;
            Ok(0)
        }
        Command::Report(args) => alumet_agent::report::run(&args),
        Command::Control(args) => {
            let outcome = control::client::run(&args, &cli.common, &entries)?;
            print(&outcome.text)?;
            Ok(outcome.code)
        }
    }
}

fn run_exec(
    common: &cli::CommonArgs,
    entries: &[plugins::Entry],
    opts: &ExecOptions,
) -> anyhow::Result<u8> {
    let loaded = config::load(common, entries)?;
    let code = exec::exec(loaded, opts)?;
    Ok(u8::try_from(code).unwrap_or(1))
}

fn list_plugins(
    args: &cli::CommonArgs,
    entries: &[plugins::Entry],
    status: bool,
) -> anyhow::Result<()> {
    let mut text = String::new();
    if !status {
        for e in entries {
            text.push_str(e.meta.name);
            text.push('\n');
        }
        for (alias, plugin) in plugins::ALIASES {
            let _ = writeln!(text, "{alias} (the public Alumet agent's name of {plugin})");
        }
        return print(&text);
    }
    let selection = config::select(args, entries)?;
    for selected in &selection.plugins {
        let role = match selected.entry.role {
            plugins::Role::Source => "source",
            plugins::Role::Transform => "transform",
            plugins::Role::Output => "output",
        };
        let state = if selected.enabled {
            "enabled"
        } else {
            "disabled"
        };
        let _ = write!(text, "{:<12} {:<8} {state}", selected.name, role);
        if selected.is_instance() {
            let _ = write!(text, " (plugin {})", selected.entry.meta.name);
        }
        text.push('\n');
    }
    for d in &selection.dynamic {
        let state = if d.enabled { "enabled" } else { "disabled" };
        let _ = writeln!(
            text,
            "{:<12} {:<8} {state} ({})",
            d.name,
            "library",
            d.path.display()
        );
    }
    print(&text)
}

/// Writes `text` to standard output: a write that fails (a closed pipe, as in
/// `alumet-agent plugins list | head -1`) is an error of the command, where `println!`
/// would panic.
fn print(text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to standard output")
}
