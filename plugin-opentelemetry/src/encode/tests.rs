use super::*;
use std::io::Read;

use prost::Message;

fn def(name: &str, counter: bool) -> Arc<MetricDef> {
    Arc::new(MetricDef::new(name.into(), "J".into(), "d".into(), counter))
}

fn point(metric: &Arc<MetricDef>, t: u64, v: f64) -> Point {
    Point {
        metric: Arc::clone(metric),
        attributes: SeriesAttributes::new(vec![kv("resource_kind", string("local_machine"))]),
        time_ns: t,
        start_ns: if metric.counter { 1 } else { 0 },
        value: number_data_point::Value::AsDouble(v),
    }
}

#[test]
fn one_metric_per_alumet_metric_sums_for_energy() {
    let energy = def("energy", true);
    let temp = def("temp", false);
    let points = [
        point(&energy, 5, 1.0),
        point(&temp, 5, 40.0),
        point(&energy, 6, 2.0),
    ];
    let identity = HostIdentity::new([
        ("host".to_owned(), "web-1".to_owned()),
        ("cluster".to_owned(), "a".to_owned()),
    ]);
    let encoder = Encoder::new(
        resource(&identity, "9.9"),
        Encoding::Protobuf,
        Compression::None,
    );
    let r = encoder.request(&points);
    let rm = &r.resource_metrics[0];
    let keys: Vec<&str> = rm
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(
        keys,
        ["host.name", "service.name", "service.version", "cluster"]
    );
    let metrics = &rm.scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 2);
    match metrics[0].data.as_ref().unwrap() {
        metric::Data::Sum(s) => {
            assert!(s.is_monotonic);
            assert_eq!(
                s.aggregation_temporality,
                AggregationTemporality::Cumulative as i32
            );
            let times: Vec<u64> = s.data_points.iter().map(|d| d.time_unix_nano).collect();
            assert_eq!(times, [5, 6]);
            assert_eq!(s.data_points[0].start_time_unix_nano, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(metrics[1].data, Some(metric::Data::Gauge(_))));
    assert_eq!(metrics[0].unit, "J");
}

#[test]
fn gzip_of_protobuf_decodes_back() {
    let temp = def("temp", false);
    let points = [point(&temp, 5, 40.0)];
    let mut encoder = Encoder::new(Resource::default(), Encoding::Protobuf, Compression::Gzip);
    let body = encoder.encode(&points).unwrap().to_vec();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_end(&mut raw)
        .unwrap();
    let decoded = ExportMetricsServiceRequest::decode(raw.as_slice()).unwrap();
    assert_eq!(decoded, encoder.request(&points));
}

#[test]
fn the_protobuf_is_what_prost_makes_of_the_generated_messages() {
    let energy = def("energy", true);
    let temp = Arc::new(MetricDef::new(
        "temp".into(),
        "Cel".into(),
        String::new(),
        false,
    ));
    let mut points = vec![
        point(&energy, 5, 1.0),
        point(&temp, 5, 40.0),
        point(&energy, 6, 0.0),
        point(&temp, 0, -3.0),
    ];
    points[1].value = number_data_point::Value::AsInt(-7);
    let identity = HostIdentity::new([("host".to_owned(), "h".to_owned())]);
    let mut encoder = Encoder::new(
        resource(&identity, "1"),
        Encoding::Protobuf,
        Compression::None,
    );
    let body = encoder.encode(&points).unwrap().to_vec();
    assert_eq!(body, encoder.request(&points).encode_to_vec());
}

#[test]
fn json_names_fields_in_camel_case() {
    let temp = def("temp", false);
    let mut encoder = Encoder::new(Resource::default(), Encoding::Json, Compression::None);
    let body =
        String::from_utf8(encoder.encode(&[point(&temp, 5, 40.0)]).unwrap().to_vec()).unwrap();
    assert!(
        body.contains("\"resourceMetrics\"") && body.contains("\"timeUnixNano\""),
        "{body}"
    );
}
