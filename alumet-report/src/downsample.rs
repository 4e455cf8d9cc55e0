//! Downsampling for the charts: per pixel column, the lowest and the highest point.
//!
//! A chart `w` pixels wide cannot show more than `w` distinct x positions. A series with
//! more than `2 w` points is split into `w` columns of equal time span, and each column
//! keeps its lowest and its highest point (both, in time order; one when they are the
//! same point). A line through them reaches every peak and every dip that the full series
//! reaches, so a one-second spike in an hour at 1 Hz is still drawn at its height; the
//! series' minimum and maximum are kept exactly. What is lost is the order of values
//! inside one column, which a pixel cannot show anyway.

/// The points of a series (x in increasing order) reduced to at most `2 * columns`
/// points: the lowest and highest of each of `columns` columns of equal width between
/// the first and the last x. A series of at most `2 * columns` points is returned whole.
pub fn min_max(points: &[(f64, f64)], columns: usize) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    let columns = columns.max(1);
    if points.len() <= 2 * columns {
        return points.to_vec();
    }
    let (x0, span) = (first.0, last.0 - first.0);
    let column_of = |x: f64| -> usize {
        if span <= 0.0 {
            return 0;
        }
        // Truncation is the point: the column index of x.
        let c = ((x - x0) * columns as f64 / span) as usize;
        c.min(columns - 1)
    };
    let mut out = Vec::with_capacity(2 * columns);
    let mut start = 0;
    while start < points.len() {
        let column = column_of(points[start].0);
        let mut end = start + 1;
        while end < points.len() && column_of(points[end].0) == column {
            end += 1;
        }
        let (mut low, mut high) = (start, start);
        for i in start..end {
            if points[i].1 < points[low].1 {
                low = i;
            }
            if points[i].1 > points[high].1 {
                high = i;
            }
        }
        out.push(points[low.min(high)]);
        if low != high {
            out.push(points[low.max(high)]);
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extremes(points: &[(f64, f64)]) -> (f64, f64) {
        let ys = points.iter().map(|p| p.1);
        let min = ys.clone().fold(f64::INFINITY, f64::min);
        (min, ys.fold(f64::NEG_INFINITY, f64::max))
    }

    #[test]
    fn each_series_keeps_its_minimum_and_maximum_and_every_column_its_own() {
        // An hour at 1 Hz (3600 s from the first point to the last) with one spike and
        // one dip, over 900 columns of 4 s.
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let points: Vec<(f64, f64)> = (0..=3600)
            .map(|i| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let y = match i {
                    1234 => 480.5,
                    2999 => -3.25,
                    _ => 40.0 + (rng % 1000) as f64 / 100.0,
                };
                (f64::from(i), y)
            })
            .collect();
        let kept = min_max(&points, 900);
        assert!(kept.len() <= 1800, "{} points", kept.len());
        assert_eq!(extremes(&kept), (-3.25, 480.5));
        assert!(kept.contains(&(1234.0, 480.5)) && kept.contains(&(2999.0, -3.25)));
        // A subset, in time order.
        assert!(kept.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(kept.iter().all(|p| points.contains(p)));
        // Every column's extremes are there (the last point closes the last column).
        let column = |p: &(f64, f64)| ((p.0 / 4.0) as usize).min(899);
        for c in 0..900 {
            let all: Vec<_> = points.iter().copied().filter(|p| column(p) == c).collect();
            let inside: Vec<_> = kept.iter().copied().filter(|p| column(p) == c).collect();
            assert_eq!(extremes(&inside), extremes(&all), "column {c}");
        }
    }

    #[test]
    fn short_series_and_flat_ones_are_kept_whole_or_once_per_column() {
        let short = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)];
        assert_eq!(min_max(&short, 2), short.to_vec());
        assert!(min_max(&[], 10).is_empty());
        let flat: Vec<(f64, f64)> = (0..100).map(|i| (f64::from(i), 7.0)).collect();
        let kept = min_max(&flat, 10);
        assert_eq!(kept.len(), 10);
        assert!(kept.iter().all(|p| p.1 == 7.0));
        // All at one x: one column.
        let same_x: Vec<(f64, f64)> = (0..10).map(|i| (5.0, f64::from(i))).collect();
        assert_eq!(min_max(&same_x, 2), vec![(5.0, 0.0), (5.0, 9.0)]);
    }
}
