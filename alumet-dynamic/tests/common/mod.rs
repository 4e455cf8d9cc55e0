//! Builds C plugins with gcc for the tests.
#![allow(dead_code, clippy::unwrap_used)]

use alumet::test_util::TempDir;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate's directory.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty directory for one test, removed with its content when dropped.
pub fn temp_dir(name: &str) -> TempDir {
    TempDir::new(&format!("dynamic-{name}"))
}

/// Whether gcc is here: without it, a test that builds a C plugin fails under CI and skips
/// visibly elsewhere (see `alumet::test_util::skip`).
pub fn gcc_here(test: &str) -> bool {
    alumet::test_util::skip::should_run(test, alumet::test_util::skip::missing_tool("gcc", "gcc"))
}

/// Runs gcc with `args` and the include directory of alumet.h; fails the test with gcc's
/// output, or with a clear message when gcc is not installed.
pub fn gcc(args: &[&str]) {
    let include = crate_dir().join("include");
    let output = Command::new("gcc")
        .args(["-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&include)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc ({e}): the dynamic plugin tests need a C compiler; install it (apt-get install gcc)"));
    assert!(
        output.status.success(),
        "gcc {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Compiles C source `source` (a file) into `dir/lib<name>.so`.
pub fn shared_library(source: &Path, dir: &Path, name: &str) -> PathBuf {
    let lib = dir.join(format!("lib{name}.so"));
    gcc(&[
        "-shared",
        "-fPIC",
        "-o",
        lib.to_str().unwrap(),
        source.to_str().unwrap(),
    ]);
    lib
}

/// Compiles C source text into `dir/lib<name>.so`.
pub fn shared_library_from(text: &str, dir: &Path, name: &str) -> PathBuf {
    let source = dir.join(format!("{name}.c"));
    std::fs::write(&source, text).unwrap();
    shared_library(&source, dir, name)
}

/// The example C plugin, built into `dir`.
pub fn c_example(dir: &Path) -> PathBuf {
    shared_library(
        &crate_dir().join("examples/c/example_plugin.c"),
        dir,
        "c_example",
    )
}

/// The test plugin `c_drops` (tests/c/drop_markers.c), built into `dir`: it writes a line
/// to its `markers` file at each write of its output, each drop and its stop.
pub fn c_drops(dir: &Path) -> PathBuf {
    shared_library(&crate_dir().join("tests/c/drop_markers.c"), dir, "c_drops")
}

/// The lines of `path` (none while it does not exist).
pub fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}
