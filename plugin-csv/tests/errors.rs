//! Unwritable paths stop the start; failed writes are retryable errors naming the path.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use alumet::prelude::*;
use common::{config, output_context, run_csv, Metrics, TempDir};
use plugin_csv::CsvOutput;

/// The error of the plugin's init: the path is checked there, so that a bad path is a
/// config error (exit 78, naming the key) and no file is created.
fn start_error(path: &Path) -> String {
    use alumet::plugin::Plugin;
    let err = plugin_csv::CsvPlugin::init(config(path))
        .err()
        .expect("an init error");
    let message = format!("{err:#}");
    assert!(message.contains("output_path"), "{message}");
    message
}

#[test]
fn a_missing_directory_is_an_init_error_naming_the_path() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("no-such-dir").join("out.csv");
    let message = start_error(&path);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!path.exists());
}

#[test]
fn a_path_under_a_regular_file_is_an_init_error_naming_the_path() {
    let dir = TempDir::new("notdir");
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let path = file.join("out.csv");
    let message = start_error(&path);
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_directory_is_an_init_error_naming_the_path() {
    let dir = TempDir::new("isdir");
    let message = start_error(dir.path());
    assert!(message.contains("is a directory"), "{message}");
}

#[test]
fn a_read_only_filesystem_is_an_init_error() {
    use alumet::test_util::skip::{missing_root, should_run};
    let test = "a_read_only_filesystem_is_an_init_error";
    if !should_run(test, missing_root("mounts a read-only tmpfs")) {
        return;
    }
    let dir = TempDir::new("readonly");
    let mount = |args: &[&str]| {
        let status = std::process::Command::new("mount")
            .args(args)
            .arg(dir.path())
            .status();
        assert!(status.unwrap().success(), "mount {args:?}");
    };
    mount(&["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"]);
    let message = start_error(&dir.path().join("out.csv"));
    let _ = std::process::Command::new("umount")
        .arg(dir.path())
        .status();
    assert!(message.contains("no file can be created"), "{message}");
    assert!(message.contains("Read-only file system"), "{message}");
}

fn one_point(m: &Metrics) -> MeasurementBuffer {
    let t = Timestamp::from_unix_nanos(1);
    let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
    vec![MeasurementPoint::new(t, m.energy, r, c, 1.0)].into()
}

/// `/dev/full` accepts the open and fails every write with "no space left on device".
#[test]
fn a_full_disk_is_a_retryable_error_naming_the_path() {
    let ctx = output_context();
    let metrics = Metrics::of(ctx.metrics());
    let path = Path::new("/dev/full");
    let mut output = CsvOutput::open(&config(path)).unwrap();
    for _ in 0..2 {
        let err = output.write(&one_point(&metrics), &ctx).unwrap_err();
        assert!(format!("{err:?}").starts_with("Retryable"), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("writing /dev/full"), "{message}");
        assert!(message.contains("No space left"), "{message}");
    }
    assert!(output.finish(&ctx).is_err());
}

#[test]
fn failed_writes_are_counted_and_the_pipeline_goes_on() {
    let report = run_csv(config(Path::new("/dev/full")), |m| {
        vec![
            one_point(m).iter().cloned().collect(),
            one_point(m).iter().cloned().collect(),
        ]
    })
    .unwrap();
    let stats = report
        .outputs
        .iter()
        .find(|o| o.name.to_string() == "csv/csv");
    let stats = stats.unwrap();
    assert_eq!((stats.written_points, stats.failed_points), (0, 2));
    let collector = report
        .outputs
        .iter()
        .find(|o| o.name.to_string() == "test/collector");
    assert_eq!(collector.unwrap().written_points, 2);
}
