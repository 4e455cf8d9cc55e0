//! Remote write 1.0 requests: the protobuf messages of Prometheus' `prompb` (`remote.proto`,
//! `types.proto`: only the fields 1.0 senders fill), and the encoding of a batch of
//! samples: one time series per distinct label set, series sorted by labels, samples of a
//! series sorted by time with duplicate timestamps removed (the last one wins), then
//! snappy's block format. Pure: no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

/// `prometheus.WriteRequest` (field 1; fields 3, metadata, is not sent).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series of the request.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels (sorted by name, `__name__` among them) and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Sorted by timestamp.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// The label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A series: its labels, sorted by name (`__name__` included), and those labels already
/// encoded as the `labels` fields of a `TimeSeries` (done once per series, not per request).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    /// Sorted by name.
    pub labels: Vec<Label>,
    encoded: Vec<u8>,
}

/// A series, shared by its points.
pub type SeriesLabels = Arc<Series>;

/// One point waiting to be sent: the series it belongs to, its value, its time.
#[derive(Clone, Debug)]
pub struct Point {
    /// The series (labels sorted by name).
    pub series: SeriesLabels,
    /// The sample.
    pub sample: Sample,
}

/// The series of a metric name and its label pairs (sorted by name here).
pub fn series_labels(name: &str, pairs: Vec<(String, String)>) -> SeriesLabels {
    let mut labels: Vec<Label> = pairs
        .into_iter()
        .map(|(name, value)| Label { name, value })
        .collect();
    labels.push(Label {
        name: "__name__".to_owned(),
        value: name.to_owned(),
    });
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    let mut encoded = Vec::new();
    for label in &labels {
        prost::encoding::message::encode(1, label, &mut encoded);
    }
    Arc::new(Series { labels, encoded })
}

/// `TimeSeries.samples` (field 2) of one sample: its encoded length, key included.
fn sample_len(s: &Sample) -> usize {
    let body = sample_body_len(s);
    1 + encoded_len_varint(body as u64) + body
}

/// A `Sample` message's own length: `value` (fixed64) and `timestamp` (varint).
fn sample_body_len(s: &Sample) -> usize {
    9 + 1 + encoded_len_varint(s.timestamp as u64)
}

/// Reused buffers: encoding a request allocates only when a buffer must grow.
#[derive(Default)]
pub struct Encoder {
    /// Index of each series of the request in `groups`, by the address of its `Series`.
    index: HashMap<usize, usize>,
    /// The series of the request and their samples.
    groups: Vec<(SeriesLabels, Vec<Sample>)>,
    /// Spare sample vectors, reused.
    spare: Vec<Vec<Sample>>,
    protobuf: Vec<u8>,
    snappy: Vec<u8>,
}

impl Encoder {
    /// Groups `points` by series (series in label order), samples by time, the last of
    /// two samples at the same time kept.
    fn group(&mut self, points: &[Point]) {
        self.index.clear();
        for (_, mut samples) in self.groups.drain(..) {
            samples.clear();
            self.spare.push(samples);
        }
        for p in points {
            let i = *self
                .index
                .entry(Arc::as_ptr(&p.series) as usize)
                .or_insert_with(|| {
                    let samples = self.spare.pop().unwrap_or_default();
                    self.groups.push((Arc::clone(&p.series), samples));
                    self.groups.len() - 1
                });
            self.groups[i].1.push(p.sample);
        }
        // Two Arcs of the same labels are one series.
        self.groups.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(SeriesLabels, Vec<Sample>)> = Vec::with_capacity(self.groups.len());
        for (series, samples) in self.groups.drain(..) {
            match merged.last_mut() {
                Some((last, all)) if **last == *series => all.extend_from_slice(&samples),
                _ => merged.push((series, samples)),
            }
        }
        for (_, samples) in &mut merged {
            if !samples.is_sorted_by_key(|s| s.timestamp) {
                samples.sort_by_key(|s| s.timestamp); // stable: arrival order within a time
            }
            // The last of the samples that share a timestamp wins.
            samples.reverse();
            samples.dedup_by_key(|s| s.timestamp);
            samples.reverse();
        }
        self.groups = merged;
    }

    /// The request of `points`, as the protobuf messages.
    pub fn request(&mut self, points: &[Point]) -> WriteRequest {
        self.group(points);
        let timeseries = self
            .groups
            .iter()
            .map(|(series, samples)| TimeSeries {
                labels: series.labels.clone(),
                samples: samples.clone(),
            })
            .collect();
        WriteRequest { timeseries }
    }

    /// The request body of `points`: the `WriteRequest` in protobuf, then snappy (block
    /// format). The labels of each series were encoded once, with the series; the
    /// request's fields are written with prost's encoding functions around them.
    pub fn encode(&mut self, points: &[Point]) -> Result<&[u8], snap::Error> {
        self.group(points);
        let buf = &mut self.protobuf;
        buf.clear();
        for (series, samples) in &self.groups {
            let len = series.encoded.len() + samples.iter().map(sample_len).sum::<usize>();
            encode_key(1, WireType::LengthDelimited, buf);
            encode_varint(len as u64, buf);
            buf.extend_from_slice(&series.encoded);
            for s in samples {
                encode_key(2, WireType::LengthDelimited, buf);
                encode_varint(sample_body_len(s) as u64, buf);
                encode_key(1, WireType::SixtyFourBit, buf);
                buf.extend_from_slice(&s.value.to_le_bytes());
                encode_key(2, WireType::Varint, buf);
                encode_varint(s.timestamp as u64, buf);
            }
        }
        self.snappy
            .resize(snap::raw::max_compress_len(self.protobuf.len()), 0);
        let n = snap::raw::Encoder::new().compress(&self.protobuf, &mut self.snappy)?;
        Ok(&self.snappy[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn point(series: &SeriesLabels, value: f64, timestamp: i64) -> Point {
        Point {
            series: Arc::clone(series),
            sample: Sample { value, timestamp },
        }
    }

    #[test]
    fn labels_are_sorted_with_the_name() {
        let s = series_labels("m", pairs(&[("zone", "a"), ("host", "h")]));
        let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "host", "zone"]);
    }

    #[test]
    fn series_are_grouped_sorted_and_deduplicated() {
        let b = series_labels("b", pairs(&[("host", "h")]));
        let a = series_labels("a", pairs(&[("host", "h")]));
        // A copy of `a` under another Arc is the same series.
        let a2 = series_labels("a", pairs(&[("host", "h")]));
        let points = [
            point(&b, 1.0, 20),
            point(&a, 2.0, 30),
            point(&a2, 3.0, 10),
            point(&a, 4.0, 30),
            point(&b, 5.0, 10),
        ];
        let request = Encoder::default().request(&points);
        let got: Vec<(String, Vec<(i64, f64)>)> = request
            .timeseries
            .iter()
            .map(|ts| {
                let samples = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
                (ts.labels[0].value.clone(), samples)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_owned(), vec![(10, 3.0), (30, 4.0)]),
                ("b".to_owned(), vec![(10, 5.0), (20, 1.0)]),
            ]
        );
    }

    #[test]
    fn zero_and_negative_values_and_times_survive() {
        let a = series_labels("a", pairs(&[]));
        let points = [
            point(&a, 0.0, 0),
            point(&a, -1.5, 5),
            point(&a, f64::NAN, 9),
        ];
        let mut encoder = Encoder::default();
        let body = encoder.encode(&points).unwrap().to_vec();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let decoded = WriteRequest::decode(raw.as_slice()).unwrap();
        let s = &decoded.timeseries[0].samples;
        assert_eq!((s[0].value, s[0].timestamp, s[1].value), (0.0, 0, -1.5));
        assert!(s[2].value.is_nan());
    }

    #[test]
    fn the_body_is_snappy_of_the_protobuf() {
        let a = series_labels("a", pairs(&[("host", "h")]));
        let points = [point(&a, 1.5, 1_700_000_000_000)];
        let mut encoder = Encoder::default();
        let body = encoder.encode(&points).unwrap().to_vec();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let decoded = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(decoded, encoder.request(&points));
        assert_eq!(
            raw,
            encoder.request(&points).encode_to_vec(),
            "as prost encodes it"
        );
        assert_eq!(decoded.timeseries[0].samples[0].value, 1.5);
    }
}
