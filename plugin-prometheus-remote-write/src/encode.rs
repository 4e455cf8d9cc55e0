//! Remote write 1.0 requests: the protobuf messages of Prometheus' `prompb` (`remote.proto`,
//! `types.proto`: only the fields 1.0 senders fill), and the encoding of a batch of
//! samples: one time series per distinct label set, series sorted by labels, samples of a
//! series sorted by time with duplicate timestamps removed (the last one wins), then
//! snappy's block format. Pure: no I/O.

use std::sync::Arc;

use prost::Message;

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
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, prost::Message)]
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

/// A series' labels, sorted by name, `__name__` included; shared by its points.
pub type SeriesLabels = Arc<[Label]>;

/// One point waiting to be sent: the series it belongs to, its value, its time.
#[derive(Clone, Debug)]
pub struct Point {
    /// The series (labels sorted by name).
    pub series: SeriesLabels,
    /// The sample.
    pub sample: Sample,
}

/// The labels of a series, sorted by name, from the metric name and its label pairs.
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
    labels.into()
}

/// Reused buffers: encoding a request allocates only for its series.
#[derive(Default)]
pub struct Encoder {
    order: Vec<usize>,
    protobuf: Vec<u8>,
    snappy: Vec<u8>,
}

impl Encoder {
    /// The request of `points`, as protobuf (not yet compressed).
    pub fn request(&mut self, points: &[Point]) -> WriteRequest {
        self.order.clear();
        self.order.extend(0..points.len());
        // By series (same labels together, series in label order), then by time; a
        // stable sort keeps the points of one timestamp in arrival order.
        self.order.sort_by(|&a, &b| {
            let (pa, pb) = (&points[a], &points[b]);
            let same = Arc::ptr_eq(&pa.series, &pb.series);
            let by_series = if same {
                std::cmp::Ordering::Equal
            } else {
                pa.series.cmp(&pb.series)
            };
            by_series.then(pa.sample.timestamp.cmp(&pb.sample.timestamp))
        });
        let mut timeseries: Vec<TimeSeries> = Vec::new();
        for &i in &self.order {
            let p = &points[i];
            match timeseries.last_mut() {
                Some(ts) if *ts.labels == *p.series => match ts.samples.last_mut() {
                    Some(last) if last.timestamp == p.sample.timestamp => *last = p.sample,
                    _ => ts.samples.push(p.sample),
                },
                _ => timeseries.push(TimeSeries {
                    labels: p.series.to_vec(),
                    samples: vec![p.sample],
                }),
            }
        }
        WriteRequest { timeseries }
    }

    /// The request body of `points`: protobuf, then snappy (block format).
    pub fn encode(&mut self, points: &[Point]) -> Result<&[u8], snap::Error> {
        let request = self.request(points);
        self.protobuf.clear();
        self.protobuf.reserve(request.encoded_len());
        // Encoding into a Vec cannot run out of room (it grows).
        let _ = request.encode(&mut self.protobuf);
        self.snappy
            .resize(snap::raw::max_compress_len(self.protobuf.len()), 0);
        let n = snap::raw::Encoder::new().compress(&self.protobuf, &mut self.snappy)?;
        Ok(&self.snappy[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let names: Vec<&str> = s.iter().map(|l| l.name.as_str()).collect();
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
    fn the_body_is_snappy_of_the_protobuf() {
        let a = series_labels("a", pairs(&[("host", "h")]));
        let points = [point(&a, 1.5, 1_700_000_000_000)];
        let mut encoder = Encoder::default();
        let body = encoder.encode(&points).unwrap().to_vec();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let decoded = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(decoded, encoder.request(&points));
        assert_eq!(decoded.timeseries[0].samples[0].value, 1.5);
    }
}
