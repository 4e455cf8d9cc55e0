//! The source: reads the `cpu` lines of `/proc/stat`, estimates the joules of each
//! interval with the model.

use std::path::PathBuf;

use alumet::prelude::*;
use linux_parse::proc::{parse_stat, StatLine};

use crate::model::{Model, Ticks};

/// One estimate per poll, from the second one on.
pub struct EstimationSource {
    stat: PathBuf,
    model: Model,
    metric: MetricId<f64>,
    attributes: Attributes,
    clk_tck: u64,
    previous: Option<Ticks>,
    text: Vec<u8>,
    reset_logged: bool,
}

/// The `cpu` line's ticks and the number of `cpuN` lines of a `/proc/stat` text.
pub fn read_stat(text: &[u8]) -> Option<(Ticks, u32)> {
    let mut total = None;
    let mut cpus = 0;
    parse_stat(text, |line| {
        if let StatLine::Cpu { cpu, ticks } = line {
            match cpu {
                None => total = Some(Ticks::of(&ticks)),
                Some(_) => cpus += 1,
            }
        }
    });
    Some((total?, cpus))
}

impl EstimationSource {
    /// A source reading `stat` (a `/proc/stat`), estimating with `model`.
    pub fn new(stat: PathBuf, model: Model, metric: MetricId<f64>, clk_tck: u64) -> Self {
        let attributes = Attributes::new([("model", model.name()), ("domain", "package")]);
        EstimationSource {
            stat,
            model,
            metric,
            attributes,
            clk_tck,
            previous: None,
            text: Vec::with_capacity(4096),
            reset_logged: false,
        }
    }
}

impl Source for EstimationSource {
    fn poll(&mut self, acc: &mut MeasurementAccumulator, t: Timestamp) -> Result<(), ElementError> {
        use std::io::Read;
        self.text.clear();
        std::fs::File::open(&self.stat)
            .and_then(|mut f| f.read_to_end(&mut self.text))
            .map_err(|e| {
                ElementError::retryable(anyhow::anyhow!("{}: {e}", self.stat.display()))
            })?;
        let Some((now, cpus)) = read_stat(&self.text) else {
            return Err(ElementError::retryable(anyhow::anyhow!(
                "{}: no `cpu` line",
                self.stat.display()
            )));
        };
        let Some(before) = self.previous.replace(now) else {
            return Ok(());
        };
        let Some(delta) = now.since(&before) else {
            if !self.reset_logged {
                log::warn!(
                    "{}: a CPU time counter went down (reset): that interval is not estimated",
                    self.stat.display()
                );
                self.reset_logged = true;
            }
            return Ok(());
        };
        let joules = self.model.joules(&delta, cpus, self.clk_tck);
        acc.push(
            MeasurementPoint::new(
                t,
                self.metric,
                Resource::LocalMachine,
                ResourceConsumer::LocalMachine,
                joules,
            )
            .with_attributes(self.attributes.clone()),
        );
        Ok(())
    }
}
