//! The `[plugins.procfs]` table: defaults, the public Alumet's layout, errors that name
//! the key, and the generated config's comments.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use alumet::plugin::PluginMetadata;
use alumet::test_util::PipelineTester;
use plugin_procfs::{Config, GroupConfig, MemoryMode, ProcfsPlugin, Strategy};

#[test]
fn defaults_enable_kernel_and_memory_only() {
    let c = Config::default();
    assert_eq!(c.procfs_root.to_str(), Some("/proc"));
    assert!(c.kernel.enabled && c.memory.enabled);
    assert!(!c.network.enabled && !c.processes.enabled);
    assert_eq!(c.kernel.poll_interval, Duration::from_secs(1));
    assert_eq!(c.memory.flush_interval, Duration::from_secs(5));
    assert!(c.memory.metrics.iter().any(|m| m == "MemAvailable"));
    assert_eq!(c.processes.strategy, Strategy::Watcher);
    c.validate().unwrap();
}

#[test]
fn generated_default_config_reads_back_and_documents_every_key() {
    let meta = PluginMetadata::of::<ProcfsPlugin>();
    let table = meta.default_config().unwrap();
    let text = toml::to_string(&table).unwrap();
    assert!(text.contains("poll_interval = \"1s\""), "{text}");
    let back: Config = toml::from_str(&text).unwrap();
    assert_eq!(back, Config::default());
    meta.init(table).unwrap();

    // Every field has a description (the comment of the generated file).
    let schema = meta.config_schema().to_string();
    for key in [
        "procfs_root",
        "per_cpu",
        "metrics",
        "interfaces",
        "strategy",
        "exe_regex",
    ] {
        let at = schema
            .find(&format!("\"{key}\":{{"))
            .unwrap_or_else(|| panic!("{key}"));
        let field = &schema[at..at + 400.min(schema.len() - at)];
        assert!(field.contains("description"), "{key}: {field}");
    }
}

#[test]
fn a_config_written_for_the_public_alumet_is_accepted() {
    let text = r#"
        [kernel]
        enabled = true
        poll_interval = "5s"
        [memory]
        enabled = true
        poll_interval = "5s"
        metrics = ["MemTotal", "MemFree", "MemAvailable", "Cached", "SwapCached", "Active", "Inactive", "Mapped"]
        [processes]
        enabled = true
        refresh_interval = "2s"
        strategy = "watcher"
        [processes.events]
        poll_interval = "1s"
        flush_interval = "4s"
        memory_mode = "slow_but_accurate"
        [[processes.groups]]
        exe_regex = ".*"
        poll_interval = "2s"
        flush_interval = "4s"
        memory_mode = "quick"
        [[processes.groups]]
        poll_interval = "2s"
        flush_interval = "4s"
        memory_mode = "full"
    "#;
    let c: Config = toml::from_str(text).unwrap();
    c.validate().unwrap();
    assert_eq!(c.processes.groups[0].exe_regex.as_deref(), Some(".*"));
    assert_eq!(c.processes.events.memory_mode, MemoryMode::SlowButAccurate);
    assert_eq!(c.processes.groups[0].memory_mode, MemoryMode::Quick);
    assert_eq!(
        c.processes.groups[1].memory_mode,
        MemoryMode::SlowButAccurate
    );
    assert_eq!(c.kernel.flush_interval, Duration::from_secs(5));
}

fn init_error(text: &str) -> String {
    let mut tester = PipelineTester::new();
    match tester.plugin_toml::<ProcfsPlugin>(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("kernel.per_cpus = true", "per_cpus"),
        ("processes.strategy = \"poll\"", "strategy"),
        ("memory.poll_interval = \"often\"", "poll_interval"),
        ("kernel.poll_interval = \"0s\"", "kernel.poll_interval"),
        ("memory.metrics = []", "memory.metrics"),
        (
            "processes.events.memory_mode = \"exact\"",
            "slow_but_accurate",
        ),
        (
            "[[processes.groups]]\nexe_regex = \"(unclosed\"",
            "processes.groups[0].exe_regex",
        ),
        (
            "processes = { enabled = true, groups = [] }",
            "processes.groups",
        ),
    ];
    for (text, key) in cases {
        let err = init_error(text);
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn exe_regex_syntax() {
    let group = |re: &str| GroupConfig {
        exe_regex: Some(re.into()),
        ..Default::default()
    };
    let re = group(r"(?i)/bin/PYTHON\d+$").regex().unwrap().unwrap();
    assert!(re.is_match("/usr/bin/python3"));
    assert!(!re.is_match("/usr/bin/python"));
    for pattern in [r"\p{Greek}", r"\PL", "[[:alpha:]&&a]"] {
        let err = format!("{:#}", group(pattern).regex().unwrap_err());
        assert!(err.contains("not supported"), "{pattern}: {err}");
        assert!(err.contains(pattern), "{pattern}: {err}");
    }
}
