//! Property tests of the config loader (`alumet_agent::config::{select, load}`): any TOML
//! text, any `--config-override` values and any `${VAR}` references give a config or a
//! clean `ConfigError` (a message), never a panic; the plugins' own config parsing is
//! reached with valid-looking tables of every built-in plugin holding hostile values
//! (huge and tiny durations, NaN and infinite numbers, control characters, deep nesting).
//!
//! Failures are saved by proptest's default persistence, in
//! `tests/fuzz_config.proptest-regressions`, and replayed first on the next run.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Once;

use alumet::test_util::TempDir;
use alumet_agent::cli::CommonArgs;
use alumet_agent::config::{self, ConfigError};
use alumet_agent::plugins::{self, Entry};
use proptest::collection::vec;
use proptest::prelude::*;

fn config_of(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// The variables that `${...}` references may name; set once, before any test reads the
/// environment (every test calls this first).
const VARS: &[(&str, &str)] = &[
    ("ALUMET_FUZZ_PLAIN", "out.csv"),
    ("ALUMET_FUZZ_EMPTY", ""),
    (
        "ALUMET_FUZZ_EVIL",
        "x\"\n[plugins.evil]\nenable = true\n${ALUMET_FUZZ_PLAIN}",
    ),
    ("ALUMET_FUZZ_DURATION", "400000000000y"),
    ("ALUMET_FUZZ_CONTROL", "\u{1}\t\u{7f}\u{2028}"),
];

fn set_vars() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        for (name, value) in VARS {
            // Edition 2021: safe; done once, under the Once, before the tests read it.
            std::env::set_var(name, value);
        }
        std::env::remove_var("ALUMET_FUZZ_UNSET");
    });
}

/// The command-line flags of a run with the config file `path`.
fn args(path: &Path, overrides: Vec<String>) -> CommonArgs {
    CommonArgs {
        config: path.to_owned(),
        no_default_config: true,
        plugins: None,
        config_override: overrides,
        output_file: None,
    }
}

/// Loads the config (selection, then every enabled plugin's `init`): a config error must
/// say something; `select` and `load` must agree on whether the selection is valid.
fn check(args: &CommonArgs, entries: &[Entry]) -> Result<config::Loaded, ConfigError> {
    let selected = config::select(args, entries);
    if let Err(e) = &selected {
        assert!(!e.0.trim().is_empty(), "an empty config error");
    }
    let loaded = config::load(args, entries);
    match (&selected, &loaded) {
        (Err(a), Err(b)) => assert_eq!(a.0, b.0, "select and load disagree"),
        (Err(a), Ok(_)) => panic!("select refused ({}) what load accepted", a.0),
        (Ok(_), Err(e)) => assert!(!e.0.trim().is_empty(), "an empty config error"),
        (Ok(_), Ok(_)) => {}
    }
    loaded
}

/// A test's own directory, with the config file path in it.
struct Workdir {
    dir: TempDir,
    file: PathBuf,
}

impl Workdir {
    fn new(tag: &str) -> Self {
        set_vars();
        let dir = TempDir::new(tag);
        let file = dir.path().join("alumet-config.toml");
        Workdir { dir, file }
    }

    /// The path of the CSV output, in TOML (a basic string).
    fn csv_path(&self) -> String {
        format!(
            "{:?}",
            self.dir.path().join("out.csv").display().to_string()
        )
    }
}

/// Text made of TOML's pieces (brackets, quotes, `=`, dotted keys, the plugins' names,
/// durations, numbers, `${`) and any character now and then, control ones included.
fn toml_text(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        "=",
        " = ",
        "\"",
        "'",
        "'''",
        "\"\"\"",
        ",",
        ".",
        "\n",
        "\n",
        "\n",
        "#",
        "plugins",
        "[plugins.",
        "enable",
        "true",
        "false",
        "poll_interval",
        "shutdown_timeout",
        "output_path",
        "\"1s\"",
        "\"400000000000y\"",
        "\"1ns\"",
        "\"0s\"",
        "nan",
        "-inf",
        "1e999",
        "9223372036854775807",
        "-1",
        "0",
        "${ALUMET_FUZZ_PLAIN}",
        "${ALUMET_FUZZ_UNSET}",
        "${",
        "}",
        "\\u0000",
        "\\",
        "1979-05-27T07:32:00Z",
        "[1, [2]]",
        "plugin_dirs",
        "path",
        "kernel",
        "memory",
        "processes",
        "groups",
    ];
    const CHARS: &[char] = &[
        '\0', '\r', '\t', '\u{7f}', '\u{feff}', 'é', '😀', ' ', 'a', '_',
    ];
    vec(any::<u8>(), 0..120).prop_map(move |v| {
        let mut text = String::new();
        for b in v {
            match b {
                0..=139 => text.push_str(PIECES[usize::from(b) % PIECES.len()]),
                140..=179 => text.push_str(names[usize::from(b) % names.len()]),
                180..=219 => text.push(CHARS[usize::from(b) % CHARS.len()]),
                _ => text.push(char::from(b & 0x7f)),
            }
        }
        text
    })
}

fn plugin_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| plugins::names(&plugins::all()))
}

proptest! {
    #![proptest_config(config_of(2500))]

    /// Any text as the config file, alone or after a valid start: a config or an error.
    #[test]
    fn any_config_text_is_loaded_or_refused(text in toml_text(plugin_names()), after_csv in any::<bool>()) {
        let w = Workdir::new("fuzz-text");
        let text = if after_csv {
            format!("[plugins.csv]\noutput_path = {}\n{text}", w.csv_path())
        } else {
            text
        };
        std::fs::write(&w.file, &text).unwrap();
        let _ = check(&args(&w.file, vec![]), &plugins::all());
    }

    /// Arrays and inline tables nested hundreds deep, as values of a plugin's key.
    #[test]
    fn deep_nesting_is_refused_or_loaded(depth in 1..600usize, table in any::<bool>(), name in prop::sample::select(plugin_names())) {
        let w = Workdir::new("fuzz-deep");
        let (open, close) = if table { ("{ a = ", " }") } else { ("[", "]") };
        let value = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let text = format!("[plugins.csv]\noutput_path = {}\n[plugins.{name}]\nx = {value}\n", w.csv_path());
        std::fs::write(&w.file, &text).unwrap();
        prop_assert!(check(&args(&w.file, vec![]), &plugins::all()).is_err(), "an unknown key was accepted");
        let overridden = vec![format!("plugins.{name}.x={value}")];
        std::fs::write(&w.file, format!("[plugins.csv]\noutput_path = {}\n", w.csv_path())).unwrap();
        prop_assert!(check(&args(&w.file, overridden), &plugins::all()).is_err());
    }
}

/// An override's key: dotted names of real and unknown keys, array elements, empty parts.
fn override_key() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        prop::sample::select(plugin_names()).prop_map(str::to_owned),
        prop::sample::select(vec![
            "plugins",
            "csv",
            "output_path",
            "shutdown_timeout",
            "poll_interval",
            "enable",
            "kernel",
            "processes",
            "groups[0]",
            "",
            " ",
            "plugin_dirs",
            "a b",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,6}",
    ];
    vec(part, 1..5).prop_map(|parts| parts.join("."))
}

proptest! {
    #![proptest_config(config_of(2500))]

    /// Any `--config-override` values, over a valid file: a config or an error.
    #[test]
    fn any_override_is_applied_or_refused(
        overrides in vec((override_key(), toml_text(plugin_names()), any::<bool>()), 0..4),
    ) {
        let w = Workdir::new("fuzz-override");
        std::fs::write(&w.file, format!("[plugins.csv]\noutput_path = {}\n", w.csv_path())).unwrap();
        let overrides: Vec<String> = overrides
            .into_iter()
            .map(|(k, v, with_eq)| if with_eq { format!("{k}={v}") } else { format!("{k}{v}") })
            .collect();
        let _ = check(&args(&w.file, overrides), &plugins::all());
    }

    /// A duration set by override is the one loaded, or refused when out of range; a
    /// value followed by more TOML is refused, never half-applied.
    #[test]
    fn override_values_are_applied_exactly(
        ms in prop_oneof![0..1000u64, 0..10_000_000u64],
        unit in prop::sample::select(vec!["ms", "s", "y", "ns"]),
        tail in prop::sample::select(vec!["", "\nother = 1", " other = 1", "\n[plugins.stdout]"]),
    ) {
        let w = Workdir::new("fuzz-override-value");
        std::fs::write(&w.file, format!("[plugins.csv]\noutput_path = {}\n", w.csv_path())).unwrap();
        let o = vec![format!("shutdown_timeout=\"{ms}{unit}\"{tail}")];
        let result = check(&args(&w.file, o), &plugins::all());
        if !tail.is_empty() {
            prop_assert!(result.is_err(), "a value with {:?} after it was accepted", tail);
            return Ok(());
        }
        let d = match unit {
            "ms" => std::time::Duration::from_millis(ms),
            "s" => std::time::Duration::from_secs(ms),
            "ns" => std::time::Duration::from_nanos(ms),
            _ => std::time::Duration::from_secs(ms.saturating_mul(31_557_600)),
        };
        match result {
            Ok(loaded) => prop_assert_eq!(loaded.general.shutdown_timeout, d),
            Err(e) => {
                prop_assert!(e.0.contains("shutdown_timeout"), "{}", e.0);
                let out_of_range = d < std::time::Duration::from_millis(100) || d > alumet::humantime_serde::MAX;
                prop_assert!(out_of_range, "{:?} refused: {}", d, e.0);
            }
        }
    }
}

/// A string with `${...}` references: to set, empty, unset variables, or malformed ones.
fn with_references() -> impl Strategy<Value = (String, Option<String>)> {
    let piece = prop_oneof![
        "[a-z/._-]{0,6}".prop_map(|s| (s.clone(), Some(s))),
        prop::sample::select(VARS).prop_map(|(n, v)| (format!("${{{n}}}"), Some(v.to_owned()))),
        Just(("${ALUMET_FUZZ_UNSET}".to_owned(), None)),
        // (No lone `}`: it would close a `${` of an earlier piece.)
        prop::sample::select(vec![
            "${",
            "${}",
            "${A B}",
            "${é}",
            "$",
            "${ALUMET_FUZZ_PLAIN"
        ])
        .prop_map(|s| (s.to_owned(), (s == "$").then(|| s.to_owned()))),
    ];
    vec(piece, 0..5).prop_map(|pieces| {
        let text: String = pieces.iter().map(|(t, _)| t.as_str()).collect();
        let value = pieces
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Option<String>>();
        (text, value)
    })
}

proptest! {
    #![proptest_config(config_of(1500))]

    /// `${VAR}` is replaced by the variable, inside its string only: the loaded output
    /// path is the expected text, or the error names the key.
    #[test]
    fn references_are_substituted_or_refused((text, expected) in with_references(), in_array in any::<bool>()) {
        let w = Workdir::new("fuzz-env");
        let dir = w.dir.path().display().to_string();
        let toml_string = toml::Value::String(format!("{dir}/{text}")).to_string();
        let config = if in_array {
            format!("[plugins.csv]\noutput_path = {}\n[plugins.procfs.processes]\ngroups = [{{ exe_regex = {toml_string} }}]\n", w.csv_path())
        } else {
            format!("[plugins.csv]\noutput_path = {toml_string}\n")
        };
        std::fs::write(&w.file, &config).unwrap();
        let selected = config::select(&args(&w.file, vec![]), &plugins::all());
        match (selected, expected) {
            (Ok(s), Some(value)) => {
                prop_assert!(s.plugins.iter().all(|p| p.entry.meta.name != "evil" && p.name != "evil"));
                if !in_array {
                    let csv = s.plugins.iter().find(|p| p.name == "csv").unwrap();
                    let expected_value = format!("{dir}/{value}");
                    prop_assert_eq!(csv.table.get("output_path").and_then(|v| v.as_str()), Some(expected_value.as_str()));
                }
            }
            (Err(e), None) => {
                let key = if in_array { "plugins.procfs.processes.groups[0].exe_regex" } else { "plugins.csv.output_path" };
                prop_assert!(e.0.contains(key), "{}", e.0);
            }
            (Err(e), Some(_)) => prop_assert!(false, "refused: {}", e.0),
            (Ok(_), None) => prop_assert!(false, "accepted a bad reference: {:?}", text),
        }
    }
}

/// A hostile value for any key.
fn hostile_value() -> impl Strategy<Value = toml::Value> {
    use toml::Value;
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "400000000000y",
            "1ns",
            "0s",
            "0",
            "-1s",
            "1e400s",
            "",
            " ",
            "18446744073709551616s",
            "1h 1h 1h",
            "9999999999999999999999ms",
            "NaN",
            "inf",
            "\u{0}",
            "\n",
            "a\u{7f}b",
            "/",
            "/dev/null",
            "..",
            "127.0.0.1:0",
            "http://[::1",
            "*",
            "(",
            "${ALUMET_FUZZ_UNSET}",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![i64::MAX, i64::MIN, -1, 0, 1, 65536, 4_294_967_296])
            .prop_map(Value::Integer),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e308,
            5e-324,
            0.5
        ])
        .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
    ];
    leaf.prop_recursive(4, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| Value::Table(kv.into_iter().collect())),
        ]
    })
}

/// Every key path of a table (dotted, nested tables followed).
fn key_paths(table: &toml::Table, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (k, v) in table {
        prefix.push(k.clone());
        out.push(prefix.clone());
        if let toml::Value::Table(t) = v {
            key_paths(t, prefix, out);
        }
        prefix.pop();
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut t = table;
    for p in parents {
        match t.get_mut(p) {
            Some(toml::Value::Table(inner)) => t = inner,
            _ => return,
        }
    }
    t.insert(last.clone(), value);
}

proptest! {
    #![proptest_config(config_of(2500))]

    /// Each plugin's default table with some of its keys (or a new one) set to hostile
    /// values: its config parsing and checks give an error or a config, never a panic.
    #[test]
    fn hostile_values_in_real_plugin_tables_are_loaded_or_refused(
        plugin in any::<prop::sample::Index>(),
        changes in vec((any::<prop::sample::Index>(), hostile_value()), 1..4),
        unknown in prop::option::weighted(0.2, hostile_value()),
    ) {
        let w = Workdir::new("fuzz-plugin");
        let entries = plugins::all();
        let entry = plugin.get(&entries);
        let mut table = entry.meta.default_config().unwrap();
        let mut paths = Vec::new();
        key_paths(&table, &mut Vec::new(), &mut paths);
        if let Some(props) = entry.meta.config_schema()["properties"].as_object() {
            paths.extend(props.keys().map(|k| vec![k.clone()]));
        }
        for (at, value) in changes {
            if !paths.is_empty() {
                let path: &Vec<String> = at.get(&paths);
                set_path(&mut table, path, value);
            }
        }
        if let Some(value) = unknown {
            table.insert("no_such_key".into(), value);
        }
        let mut root = toml::Table::new();
        let mut plugins_table = toml::Table::new();
        plugins_table.insert(entry.meta.name.into(), toml::Value::Table(table));
        if entry.meta.name != "csv" {
            let csv: toml::Table = toml::from_str(&format!("output_path = {}", w.csv_path())).unwrap();
            plugins_table.insert("csv".into(), toml::Value::Table(csv));
        }
        root.insert("plugins".into(), toml::Value::Table(plugins_table));
        // Some values (NaN, nested arrays) have no TOML text: those go by override.
        match toml::to_string(&root) {
            Ok(text) => {
                std::fs::write(&w.file, text).unwrap();
                let _ = check(&args(&w.file, vec![]), &entries);
            }
            Err(_) => {
                std::fs::write(&w.file, "").unwrap();
                let _ = check(&args(&w.file, vec![format!("plugins.csv.output_path={}", w.csv_path())]), &entries);
            }
        }
    }
}
