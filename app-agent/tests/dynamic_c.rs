//! Dynamic plugins written in C, through the agent binary: the example plugin built with
//! gcc runs (its source feeds the CSV output, its output receives every point), and every
//! load error exits 78 with a message that names the library and what to do.
#![allow(clippy::unwrap_used)]

mod common;
mod dynamic_support;

use std::path::Path;

use common::*;
use dynamic_support::*;

/// Runs the agent until `lines` has `n` lines of the C example's metric, then SIGTERM.
fn run_until_lines(dir: &Path, lines: &Path, n: usize) -> (std::process::ExitStatus, String) {
    let mut cmd = agent(dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    wait_for_lines(lines, "c_example_polls ", n);
    running.signal(libc::SIGTERM);
    running.wait()
}

#[test]
fn dynamic_c_plugin_source_reaches_the_csv_and_its_output_receives_every_point() {
    if !gcc_here("dynamic_c_plugin_source_reaches_the_csv_and_its_output_receives_every_point") {
        return;
    }
    let dir = temp_dir("dynamic-c");
    let lib = c_example(&dir);
    let config = format!(
        "[plugins.c_example]\npath = '{}'\noutput_path = 'lines.txt'\npoll_interval_ms = 10\n\n[plugins.csv]\noutput_path = 'out.csv'\n",
        lib.display()
    );
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let (status, stderr) = run_until_lines(&dir, &dir.join("lines.txt"), 3);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("plugin c_example: loaded"), "{stderr}");
    assert!(
        stderr.contains("c_example stopped"),
        "the plugin's log line: {stderr}"
    );

    // The source's points are in the CSV: polls 1, 2, 3... on the plugin's resource.
    let rows = rows_of(&dir.join("out.csv"), "c_example_polls");
    assert!(rows.len() >= 3, "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["value"], (i + 1).to_string());
        assert_eq!(
            (row["resource_kind"].as_str(), row["resource_id"].as_str()),
            ("pdu", "outlet-1")
        );
        assert_eq!(row["consumer_kind"], "local_machine");
        assert_eq!(row["origin"], "c");
    }
    // The plugin's output received the same points, every one of them.
    let lines = lines_starting(&dir.join("lines.txt"), "c_example_polls ");
    let expected: Vec<String> = (1..=rows.len())
        .map(|n| format!("c_example_polls pdu outlet-1 {n}"))
        .collect();
    assert_eq!(lines, expected);
}

#[test]
fn dynamic_plugin_dirs_find_lib_name_so_for_a_table_without_path() {
    if !gcc_here("dynamic_plugin_dirs_find_lib_name_so_for_a_table_without_path") {
        return;
    }
    let dir = temp_dir("dynamic-dirs");
    std::fs::create_dir(dir.join("libs")).unwrap();
    c_example(&dir.join("libs"));
    let config = "plugin_dirs = ['empty', 'libs']\n[plugins.c_example]\noutput_path = 'lines.txt'\npoll_interval_ms = 10\n";
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let (status, stderr) = run_until_lines(&dir, &dir.join("lines.txt"), 2);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("libs/libc_example.so"), "{stderr}");
    // `plugins list --status` shows it, with its library.
    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config", "plugins", "list", "--status"]);
    let output = cmd.output().unwrap();
    let listing = String::from_utf8(output.stdout).unwrap();
    let line = listing
        .lines()
        .find(|l| l.starts_with("c_example"))
        .unwrap_or_default();
    assert!(
        line.contains("library")
            && line.contains("enabled")
            && line.ends_with("libs/libc_example.so)"),
        "{listing}"
    );

    // A directory that does not exist is an error that names it.
    let (code, stderr) = run_config(&dir, "plugin_dirs = ['missing']\n[plugins.csv]\n", &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("plugin_dirs: cannot read the directory missing"),
        "{stderr}"
    );
}

/// Runs the agent on `config` and expects exit 78 with every one of `expected` in stderr.
fn config_error(dir: &Path, config: &str, expected: &[&str]) {
    let (code, stderr) = run_config(dir, config, &[]);
    assert_eq!(code, 78, "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "no {e:?} in:\n{stderr}");
    }
}

fn with_path(name: &str, path: &Path) -> String {
    format!(
        "[plugins.csv]\n[plugins.{name}]\npath = '{}'\n",
        path.display()
    )
}

#[test]
fn dynamic_library_missing_or_not_a_library() {
    let dir = temp_dir("dynamic-missing");
    let missing = dir.join("libnothere.so");
    config_error(
        &dir,
        &with_path("nothere", &missing),
        &[
            "line 2: [plugins.nothere]",
            &format!("plugin library {} does not exist", missing.display()),
            "check its path",
        ],
    );
    let junk = dir.join("libjunk.so");
    std::fs::write(&junk, "this is text, not ELF").unwrap();
    config_error(
        &dir,
        &with_path("junk", &junk),
        &[
            &format!("{} is not a shared library", junk.display()),
            "gcc -shared -fPIC",
        ],
    );
}

#[test]
fn dynamic_library_without_a_symbol_names_it() {
    if !gcc_here("dynamic_library_without_a_symbol_names_it") {
        return;
    }
    let dir = temp_dir("dynamic-symbol");
    let lib = c_library(
        "#include \"alumet.h\"\nuint32_t alumet_plugin_abi_version(void) { return ALUMET_ABI_VERSION; }\n",
        &dir,
        "partial",
    );
    config_error(
        &dir,
        &with_path("partial", &lib),
        &[
            &format!(
                "plugin library {} does not export the symbol `alumet_plugin_name`",
                lib.display()
            ),
            "export_plugin!",
        ],
    );
}

#[test]
fn dynamic_library_of_another_abi_version_gives_both_versions() {
    if !gcc_here("dynamic_library_of_another_abi_version_gives_both_versions") {
        return;
    }
    let dir = temp_dir("dynamic-abi");
    let lib = c_library(
        "unsigned alumet_plugin_abi_version(void) { return 7; }\n",
        &dir,
        "old",
    );
    config_error(
        &dir,
        &with_path("old", &lib),
        &[
            &format!(
                "plugin library {} was built for plugin ABI version 7",
                lib.display()
            ),
            "implements version 1",
            "rebuild the plugin",
        ],
    );
}

#[test]
fn dynamic_plugin_init_failure_gives_the_plugins_message() {
    if !gcc_here("dynamic_plugin_init_failure_gives_the_plugins_message") {
        return;
    }
    let dir = temp_dir("dynamic-init");
    let lib = c_example(&dir);
    config_error(
        &dir,
        &with_path("c_example", &lib),
        &[
            "plugin `c_example`",
            "failed to initialize: c_example: `output_path` is required",
        ],
    );
}

#[test]
fn dynamic_unknown_plugin_without_path_and_builtin_with_path() {
    let dir = temp_dir("dynamic-unknown");
    config_error(
        &dir,
        "[plugins.csv]\n[plugins.wattmeter]\nport = '/dev/ttyUSB0'\n",
        &[
            "line 2: unknown plugin `wattmeter`",
            "path = \".../libwattmeter.so\"",
            "plugin_dirs",
        ],
    );
    // The line of its `path`, the key at fault.
    config_error(
        &dir,
        "[plugins.csv]\npath = '/usr/lib/libcsv.so'\n",
        &["line 2: [plugins.csv] is a built-in plugin"],
    );
}

/// The drop contract in `run`: on SIGTERM, the source's and the output's `drop_data`,
/// `stop`, then `alumet_plugin_drop`, each once; the plugin's log lines carry its name.
#[test]
fn dynamic_drop_contract_in_run() {
    if !gcc_here("dynamic_drop_contract_in_run") {
        return;
    }
    let dir = temp_dir("dynamic-drops-run");
    let config = c_drops_config(&c_drops(&dir));
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(&dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    wait_for_lines(&dir.join("markers.txt"), "write ", 3);
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_drop_contract(&dir.join("markers.txt"), &stderr);
    // The plugin's own line, under its name (env_logger writes the target before `]`).
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(" c_drops] c_drops: init")),
        "{stderr}"
    );
    assert!(!stderr.contains("alumet_dynamic::plugin"), "{stderr}");
}

/// The drop contract in `exec`, at the end of the command.
#[test]
fn dynamic_drop_contract_in_exec() {
    if !gcc_here("dynamic_drop_contract_in_exec") {
        return;
    }
    let dir = temp_dir("dynamic-drops-exec");
    let config = c_drops_config(&c_drops(&dir));
    let (code, stderr) = run_config(&dir, &config, &["exec", "--", "sleep", "0.1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_drop_contract(&dir.join("markers.txt"), &stderr);
}

/// The drop contract in `watch`, once the watched process exits.
#[test]
fn dynamic_drop_contract_in_watch() {
    if !gcc_here("dynamic_drop_contract_in_watch") {
        return;
    }
    let dir = temp_dir("dynamic-drops-watch");
    let config = c_drops_config(&c_drops(&dir));
    let mut sleeper = std::process::Command::new("sleep")
        .arg("0.3")
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    let (code, stderr) = run_config(&dir, &config, &["watch", &pid]);
    sleeper.wait().unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert_drop_contract(&dir.join("markers.txt"), &stderr);
}

/// What `init` receives: the table without `path` and `enable`, written again by the
/// agent (keys sorted, comments gone, `${VAR}` replaced, sub-tables as `[name]` sections
/// after the plain keys), as docs/developer/dynamic-plugins.md says.
#[test]
fn dynamic_plugin_init_receives_its_table_rewritten_as_toml() {
    if !gcc_here("dynamic_plugin_init_receives_its_table_rewritten_as_toml") {
        return;
    }
    let dir = temp_dir("dynamic-init-text");
    let config = format!(
        "[plugins.c_drops]\npath = '{}'\nmarkers = 'markers.txt' # where\nenable = true\nzone = \"${{ALUMET_TEST_ZONE}}\"\nratio = 1.50\npoint = {{ y = 2, x = 1 }}\n[plugins.c_drops.device]\nport = '/dev/ttyUSB0'\n",
        c_drops(&dir).display()
    );
    std::fs::write(dir.join("alumet-config.toml"), config).unwrap();
    let mut cmd = agent(&dir);
    cmd.env("ALUMET_TEST_ZONE", "eu-west")
        .args(["--no-default-config", "exec", "--", "true"]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(dir.join("markers.txt.init.toml")).unwrap();
    assert_eq!(
        text,
        "markers = \"markers.txt\"\nratio = 1.5\nzone = \"eu-west\"\n\n[device]\nport = \"/dev/ttyUSB0\"\n\n[point]\nx = 1\ny = 2\n"
    );
}
