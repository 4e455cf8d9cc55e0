//! The systemd unit: it verifies, and its exposure level stays at most 1.8.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn unit() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging/alumet-agent.service")
}

fn systemd_analyze(args: &[&str]) -> Option<(bool, String)> {
    match Command::new("systemd-analyze")
        .args(args)
        .arg(unit())
        .output()
    {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some((out.status.success(), text))
        }
        Err(e) => {
            // Under CI this fails the test; elsewhere the skip is shown on the terminal.
            let missing =
                format!("systemd-analyze cannot run ({e}); install systemd (.ci/run does)");
            let test = format!("systemd-analyze {}", args.join(" "));
            assert!(!alumet::test_util::skip::should_run(&test, Some(missing)));
            None
        }
    }
}

#[test]
fn unit_exposure_level_is_at_most_1_8() {
    let Some((_, text)) = systemd_analyze(&["security", "--offline=yes"]) else {
        return;
    };
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    let level: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"));
    assert!(level <= 1.8, "exposure {level} > 1.8:\n{text}");
}

#[test]
fn unit_verifies_apart_from_the_missing_binary() {
    let Some((_, text)) = systemd_analyze(&["verify"]) else {
        return;
    };
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("/usr/bin/alumet-agent is not executable"))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}
