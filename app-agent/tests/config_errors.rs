//! Every config error exits 78 with a message naming what to fix, before opening any file.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const CSV: &str = "[plugins.csv]\noutput_path = 'out.csv'\n";

/// Runs the agent on `config`; checks exit 78, that no CSV was created, and that stderr
/// holds every one of `expected`. Returns stderr.
fn assert_config_error(name: &str, config: &str, args: &[&str], expected: &[&str]) -> String {
    let dir = temp_dir(name);
    let (code, stderr) = run_config(&dir, config, args);
    assert_eq!(code, 78, "{name}: {stderr}");
    for e in expected {
        assert!(stderr.contains(e), "{name}: {e:?} not in:\n{stderr}");
    }
    assert!(
        !dir.join("out.csv").exists(),
        "{name}: a config error must open no file"
    );
    stderr
}

#[test]
fn unknown_general_key_names_key_line_and_closest_name() {
    let config = format!("shutdown_timeout = '1s'\nshutdown_timout = '2s'\n{CSV}");
    assert_config_error(
        "general",
        &config,
        &[],
        &[
            "line 2",
            "shutdown_timout",
            "Did you mean `shutdown_timeout`?",
        ],
    );
}

#[test]
fn unknown_plugin_names_it_its_line_and_the_closest_plugin() {
    let config = format!("{CSV}\n[plugins.cvs]\n");
    assert_config_error(
        "plugin",
        &config,
        &[],
        &["unknown plugin `cvs`", "line 4", "Did you mean `csv`?"],
    );
}

#[test]
fn unknown_plugin_key_names_key_line_and_closest_name() {
    let config = "[plugins.csv]\noutput_path = 'out.csv'\nforce_flsh = true\n";
    assert_config_error(
        "plugin-key",
        config,
        &[],
        &[
            "line 3",
            "`plugins.csv.force_flsh`",
            "Did you mean `force_flush`?",
        ],
    );
}

#[test]
fn wrong_type_names_the_key() {
    let config = format!("{CSV}[plugins.agent]\npoll_interval = 5\n");
    let stderr = assert_config_error(
        "type",
        &config,
        &[],
        &["`plugins.agent.poll_interval`", "line 4"],
    );
    // The message is serde's alone, ending the line: no second mention of the key.
    assert!(
        stderr.contains("`plugins.agent.poll_interval`: invalid type: integer `5`")
            && stderr.trim_end().ends_with('.')
            && !stderr.contains("in `poll_interval`"),
        "{stderr}"
    );
    let config = format!("{CSV}[plugins.agent]\npoll_interval = 'often'\n");
    assert_config_error("duration", &config, &[], &["`plugins.agent.poll_interval`"]);
    let config = "[plugins.csv]\nenable = 'yes'\n";
    assert_config_error(
        "enable",
        config,
        &[],
        &["`plugins.csv.enable` must be true or false"],
    );
}

#[test]
fn malformed_toml_gives_the_line() {
    assert_config_error(
        "toml",
        "[plugins.csv\noutput_path = 'x'\n",
        &[],
        &["not valid TOML", "line 1"],
    );
}

#[test]
fn unset_environment_variable_is_named() {
    let config = "[plugins.csv]\noutput_path = '${ALUMET_TEST_SURELY_UNSET}/out.csv'\n";
    assert_config_error(
        "env",
        config,
        &[],
        &[
            "ALUMET_TEST_SURELY_UNSET",
            "not set",
            "plugins.csv.output_path",
            "line 2",
        ],
    );
}

#[test]
fn no_enabled_output_is_an_error() {
    assert_config_error(
        "no-output",
        "[plugins.agent]\n",
        &[],
        &["no output plugin is enabled", "csv"],
    );
    let config = "[plugins.agent]\n[plugins.csv]\nenable = false\noutput_path = 'out.csv'\n";
    assert_config_error(
        "disabled-output",
        config,
        &[],
        &["no output plugin is enabled"],
    );
}

#[test]
fn missing_file_with_no_default_config_is_an_error() {
    let dir = temp_dir("missing");
    let mut cmd = agent(&dir);
    cmd.args(["--no-default-config", "--config", "nope.toml"]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("nope.toml not found"), "{stderr}");
    assert!(!dir.join("nope.toml").exists());
}

#[test]
fn bad_command_line_values_are_config_errors() {
    assert_config_error(
        "plugins-flag",
        CSV,
        &["--plugins", "csv,rappl"],
        &["unknown plugin `rappl`"],
    );
    assert_config_error(
        "override-syntax",
        CSV,
        &["--config-override", "plugins.csv.output_path"],
        &["KEY=VALUE"],
    );
    assert_config_error(
        "override-value",
        CSV,
        &["--config-override", "plugins.csv.output_path=out.csv"],
        &["not a TOML value"],
    );
    assert_config_error(
        "override-index",
        CSV,
        &[
            "--config-override",
            "plugins.procfs.processes.groups[0].exe_regex='y'",
        ],
        &["names an array element", "set the whole array"],
    );
    assert_config_error(
        "override-key",
        CSV,
        &["--config-override", "plugins.csv.no_such_key=1"],
        &["--config-override plugins.csv.no_such_key=1: key `plugins.csv.no_such_key`"],
    );
    // A key under a value that is not a table: the flag that set it, as typed.
    assert_config_error(
        "override-not-table",
        "general = 1\n[plugins.csv]\noutput_path = 'out.csv'\n",
        &["--config-override", "general.x = 2"],
        &["--config-override general.x = 2: `general` in `general.x` is not a table"],
    );
    assert_config_error(
        "output-file-not-table",
        "[plugins]\ncsv = 1\n",
        &["--output-file", "o.csv"],
        &["--output-file o.csv: `csv` in `plugins.csv.output_path` is not a table"],
    );
}

/// A bad value set on the command line is blamed on its flag, not on the line of the
/// file where the key also is (which holds a good value).
#[test]
fn an_overridden_value_is_blamed_on_its_flag_not_on_the_file() {
    let config = format!("{CSV}\n[plugins.procfs.kernel]\npoll_interval = '1s'\n");
    let stderr = assert_config_error(
        "override-blamed",
        &config,
        &["--config-override", "plugins.procfs.kernel.poll_interval=\"abc\""],
        &["--config-override plugins.procfs.kernel.poll_interval=\"abc\": key `plugins.procfs.kernel.poll_interval`: invalid duration \"abc\""],
    );
    assert!(!stderr.contains("alumet-config.toml, line"), "{stderr}");
    // An override that replaces a whole table is blamed for the keys inside it.
    assert_config_error(
        "override-table-blamed",
        &config,
        &["--config-override", "plugins.procfs.kernel={poll_interval=\"abc\"}"],
        &["--config-override plugins.procfs.kernel={poll_interval=\"abc\"}: key `plugins.procfs.kernel.poll_interval`"],
    );
    // The value in the file is still blamed on its line when the override set another.
    let stderr = assert_config_error(
        "file-blamed",
        &format!("{CSV}\n[plugins.procfs.kernel]\npoll_interval = 'abc'\n"),
        &["--config-override", "plugins.procfs.kernel.per_cpu=true"],
        &["line 5: key `plugins.procfs.kernel.poll_interval`: invalid duration \"abc\""],
    );
    assert!(!stderr.contains("--config-override"), "{stderr}");
}

/// An error the plugin reports for its whole table names the table's line and the
/// overrides set inside it: either may hold the bad value.
#[test]
fn a_plugin_error_names_its_table_and_the_overrides_inside_it() {
    let config = format!("{CSV}\n[plugins.procfs]\n");
    let flag = "plugins.procfs.processes.groups=[{exe_regex=\"\\\\p{L}\"}]";
    assert_config_error(
        "plugin-error-override",
        &config,
        &["--config-override", flag],
        &[&format!("line 4, or --config-override {flag}: invalid config for plugin `procfs`: processes.groups[0].exe_regex")],
    );
}

/// `CSV` and another instance of the csv plugin, `csv_b`, with `extra` in its table.
fn csv_b(extra: &str) -> String {
    format!("{CSV}\n[plugins.csv_b]\nplugin = 'csv'\noutput_path = 'out.csv'\n{extra}")
}

#[test]
fn an_instance_of_an_unknown_plugin_names_the_line_and_the_closest_plugin() {
    let config = csv_b("").replace("plugin = 'csv'", "plugin = 'cvs'");
    assert_config_error(
        "instance-unknown",
        &config,
        &[],
        &[
            "line 5",
            "`plugins.csv_b.plugin`: unknown plugin `cvs`",
            "Did you mean `csv`?",
        ],
    );
    let config = csv_b("").replace("plugin = 'csv'", "plugin = 3");
    assert_config_error(
        "instance-type",
        &config,
        &[],
        &["line 5", "must be the name of a plugin (a string), not 3"],
    );
}

#[test]
fn an_instance_named_as_another_plugin_is_refused() {
    let config = format!("{CSV}[plugins.agent]\nplugin = 'csv'\n");
    assert_config_error(
        "instance-clash",
        &config,
        &[],
        &[
            "line 4",
            "[plugins.agent] is the table of the plugin agent, so it cannot be an instance of csv",
        ],
    );
    let config = format!("{CSV}[plugins.\"csv/b\"]\nplugin = 'csv'\n");
    assert_config_error(
        "instance-chars",
        &config,
        &[],
        &["line 4", "may hold only ASCII letters, digits, `_` and `-`"],
    );
    let config = csv_b("path = 'libcsv_b.so'\n");
    assert_config_error(
        "instance-path",
        &config,
        &[],
        &["line 7", "has both `plugin`", "and `path`"],
    );
}

#[test]
fn an_instance_s_errors_name_its_table_and_plugins_accepts_its_name() {
    assert_config_error(
        "instance-key",
        &csv_b("force_flsh = true\n"),
        &[],
        &[
            "line 7",
            "`plugins.csv_b.force_flsh`",
            "Did you mean `force_flush`?",
        ],
    );
    assert_config_error(
        "instance-flag",
        &csv_b(""),
        &["--plugins", "csv_c"],
        &["--plugins: unknown plugin `csv_c`", "Did you mean `csv_b`?"],
    );
}

#[test]
fn inputs_must_be_a_list_of_producing_plugins_on_an_output() {
    let config = format!("{CSV}inputs = ['procfz']\n[plugins.procfs]\n");
    assert_config_error(
        "inputs-unknown",
        &config,
        &[],
        &[
            "line 3",
            "`inputs` names `procfz`, which is no plugin",
            "Did you mean `procfs`?",
        ],
    );
    let config = format!("{CSV}inputs = 'procfs'\n");
    assert_config_error(
        "inputs-type",
        &config,
        &[],
        &["line 3", "must be a list of plugin names"],
    );
    let config = format!("{CSV}[plugins.procfs]\ninputs = ['agent']\n");
    assert_config_error(
        "inputs-on-a-source",
        &config,
        &[],
        &["line 4", "`inputs` is for outputs, and `procfs` is not one"],
    );
    let config = format!("{CSV}inputs = ['csv']\n");
    assert_config_error(
        "inputs-an-output",
        &config,
        &[],
        &["`inputs` names `csv`, an output"],
    );
}

#[test]
fn a_label_that_a_network_output_cannot_carry_is_named() {
    for (name, problem) in [
        ("'bad-name'", "invalid character"),
        ("__x", "reserved by Prometheus"),
        ("'1st'", "starts with a digit"),
    ] {
        let config = format!("{CSV}[labels]\ncluster = 'a'\n{name} = 'v'\n");
        assert_config_error(
            "labels",
            &config,
            &[],
            &["labels.", problem, "letters, digits and `_`"],
        );
    }
}
