//! The `network` section: `/proc/net/dev`.

use alumet::pipeline::ElementResultExt;
use alumet::prelude::*;

use crate::config::NetworkConfig;
use crate::parse::parse_net_dev;
use crate::procfile::ProcFile;
use crate::{trigger, Env};

/// The reported columns, the same in both directions: bytes, packets, errs, drop.
const COLUMNS: usize = 4;
const DIRECTIONS: [&str; 2] = ["rx", "tx"];

/// The state of one interface: its attribute sets (built once) and its counters.
struct Interface {
    name: Box<str>,
    /// `interface = name, direction = rx|tx`.
    attrs: [Attributes; 2],
    diffs: [[CounterDiff; COLUMNS]; 2],
    seen: bool,
}

impl Interface {
    fn new(name: &str) -> Self {
        Interface {
            name: name.into(),
            attrs: DIRECTIONS.map(|d| Attributes::new([("interface", name), ("direction", d)])),
            diffs: std::array::from_fn(|_| std::array::from_fn(|_| CounterDiff::without_wrap())),
            seen: false,
        }
    }
}

/// Reads `/proc/net/dev` and pushes the differences since the previous poll.
pub(crate) struct NetworkSource {
    file: ProcFile,
    /// bytes, packets, errors, drops.
    metrics: [MetricId<u64>; COLUMNS],
    only: Vec<String>,
    interfaces: Vec<Interface>,
}

/// Registers the metrics and the source `procfs/network`; an unreadable file is warned
/// about, not fatal.
pub(crate) fn start(
    config: &NetworkConfig,
    env: &Env,
    alumet: &mut Registrar<'_>,
) -> anyhow::Result<()> {
    let path = env.root.join("net/dev");
    let file = match ProcFile::open(path.clone(), false) {
        Ok(f) => f,
        Err(e) => {
            log::warn!(
                "procfs: cannot read {}: {e}; the network section is skipped (set network.enabled = false to silence this)",
                path.display()
            );
            return Ok(());
        }
    };
    let per = "since the previous measurement (attributes interface, direction)";
    let metrics = [
        alumet.create_metric("network_bytes", Unit::Byte, &format!("bytes {per}"))?,
        alumet.create_metric("network_packets", Unit::Unity, &format!("packets {per}"))?,
        alumet.create_metric(
            "network_errors",
            Unit::Unity,
            &format!("packets with errors {per}"),
        )?,
        alumet.create_metric(
            "network_packet_drops",
            Unit::Unity,
            &format!("dropped packets {per}"),
        )?,
    ];
    let mut source = NetworkSource {
        file,
        metrics,
        only: config.interfaces.clone(),
        interfaces: Vec::new(),
    };
    source.measure(None, Timestamp::now())?;
    let trigger = trigger(config.poll_interval, config.flush_interval);
    alumet.add_source("network", source, trigger)?;
    Ok(())
}

impl NetworkSource {
    fn measure(
        &mut self,
        mut acc: Option<&mut MeasurementAccumulator>,
        t: Timestamp,
    ) -> anyhow::Result<()> {
        let NetworkSource {
            file,
            metrics,
            only,
            interfaces,
        } = self;
        interfaces.iter_mut().for_each(|i| i.seen = false);
        parse_net_dev(file.read()?, |line| {
            if !only.is_empty() && !only.iter().any(|o| o == line.interface) {
                return;
            }
            let i = match interfaces.iter().position(|i| *i.name == *line.interface) {
                Some(i) => i,
                None => {
                    interfaces.push(Interface::new(line.interface));
                    interfaces.len() - 1
                }
            };
            let iface = &mut interfaces[i];
            iface.seen = true;
            for (dir, values) in [line.rx, line.tx].iter().enumerate() {
                for (col, diff) in iface.diffs[dir].iter_mut().enumerate() {
                    let Some(d) = diff.update(values[col]).difference() else {
                        continue;
                    };
                    if let Some(acc) = acc.as_deref_mut() {
                        let (r, c) = (Resource::LocalMachine, ResourceConsumer::LocalMachine);
                        let p = MeasurementPoint::new(t, metrics[col], r, c, d);
                        acc.push(p.with_attributes(iface.attrs[dir].clone()));
                    }
                }
            }
        });
        // An interface that went away may come back with counters from zero: its next
        // reading is a new baseline.
        for iface in interfaces.iter_mut().filter(|i| !i.seen) {
            iface
                .diffs
                .iter_mut()
                .flatten()
                .for_each(CounterDiff::forget);
        }
        Ok(())
    }
}

impl Source for NetworkSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        self.measure(Some(acc), t).retryable()
    }
}
