//! The `memory` section: chosen entries of `/proc/meminfo`.

use alumet::pipeline::ElementResultExt;
use alumet::prelude::*;

use crate::config::MemoryConfig;
use crate::parse::{metric_name, parse_meminfo};
use crate::procfile::ProcFile;
use crate::{trigger, Env};

struct Entry {
    key: Box<str>,
    metric: MetricId<u64>,
}

/// Reads `/proc/meminfo` and pushes the chosen entries.
pub(crate) struct MemorySource {
    file: ProcFile,
    entries: Vec<Entry>,
}

/// Registers one metric per configured key found in `/proc/meminfo`, and the source
/// `procfs/memory`. An unreadable file or unknown keys are warned about, not fatal.
pub(crate) fn start(
    config: &MemoryConfig,
    env: &Env,
    alumet: &mut Registrar<'_>,
) -> anyhow::Result<()> {
    let path = env.root.join("meminfo");
    let mut file = match ProcFile::open(path.clone(), true) {
        Ok(f) => f,
        Err(e) => {
            log::warn!(
                "procfs: cannot read {}: {e}; the memory section is skipped (set memory.enabled = false to silence this)",
                path.display()
            );
            return Ok(());
        }
    };
    let mut present: Vec<(String, bool)> = Vec::new();
    parse_meminfo(file.read()?, |e| present.push((e.key.to_owned(), e.kib)));
    let (entries, missing) = register(&config.metrics, &present, alumet)?;
    if !missing.is_empty() {
        log::warn!(
            "procfs: {} has no {}; {} skipped (the keys are case-sensitive, as the kernel writes them)",
            path.display(),
            missing.join(", "),
            if missing.len() == 1 { "it is" } else { "they are" }
        );
    }
    if entries.is_empty() {
        return Ok(());
    }
    let trigger = trigger(config.poll_interval, config.flush_interval);
    alumet.add_source("memory", MemorySource { file, entries }, trigger)?;
    Ok(())
}

/// One metric per key present in the file (`kib`: in bytes, otherwise a count); returns
/// them and the keys that are missing.
fn register<'k>(
    keys: &'k [String],
    present: &[(String, bool)],
    alumet: &mut Registrar<'_>,
) -> anyhow::Result<(Vec<Entry>, Vec<&'k str>)> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut missing = Vec::new();
    for key in keys {
        let Some((_, kib)) = present.iter().find(|(k, _)| k == key) else {
            missing.push(key.as_str());
            continue;
        };
        if entries.iter().any(|e| *e.key == **key) {
            continue;
        }
        let (unit, what) = if *kib {
            (Unit::Byte, "in bytes")
        } else {
            (Unit::Unity, "a count")
        };
        let description = format!("`{key}` of /proc/meminfo, {what}");
        let metric = alumet.create_metric(&metric_name(key), unit, &description)?;
        entries.push(Entry {
            key: key.as_str().into(),
            metric,
        });
    }
    Ok((entries, missing))
}

impl Source for MemorySource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        let entries = &self.entries;
        let text = self.file.read().retryable()?;
        parse_meminfo(text, |e| {
            if let Some(entry) = entries.iter().find(|x| *x.key == *e.key) {
                let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
                acc.push(MeasurementPoint::new(t, entry.metric, r, c, e.scaled()));
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alloc::allocations;
    use alumet::metrics::MetricRegistry;

    #[test]
    fn polls_of_the_real_proc_meminfo_do_not_allocate_once_warm() {
        let mut reg = MetricRegistry::new();
        let entries = ["MemTotal", "MemFree", "Cached", "Active", "Inactive"].map(|key| Entry {
            key: key.into(),
            metric: reg
                .register::<u64>(&metric_name(key), Unit::Byte, "test")
                .unwrap(),
        });
        let file = ProcFile::open("/proc/meminfo".into(), true).unwrap();
        let mut source = MemorySource {
            file,
            entries: entries.into(),
        };
        let mut buffer = MeasurementBuffer::with_capacity(10_000);
        let t = Timestamp::now();
        source.poll(buffer.as_accumulator(), t).unwrap();
        let before = allocations();
        for _ in 0..1000 {
            source.poll(buffer.as_accumulator(), t).unwrap();
        }
        assert_eq!(allocations() - before, 0);
        assert_eq!(buffer.len(), 1001 * 5);
    }
}
