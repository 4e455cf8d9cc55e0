//! The messages for what stops a counter from being read: one per failure mode, each
//! naming the file or setting and the fix.

use std::io;
use std::path::Path;

/// Where the kernel says how much perf_event is restricted.
pub const PERF_EVENT_PARANOID: &str = "/proc/sys/kernel/perf_event_paranoid";

/// Whether an error is a refusal that the operator can lift (rather than absent hardware).
pub fn is_denied(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
}

/// One message for every `energy_uj` that could not be read for lack of permission
/// (`paths`, at least one): the cause and the fixes.
pub fn powercap_denied(paths: &[String]) -> String {
    format!(
        "permission denied reading {}: energy_uj is readable by root only since Linux 5.10 \
         (CVE-2020-8694); run the agent as root, or let its group read the counters with the \
         tmpfiles rule shipped in app-agent/packaging/alumet-agent.tmpfiles (installed as \
         /usr/lib/tmpfiles.d/alumet-agent.conf; apply it now with \
         `systemd-tmpfiles --create alumet-agent.conf`) or an equivalent udev rule",
        first_and_more(paths, "energy_uj file")
    )
}

/// Why `energy_uj` at `path` could not be read, for anything but a refusal.
pub fn powercap(path: &Path, e: &io::Error) -> String {
    format!("reading {}: {e}", path.display())
}

/// One message for every perf_event counter that was refused (`labels`, at least one;
/// `e` the first refusal); `paranoid` is the value of [`PERF_EVENT_PARANOID`], if known.
pub fn perf_denied(labels: &[String], e: &io::Error, paranoid: Option<i32>) -> String {
    let setting = match paranoid {
        Some(p) => format!("kernel.perf_event_paranoid is {p}"),
        None => format!("{PERF_EVENT_PARANOID} could not be read"),
    };
    format!(
        "perf_event_open refused: {} ({e}): {setting}, and system-wide events need it at 0 \
         or below unless the agent has CAP_PERFMON; grant CAP_PERFMON \
         (AmbientCapabilities=CAP_PERFMON in its systemd unit, or `setcap cap_perfmon+ep` on \
         its binary; CAP_SYS_ADMIN before Linux 5.8), run it as root, or set \
         `sysctl kernel.perf_event_paranoid=0`",
        first_and_more(labels, "counter")
    )
}

/// Why the perf_event counter `label` could not be opened or read, for anything but a
/// refusal.
pub fn perf(label: &str, e: &io::Error) -> String {
    if e.raw_os_error() == Some(libc::ENOENT) || e.raw_os_error() == Some(libc::ENODEV) {
        format!("{label}: {e}: the running kernel has no such PMU or event")
    } else {
        format!("{label}: {e}")
    }
}

/// `a`, `a and 1 other thing`, `a and 3 other things`.
fn first_and_more(items: &[String], what: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => {
            let plural = if rest.len() == 1 { "" } else { "s" };
            format!("{first} and {} other {what}{plural}", rest.len())
        }
    }
}

/// The value of [`PERF_EVENT_PARANOID`], if readable.
pub fn perf_event_paranoid() -> Option<i32> {
    std::fs::read_to_string(PERF_EVENT_PARANOID)
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// The fix for a machine without any RAPL interface.
pub const NO_INTERFACE_FIX: &str = "RAPL needs a bare-metal Intel or AMD machine with the \
    intel_rapl_msr module loaded; in a container, mount the host's /sys and set sysfs_root";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_messages_name_the_file_or_setting_and_the_fix() {
        let paths = ["/sys/class/powercap/intel-rapl:0/energy_uj".to_owned()];
        let m = powercap_denied(&paths);
        let start = "permission denied reading /sys/class/powercap/intel-rapl:0/energy_uj: ";
        assert!(m.starts_with(start), "{m}");
        for part in ["CVE-2020-8694", "as root", "alumet-agent.tmpfiles"] {
            assert!(m.contains(part), "{part} in {m}");
        }
        let many = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert!(powercap_denied(&many)
            .starts_with("permission denied reading a and 2 other energy_uj files: "));
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let labels = ["power/energy-pkg/ on cpu 0".to_owned(), "x".to_owned()];
        let m = perf_denied(&labels, &eperm, Some(2));
        let start = "perf_event_open refused: power/energy-pkg/ on cpu 0 and 1 other counter (";
        assert!(m.starts_with(start), "{m}");
        for part in ["perf_event_paranoid is 2", "CAP_PERFMON", "as root"] {
            assert!(m.contains(part), "{part} in {m}");
        }
        let m = perf_denied(&labels[..1], &eperm, None);
        assert!(m.contains("/proc/sys/kernel/perf_event_paranoid could not be read"));
    }

    #[test]
    fn other_failures_are_plain() {
        let isdir = io::Error::from_raw_os_error(libc::EISDIR);
        let m = powercap(Path::new("/x/energy_uj"), &isdir);
        assert!(m.starts_with("reading /x/energy_uj: "), "{m}");
        let enoent = io::Error::from_raw_os_error(libc::ENOENT);
        assert!(perf("e", &enoent).contains("no such PMU"));
        assert!(!is_denied(&enoent));
    }
}
