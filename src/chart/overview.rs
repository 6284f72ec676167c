//! p95 of every endpoint over the last runs: the chart a team looks at first.

use plotters::style::text_anchor::HPos;

use super::canvas::{
    self, Area, Font, Frame, LegendItem, MARKERS, Surface, XTick, broken_line, marker, stroke,
};
use super::style::{GRID, MUTED, SERIES, Theme, Ticks, fmt_value, max_finite, usable};
use super::{ChartError, ChartSize};

#[derive(Debug, Clone, PartialEq)]
pub struct OverviewChart {
    pub title: String,
    /// One per run, oldest first; `\n` splits a label over lines.
    pub run_labels: Vec<String>,
    /// (endpoint, p95 in ms per run aligned with `run_labels`); `None` where the run did not
    /// measure that endpoint.
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

/// When endpoints' typical p95s differ by this factor or more, the y axis goes logarithmic:
/// otherwise a 5 ms health check lies flat on the floor under an 800 ms report endpoint and its
/// regressions are invisible.
const LOG_SPREAD: f64 = 20.0;

/// Several series over the same runs, one line each: the overview's drawing with other words
/// and units (an LLM scenario's TTFT, tok/s or cost per model).
#[derive(Debug, Clone, PartialEq)]
pub struct LinesChart {
    pub title: String,
    /// What each value is, in words ("p95", "TTFT p95", "cost per 1k requests").
    pub measure: String,
    /// What one line is ("endpoint", "model").
    pub per: String,
    /// The unit after a value ("ms", "tok/s", "USD").
    pub unit: String,
    /// The y-axis title ("p95 latency (ms)").
    pub axis: String,
    /// One per run, oldest first; `\n` splits a label over lines.
    pub run_labels: Vec<String>,
    /// (name, value per run aligned with `run_labels`); `None` where the run has no value.
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

impl From<&OverviewChart> for LinesChart {
    fn from(c: &OverviewChart) -> Self {
        LinesChart {
            title: if c.title.trim().is_empty() {
                "p95 latency by endpoint".to_string()
            } else {
                c.title.clone()
            },
            measure: "p95".into(),
            per: "endpoint".into(),
            unit: "ms".into(),
            axis: "p95 latency (ms)".into(),
            run_labels: c.run_labels.clone(),
            series: c.series.clone(),
        }
    }
}

pub fn overview(chart: &OverviewChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    let chart = LinesChart::from(chart);
    canvas::render(size, |area, theme| draw(area, theme, &chart))
}

/// The overview as SVG, each point with its value on hover.
pub fn overview_svg(chart: &OverviewChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    lines_svg(&LinesChart::from(chart), size)
}

/// A `LinesChart` as SVG, each point with its value on hover.
pub fn lines_svg(chart: &LinesChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render_svg(size, |area, theme| draw(area, theme, chart))
}

fn draw<DB: Surface>(area: &Area<DB>, theme: &Theme, c: &LinesChart) -> Result<(), ChartError> {
    let title = c.title.clone();
    let runs = c
        .series
        .iter()
        .map(|(_, v)| v.len())
        .chain([c.run_labels.len()])
        .max()
        .unwrap_or(0);
    let values = || {
        c.series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
    };
    let Some(top) = max_finite(values()) else {
        let detail = if c.series.is_empty() {
            format!("No {}s have been measured yet.", c.per)
        } else {
            format!("No run has a usable {} for any {}.", c.measure, c.per)
        };
        return canvas::no_data(area, theme, &title, "no data", &detail);
    };

    let medians: Vec<f64> = c
        .series
        .iter()
        .filter_map(|(_, v)| {
            median(
                v.iter()
                    .flatten()
                    .filter_map(|x| usable(*x))
                    .filter(|x| *x > 0.0),
            )
        })
        .collect();
    let spread = match (
        medians.iter().copied().reduce(f64::min),
        medians.iter().copied().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) if lo > 0.0 => hi / lo,
        _ => 1.0,
    };
    let log_y = spread >= LOG_SPREAD;
    let ticks = if log_y {
        let lo = values()
            .filter_map(usable)
            .filter(|v| *v > 0.0)
            .fold(top, f64::min);
        Ticks::log(lo, top)
    } else {
        Ticks::from_zero(top * 1.06, 6)
    };

    let gaps = c
        .series
        .iter()
        .any(|(_, v)| v.len() < runs || v.iter().any(|x| x.and_then(usable).is_none()));
    let (measure, per) = (&c.measure, &c.per);
    let mut subtitle = if runs == 1 {
        format!("{measure} per {per}, 1 run")
    } else {
        format!("{measure} per {per} over the last {runs} runs, oldest → newest")
    };
    if gaps {
        subtitle.push_str(&format!(" · gaps: runs without that {per}"));
    }
    if log_y {
        subtitle.push_str(&format!(" · log scale: {per}s differ by more than 10x"));
    }

    let styled: Vec<(&str, &Vec<Option<f64>>, Style)> = c
        .series
        .iter()
        .enumerate()
        .map(|(i, (name, v))| (name.as_str(), v, Style::nth(i)))
        .collect();
    let legend: Vec<LegendItem> = styled
        .iter()
        .map(|(name, v, style)| {
            let latest = v.iter().rev().find_map(|x| x.and_then(usable));
            let label = match latest {
                Some(v) => format!("{name} · {}", with_unit(v, &c.unit)),
                None => name.to_string(),
            };
            let item = LegendItem::line(label, style.color, 2.5).with_marker(style.marker);
            if style.dashed { item.dashed() } else { item }
        })
        .collect();

    let plot_top = canvas::header(area, theme, &title, &subtitle, &legend)?;
    let labels: Vec<Vec<String>> = (0..runs)
        .map(|i| {
            let l = c.run_labels.get(i).map_or("", String::as_str);
            let lines: Vec<String> = l
                .lines()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .take(3)
                .map(str::to_string)
                .collect();
            if lines.is_empty() {
                vec![format!("#{}", i + 1)]
            } else {
                lines
            }
        })
        .collect();
    let lines = labels.iter().map(Vec::len).max().unwrap_or(1);
    let (w, h) = area.dim_in_pixel();
    let frame = Frame {
        left: canvas::y_axis_width(area, theme, &ticks.labels()),
        top: plot_top,
        right: w as i32 - theme.px(32.0),
        bottom: h as i32 - canvas::x_axis_height(theme, lines),
        x: (-0.5, runs as f64 - 0.5),
        y: if log_y {
            (ticks.min(), ticks.max())
        } else {
            (0.0, ticks.max())
        },
        log_y,
    };

    canvas::y_axis(area, theme, &frame, &ticks, &c.axis, false)?;
    // Later series are drawn first so the first endpoint, the one listed first, ends on top.
    for (name, v, style) in styled.iter().rev() {
        let pts: Vec<Option<(i32, i32)>> = (0..runs)
            .map(|i| {
                let ms = v.get(i).copied().flatten().and_then(usable)?;
                Some(frame.px(i as f64, ms))
            })
            .collect();
        let dash = style.dashed.then(|| (theme.px(8.0), theme.px(5.0)));
        broken_line(area, &pts, stroke(style.color, theme.px(2.5)), dash)?;
        for (i, p) in pts.iter().enumerate() {
            let Some(p) = p else { continue };
            marker(area, style.marker, *p, theme.px(4.5), style.color)?;
            theme.hover(*p, || {
                let run = c
                    .run_labels
                    .get(i)
                    .map_or(String::new(), |l| l.replace('\n', " "));
                let v = v.get(i).copied().flatten().unwrap_or(f64::NAN);
                format!("{name} · {run} · {} {}", with_unit(v, &c.unit), c.measure)
            });
        }
    }

    let ticks_x: Vec<XTick> = labels
        .into_iter()
        .enumerate()
        .map(|(i, lines)| XTick {
            x: i as f64,
            lines,
            strong: false,
        })
        .collect();
    canvas::x_axis(area, theme, &frame, &ticks_x, "run", true)?;

    if runs == 1 {
        let font = Font::new(theme.note(), MUTED);
        let at = ((frame.left + frame.right) / 2, frame.top + theme.px(20.0));
        canvas::boxed_text(
            area,
            theme,
            "only one run so far — lines appear from the next run on",
            at,
            font,
            HPos::Center,
            Some(GRID),
        )?;
    }
    Ok(())
}

/// Colour, marker and dash for the n-th endpoint. Colour and marker cycle at different lengths
/// and the second round of colours is dashed, so no two of the first 28 endpoints look alike.
struct Style {
    color: plotters::style::RGBColor,
    marker: canvas::Marker,
    dashed: bool,
}

impl Style {
    fn nth(i: usize) -> Self {
        Self {
            color: SERIES[i % SERIES.len()],
            marker: MARKERS[i % MARKERS.len()],
            dashed: (i / SERIES.len()) % 2 == 1,
        }
    }
}

/// "612 ms", "41.5 tok/s", "$0.0123".
fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "USD" => format!("${}", fmt_value(v)),
        "" => fmt_value(v),
        u => format!("{} {u}", fmt_value(v)),
    }
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{MEDIUM, SMALL, assert_chart, assert_series_drawn};
    use super::*;

    fn chart(series: Vec<(String, Vec<Option<f64>>)>, runs: usize) -> OverviewChart {
        OverviewChart {
            title: "p95 by endpoint — main".into(),
            run_labels: (0..runs)
                .map(|i| format!("{:07x}\n11-{:02}", 0xabc1234 + i, i + 1))
                .collect(),
            series,
        }
    }

    #[test]
    fn renders_endpoints_with_gaps() {
        let series = vec![
            (
                "user-orders".to_string(),
                (0..10).map(|i| Some(120.0 + i as f64)).collect(),
            ),
            (
                "products".to_string(),
                (0..10).map(|i| (i != 4).then_some(40.0)).collect(),
            ),
            ("checkout".to_string(), vec![Some(200.0); 6]),
        ];
        let png = overview(&chart(series, 10), MEDIUM).unwrap();
        assert_chart(&png, MEDIUM);
        let [first, second, third, ..] = SERIES;
        assert_series_drawn(
            &png,
            &[
                ("user-orders", first),
                ("products", second),
                ("checkout", third),
            ],
            150,
        );
    }

    #[test]
    fn wide_spread_uses_a_log_axis_and_many_endpoints_fit() {
        let series: Vec<_> = (0..20)
            .map(|e| {
                (
                    format!("endpoint-{e}"),
                    (0..30)
                        .map(|i| Some((e as f64 + 1.0).powi(3) + i as f64))
                        .collect(),
                )
            })
            .collect();
        let size = MEDIUM;
        assert_chart(&overview(&chart(series, 30), size).unwrap(), size);
    }

    #[test]
    fn empty_single_and_bad_runs_still_render() {
        let size = SMALL;
        assert_chart(&overview(&chart(vec![], 0), size).unwrap(), size);
        let none = vec![("a".to_string(), vec![None, Some(f64::NAN)])];
        assert_chart(&overview(&chart(none, 2), size).unwrap(), size);
        let one = vec![
            ("a".to_string(), vec![Some(12.0)]),
            ("b".to_string(), vec![Some(0.0)]),
        ];
        assert_chart(&overview(&chart(one, 1), size).unwrap(), size);
        let odd = vec![(
            "a".to_string(),
            vec![Some(f64::INFINITY), Some(-3.0), Some(0.0), Some(5.0)],
        )];
        assert_chart(&overview(&chart(odd, 2), size).unwrap(), size);
    }
}
