//! CPU, memory, I/O and pressure of the host's control groups: the plugin `cgroups` (see
//! `README.md`).
//!
//! At start it finds the hierarchies under the cgroup root (v2, v1, or hybrid:
//! [`hierarchy`]), lists the cgroups that `include` selects, and adds one source per
//! cgroup; a task then follows the tree with inotify (and a periodic rescan), adding a
//! source for each new cgroup and removing, after a last reading, the source of each
//! removed one. In exec and watch modes it measures only the cgroup that the agent
//! announces (`alumet-agent watch --cgroup PATH`). [`resolve`] turns a path into
//! attributes (pod, container, unit, job); where Kubernetes is asked ([`kube`]), a task
//! fills a cache of the pods' names ([`pods`]) that the sources of pods read.

mod announced;
mod config;
mod cpu;
mod discovery;
mod follow;
pub mod hierarchy;
mod kfile;
pub mod kube;
mod metrics;
pub mod parse;
pub mod pattern;
pub mod podlist;
pub mod pods;
pub mod resolve;
mod runtimes;
mod source;

use std::sync::Arc;

use alumet::prelude::*;

pub use config::{Config, KubeConfig, Switch, DEFAULT_INCLUDE};
pub use discovery::source_name;

/// The `cgroups` plugin.
pub struct CgroupsPlugin {
    config: Config,
}

impl Plugin for CgroupsPlugin {
    type Config = Config;

    fn name() -> &'static str {
        "cgroups"
    }

    fn init(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(CgroupsPlugin { config })
    }

    fn start(&mut self, alumet: &mut Registrar<'_>) -> anyhow::Result<()> {
        let c = &self.config;
        let root = alumet.host_paths().cgroup_root_or(&c.cgroup_root);
        let hierarchies = discovery::hierarchies(&root)?;
        log::debug!("cgroups: hierarchies {}", discovery::shown(&hierarchies));
        let trigger = Trigger::from_config("", c.poll_interval, c.flush_interval)?;
        let metrics = metrics::Metrics::register(alumet, c.details_every())?;
        let patterns = c.patterns()?;
        let mut discovery = discovery::Discovery::new(
            hierarchies,
            patterns,
            c.max_depth,
            metrics,
            trigger,
            c.rescan_interval,
        );
        discovery.name_containers_with(runtimes::RuntimeState::new(
            &c.docker_root,
            &c.containers_storage,
        ));
        if alumet.run_mode().follows_announced_processes() {
            // exec and watch: the announced cgroup alone (`watch --cgroup`), or nothing.
            announced::subscribe(alumet, discovery);
            return Ok(());
        }
        let inotify = match inotify::Inotify::init() {
            Ok(i) => Some(i),
            Err(e) => {
                log::warn!("cgroups: inotify is not available ({e}): new and removed cgroups are found by the rescan every {:?}", c.rescan_interval);
                None
            }
        };
        if let Some(i) = &inotify {
            discovery.watch_with(i);
        }
        if c.kubernetes.is_on() {
            let names = pods::PodNames::new();
            discovery.name_pods_with(Arc::clone(&names));
            let client = kube::Client::new(&c.kubernetes);
            log::info!("cgroups: pods named from {}", client.url());
            if client.url().ends_with("/api/v1/pods") {
                log::warn!("cgroups: no node name (node_name, or the environment variable NODE_NAME): every pod of the cluster is listed, not only this node's");
            }
            let refresh = c.kubernetes.refresh_interval;
            alumet.add_task("kubernetes", move |shutdown| {
                kube::run(client, names, refresh, shutdown)
            })?;
        }
        discovery.publish_to(alumet.consumers(), alumet.plugin_name());
        discovery.start(alumet)?;
        alumet.add_task_with_control("discovery", move |control, shutdown| {
            follow::run(discovery, inotify, control, shutdown)
        })?;
        Ok(())
    }
}
