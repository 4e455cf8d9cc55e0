//! The plugin in a real pipeline: RAPL, kernel and process points come from separate
//! manual sources (separate buffers), and what is still pending at shutdown reaches the
//! outputs.

mod common;

use alumet::test_util::{PipelineTester, TestPlugin};
use common::{close, outputs_from, Inputs, Out};
use plugin_attribution::AttributionPlugin;

const TOL: f64 = 1e-9;

#[test]
fn attribution_in_a_pipeline_and_pending_intervals_at_shutdown() {
    let mut tester = PipelineTester::new();
    tester
        .plugin_toml::<AttributionPlugin>("idle_power = { package = 2.0 }")
        .expect("config");
    tester.any_plugin(TestPlugin::new("fake", Inputs::create));
    let rapl = tester.feeder("rapl");
    let kernel = tester.feeder("kernel");
    let procs = tester.feeder("procs");
    let run = tester.start().expect("pipeline");
    let i = Inputs::from_registry(run.metrics());
    let outputs = outputs_from(run.metrics());

    let push = |feeder: &alumet::test_util::Feeder, points: Vec<_>| {
        for p in points {
            feeder.push(p);
        }
    };
    for (t, busy, p10, p20) in [(0, 0, (0, 0), (0, 0)), (1000, 800, (300, 100), (200, 0))] {
        push(&rapl, vec![i.rapl(t, "package", 10.0)]);
        push(&kernel, i.kernel(t, busy, 4000));
        let mut points = i.proc(t, 10, p10.0, p10.1);
        points.extend(i.proc(t, 20, p20.0, p20.1));
        push(&procs, points);
        for source in ["test/rapl", "test/kernel", "test/procs"] {
            assert_eq!(run.trigger(source), 1);
        }
    }
    // A last RAPL reading that no CPU data covers: pending when the pipeline stops.
    push(&rapl, vec![i.rapl(2000, "package", 6.0)]);
    assert_eq!(run.trigger("test/rapl"), 1);

    let (report, points) = run.shutdown();
    assert_eq!(report.undelivered_points, 0);
    let out = Out { points, outputs };
    assert_eq!(out.intervals(), [0, 1000, 2000]);
    close(out.unattributed("package", "first_reading"), 10.0, TOL);
    close(out.process(10, "package"), 4.0, TOL);
    close(out.process(20, "package"), 2.0, TOL);
    close(out.idle("package"), 2.0, TOL);
    close(out.unattributed("package", "untracked"), 2.0, TOL);
    close(out.unattributed("package", "no_usage_data"), 6.0, TOL);
    close(out.total("package"), 26.0, TOL);
    assert!(out.max_imbalance() <= TOL);
}
