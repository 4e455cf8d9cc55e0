//! Which consumers receive energy, and nested cgroups counted once.
//!
//! The figures of a cgroup include those of the cgroups below it (a pod's CPU time holds
//! its containers'). When a measured cgroup has measured descendants, only the deepest
//! ones receive energy: the parent's CPU time outside its measured children (its own
//! processes, children that are not measured) is set apart, and its energy reported as
//! `unattributed_energy` with `reason = parent_cgroup`. So every CPU second is counted
//! once, and the consumers' parts never exceed the measured energy.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use alumet::plugin::RunMode;
use alumet::prelude::ResourceConsumer;

use crate::config::Consumers;

/// The kinds of consumer that receive energy, resolved from the config and the run mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kinds {
    Process,
    Cgroup,
    /// Every kind: in exec and watch, only the announced consumers are measured.
    Any,
}

impl Kinds {
    pub(crate) fn new(consumers: Consumers, mode: RunMode) -> Self {
        match consumers {
            Consumers::Process => Kinds::Process,
            Consumers::Cgroup => Kinds::Cgroup,
            Consumers::Auto if mode.follows_announced_processes() => Kinds::Any,
            Consumers::Auto => Kinds::Process,
        }
    }

    /// Whether `consumer` may receive energy.
    pub(crate) fn accepts(self, consumer: &ResourceConsumer) -> bool {
        matches!(
            (self, consumer),
            (Kinds::Any, _)
                | (Kinds::Process, ResourceConsumer::Process { .. })
                | (Kinds::Cgroup, ResourceConsumer::ControlGroup { .. })
        )
    }
}

fn cgroup_path(consumer: &ResourceConsumer) -> Option<&str> {
    match consumer {
        ResourceConsumer::ControlGroup { path } => Some(path),
        _ => None,
    }
}

/// The parent of a cgroup path (`/a/b` → `/a`, `/a` → `/`, `/` → none).
fn parent(path: &str) -> Option<&str> {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/')? {
        0 if trimmed.len() > 1 => Some("/"),
        0 => None,
        i => Some(&trimmed[..i]),
    }
}

/// The cgroup of a process, from the text of `/proc/PID/cgroup`: the path in the v1
/// `cpuacct` hierarchy when there is one (the `cgroups` plugin reads CPU time there
/// first), else in the v2 hierarchy (`0::PATH`).
pub(crate) fn parse_proc_cgroup(text: &str) -> Option<&str> {
    let mut v2 = None;
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "cpuacct") {
            return Some(path);
        }
        if id == "0" && controllers.is_empty() {
            v2 = Some(path);
        }
    }
    v2
}

/// The cgroup of process `pid` (read in `proc_root`), as a consumer; the process itself
/// when its cgroup cannot be read (it has exited, say).
pub(crate) fn cgroup_of(proc_root: &Path, consumer: &ResourceConsumer) -> ResourceConsumer {
    let ResourceConsumer::Process { pid } = consumer else {
        return consumer.clone();
    };
    let file = proc_root.join(pid.to_string()).join("cgroup");
    match std::fs::read_to_string(file)
        .ok()
        .as_deref()
        .and_then(parse_proc_cgroup)
    {
        Some(path) => ResourceConsumer::ControlGroup { path: path.into() },
        None => consumer.clone(),
    }
}

/// Turns the GPU usage of the cgroups that GPU processes run in (`usages`) into usage of
/// the measured cgroups (`known`, with CPU-time readings): each goes to the nearest
/// measured cgroup at or above it, summed per cgroup; usage that reaches no measured
/// cgroup is dropped (it stays in the GPU's busy time: `untracked`), and usage that
/// reaches a measured cgroup with measured descendants is returned, as the parents' part
/// (`parent_cgroup`).
pub(crate) fn gpu_to_measured<'a>(
    known: impl Iterator<Item = &'a ResourceConsumer>,
    usages: &mut Vec<(ResourceConsumer, f64)>,
) -> f64 {
    let measured: HashSet<&str> = known.filter_map(cgroup_path).collect();
    let parents: HashSet<&str> = (measured.iter())
        .filter_map(|p| nearest_measured_ancestor(p, &measured))
        .collect();
    let mut per_cgroup: Vec<(&str, f64)> = Vec::new();
    let mut outside = 0.0;
    for (consumer, used) in usages.iter() {
        let Some(path) = cgroup_path(consumer) else {
            continue;
        };
        let target = measured
            .get(path)
            .copied()
            .or_else(|| nearest_measured_ancestor(path, &measured));
        match target {
            Some(t) if parents.contains(t) => outside += used,
            Some(t) => match per_cgroup.iter_mut().find(|(c, _)| *c == t) {
                Some(entry) => entry.1 += used,
                None => per_cgroup.push((t, *used)),
            },
            None => {}
        }
    }
    let merged: Vec<(ResourceConsumer, f64)> = (per_cgroup.into_iter())
        .map(|(path, used)| (ResourceConsumer::ControlGroup { path: path.into() }, used))
        .collect();
    *usages = merged;
    outside
}

/// The nearest proper ancestor of `path` in `measured`.
fn nearest_measured_ancestor<'a>(path: &'a str, measured: &HashSet<&str>) -> Option<&'a str> {
    let mut p = parent(path);
    while let Some(candidate) = p {
        if measured.contains(candidate) {
            return Some(candidate);
        }
        p = parent(candidate);
    }
    None
}

/// Removes from `usages` the cgroups that have a measured descendant among `known` (the
/// cgroups with CPU-time readings), and returns the CPU time of those parents outside
/// their measured children: `Σ max(0, u_parent - Σ u_child)`, the children being each
/// parent's nearest measured descendants. Processes and other consumers are left alone.
pub(crate) fn nest<'a>(
    known: impl Iterator<Item = &'a ResourceConsumer>,
    usages: &mut Vec<(ResourceConsumer, f64)>,
) -> f64 {
    if !usages.iter().any(|(c, _)| cgroup_path(c).is_some()) {
        return 0.0;
    }
    let measured: HashSet<&str> = known.filter_map(cgroup_path).collect();
    let parents: HashSet<&str> = (measured.iter())
        .filter_map(|p| nearest_measured_ancestor(p, &measured))
        .collect();
    if parents.is_empty() {
        return 0.0;
    }
    // parent → (its own usage, its nearest measured children's).
    let mut sums: HashMap<&str, (f64, f64)> = HashMap::new();
    for (consumer, used) in usages.iter() {
        let Some(path) = cgroup_path(consumer) else {
            continue;
        };
        if let Some(p) = parents.get(path) {
            sums.entry(p).or_default().0 += used;
        }
        if let Some(a) = nearest_measured_ancestor(path, &measured) {
            sums.entry(a).or_default().1 += used;
        }
    }
    let outside: f64 = sums
        .values()
        .map(|(own, children)| (own - children).max(0.0))
        .sum();
    usages.retain(|(c, _)| cgroup_path(c).is_none_or(|p| !parents.contains(p)));
    outside
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(path: &str) -> ResourceConsumer {
        ResourceConsumer::ControlGroup { path: path.into() }
    }

    #[test]
    fn parents_of_paths() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(parent(""), None);
    }

    #[test]
    fn only_the_deepest_cgroups_keep_their_usage() {
        let known = [cg("/"), cg("/pod"), cg("/pod/a"), cg("/pod/b"), cg("/svc")];
        let mut usages = vec![
            (cg("/"), 20.0),
            (cg("/pod"), 10.0),
            (cg("/pod/a"), 3.0),
            (cg("/pod/b"), 4.0),
            (cg("/svc"), 5.0),
            (ResourceConsumer::Process { pid: 1 }, 1.0),
        ];
        let outside = nest(known.iter(), &mut usages);
        // /pod: 10 - 7; /: 20 - (10 + 5).
        assert_eq!(outside, 3.0 + 5.0);
        let left: Vec<_> = usages.iter().map(|(c, _)| c.clone()).collect();
        let expected = [cg("/pod/a"), cg("/pod/b"), cg("/svc")];
        assert_eq!(left[..3], expected);
    }

    #[test]
    fn a_parent_whose_children_used_more_adds_nothing_and_a_name_prefix_is_no_parent() {
        let known = [cg("/a"), cg("/a/b"), cg("/ab")];
        let mut usages = vec![(cg("/a"), 1.0), (cg("/a/b"), 1.5), (cg("/ab"), 2.0)];
        assert_eq!(nest(known.iter(), &mut usages), 0.0);
        assert_eq!(usages, vec![(cg("/a/b"), 1.5), (cg("/ab"), 2.0)]);
    }

    #[test]
    fn a_process_cgroup_is_read_from_cpuacct_or_v2() {
        let hybrid = "12:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/system.slice/x\n";
        assert_eq!(parse_proc_cgroup(hybrid), Some("/docker/abc"));
        assert_eq!(
            parse_proc_cgroup("0::/kubepods.slice/pod\n"),
            Some("/kubepods.slice/pod")
        );
        assert_eq!(parse_proc_cgroup("garbage\n"), None);
    }

    #[test]
    fn gpu_use_goes_to_the_nearest_measured_cgroup() {
        let known = [cg("/pod"), cg("/pod/a"), cg("/svc")];
        let mut usages = vec![
            (cg("/pod/a/inner"), 10.0),
            (cg("/pod/a"), 5.0),
            (cg("/pod/b"), 7.0),
            (cg("/other"), 3.0),
            (ResourceConsumer::Process { pid: 9 }, 1.0),
        ];
        // /pod/b reaches /pod, a parent: its part; /other and the process reach nothing.
        assert_eq!(gpu_to_measured(known.iter(), &mut usages), 7.0);
        assert_eq!(usages, vec![(cg("/pod/a"), 15.0)]);
    }

    #[test]
    fn kinds_follow_the_config_and_the_run_mode() {
        let p = ResourceConsumer::Process { pid: 1 };
        let auto = |mode| Kinds::new(Consumers::Auto, mode);
        assert!(auto(RunMode::Run).accepts(&p) && !auto(RunMode::Run).accepts(&cg("/x")));
        assert!(auto(RunMode::Watch).accepts(&cg("/x")) && auto(RunMode::Exec).accepts(&p));
        let cgroups = Kinds::new(Consumers::Cgroup, RunMode::Run);
        assert!(cgroups.accepts(&cg("/x")) && !cgroups.accepts(&p));
    }
}
