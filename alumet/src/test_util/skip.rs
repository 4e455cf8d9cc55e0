//! Tests that need something this machine may lack (root, a tool): under CI they fail,
//! elsewhere they skip where a person sees it.

use std::io::Write;

/// Whether the test may go on: `true` when `missing` is `None`. When something is
/// missing: with the environment variable `CI` set, the test fails (a CI run never passes
/// by skipping); otherwise the skip is written to the terminal (`/dev/tty`, else standard
/// error), since libtest hides what a passing test prints, and `false` is returned.
pub fn should_run(test: &str, missing: Option<String>) -> bool {
    let Some(missing) = missing else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {missing} (CI is set: a test never passes by skipping)");
    }
    let line = format!("SKIPPED {test}: {missing}\n");
    match std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        Ok(mut tty) => {
            let _ = tty.write_all(line.as_bytes());
        }
        Err(_) => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
    false
}

/// `Some("needs root ...")` when the test process is not root.
pub fn missing_root(what: &str) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    (!root).then(|| format!("needs root ({what})"))
}

/// `Some("needs TOOL ...")` when `tool` is not on the PATH.
pub fn missing_tool(tool: &str, package: &str) -> Option<String> {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    (!found).then(|| format!("needs `{tool}` (Debian package `{package}`)"))
}
