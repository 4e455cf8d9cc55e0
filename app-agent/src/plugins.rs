//! The statically linked plugins, in start order: the one place to add a plugin.
//!
//! Everything else that lists the plugins is derived from [`all`] or checked against it by
//! `app-agent/tests/registration.rs`: `plugins list`, the default config, the config
//! reference (`docs/user/config.md`) and the plugin lists of `README.md` and
//! `docs/README.md` (those three rewritten by [`UPDATE_DOCS`]), the agent's dependencies
//! and the workspace members.
//!
//! To add the crate `plugin-x` (the checklist of `docs/developer/write-a-plugin.md`):
//! 1. the workspace's `Cargo.toml`: `"plugin-x"` in `members`, and
//!    `plugin-x = { path = "plugin-x" }` in `[workspace.dependencies]`;
//! 2. `app-agent/Cargo.toml`: `plugin-x.workspace = true` (Cargo needs the dependency);
//! 3. here: an [`Entry`] among those of its [`Role`];
//! 4. run [`UPDATE_DOCS`].

use alumet::plugin::PluginMetadata;

/// The command that rewrites the generated parts of the docs from the code: the default
/// config shown in `docs/user/config.md`, and the plugin lists of `README.md` and
/// `docs/README.md`. Run it after adding a plugin or changing a config field's default or
/// `///` line.
pub const UPDATE_DOCS: &str = "UPDATE_DOCS=1 cargo test -p alumet-agent --lib --test registration";

/// What a plugin brings to the pipeline, known without starting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It measures.
    Source,
    /// It turns measurements into others (after every source, before the outputs).
    Transform,
    /// It writes measurements somewhere.
    Output,
}

/// A plugin built into the agent.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Name, config and constructor.
    pub meta: PluginMetadata,
    /// What it brings.
    pub role: Role,
    /// Whether it needs hardware that may be absent: the default config then probes it and
    /// disables it with the reason when it is absent.
    pub needs_hardware: bool,
    /// Whether the default config enables it. Plugins that need settings only the
    /// operator knows (a database's address and token) are present but disabled.
    pub enabled_by_default: bool,
}

/// Every plugin, in start order (sources first, then transforms, outputs last).
pub fn all() -> Vec<Entry> {
    vec![
        Entry {
            meta: PluginMetadata::of::<plugin_procfs::ProcfsPlugin>(),
            role: Role::Source,
            needs_hardware: true,
            enabled_by_default: true,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_cgroups::CgroupsPlugin>(),
            role: Role::Source,
            // Without a cgroup tree (some containers), it is unavailable.
            needs_hardware: true,
            // Every service, pod and job of the host: an operator's choice, not exec's.
            enabled_by_default: false,
        },
        Entry {
            meta: PluginMetadata::of::<crate::self_plugin::AgentPlugin>(),
            role: Role::Source,
            needs_hardware: false,
            enabled_by_default: true,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_rapl::RaplPlugin>(),
            role: Role::Source,
            needs_hardware: true,
            enabled_by_default: true,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_nvidia::NvidiaPlugin>(),
            role: Role::Source,
            needs_hardware: true,
            enabled_by_default: true,
        },
        Entry {
            // Without /sys/class/hwmon (virtual machines, containers), it is unavailable.
            meta: PluginMetadata::of::<plugin_hwmon::HwmonPlugin>(),
            role: Role::Source,
            needs_hardware: true,
            enabled_by_default: true,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_perf::PerfPlugin>(),
            role: Role::Source,
            // Its default events are hardware counters: a machine without a PMU (most
            // virtual machines) has none, and the default config disables it there.
            needs_hardware: true,
            enabled_by_default: true,
        },
        Entry {
            // After rapl: with `when = "no-rapl"` it sees whether rapl measures.
            meta: PluginMetadata::of::<plugin_energy_estimation::EnergyEstimationPlugin>(),
            role: Role::Source,
            needs_hardware: false,
            // Only where no RAPL measures (its default `when`), labelled as estimated.
            enabled_by_default: true,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_attribution::AttributionPlugin>(),
            role: Role::Transform,
            needs_hardware: false,
            // It needs rapl (or nvidia) and procfs's processes; exec users turn it on.
            enabled_by_default: false,
        },
        Entry {
            // After attribution: the consumers' joules get their grams too.
            meta: PluginMetadata::of::<plugin_energy_to_carbon::EnergyToCarbonPlugin>(),
            role: Role::Transform,
            needs_hardware: false,
            // It needs the grid's intensity, which only the operator knows.
            enabled_by_default: false,
        },
        Entry {
            // After the transforms that make joules and grams: their points are windowed too.
            meta: PluginMetadata::of::<plugin_aggregation::AggregationPlugin>(),
            role: Role::Transform,
            needs_hardware: false,
            enabled_by_default: false,
        },
        Entry {
            // The last transform: what it drops, the others have seen.
            meta: PluginMetadata::of::<plugin_filter::FilterPlugin>(),
            role: Role::Transform,
            needs_hardware: false,
            enabled_by_default: false,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_csv::CsvPlugin>(),
            role: Role::Output,
            needs_hardware: false,
            enabled_by_default: true,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_influxdb::InfluxDbPlugin>(),
            role: Role::Output,
            needs_hardware: false,
            enabled_by_default: false,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_prometheus::PrometheusPlugin>(),
            role: Role::Output,
            needs_hardware: false,
            enabled_by_default: false,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_opentelemetry::OpenTelemetryPlugin>(),
            role: Role::Output,
            needs_hardware: false,
            enabled_by_default: false,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_prometheus_remote_write::RemoteWritePlugin>(),
            role: Role::Output,
            needs_hardware: false,
            enabled_by_default: false,
        },
        Entry {
            meta: PluginMetadata::of::<plugin_stdout::StdoutPlugin>(),
            role: Role::Output,
            needs_hardware: false,
            enabled_by_default: false,
        },
    ]
}

/// The public Alumet agent's names of plugins that this agent has under another name:
/// `[plugins.ALIAS]` is an instance of the plugin, as if it said `plugin = "NAME"`.
pub const ALIASES: [(&str, &str); 6] = [
    ("nvml", "nvidia"),
    // Their tables' keys (`poll_interval`, `flush_interval`, grace-hopper's `root_path`)
    // are hwmon's; under these names hwmon reads only their chips, under their metric names.
    ("grace-hopper", "hwmon"),
    ("jetson", "hwmon"),
    ("prometheus-exporter", "prometheus"),
    ("energy-attribution", "attribution"),
    ("energy-estimation-tdp", "energy-estimation"),
];

/// Plugins of the public Alumet agent (0.9) that this agent does not have, with what it
/// offers instead: a config file that has their table gets an error saying so, unless the
/// table says `enable = false` or `--plugins` leaves it out.
pub const ALUMET_ONLY: [(&str, &str); 17] = [
    ("amd-gpu", "the plugin `hwmon` reads amdgpu's power and energy from the kernel (and each process's GPU use for the attribution)"),
    ("k8s", "the plugin `cgroups` measures every cgroup, and names Kubernetes pods ([plugins.cgroups.kubernetes])"),
    ("oar", "the plugin `cgroups` measures every cgroup and names OAR jobs from their cgroup paths"),
    ("slurm", "the plugin `cgroups` measures every cgroup and names Slurm jobs and steps from their cgroup paths"),
    ("raw-cgroups", "the plugin `cgroups` measures every cgroup (v1, v2 and hybrid hosts)"),
    ("containers", "the plugin `cgroups` measures every cgroup and names Docker and Podman containers"),
    ("process-to-cgroup-bridge", "the plugin `attribution` splits energy over cgroups as over processes (consumers = \"cgroup\")"),
    ("relay-client", "send to an existing store instead: `opentelemetry` (OTLP to a collector) or `prometheus-remote-write`"),
    ("relay-server", "send to an existing store instead: `opentelemetry` (OTLP to a collector) or `prometheus-remote-write`"),
    ("mongodb", "no MongoDB output: send OTLP (`opentelemetry`) to a collector that writes where you need, or use `influxdb` or `csv`"),
    ("elasticsearch", "no Elasticsearch output: send OTLP (`opentelemetry`) to a collector with its Elasticsearch exporter"),
    ("kwollect-input", "no Kwollect plugin"),
    ("kwollect-output", "no Kwollect output: use `influxdb`, `prometheus-remote-write` or `opentelemetry`"),
    ("quarch", "no Quarch power-module plugin"),
    ("lm-sensors", "the plugin `hwmon` reads the sensors that lm-sensors reads, from the kernel's hwmon interface"),
    ("temperature", "the plugin `hwmon` reads the temperature sensors of the kernel's hwmon interface"),
    ("tui", "no terminal interface: `alumet-agent control status` shows a running agent, `exec` prints a summary"),
];

/// What this agent offers instead of the public Alumet agent's plugin `name`, if `name` is
/// one of its plugins that this agent lacks.
pub fn alumet_only(name: &str) -> Option<&'static str> {
    ALUMET_ONLY
        .iter()
        .find(|(a, _)| *a == name)
        .map(|(_, w)| *w)
}

/// The plugin that `name` is the public Alumet agent's name of, if it is one.
pub fn alias_of(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == name).map(|(_, p)| *p)
}

/// The names of every plugin.
pub fn names(entries: &[Entry]) -> Vec<&'static str> {
    entries.iter().map(|e| e.meta.name).collect()
}
