//! Reload on SIGHUP and `control reload`: an interval changed, a plugin added, a plugin
//! removed, an output's path changed, an invalid file; in each case rows before and after,
//! no point lost (compared with a second CSV output left unchanged), exit 0 at the end.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;

/// The agent measures itself (interval `POLL`), two CSV outputs write every point: `keep`
/// is never changed, `csv` writes to `PATH`; `extra` is added to the end.
fn config(poll: &str, path: &str, extra: &str) -> String {
    format!(
        "control_socket = 'c.sock'\n\
         [plugins.agent]\npoll_interval = '{poll}'\nflush_interval = '10ms'\n\
         [plugins.keep]\nplugin = 'csv'\noutput_path = 'keep.csv'\nforce_flush = true\n\
         [plugins.csv]\noutput_path = '{path}'\nforce_flush = true\n{extra}"
    )
}

/// procfs's system-wide CPU time every 20 ms, nothing else.
const PROCFS: &str = "[plugins.procfs.kernel]\npoll_interval = '20ms'\nflush_interval = '20ms'\n\
    [plugins.procfs.memory]\nenabled = false\n[plugins.procfs.processes]\nenabled = false\n";

/// The data rows of a CSV file, each as its seven fixed fields and its sorted `key=value`
/// attributes (two files whose headers have other attribute columns compare alike).
fn rows(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split(';').collect();
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(';').collect();
            let mut attrs: Vec<String> = Vec::new();
            for (name, value) in columns.iter().zip(&fields).skip(7) {
                if *name == "__late_attributes" {
                    attrs.extend(
                        value
                            .split(',')
                            .filter(|a| !a.is_empty())
                            .map(str::to_owned),
                    );
                } else if !value.is_empty() {
                    attrs.push(format!("{name}={value}"));
                }
            }
            attrs.sort();
            format!("{};{}", fields[..7].join(";"), attrs.join(","))
        })
        .collect()
}

/// How many times each row occurs.
fn count(rows: &[String]) -> BTreeMap<&str, usize> {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *m.entry(r.as_str()).or_default() += 1;
    }
    m
}

/// Rewrites the config, sends SIGHUP, waits for the reload's log line `expect`.
fn reload_with(running: &mut Running, dir: &Path, text: &str, expect: &str) {
    std::fs::write(dir.join("alumet-config.toml"), text).unwrap();
    running.signal(libc::SIGHUP);
    running.wait_for_log(expect);
}

/// Waits until `keep.csv` has `more` rows more than now.
fn more_rows(running: &mut Running, dir: &Path, more: usize) {
    let now = rows(&dir.join("keep.csv")).len();
    running.wait_until("new rows", |_| {
        rows(&dir.join("keep.csv")).len() >= now + more
    });
}

#[test]
fn reloads_apply_each_change_and_lose_no_point() {
    let dir = temp_dir("reload");
    std::fs::write(dir.join("alumet-config.toml"), config("50ms", "a.csv", "")).unwrap();
    let mut cmd = agent(&dir);
    cmd.arg("--no-default-config");
    let mut running = Running::spawn(cmd);
    running.wait_for_log("running plugins");
    more_rows(&mut running, &dir, 60);

    // The interval: its sources re-timed in place.
    reload_with(
        &mut running,
        &dir,
        &config("25ms", "a.csv", ""),
        "reload: re-timed: agent",
    );
    more_rows(&mut running, &dir, 60);

    // A plugin added.
    reload_with(
        &mut running,
        &dir,
        &config("25ms", "a.csv", PROCFS),
        "reload: added: procfs",
    );
    let procfs_rows = |dir: &Path| {
        rows(&dir.join("keep.csv"))
            .iter()
            .filter(|r| r.starts_with("kernel_"))
            .count()
    };
    running.wait_until("procfs rows", |_| procfs_rows(&dir) >= 10);

    // An output's path changed, through the control socket.
    std::fs::write(
        dir.join("alumet-config.toml"),
        config("25ms", "b.csv", PROCFS),
    )
    .unwrap();
    let out = agent(&dir).args(["control", "reload"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("reloaded: replaced: csv"), "{text}");
    running.wait_until("rows in b.csv", |_| rows(&dir.join("b.csv")).len() >= 10);

    // A plugin removed: no procfs row after it.
    reload_with(
        &mut running,
        &dir,
        &config("25ms", "b.csv", ""),
        "reload: removed: procfs",
    );
    let procfs_after_removal = procfs_rows(&dir);
    more_rows(&mut running, &dir, 60);
    assert_eq!(
        procfs_rows(&dir),
        procfs_after_removal,
        "procfs measured after its removal"
    );

    // An invalid file: an error naming the key, nothing changed.
    reload_with(
        &mut running,
        &dir,
        &config("soon", "b.csv", ""),
        "the config is invalid; the agent goes on with the one it runs",
    );
    assert!(
        running.stderr().contains("poll_interval"),
        "{}",
        running.stderr()
    );
    more_rows(&mut running, &dir, 60);

    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");

    // Every point reached `keep`, and exactly one of the two files of `csv`.
    let keep = rows(&dir.join("keep.csv"));
    let (a, b) = (rows(&dir.join("a.csv")), rows(&dir.join("b.csv")));
    assert!(!a.is_empty() && !b.is_empty());
    let mut both = a.clone();
    both.extend(b.iter().cloned());
    assert_eq!(
        count(&keep),
        count(&both),
        "rows lost or doubled by the replacement"
    );

    // The agent's own source went on through every reload: no gap longer than twice its
    // interval (50 ms at first), with room for a busy machine.
    let mut times: Vec<&str> = keep
        .iter()
        .filter(|r| !r.starts_with("kernel_"))
        .filter_map(|r| r.split(';').nth(1))
        .collect();
    times.dedup();
    let nanos = |t: &str| i128::from(unix_ns(t));
    let gaps = times.windows(2).map(|w| nanos(w[1]) - nanos(w[0]));
    let longest = Duration::from_nanos(gaps.max().unwrap().max(0) as u64);
    assert!(
        longest <= Duration::from_millis(300),
        "a gap of {longest:?}"
    );
}
