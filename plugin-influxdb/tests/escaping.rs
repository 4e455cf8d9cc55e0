//! Property test: lines with random awkward names parse back, through a parser written
//! from the grammar (tests/common/lineproto.rs), into exactly what was sent.
#![allow(clippy::unwrap_used)]

mod common;

use alumet::measurement::{Attributes, MeasurementPoint, Resource, ResourceConsumer, Timestamp};
use alumet::metrics::{MetricRegistry, Unit};
use common::lineproto::{parse, Value};
use common::Rng;
use plugin_influxdb::line::{self, Dialect, LineFormat, Written};

const ALPHABET: [char; 12] = [
    'a', 'b', ' ', ',', '=', '"', '\\', '\\', '\n', '\r', 'é', '\t',
];

fn random_string(rng: &mut Rng) -> String {
    let len = rng.below(9);
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len())])
        .collect()
}

/// What the server stores for a name or tag: line breaks as `\n` text; in 1.x, an odd run
/// of backslashes before a character it escapes (or at the end) one longer.
fn expected(s: &str, dialect: Dialect, specials: &[char]) -> String {
    let visible = s.replace('\n', "\\n").replace('\r', "\\r");
    if dialect == Dialect::Modern {
        return visible;
    }
    let chars: Vec<char> = visible.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '\\').count();
        let next = chars.get(i + run);
        let exposed = next.is_none_or(|c| specials.contains(c));
        let n = run + usize::from(exposed && run % 2 == 1);
        out.extend(std::iter::repeat_n('\\', n));
        i += run;
    }
    out
}

#[test]
fn random_names_round_trip_in_both_dialects() {
    let mut registry = MetricRegistry::new();
    let metric = registry.register::<f64>("m", Unit::Joule, "").unwrap();
    let mut rng = Rng::new(0x5eed_1234);
    let keys = [',', ' ', '='];
    for case in 0..3000 {
        let dialect = if case % 2 == 0 {
            Dialect::V1
        } else {
            Dialect::Modern
        };
        let name = format!("n{}", random_string(&mut rng));
        let (kind, id) = (random_string(&mut rng), random_string(&mut rng));
        let (tag_key, tag_value) = (
            format!("t{}", random_string(&mut rng)),
            random_string(&mut rng),
        );
        let (field_key, field_value) = (
            format!("f{}", random_string(&mut rng)),
            random_string(&mut rng),
        );
        let attrs = Attributes::new([
            (tag_key.clone(), tag_value.clone()),
            (field_key.clone(), field_value.clone()),
        ]);
        let point = MeasurementPoint::new(
            Timestamp::from_unix_nanos(case),
            metric,
            Resource::custom(kind.clone(), id.clone()),
            ResourceConsumer::LocalMachine,
            case as f64 / 7.0,
        )
        .with_attributes(attrs);
        let format = LineFormat {
            dialect,
            is_tag: |k: &str| k == tag_key,
        };
        let measurement = line::measurement(&name, &Unit::Joule, dialect);
        let mut out = Vec::new();
        let written = format.write(&mut out, &point, &measurement);
        let Written::Line { large_u64, key_len } = written else {
            panic!("case {case}: no line");
        };
        assert_eq!(large_u64, 0);
        assert!(
            out[key_len..].starts_with(b" value="),
            "the series key ends at key_len"
        );
        let text = String::from_utf8(out).unwrap();
        let body = text.strip_suffix('\n').unwrap();
        assert!(
            !body.contains('\n') || body.contains('"'),
            "line break outside a string: {body:?}"
        );
        let parsed =
            parse(body, dialect == Dialect::Modern).unwrap_or_else(|e| panic!("{e}: {body:?}"));
        let ctx = format!("case {case} {dialect:?}: {body:?}");
        assert_eq!(
            parsed.measurement,
            expected(&format!("{name}_J"), dialect, &[',', ' ']),
            "{ctx}"
        );
        let mut want_tags = Vec::new();
        for (k, v) in [
            ("resource_kind", &kind),
            ("resource_id", &id),
            ("consumer_kind", &"local_machine".to_owned()),
        ] {
            if !v.is_empty() {
                want_tags.push((k.to_owned(), expected(v, dialect, &keys)));
            }
        }
        if !tag_value.is_empty() {
            want_tags.push((
                expected(&tag_key, dialect, &keys),
                expected(&tag_value, dialect, &keys),
            ));
        }
        assert_eq!(parsed.tags, want_tags, "{ctx}");
        let want_fields = vec![
            ("value".to_owned(), Value::Float(case as f64 / 7.0)),
            (
                expected(&field_key, dialect, &keys),
                Value::Str(field_value.clone()),
            ),
        ];
        assert_eq!(parsed.fields, want_fields, "{ctx}");
        assert_eq!(parsed.timestamp, case);
    }
}
