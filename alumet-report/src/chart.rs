//! The charts, drawn by `plotters` into SVG text: lines over time, and ranked bars.
//!
//! The charts' coordinates are integers in thousandths of the unit (ms, mW, mJ), with
//! labels written here: plotters' floating-point axes compute their ticks and labels with
//! `log`, `log10` and `pow`, which would make the agent load libm.so at every start
//! (`app-agent/tests/exec.rs` checks that it loads no library beyond libc); a thousandth
//! is far below a pixel.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::analysis::{Bar, BarKind, Line};
use crate::downsample;
use crate::error::ReportError;

/// Width of every chart, in pixels.
pub const WIDTH: u32 = 960;
/// Height of a line chart.
const HEIGHT: u32 = 380;
/// The longest label of a bar (a cgroup path can be long).
const MAX_LABEL: usize = 44;

/// Thousandths of `v` (values are finite: the reader drops the others).
fn milli(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

/// An axis label: `v` thousandths, with the decimals it needs (`2`, `2.5`, `0.125`).
pub fn label(v: &i64) -> String {
    let (sign, v) = if *v < 0 {
        ("-", v.unsigned_abs())
    } else {
        ("", v.unsigned_abs())
    };
    let (units, rest) = (v / 1000, v % 1000);
    if rest == 0 {
        return format!("{sign}{units}");
    }
    let decimals = format!("{rest:03}");
    format!("{sign}{units}.{}", decimals.trim_end_matches('0'))
}

fn drawing<E: std::error::Error + Send + Sync>(
    chart: &'static str,
) -> impl Fn(DrawingAreaErrorKind<E>) -> ReportError {
    move |e| ReportError::Chart {
        chart,
        message: e.to_string(),
    }
}

/// The y range of the lines: from 0 (or below, for a negative value) to above the highest
/// point, never empty.
fn y_range(lines: &[Vec<(f64, f64)>]) -> (f64, f64) {
    let ys = lines.iter().flatten().map(|p| p.1);
    let (lo, hi) = ys.fold((0.0_f64, 0.0_f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let hi = if hi > lo {
        hi + (hi - lo) * 0.08
    } else {
        lo + 1.0
    };
    (lo, hi)
}

/// A chart of `lines` over `x_max` seconds, y in `y_desc` (which holds the unit): the
/// last line is drawn thicker when `last_is_total`. Each line is downsampled to the plot's
/// width in pixels ([`downsample::min_max`]).
pub fn lines(
    id: &'static str,
    y_desc: &str,
    lines: &[Line],
    x_max: f64,
    last_is_total: bool,
) -> Result<String, ReportError> {
    let err = drawing(id);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(72);
        // The plot's width is known once the chart is built; the y range needs the
        // downsampled points, which are exactly as high and low as the full series.
        let full: Vec<Vec<(f64, f64)>> = lines.iter().map(|l| l.points.clone()).collect();
        let (lo, hi) = y_range(&full);
        let mut chart = builder
            .build_cartesian_2d(0..milli(x_max).max(1), milli(lo)..milli(hi))
            .map_err(&err)?;
        let columns = chart.plotting_area().dim_in_pixel().0 as usize;
        chart
            .configure_mesh()
            .x_desc("time since the start (s)")
            .y_desc(y_desc)
            .x_label_formatter(&label)
            .y_label_formatter(&label)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(&err)?;
        for (i, l) in lines.iter().enumerate() {
            let total = last_is_total && i + 1 == lines.len();
            let color = if total {
                BLACK.to_rgba()
            } else {
                Palette99::pick(i).to_rgba()
            };
            let style = color.stroke_width(if total { 3 } else { 2 });
            let points = downsample::min_max(&l.points, columns);
            let points = points.into_iter().map(|(x, y)| (milli(x), milli(y)));
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(&err)?
                .label(l.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

fn bar_color(kind: BarKind) -> RGBColor {
    match kind {
        BarKind::Consumer => RGBColor(31, 119, 180),
        BarKind::Rest => RGBColor(127, 127, 127),
        BarKind::Idle => RGBColor(44, 160, 44),
        BarKind::Unattributed => RGBColor(214, 39, 40),
    }
}

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL {
        return label.to_owned();
    }
    let tail: Vec<char> = label.chars().rev().take(MAX_LABEL - 1).collect();
    std::iter::once('…').chain(tail.into_iter().rev()).collect()
}

/// Horizontal bars, the first at the top, each with its value in joules.
pub fn bars(id: &'static str, bars: &[Bar]) -> Result<String, ReportError> {
    let err = drawing(id);
    let n = bars.len();
    let height = 90 + 30 * n as u32;
    let max = bars.iter().map(|b| b.joules).fold(0.0, f64::max);
    let labels: Vec<String> = bars.iter().rev().map(|b| short(&b.label)).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(300)
            .build_cartesian_2d(0..milli(max * 1.18).max(1), (0..n).into_segmented())
            .map_err(&err)?;
        let label_of = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&label_of)
            .x_desc("energy (J)")
            .x_label_formatter(&label)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(&err)?;
        let row = |i: usize| n - 1 - i;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let (from, to) = (SegmentValue::Exact(row(i)), SegmentValue::Exact(row(i) + 1));
                let mut bar = Rectangle::new(
                    [(0, from), (milli(b.joules), to)],
                    bar_color(b.kind).filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(&err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let at = (milli(b.joules), SegmentValue::CenterOf(row(i)));
                Text::new(format!(" {:.3} J", b.joules), at, ("sans-serif", 12))
            }))
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_thousandths_with_the_decimals_they_need() {
        let shown: Vec<String> = [0, 2000, 2500, 125, -1500, -250, 1_000_001]
            .iter()
            .map(label)
            .collect();
        assert_eq!(
            shown,
            ["0", "2", "2.5", "0.125", "-1.5", "-0.25", "1000.001"]
        );
        assert_eq!((milli(1.2345), milli(-0.0004)), (1235, 0));
    }
}
