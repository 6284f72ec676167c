//! One value of one endpoint over the runs, drawn small: the dashboard's small multiples, where
//! a reader scans a page of them for the one whose line went up.

use super::canvas::{self, Area, Frame, Surface, XTick, broken_line, marker, ring, stroke};
use super::style::{BLUE, INK, Theme, Ticks, VERMILLION, fmt_plain, fmt_value, max_finite, usable};
use super::{ChartError, ChartSize};

#[derive(Debug, Clone, PartialEq)]
pub struct SparkPoint {
    /// The run, for the hover text ("abc1234 11-22").
    pub label: String,
    /// None where the run did not measure the endpoint.
    pub value: Option<f64>,
    /// The run's verdict flagged this endpoint: circled.
    pub regression: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SparkChart {
    /// The endpoint.
    pub title: String,
    /// What the values are ("p95").
    pub measure: String,
    /// Oldest first.
    pub points: Vec<SparkPoint>,
    /// The objective for this value (ms), drawn dashed when it is near the data.
    pub slo_ms: Option<f64>,
}

/// Type and strokes at 1.6 times the design scale: a small multiple is read at a third of a
/// page's width, where the design scale's 15 px ticks would shrink to 7 px.
const ZOOM: f64 = 1.6;

/// As in the trend chart: an SLO far above the data is named, not drawn.
const SLO_HEADROOM: f64 = 2.5;

pub fn spark(chart: &SparkChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render_zoomed(size, ZOOM, |area, theme| draw(area, theme, chart))
}

/// The small chart as SVG, each point with its run and value on hover.
pub fn spark_svg(chart: &SparkChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render_svg_zoomed(size, ZOOM, |area, theme| draw(area, theme, chart))
}

fn draw<DB: Surface>(area: &Area<DB>, theme: &Theme, c: &SparkChart) -> Result<(), ChartError> {
    let values = || c.points.iter().filter_map(|p| p.value);
    let Some(data_max) = max_finite(values()) else {
        return canvas::no_data(area, theme, &c.title, "no data", "");
    };
    let latest = c.points.iter().rev().find_map(|p| p.value.and_then(usable));
    let slo = c.slo_ms.and_then(usable).filter(|s| *s > 0.0);
    let slo_drawn = slo.filter(|s| *s <= data_max.max(f64::MIN_POSITIVE) * SLO_HEADROOM);
    let mut subtitle = match latest {
        Some(v) => format!("{} latest {} ms", c.measure, fmt_value(v)),
        None => c.measure.clone(),
    };
    if let Some(s) = slo {
        subtitle.push_str(&format!(" · SLO < {} ms", fmt_plain(s)));
    }
    let top = data_max.max(slo_drawn.unwrap_or(0.0));
    let ticks = Ticks::from_zero(top * 1.08, 3);
    let plot_top = canvas::header(area, theme, &c.title, &subtitle, &[])?;
    let (w, h) = area.dim_in_pixel();
    let n = c.points.len();
    let frame = Frame {
        left: canvas::y_axis_width(area, theme, &ticks.labels()),
        top: plot_top,
        right: w as i32 - theme.px(24.0),
        bottom: h as i32 - theme.px(20.0),
        x: (-0.5, n as f64 - 0.5),
        y: (0.0, ticks.max()),
        log_y: false,
    };
    canvas::y_axis(area, theme, &frame, &ticks, "ms", false)?;
    if let Some(s) = slo_drawn {
        let y = frame.ypx(s);
        broken_line(
            area,
            &[Some((frame.left, y)), Some((frame.right, y))],
            stroke(INK, theme.px(1.5)),
            Some((theme.px(8.0), theme.px(5.0))),
        )?;
    }
    let pts: Vec<Option<(i32, i32)>> = c
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| p.value.and_then(usable).map(|v| frame.px(i as f64, v)))
        .collect();
    broken_line(area, &pts, stroke(BLUE, theme.px(3.0)), None)?;
    for (p, pt) in c.points.iter().zip(&pts) {
        let Some(pt) = pt else { continue };
        marker(area, canvas::Marker::Circle, *pt, theme.px(4.5), BLUE)?;
        if p.regression {
            ring(area, *pt, theme.px(11.0), theme.px(2.5), VERMILLION)?;
        }
        theme.hover(*pt, || {
            let flagged = if p.regression {
                " · flagged regression"
            } else {
                ""
            };
            format!(
                "{} {} ms · {}{flagged}",
                c.measure,
                fmt_value(p.value.unwrap_or(f64::NAN)),
                p.label.replace('\n', " ")
            )
        });
    }
    let ticks_x: Vec<XTick> = (0..n)
        .map(|i| XTick {
            x: i as f64,
            lines: Vec::new(),
            strong: false,
        })
        .collect();
    canvas::x_axis(area, theme, &frame, &ticks_x, "", false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{SMALL, assert_chart};
    use super::*;

    fn chart(values: &[Option<f64>]) -> SparkChart {
        SparkChart {
            title: "user-orders".into(),
            measure: "p95".into(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| SparkPoint {
                    label: format!("r{i}"),
                    value: *v,
                    regression: i == 3,
                })
                .collect(),
            slo_ms: Some(150.0),
        }
    }

    #[test]
    fn renders_with_gaps_slo_and_a_flagged_run() {
        let c = chart(&[Some(100.0), None, Some(110.0), Some(190.0), Some(f64::NAN)]);
        assert_chart(&spark(&c, SMALL).unwrap(), SMALL);
        assert_chart(&spark(&chart(&[]), SMALL).unwrap(), SMALL);
    }

    #[test]
    fn svg_has_a_hover_title_per_point_and_escapes_names() {
        let mut c = chart(&[Some(100.0), None, Some(110.0), Some(190.0)]);
        c.title = "<script>alert(1)</script> & co".into();
        let svg = String::from_utf8(spark_svg(&c, SMALL).unwrap()).unwrap();
        assert!(svg.starts_with("<svg class=\"chart\" width=\"480\" height=\"240\""));
        assert_eq!(svg.matches("<title>").count(), 3, "{svg}");
        assert!(svg.contains("<title>p95 190 ms · r3 · flagged regression</title>"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
