//! The benchmark suite: pipeline cost per poll, CSV cost per point, procfs at 10 kHz, and
//! the agent's idle memory, each against the wake-up floor measured in the same run.
//!
//! `cargo run --release -p bench -- [--quick] [--json FILE]`
//!
//! Each case runs in its own process (this binary with `--case NAME`), so that its peak
//! memory and threads are its own.

mod cases;
mod measure;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use clap::Parser;

use measure::CaseResult;

/// Measures the agent's pipeline and plugins.
#[derive(Parser)]
struct Args {
    /// Short runs: the whole matrix in under 60 s.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only this case, in this process, and print its result as one JSON line.
    #[arg(long, hide = true)]
    case: Option<String>,
    /// Seconds per case (default 10, or 3 with --quick).
    #[arg(long)]
    seconds: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secs = args.seconds.unwrap_or(if args.quick { 3 } else { 10 });
    if let Some(name) = &args.case {
        let case = cases::CASES
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| anyhow::anyhow!("unknown case {name}"))?;
        let result = cases::run_case(case, Duration::from_secs(secs))?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for case in &cases::CASES {
        eprintln!("running {} for {secs} s...", case.name);
        let out = Command::new(&exe)
            .args(["--case", case.name, "--seconds", &secs.to_string()])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "case {} failed: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout)?;
        results.push(serde_json::from_str::<CaseResult>(line.trim())?);
    }
    print_table(&results);
    let idle = idle_agent_rss(&exe, true);
    let first_start = idle_agent_rss(&exe, false);
    match (&idle, &first_start) {
        (Some((rss, threads)), Some((first, _))) => println!(
            "\nalumet-agent idle at its default config: {rss} kB resident, {threads} threads \
             ({first} kB on a first start that also writes the default config file)"
        ),
        _ => println!(
            "\nalumet-agent idle: not measured (build it: cargo build --release -p alumet-agent)"
        ),
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "cases": results,
            "agent_idle_rss_kb": idle.map(|i| i.0),
            "agent_idle_threads": idle.map(|i| i.1),
            "agent_first_start_rss_kb": first_start.map(|i| i.0),
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

fn print_table(results: &[CaseResult]) {
    println!(
        "\n{:<18} {:>7} {:>9} {:>11} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "case",
        "pts",
        "hz",
        "µs/poll",
        "floor µs",
        "ratio",
        "ns/point",
        "p50 µs",
        "p99 µs",
        "max µs",
        "dropped",
        "rss kB"
    );
    for r in results {
        println!(
            "{:<18} {:>7} {:>9.0} {:>11.1} {:>9.1} {:>5.2}x {:>9.0} {:>8.0} {:>8.0} {:>8.0} {:>7} {:>8}",
            r.case,
            r.points_per_poll,
            r.achieved_hz,
            r.cpu_us_per_poll,
            r.floor_us_per_poll,
            r.ratio_to_floor,
            r.cpu_ns_per_point,
            r.latency_p50_us,
            r.latency_p99_us,
            r.latency_max_us,
            r.dropped,
            r.max_rss_kb
        );
    }
}

/// Starts the release agent next to this binary in an empty directory, with its default
/// config, waits 10 s (the agent gives back its start-up pages after 2 s, and the pages its
/// loops use come back over the next seconds), reads its resident memory and thread count,
/// and stops it. With
/// `config_file`, the default config file is written first (`config regen`), as for a
/// service, whose config is installed once; without, the agent writes it itself at start,
/// and the code that did so (probing every plugin, generating the commented file) stays
/// mapped, about 0.8 MB more.
fn idle_agent_rss(exe: &std::path::Path, config_file: bool) -> Option<(u64, u64)> {
    let agent = exe.parent()?.join("alumet-agent");
    if !agent.exists() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "alumet-bench-idle-{}-{config_file}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    if config_file {
        let regen = Command::new(&agent)
            .current_dir(&dir)
            .args(["config", "regen"])
            .output()
            .ok()?;
        if !regen.status.success() {
            return None;
        }
    }
    let mut child = Command::new(agent)
        .current_dir(&dir)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_secs(10));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok();
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let status = status?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}
