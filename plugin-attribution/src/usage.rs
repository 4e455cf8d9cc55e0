//! What the consumers used, as cumulative [`Series`]: CPU time (machine and per consumer)
//! and per-process SM use of each GPU.

use std::collections::{BTreeSet, HashMap};

use alumet::prelude::{Resource, ResourceConsumer};

use crate::series::Series;

/// The latest and the previous distinct times of a source's readings.
#[derive(Debug, Clone, Copy, Default)]
struct Polls {
    prev: Option<u64>,
    cur: Option<u64>,
}

impl Polls {
    /// Records a reading at `t`; returns the start of its period (the previous reading's
    /// time) when known.
    fn record(&mut self, t: u64) -> Option<u64> {
        match self.cur {
            Some(cur) if t < cur => return None,
            Some(cur) if t > cur => {
                self.prev = Some(cur);
                self.cur = Some(t);
            }
            Some(_) => {}
            None => self.cur = Some(t),
        }
        self.prev
    }
}

/// CPU time: the machine's busy time and each consumer's time, in seconds.
#[derive(Debug, Default)]
pub(crate) struct CpuUsage {
    /// Busy CPU time of the whole machine.
    pub(crate) machine: Series,
    /// CPU time of each consumer.
    pub(crate) consumers: HashMap<ResourceConsumer, Series>,
    polls: Polls,
    /// Times of consumer readings that some consumer read then was read again after:
    /// its source polled again, so a consumer last read at such a time has vanished.
    continued: BTreeSet<u64>,
    /// The pipeline's watermark (0 when unknown): every reading up to it has arrived, so
    /// a consumer last read before it, by a source that polled since, has vanished.
    watermark: u64,
}

impl CpuUsage {
    /// Adds busy machine time read at `t` (0 for a non-busy state: it still tells that the
    /// machine's data reaches `t`). Its first reading only sets the origin.
    pub(crate) fn add_machine(&mut self, t: u64, seconds: f64) {
        let start = self.machine.last_time();
        self.machine.add(start, t, seconds);
    }

    /// Adds CPU time of `consumer` read at `t`. A consumer's first reading is taken to
    /// cover the time since the previous reading of any consumer.
    pub(crate) fn add_consumer(&mut self, consumer: &ResourceConsumer, t: u64, seconds: f64) {
        let poll_start = self.polls.record(t);
        match self.consumers.get_mut(consumer) {
            Some(series) => {
                let start = series.last_time();
                if let Some(last) = start.filter(|last| *last < t) {
                    self.continued.insert(last);
                }
                series.add(start, t, seconds);
            }
            None => {
                let mut series = Series::new();
                series.add(poll_start, t, seconds);
                self.consumers.insert(consumer.clone(), series);
            }
        }
    }

    /// Whether a reading of `series` may still come: its source has not been read since
    /// without it (as far as the readings sharing its time, and the pipeline's watermark,
    /// tell), and its last reading is at most `max_delay` older than `newest`.
    fn may_come(&self, series: &Series, newest: u64, max_delay: u64) -> bool {
        series.last_time().is_some_and(|last| {
            !self.continued.contains(&last)
                && last >= self.watermark
                && newest.saturating_sub(last) <= max_delay
        })
    }

    /// The pipeline's watermark, in ns (0 when unknown).
    pub(crate) fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Records the pipeline's watermark (it only moves forward).
    pub(crate) fn set_watermark(&mut self, watermark: u64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Intervals ending at or before the returned time have all their CPU data: the
    /// machine's readings reach it, and so do those of every consumer that may still be
    /// read (see [`CpuUsage::may_come`]).
    pub(crate) fn ready_until(
        &self,
        has_machine: bool,
        has_consumers: bool,
        newest: u64,
        max_delay: u64,
    ) -> u64 {
        if !has_machine {
            return u64::MAX;
        }
        let mut until = self.machine.last_time().unwrap_or(0);
        if has_consumers {
            // Consumer readings are known up to the latest one, and up to the watermark
            // (which alone tells how far none has come: none of the chosen kind, say).
            let frontier = self.polls.cur.unwrap_or(0).max(self.watermark);
            until = until.min(frontier);
            for series in self.consumers.values() {
                if let Some(last) = series.last_time() {
                    if last < until && self.may_come(series, newest, max_delay) {
                        until = last;
                    }
                }
            }
        }
        until
    }

    /// The part of `(a, b]` that the machine's readings cover.
    pub(crate) fn coverage(&self, a: u64, b: u64) -> Option<(u64, u64)> {
        let (first, last) = (self.machine.first_time()?, self.machine.last_time()?);
        let (a2, b2) = (a.max(first), b.min(last));
        (a2 < b2).then_some((a2, b2))
    }

    /// Forgets what no interval starting at or after `horizon` needs.
    pub(crate) fn prune(&mut self, horizon: u64, newest: u64, max_delay: u64) {
        self.machine.prune(horizon);
        let mut consumers = std::mem::take(&mut self.consumers);
        consumers.retain(|_, series| {
            series.prune(horizon);
            series.last_time().is_some_and(|t| t > horizon)
                || self.may_come(series, newest, max_delay)
        });
        self.consumers = consumers;
        self.continued = self.continued.split_off(&horizon);
    }
}

/// One GPU: when it was read, and the SM use of its processes (percent × seconds).
#[derive(Debug, Default)]
pub(crate) struct GpuDevice {
    polls: Polls,
    pub(crate) processes: HashMap<ResourceConsumer, Series>,
}

/// Every GPU seen.
#[derive(Debug, Default)]
pub(crate) struct GpuUsage {
    pub(crate) devices: HashMap<Resource, GpuDevice>,
}

impl GpuUsage {
    fn device(&mut self, gpu: &Resource) -> &mut GpuDevice {
        self.devices.entry(gpu.clone()).or_default()
    }

    /// Records a reading of `gpu` at `t` (its energy or any process's utilization).
    pub(crate) fn poll(&mut self, gpu: &Resource, t: u64) {
        self.device(gpu).polls.record(t);
    }

    /// Adds the SM utilization (percent) of `process` on `gpu` read at `t`, taken to hold
    /// since the GPU's previous reading; a process absent from a reading used nothing.
    pub(crate) fn add_utilization(
        &mut self,
        gpu: &Resource,
        process: &ResourceConsumer,
        t: u64,
        percent: f64,
    ) {
        let device = self.device(gpu);
        let Some(start) = device.polls.record(t) else {
            return;
        };
        let amount = percent * (t - start) as f64 / 1e9;
        match device.processes.get_mut(process) {
            Some(series) => {
                series.add(Some(start), t, amount);
            }
            None => {
                let mut series = Series::new();
                series.add(Some(start), t, amount);
                device.processes.insert(process.clone(), series);
            }
        }
    }

    /// Forgets what no interval starting at or after `horizon` needs.
    pub(crate) fn prune(&mut self, horizon: u64) {
        for device in self.devices.values_mut() {
            device.processes.retain(|_, series| {
                series.prune(horizon);
                series.last_time().is_some_and(|t| t > horizon)
            });
        }
    }
}
