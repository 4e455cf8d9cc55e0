//! Builds the example dynamic plugins (C with gcc, Rust with cargo) for the agent's tests,
//! and reads what they and the CSV output wrote.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use alumet::test_util::skip::{missing_tool, should_run};

/// The workspace's root directory.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Compiles C source `text` into `dir/lib<name>.so` with gcc and alumet.h; fails the test
/// with gcc's output, or with a clear message when gcc is not installed.
pub fn c_library(text: &str, dir: &Path, name: &str) -> PathBuf {
    let source = dir.join(format!("{name}.c"));
    std::fs::write(&source, text).unwrap();
    let lib = dir.join(format!("lib{name}.so"));
    let output = Command::new("gcc")
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(workspace().join("alumet-dynamic/include"))
        .arg("-o")
        .arg(&lib)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc ({e}): the dynamic plugin tests need a C compiler; install it (apt-get install gcc)"));
    assert!(
        output.status.success(),
        "gcc failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    lib
}

/// Whether the C compiler is here: without it, a test of a C plugin fails under CI and
/// skips visibly elsewhere (see `alumet::test_util::skip`).
pub fn gcc_here(test: &str) -> bool {
    should_run(test, missing_tool("gcc", "gcc"))
}

/// The test plugin `c_drops` (alumet-dynamic/tests/c/drop_markers.c), built into `dir`: it writes
/// a line to its `markers` file at each write of its output, each drop and its stop.
pub fn c_drops(dir: &Path) -> PathBuf {
    let source = workspace().join("alumet-dynamic/tests/c/drop_markers.c");
    c_library(&std::fs::read_to_string(source).unwrap(), dir, "c_drops")
}

/// The `[plugins.c_drops]` table, with `markers = 'markers.txt'`, polled every 10 ms.
pub fn c_drops_config(lib: &Path) -> String {
    format!(
        "[plugins.c_drops]\npath = '{}'\nmarkers = 'markers.txt'\npoll_interval_ms = 10\n",
        lib.display()
    )
}

/// Checks the drop contract of alumet.h on the lines `c_drops` wrote in `markers`: the
/// source's and the output's `drop_data`, `stop` and `alumet_plugin_drop`, each exactly
/// once, the plugin's drop last, the elements' drops before `stop`, every write of the
/// output before its drop.
pub fn assert_drop_contract(markers: &Path, stderr: &str) {
    let text = std::fs::read_to_string(markers).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let writes = lines.iter().filter(|l| l.starts_with("write ")).count();
    assert!(writes > 0, "the output got no buffer: {lines:?}\n{stderr}");
    for marker in ["source_drop", "output_drop", "stop", "plugin_drop"] {
        let n = lines.iter().filter(|l| **l == marker).count();
        assert_eq!(n, 1, "{marker} {n} times in {lines:?}\n{stderr}");
    }
    assert_eq!(lines.last(), Some(&"plugin_drop"), "{lines:?}\n{stderr}");
    let at = |marker: &str| lines.iter().position(|l| *l == marker);
    let last_write = lines.iter().rposition(|l| l.starts_with("write "));
    assert!(last_write < at("output_drop"), "{lines:?}");
    // Each element is dropped when its work is done, before the plugin's stop.
    assert!(at("source_drop") < at("stop"), "{lines:?}");
    assert!(at("output_drop") < at("stop"), "{lines:?}");
}

/// The example C plugin (`c_example`), built into `dir`.
pub fn c_example(dir: &Path) -> PathBuf {
    let source = workspace().join("alumet-dynamic/examples/c/example_plugin.c");
    c_library(&std::fs::read_to_string(source).unwrap(), dir, "c_example")
}

/// The example Rust plugin (`rust_example`, crate `dynamic-plugin-example`), built once
/// per test binary with cargo, in a target directory of its own.
pub fn rust_example() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let target = workspace().join("target/dynamic-tests");
        let output = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "dynamic-plugin-example",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "building the example Rust plugin failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target.join("debug/libdynamic_plugin_example.so")
    })
}

/// The CSV header's columns and the data rows split into fields.
pub fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .map(|l| l.split(';').map(str::to_owned).collect::<Vec<_>>());
    let header = lines.next().unwrap_or_default();
    assert_eq!(header.first().map(String::as_str), Some("metric"), "{text}");
    (header, lines.collect())
}

/// The rows of one metric, as maps from column to value.
pub fn rows_of(path: &Path, metric: &str) -> Vec<std::collections::HashMap<String, String>> {
    let (header, rows) = csv(path);
    rows.into_iter()
        .filter(|r| r[0] == metric)
        .map(|r| header.iter().cloned().zip(r).collect())
        .collect()
}

/// The lines of `path` that start with `prefix` (none while the file does not exist).
pub fn lines_starting(path: &Path, prefix: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Waits until `path` has at least `n` lines starting with `prefix` (fails after 30 s).
pub fn wait_for_lines(path: &Path, prefix: &str, n: usize) {
    let start = Instant::now();
    while lines_starting(path, prefix).len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "fewer than {n} lines {prefix:?} in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
