//! Exec and watch modes report the announced process trees only (`processes = "event"`),
//! whatever the file says, unless it says `"none"`; run mode keeps the file's choice.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::prelude::*;
use common::*;
use plugin_nvidia::backend::ProcessMemory;

/// The pids with `nvml_used_gpu_memory` points after a run in `mode` with the file's
/// `processes` line, where 11 and 20 use the GPU and 10 (11's parent) is announced.
fn reported_pids(mode: RunMode, processes: &str) -> Vec<String> {
    let bus = "00000000:21:00.0";
    let procfs = process_tree("nvidia-run-mode");
    let g = gpu(bus);
    let listed = [11, 20].map(|pid| ProcessMemory {
        pid,
        used_bytes: Some(64),
    });
    g.set(|s| s.compute = Ok(listed.to_vec()));
    let extra = format!("{processes}\nprocfs_root = '{}'", procfs.path().display());
    let run = try_start_in(mode, config(&extra), &[g]).unwrap();
    let announce = match mode {
        RunMode::Watch => Event::ConsumerWatched,
        _ => Event::ConsumerStarted,
    };
    run.control()
        .emit(&announce(ResourceConsumer::Process { pid: 10 }));
    poll(&run);
    let m = finish(run);
    let mut pids: Vec<String> = m
        .of("nvml_used_gpu_memory")
        .map(|p| p.consumer.id().to_string())
        .collect();
    pids.sort();
    pids
}

#[test]
fn exec_and_watch_report_the_announced_process_tree_only() {
    for mode in [RunMode::Exec, RunMode::Watch] {
        // "all" in the file, or the default (which is "all"): the announced tree only.
        for processes in ["processes = 'all'", "processes = 'event'", ""] {
            assert_eq!(
                reported_pids(mode, processes),
                ["11"],
                "{mode:?} {processes}"
            );
        }
    }
}

#[test]
fn processes_turned_off_in_the_file_stay_off_in_exec_mode() {
    for mode in [RunMode::Exec, RunMode::Watch, RunMode::Run] {
        assert!(
            reported_pids(mode, "processes = 'none'").is_empty(),
            "{mode:?}"
        );
    }
}

#[test]
fn run_mode_keeps_the_file_s_choice() {
    assert_eq!(
        reported_pids(RunMode::Run, "processes = 'all'"),
        ["11", "20"]
    );
    assert_eq!(reported_pids(RunMode::Run, "processes = 'event'"), ["11"]);
}
