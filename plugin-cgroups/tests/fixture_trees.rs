//! The plugin in a real pipeline on fixture trees of real layouts (v2, v1 with `cpu,cpuacct`
//! co-mounted, hybrid), polled twice with the counters changed in between.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::test_util::{logs, PipelineTester, TempDir};
use common::{assert_has, config, consumers, fixture, lines_of, rewrite, start, start_on_copy};
use plugin_cgroups::CgroupsPlugin;

const NGINX: &str = "/system.slice/nginx.service";
const POD_V2: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3b8e6f4c_91c2_4d1e_a5b1_0c2d6a3f9e10.slice";
const PSI: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total={some}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total={full}\n";

fn psi(some: u64, full: u64) -> String {
    PSI.replace("{some}", &some.to_string())
        .replace("{full}", &full.to_string())
}

#[test]
fn v2_default_include_measures_workloads_with_their_attributes() {
    let (tree, run) = start_on_copy("v2", "");
    assert_eq!(run.trigger("cgroups/*"), 6);
    let nginx = tree.path().join("system.slice/nginx.service");
    rewrite(
        &nginx,
        "cpu.stat",
        "usage_usec 1500000\nuser_usec 900000\nsystem_usec 600000\n",
    );
    rewrite(&nginx, "memory.current", "2097152\n");
    rewrite(
        &nginx,
        "io.stat",
        "8:0 rbytes=12288 wbytes=1000 rios=5 wios=2 dbytes=0 dios=0\n",
    );
    rewrite(&nginx, "cpu.pressure", &psi(350, 10));
    assert_eq!(run.trigger("cgroups/*"), 6);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    assert_eq!(
        consumers(&points),
        [
            POD_V2.to_string(),
            format!("{POD_V2}/cri-containerd-4f7d1e2a9b.scope"),
            "/system.slice/docker-6a7c1f0b3e2d.scope".into(),
            NGINX.into(),
            "/system.slice/slurmstepd.scope/job_4242".into(),
            "/system.slice/slurmstepd.scope/job_4242/step_0".into(),
        ]
    );
    let nginx = lines_of(&points, &metrics, NGINX);
    let with = |s: &str| {
        nginx
            .iter()
            .filter(|l| l.starts_with(s))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        with("cpu_time_delta"),
        [
            "cpu_time_delta [unit=nginx.service,kind=system] = 200",
            "cpu_time_delta [unit=nginx.service,kind=user] = 300"
        ]
    );
    assert_eq!(
        with("memory_"),
        [
            "memory_max [unit=nginx.service] = 536870912",
            "memory_max [unit=nginx.service] = 536870912",
            "memory_usage [unit=nginx.service] = 1048576",
            "memory_usage [unit=nginx.service] = 2097152",
        ]
    );
    assert_eq!(
        with("cgroup_memory_"),
        [
            "cgroup_memory_anonymous [unit=nginx.service] = 524288",
            "cgroup_memory_anonymous [unit=nginx.service] = 524288",
            "cgroup_memory_file [unit=nginx.service] = 409600",
            "cgroup_memory_file [unit=nginx.service] = 409600",
            "cgroup_memory_kernel_stack [unit=nginx.service] = 16384",
            "cgroup_memory_kernel_stack [unit=nginx.service] = 16384",
            "cgroup_memory_pagetables [unit=nginx.service] = 12288",
            "cgroup_memory_pagetables [unit=nginx.service] = 12288",
        ]
    );
    assert_eq!(
        with("io_bytes_delta"),
        [
            "io_bytes_delta [unit=nginx.service,kind=read] = 8192",
            "io_bytes_delta [unit=nginx.service,kind=write] = 1000"
        ]
    );
    // Only cpu.pressure changed; memory and io stalls did not grow.
    assert_eq!(
        with("pressure_stall_time_delta [unit=nginx.service,pressure=cpu"),
        [
            "pressure_stall_time_delta [unit=nginx.service,pressure=cpu,kind=full] = 10",
            "pressure_stall_time_delta [unit=nginx.service,pressure=cpu,kind=some] = 250",
        ]
    );
    assert_eq!(with("pressure_stall_time_delta").len(), 6);
    assert_eq!(with("cpu_percent").len(), 1);

    // Attributes of the other layouts, on every point.
    let first = |consumer: &str| {
        lines_of(&points, &metrics, consumer)
            .into_iter()
            .find(|l| l.starts_with("memory_usage"))
            .unwrap()
    };
    assert_eq!(
        first(&format!("{POD_V2}/cri-containerd-4f7d1e2a9b.scope")),
        "memory_usage [uid=3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10,qos=burstable,container=4f7d1e2a9b,runtime=containerd] = 31457280"
    );
    assert_eq!(
        first("/system.slice/slurmstepd.scope/job_4242/step_0"),
        "memory_usage [job_id=4242,step=0,unit=slurmstepd.scope] = 6291456"
    );
    assert_eq!(
        first("/system.slice/docker-6a7c1f0b3e2d.scope"),
        "memory_usage [container=6a7c1f0b3e2d,runtime=docker] = 4194304"
    );
    // memory.max = max: no memory_max point.
    assert!(
        !lines_of(&points, &metrics, "/system.slice/docker-6a7c1f0b3e2d.scope")
            .iter()
            .any(|l| l.starts_with("memory_max"))
    );
}

#[test]
fn v1_cgroupfs_kubelet_docker_slurm_and_oar() {
    let (tree, run) = start_on_copy("v1", "");
    assert_eq!(run.trigger("cgroups/*"), 6);
    let job = tree.path().join("cpu,cpuacct/slurm/uid_1000/job_77");
    // +100 ms, with 3 user ticks for 1 system tick: the total splits 75/25 overall.
    rewrite(&job, "cpuacct.usage", "500000000\n");
    rewrite(&job, "cpuacct.stat", "user 30\nsystem 10\n");
    let blkio = tree.path().join("blkio/docker/0123456789abcdef");
    rewrite(
        &blkio,
        "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 10240\n8:0 Write 4096\n8:16 Read 1\n8:16 Write 0\nTotal 14337\n",
    );
    assert_eq!(run.trigger("cgroups/*"), 6);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    let pod = "/kubepods/burstable/pod3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10";
    assert_eq!(
        consumers(&points),
        [
            "/docker/0123456789abcdef".to_string(),
            pod.into(),
            format!("{pod}/5d2c7be4f1a3"),
            "/oar/alice_4217".into(),
            "/slurm/uid_1000/job_77".into(),
            "/slurm/uid_1000/job_77/step_0".into(),
        ]
    );
    let job = lines_of(&points, &metrics, "/slurm/uid_1000/job_77");
    // 400 ms at 30:10 is 300/100; 500 ms at 30:10 is 375/125.
    assert_has(
        &job,
        "cpu_time_delta [job_id=77,user_id=1000,kind=user] = 75",
    );
    assert_has(
        &job,
        "cpu_time_delta [job_id=77,user_id=1000,kind=system] = 25",
    );
    assert_has(&job, "memory_max [job_id=77,user_id=1000] = 1073741824");
    // v1's memory.stat: the hierarchical total_rss and total_cache; no kernel stack there.
    assert_has(
        &job,
        "cgroup_memory_anonymous [job_id=77,user_id=1000] = 2097152",
    );
    assert_has(
        &job,
        "cgroup_memory_file [job_id=77,user_id=1000] = 1048576",
    );
    assert!(
        !job.iter()
            .any(|l| l.starts_with("cgroup_memory_kernel_stack")),
        "{job:#?}"
    );
    let docker = lines_of(&points, &metrics, "/docker/0123456789abcdef");
    assert_has(
        &docker,
        "io_bytes_delta [container=0123456789abcdef,runtime=docker,kind=read] = 2049",
    );
    assert_has(
        &docker,
        "io_bytes_delta [container=0123456789abcdef,runtime=docker,kind=write] = 0",
    );
    // The v1 "unlimited" limit is no limit.
    assert!(
        !docker.iter().any(|l| l.starts_with("memory_max")),
        "{docker:#?}"
    );
    let oar = lines_of(&points, &metrics, "/oar/alice_4217");
    assert_has(&oar, "memory_usage [job_id=4217,user=alice] = 1048576");
    let container = lines_of(&points, &metrics, &format!("{pod}/5d2c7be4f1a3"));
    assert!(container.iter().any(|l| l.starts_with(
        "memory_usage [uid=3b8e6f4c-91c2-4d1e-a5b1-0c2d6a3f9e10,qos=burstable,container=5d2c7be4f1a3] ="
    )), "{container:#?}");
}

#[test]
fn hybrid_reads_v1_controllers_and_v2_pressure_for_one_consumer() {
    let (tree, run) = start_on_copy("hybrid", "");
    assert_eq!(run.trigger("cgroups/*"), 2);
    let nginx = "system.slice/nginx.service";
    rewrite(
        &tree.path().join("cpuacct").join(nginx),
        "cpuacct.usage",
        "2400000000\n",
    );
    rewrite(
        &tree.path().join("cpuacct").join(nginx),
        "cpuacct.stat",
        "user 300\nsystem 100\n",
    );
    rewrite(
        &tree.path().join("unified").join(nginx),
        "io.pressure",
        &psi(1600, 250),
    );
    rewrite(
        &tree.path().join("unified/system.slice/cron.service"),
        "cpu.stat",
        "usage_usec 52000\nuser_usec 49000\nsystem_usec 3000\n",
    );
    assert_eq!(run.trigger("cgroups/*"), 2);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();

    assert_eq!(consumers(&points), ["/system.slice/cron.service", NGINX]);
    let lines = lines_of(&points, &metrics, NGINX);
    // CPU from cpuacct (v1, precise total +400 ms), not from the v2 cpu.stat.
    assert_has(
        &lines,
        "cpu_time_delta [unit=nginx.service,kind=user] = 300",
    );
    assert_has(
        &lines,
        "cpu_time_delta [unit=nginx.service,kind=system] = 100",
    );
    assert_has(&lines, "memory_usage [unit=nginx.service] = 3145728");
    assert_has(
        &lines,
        "pressure_stall_time_delta [unit=nginx.service,pressure=io,kind=some] = 600",
    );
    let cron = lines_of(&points, &metrics, "/system.slice/cron.service");
    assert_has(&cron, "cpu_time_delta [unit=cron.service,kind=user] = 9");
    assert_has(&cron, "cpu_time_delta [unit=cron.service,kind=system] = 1");
}

#[test]
fn include_exclude_and_max_depth_choose_the_cgroups() {
    let extra =
        "include = [\"/**\"]\nexclude = [\"**/kubepods*\", \"/init.scope\"]\nmax_depth = 2\n";
    let run = start(&fixture("v2"), extra);
    run.trigger("cgroups/*");
    // The root has only deltas (cpu.stat): it shows from the second poll on.
    run.trigger("cgroups/*");
    let (_report, points) = run.shutdown();
    assert_eq!(
        consumers(&points),
        [
            "/",
            "/system.slice",
            "/system.slice/docker-6a7c1f0b3e2d.scope",
            "/system.slice/nginx.service",
            "/system.slice/slurmstepd.scope",
        ]
    );
}

#[test]
fn a_root_without_cgroups_makes_the_plugin_unavailable_with_the_fix() {
    let empty = TempDir::new("cgroups-empty");
    let mut plugin = <CgroupsPlugin as alumet::plugin::Plugin>::init(
        toml::from_str(&config(empty.path(), "")).unwrap(),
    )
    .unwrap();
    let err = alumet::plugin::probe_start(&mut plugin).unwrap_err();
    let unavailable = alumet::plugin::Unavailable::find(&err).expect("an Unavailable error");
    assert!(
        unavailable.reason.contains("no cgroup hierarchy"),
        "{}",
        unavailable.reason
    );
    assert!(
        unavailable.fix.contains("cgroup_root"),
        "{}",
        unavailable.fix
    );
}

#[test]
fn config_errors_name_the_key() {
    let bad = |extra: &str| {
        let c: plugin_cgroups::Config =
            toml::from_str(&config(std::path::Path::new("/x"), extra)).unwrap();
        c.validate().unwrap_err().to_string()
    };
    assert!(bad("include = [\"system.slice/*\"]").contains("include[0]"));
    assert!(bad("exclude = [\"/a**\"]").contains("exclude[0]"));
    assert!(bad("include = []").contains("include is empty"));
    assert!(bad("max_depth = 0").contains("max_depth"));
    let unknown = toml::from_str::<plugin_cgroups::Config>("includes = []").unwrap_err();
    assert!(unknown.to_string().contains("includes"), "{unknown}");
}

#[test]
fn without_a_user_system_split_the_total_has_no_kind() {
    let tree = TempDir::copy_of(&fixture("v1"), "cgroups-v1-nosplit");
    let oar = tree.path().join("cpu,cpuacct/oar/alice_4217");
    std::fs::remove_file(oar.join("cpuacct.stat")).unwrap();
    let run = start(tree.path(), "include = [\"/oar/*\"]\n");
    assert_eq!(run.trigger("cgroups/*"), 1);
    rewrite(&oar, "cpuacct.usage", "260000000\n");
    assert_eq!(run.trigger("cgroups/*"), 1);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let lines = lines_of(&points, &metrics, "/oar/alice_4217");
    let cpu: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("cpu_time_delta"))
        .collect();
    assert_eq!(cpu, ["cpu_time_delta [job_id=4217,user=alice] = 60"]);
}

#[test]
fn the_general_cgroup_root_applies_while_the_plugin_key_is_left_at_its_default() {
    let tree = TempDir::copy_of(&fixture("hybrid"), "cgroups-host-paths");
    let mut tester = PipelineTester::new();
    tester.host_paths(alumet::plugin::HostPaths {
        cgroup_root: tree.path().to_owned(),
        ..Default::default()
    });
    let own = "poll_interval = \"1h\"\nrescan_interval = \"1h\"\n";
    tester.plugin_toml::<CgroupsPlugin>(own).unwrap();
    let run = tester.start().unwrap();
    assert_eq!(run.trigger("cgroups/*"), 2);
    // cron.service has only deltas: it shows from the second poll on.
    assert_eq!(run.trigger("cgroups/*"), 2);
    let (_report, points) = run.shutdown();
    assert_eq!(consumers(&points), ["/system.slice/cron.service", NGINX]);
}

#[test]
fn a_file_that_does_not_parse_is_named_and_the_other_figures_still_come() {
    logs::capture();
    let (tree, run) = start_on_copy("v2", "include = [\"/init.scope\"]\n");
    assert_eq!(run.trigger("cgroups/*"), 1);
    rewrite(&tree.path().join("init.scope"), "memory.current", "lots\n");
    assert_eq!(run.trigger("cgroups/*"), 1);
    let metrics = run.metrics().clone();
    let (_report, points) = run.shutdown();
    let shown = tree.path().join("init.scope/memory.current");
    let warnings = logs::lines_with(&shown.display().to_string());
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("cannot parse"), "{}", warnings[0]);
    assert!(warnings[0].contains("\"lots\\n\""), "{}", warnings[0]);
    // The second poll still has the CPU time, I/O and pressure; memory once (the first).
    let lines = lines_of(&points, &metrics, "/init.scope");
    let count = |m: &str| lines.iter().filter(|l| l.starts_with(m)).count();
    assert_eq!(count("memory_usage"), 1, "{lines:#?}");
    assert_eq!(count("cpu_time_delta"), 2, "{lines:#?}");
    assert_eq!(count("pressure_stall_time_delta"), 6, "{lines:#?}");
}
