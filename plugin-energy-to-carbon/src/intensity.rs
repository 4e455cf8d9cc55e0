//! Where the grams per kWh come from: a fixed figure, a country's yearly average (the
//! table shipped in `data/`), or a time series read from a CSV file.

use std::path::Path;

use alumet::measurement::Timestamp;

/// The shipped table: `country,intensity` lines, comments starting with `#`.
const COUNTRIES: &str = include_str!("../data/country_intensity_2024.csv");

/// The year and source of the shipped table, for messages and the attribute.
pub const COUNTRIES_SOURCE: &str = "Electricity Maps 2024";

/// The countries of the shipped table and their intensity (g/kWh), in table order.
pub fn countries() -> Vec<(&'static str, f64)> {
    rows().map(|(code, value, _)| (code, value)).collect()
}

/// The table's rows: alpha-2 code, g/kWh, alpha-3 code.
fn rows() -> impl Iterator<Item = (&'static str, f64, &'static str)> {
    COUNTRIES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("country,"))
        .filter_map(|l| {
            let mut fields = l.split(',');
            let (code, value, alpha3) = (fields.next()?, fields.next()?, fields.next()?);
            Some((code, value.trim().parse().ok()?, alpha3.trim()))
        })
}

/// The alpha-2 code of a country of the table given by its alpha-3 code (`FRA`: `FR`).
pub fn alpha2_of(alpha3: &str) -> Option<&'static str> {
    let upper = alpha3.to_ascii_uppercase();
    rows().find(|(_, _, a3)| *a3 == upper).map(|(a2, _, _)| a2)
}

/// The intensity of the grid at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Intensity {
    /// One figure, at all times.
    Fixed {
        /// g/kWh.
        grams_per_kwh: f64,
        /// The `intensity_source` attribute.
        source: String,
    },
    /// Figures from given times: each holds until the next one; the last one for as long
    /// as the step before it (hourly data: one hour).
    Series {
        /// (Unix nanoseconds, g/kWh), sorted by time, at least one.
        points: Vec<(u64, f64)>,
        /// The `intensity_source` attribute.
        source: String,
    },
}

impl Intensity {
    /// A country's yearly figure; an unknown code is an error listing the known ones.
    pub fn country(code: &str) -> anyhow::Result<Intensity> {
        let upper = match code.len() {
            3 => alpha2_of(code).unwrap_or(code).to_owned(),
            _ => code.to_ascii_uppercase(),
        };
        let table = countries();
        match table.iter().find(|(c, _)| *c == upper) {
            Some((c, g)) => Ok(Intensity::Fixed {
                grams_per_kwh: *g,
                source: format!("country {c} ({COUNTRIES_SOURCE})"),
            }),
            None => {
                let codes: Vec<&str> = table.iter().map(|(c, _)| *c).collect();
                anyhow::bail!(
                    "country: `{code}` is not in the table of {COUNTRIES_SOURCE} yearly figures; valid codes (ISO 3166-1 alpha-2, or the alpha-3 of the same countries): {}; or give `intensity` (g/kWh) or `intensity_file`",
                    codes.join(", ")
                )
            }
        }
    }

    /// A series from a CSV file: lines `TIME,GRAMS_PER_KWH`, TIME in RFC 3339
    /// (`2024-03-01T13:00:00Z`) or Unix seconds; a first line that is not a figure (a
    /// header) and `#` comments are skipped.
    pub fn from_file(path: &Path) -> anyhow::Result<Intensity> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("intensity_file: reading {}: {e}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let points = parse_series(&text)
            .map_err(|e| anyhow::anyhow!("intensity_file {}: {e}", path.display()))?;
        Ok(Intensity::Series {
            points,
            source: format!("file {name}"),
        })
    }

    /// The `intensity_source` attribute.
    pub fn source(&self) -> &str {
        match self {
            Intensity::Fixed { source, .. } | Intensity::Series { source, .. } => source,
        }
    }

    /// g/kWh at `t`; `None` outside the series' time range.
    pub fn at(&self, t: Timestamp) -> Option<f64> {
        match self {
            Intensity::Fixed { grams_per_kwh, .. } => Some(*grams_per_kwh),
            Intensity::Series { points, .. } => lookup(points, t.unix_nanos()),
        }
    }
}

/// The figure whose period holds `t`: the last point at or before it, if `t` is before
/// the point after it (or, for the last point, within one step of it).
pub fn lookup(points: &[(u64, f64)], t: u64) -> Option<f64> {
    let after = points.partition_point(|(at, _)| *at <= t);
    let i = after.checked_sub(1)?;
    if after == points.len() {
        let step = match points.len() {
            1 => return (t == points[0].0).then_some(points[0].1),
            n => points[n - 1].0 - points[n - 2].0,
        };
        if t >= points[i].0.saturating_add(step) {
            return None;
        }
    }
    Some(points[i].1)
}

fn parse_series(text: &str) -> anyhow::Result<Vec<(u64, f64)>> {
    let mut points: Vec<(u64, f64)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (time, value) = line
            .split_once(',')
            .ok_or_else(|| anyhow::anyhow!("line {}: expected TIME,GRAMS_PER_KWH", n + 1))?;
        let value: f64 = match value.trim().parse() {
            Ok(v) => v,
            Err(_) if points.is_empty() && n == 0 => continue, // a header
            Err(_) => anyhow::bail!(
                "line {}: `{}` is not a number of g/kWh",
                n + 1,
                value.trim()
            ),
        };
        anyhow::ensure!(
            value.is_finite() && value >= 0.0,
            "line {}: {value} g/kWh: give 0 or more",
            n + 1
        );
        let t = parse_time(time.trim()).ok_or_else(|| {
            anyhow::anyhow!(
                "line {}: `{}` is not an RFC 3339 time (2024-03-01T13:00:00Z) nor Unix seconds",
                n + 1,
                time.trim()
            )
        })?;
        if let Some(&(last, _)) = points.last() {
            anyhow::ensure!(t > last, "line {}: times must increase", n + 1);
        }
        points.push((t, value));
    }
    anyhow::ensure!(!points.is_empty(), "no TIME,GRAMS_PER_KWH line");
    Ok(points)
}

fn parse_time(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1_000_000_000);
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_nanos()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000_000_000;

    #[test]
    fn a_series_holds_each_figure_until_the_next_and_the_last_for_one_step() {
        let points = [(10 * H, 100.0), (11 * H, 200.0), (12 * H, 300.0)];
        assert_eq!(lookup(&points, 10 * H - 1), None, "before the first");
        assert_eq!(lookup(&points, 10 * H), Some(100.0), "at the first");
        assert_eq!(lookup(&points, 11 * H - 1), Some(100.0));
        assert_eq!(
            lookup(&points, 11 * H),
            Some(200.0),
            "at a boundary: the new one"
        );
        assert_eq!(lookup(&points, 12 * H), Some(300.0));
        assert_eq!(
            lookup(&points, 13 * H - 1),
            Some(300.0),
            "the last, one step"
        );
        assert_eq!(lookup(&points, 13 * H), None, "past the last step");
        assert_eq!(lookup(&[(H, 5.0)], H), Some(5.0));
        assert_eq!(lookup(&[(H, 5.0)], H + 1), None);
    }

    #[test]
    fn a_file_takes_rfc3339_or_unix_seconds_a_header_and_comments() {
        let text = "time,intensity\n# hourly\n2024-03-01T13:00:00Z,120.5\n1709301600,80\n";
        let points = parse_series(text).unwrap_or_default();
        assert_eq!(
            points,
            vec![
                (1_709_298_000 * 1_000_000_000, 120.5),
                (1_709_301_600 * 1_000_000_000, 80.0)
            ]
        );
        for (bad, says) in [
            ("2024-03-01T13:00:00Z,abc\n2024-03-01T14:00:00Z,x", "line 2"),
            (
                "2024-03-01T14:00:00Z,1\n2024-03-01T13:00:00Z,2",
                "times must increase",
            ),
            ("yesterday,5", "RFC 3339"),
            ("1709301600,-3", "0 or more"),
            ("", "no TIME"),
        ] {
            let e = parse_series(bad).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_country_table_is_read_whole_and_an_unknown_code_lists_the_known_ones() {
        let table = countries();
        assert_eq!(table.len(), 66);
        assert!(table.contains(&("FR", 33.0)) && table.contains(&("PL", 581.0)));
        let fr = Intensity::country("fr").map(|i| i.at(Timestamp::from_unix_nanos(0)));
        assert_eq!(fr.ok().flatten(), Some(33.0));
        let e = Intensity::country("XX")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`XX` is not in the table") && e.contains("DE, DK"),
            "{e}"
        );
    }
}
