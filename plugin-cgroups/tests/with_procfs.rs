//! The procfs plugin (for processes) and this one (for cgroups) register the same metrics
//! `cpu_time_delta`, `cpu_percent` and `memory_usage`: the registry refuses one name with
//! two definitions, so both plugins in one pipeline is the check that they agree.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::PipelineTester;
use common::{config, fixture};
use plugin_cgroups::CgroupsPlugin;
use plugin_procfs::ProcfsPlugin;

#[test]
fn procfs_and_cgroups_run_together_on_shared_metrics() {
    let mut tester = PipelineTester::new();
    let procfs = "[processes]\nenabled = true\nstrategy = \"event\"\n";
    tester.plugin_toml::<ProcfsPlugin>(procfs).unwrap();
    tester
        .plugin_toml::<CgroupsPlugin>(&config(&fixture("v2"), ""))
        .unwrap();
    let run = tester
        .start()
        .expect("both plugins start: their metric definitions agree");
    for name in ["cpu_time_delta", "memory_usage"] {
        assert!(run.metric::<u64>(name).is_some(), "{name}");
    }
    assert!(run.metric::<f64>("cpu_percent").is_some());
    run.shutdown();
}
