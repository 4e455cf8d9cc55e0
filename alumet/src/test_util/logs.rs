//! Captured log lines, for tests that check what a plugin logged (a warning given once,
//! the error that names a file).
//!
//! [`capture`] installs a logger for the whole test binary (it fails if another logger is
//! already installed, such as `env_logger`). Tests running in parallel share it: filter
//! with [`lines_with`] on something only your test logs (its fixture path, a bus id).

use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger at level `Info`, once per test binary.
///
/// # Panics
/// If another logger was installed first.
pub fn capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).expect("no other logger installed in this test binary");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// The captured lines (`LEVEL message`) that contain `needle`.
pub fn lines_with(needle: &str) -> Vec<String> {
    LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn captured_lines_are_found_by_a_needle() {
        super::capture();
        log::warn!("logs-test-needle one");
        log::info!("logs-test-needle two");
        log::debug!("logs-test-needle below the level");
        let lines = super::lines_with("logs-test-needle");
        assert_eq!(
            lines,
            ["WARN logs-test-needle one", "INFO logs-test-needle two"]
        );
    }
}
