//! Write errors that go away: a full disk freed mid-run, a file immutable for a moment.
//! The figures the pipeline reports must match the file (`written` = its rows) and what a
//! second output received (`written + dropped + lost` = every point).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use alumet::pipeline::OutputStats;
use alumet::prelude::*;
use alumet::test_util::skip::{missing_root, missing_tool, should_run};
use alumet::test_util::{PipelineTester, TestPlugin};
use common::{config, TempDir};
use plugin_csv::CsvPlugin;

/// Points per buffer, and a row is about 100 bytes: 20 buffers are more than the one
/// 64 KiB chunk the output keeps for a retry.
const PER_BUFFER: u64 = 400;

/// A pipeline with the csv plugin writing to `path` and a feeder; `steps` runs between
/// buffers: `feed(n)` sends `n` buffers; `failed(n)` waits until the output has failed
/// `n` writes in all (its writes may run on its own thread, after `feed` returns). Returns the csv output's figures, every point the
/// test's collector (a second output) received, and the rows in the file.
fn run(
    path: &Path,
    steps: impl FnOnce(&mut dyn FnMut(u64), &dyn Fn(u64)),
) -> (OutputStats, usize, usize) {
    let mut tester = PipelineTester::new();
    tester.any_plugin(TestPlugin::new("src", |_| Ok(())));
    tester.plugin::<CsvPlugin>(config(path)).unwrap();
    let feeder = tester.feeder("input");
    let run = tester.start().unwrap();
    let metric = run.metric::<u64>("test_input").unwrap();
    let mut next = 0u64;
    let mut feed = |buffers: u64| {
        for _ in 0..buffers {
            for _ in 0..PER_BUFFER {
                let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
                let t = Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + next);
                feeder.push(MeasurementPoint::new(t, metric, r, c, next));
                next += 1;
            }
            assert_eq!(run.trigger("test/input"), 1);
        }
    };
    let control = run.control();
    let failed = |n: u64| {
        let start = std::time::Instant::now();
        loop {
            let stats = control.element_stats();
            let csv = stats.iter().find(|s| s.name.to_string() == "csv/csv");
            if csv.unwrap().retryable_errors >= n {
                return;
            }
            // A liveness bound for a loaded machine, not a timing assertion.
            assert!(
                start.elapsed().as_secs() < 20,
                "waiting for {n} failed writes"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    };
    steps(&mut feed, &failed);
    let (report, collected) = run.shutdown();
    let stats = report
        .outputs
        .iter()
        .find(|o| o.name.to_string() == "csv/csv")
        .unwrap()
        .clone();
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    let columns = header.split(';').count();
    let mut rows = 0;
    for line in lines {
        assert_eq!(line.split(';').count(), columns, "a whole row: {line:?}");
        rows += 1;
    }
    assert!(text.ends_with('\n'));
    (stats, collected.len(), rows)
}

fn check_figures(stats: &OutputStats, given: usize, rows: usize) {
    assert_eq!(stats.written_points as usize, rows, "{stats:?}");
    assert_eq!(stats.queued_points, 0, "{stats:?}");
    assert_eq!(
        (stats.written_points + stats.dropped_points + stats.failed_points) as usize,
        given,
        "{stats:?}"
    );
}

/// A tmpfs of 256 KiB mounted on a fresh directory, unmounted when dropped.
struct SmallFs {
    dir: TempDir,
}

impl SmallFs {
    fn mount() -> Self {
        let dir = TempDir::new("csv-tmpfs");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs failed");
        SmallFs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills the filesystem with `filler`, up to the last byte.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path("filler")).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.path("filler")).unwrap();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_freed_mid_run_is_counted_as_the_file_holds_it() {
    let test = "a_full_disk_freed_mid_run_is_counted_as_the_file_holds_it";
    if !should_run(test, missing_root("mounts a small tmpfs")) {
        return;
    }
    let fs = SmallFs::mount();
    let path = fs.path("out.csv");
    let (stats, given, rows) = run(&path, |feed, failed| {
        feed(2);
        fs.fill();
        feed(20);
        failed(20);
        fs.free();
        feed(3);
    });
    assert_eq!(given as u64, 25 * PER_BUFFER);
    check_figures(&stats, given, rows);
    // While full, one chunk was kept for the retry and the rest lost; after, all written.
    assert!(stats.failed_points > 0, "{stats:?}");
    assert!(rows as u64 > 5 * PER_BUFFER, "{stats:?}");
}

#[test]
fn a_file_immutable_for_a_moment_loses_nothing() {
    let test = "a_file_immutable_for_a_moment_loses_nothing";
    let missing = missing_root("sets the immutable attribute")
        .or_else(|| missing_tool("chattr", "e2fsprogs"));
    if !should_run(test, missing) {
        return;
    }
    // On a filesystem that refuses writes to an open immutable file (ext4 does; tmpfs
    // does not): the temporary directory's.
    let dir = TempDir::new("csv-immutable");
    let path = dir.path().join("out.csv");
    let chattr = |flag: &str| {
        let status = Command::new("chattr").arg(flag).arg(&path).status();
        assert!(status.unwrap().success(), "chattr {flag}");
    };
    let (stats, given, rows) = run(&path, |feed, failed| {
        feed(1);
        chattr("+i");
        // Fewer rows than one chunk: all kept for the retry.
        feed(1);
        failed(1);
        chattr("-i");
        feed(1);
    });
    check_figures(&stats, given, rows);
    assert_eq!(
        (stats.written_points, stats.failed_points),
        (3 * PER_BUFFER, 0)
    );
}

#[test]
fn rows_that_never_reach_the_file_are_lost_not_written() {
    let (stats, given, _) = {
        // /dev/full fails every write: nothing is written, everything is lost.
        let mut tester = PipelineTester::new();
        tester
            .plugin::<CsvPlugin>(config(Path::new("/dev/full")))
            .unwrap();
        let feeder = tester.feeder("input");
        let run = tester.start().unwrap();
        let metric = run.metric::<u64>("test_input").unwrap();
        for i in 0..3 {
            let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
            feeder.push(MeasurementPoint::new(Timestamp::now(), metric, r, c, i));
            assert_eq!(run.trigger("test/input"), 1);
        }
        let (report, collected) = run.shutdown();
        (report.outputs[0].clone(), collected.len(), ())
    };
    assert_eq!(stats.name.to_string(), "csv/csv");
    check_figures(&stats, given, 0);
    assert_eq!(stats.failed_points, 3);
}
