//! p50/p95/p99 of one endpoint over a branch's recent runs.

use plotters::prelude::Rectangle;
use plotters::style::text_anchor::HPos;
use plotters::style::{Color, RGBColor};

use super::canvas::{
    self, Area, Font, Frame, LegendItem, Marker, Surface, Swatch, XTick, broken_line, marker, ring,
    stroke,
};
use super::style::{
    BLUE, GREEN, GRID, INK, MUTED, PURPLE, Theme, Ticks, VERMILLION, YELLOW, fmt_plain, fmt_value,
    max_finite, usable,
};
use super::{ChartError, ChartSize};

/// Reads one percentile out of a run.
type Pick = fn(&TrendPoint) -> f64;

/// One run of the endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The x tick, one line per `\n` (for example a short commit over a date).
    pub label: String,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// The run under review (HEAD or the PR): shaded, bold tick, its p95 written on the chart.
    pub highlight: bool,
    /// The verdict flagged this run: circled.
    pub regression: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrendChart {
    pub endpoint: String,
    /// Oldest first.
    pub points: Vec<TrendPoint>,
    /// The p95 objective, drawn as a dashed line.
    pub slo_p95_ms: Option<f64>,
    /// The baseline's p95 noise band (low, high), shaded: a p95 inside it is indistinguishable
    /// from the baseline.
    pub noise_band_ms: Option<(f64, f64)>,
    /// What the points measure, in words: "latency", or "time to first token" for an LLM
    /// endpoint's TTFT trend.
    pub measure: &'static str,
}

/// An SLO more than this many times the highest latency would flatten the data into the floor
/// of the chart, so it is named in the subtitle instead of drawn.
const SLO_HEADROOM: f64 = 2.5;

pub fn trend(chart: &TrendChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render(size, |area, theme| draw(area, theme, chart))
}

/// The trend as SVG, each point with its run and value on hover.
pub fn trend_svg(chart: &TrendChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render_svg(size, |area, theme| draw(area, theme, chart))
}

fn draw<DB: Surface>(area: &Area<DB>, theme: &Theme, c: &TrendChart) -> Result<(), ChartError> {
    let title = format!("{} — {} trend (p50/p95/p99)", c.endpoint, c.measure);
    let n = c.points.len();
    let data_max = max_finite(c.points.iter().flat_map(|p| [p.p50_ms, p.p95_ms, p.p99_ms]));
    let Some(data_max) = data_max else {
        let detail = if n == 0 {
            "No runs are recorded for this endpoint yet.".to_string()
        } else {
            format!(
                "{n} run(s) recorded, none with usable {} values.",
                c.measure
            )
        };
        return canvas::no_data(area, theme, &title, "no data", &detail);
    };

    let slo = c.slo_p95_ms.and_then(usable).filter(|s| *s > 0.0);
    let slo_drawn = slo.filter(|s| *s <= data_max.max(f64::MIN_POSITIVE) * SLO_HEADROOM);
    let band = c.noise_band_ms.and_then(|(a, b)| {
        let (lo, hi) = (usable(a)?, usable(b)?);
        Some((lo.min(hi), lo.max(hi)))
    });
    let top = [Some(data_max), slo_drawn, band.map(|b| b.1)]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    let ticks = Ticks::from_zero(top * 1.06, 6);

    let mut subtitle = if n == 1 {
        "1 run so far".to_string()
    } else {
        format!("last {n} runs, oldest → newest")
    };
    if c.points.iter().any(|p| p.highlight) && n > 1 {
        subtitle.push_str(" · shaded: the run under review");
    }
    if let (Some(s), None) = (slo, slo_drawn) {
        subtitle.push_str(&format!(
            " · SLO p95 < {}ms is far above every run",
            fmt_plain(s)
        ));
    }

    let mut legend = vec![
        LegendItem::line("p50", GREEN, 2.0).with_marker(Marker::Square),
        LegendItem::line("p95", BLUE, 3.0).with_marker(Marker::Circle),
        LegendItem::line("p99", PURPLE, 2.0).with_marker(Marker::Triangle),
    ];
    if let Some(s) = slo_drawn {
        legend.push(LegendItem::line(format!("SLO p95 < {}ms", fmt_plain(s)), INK, 1.5).dashed());
    }
    if let Some((lo, hi)) = band {
        legend.push(LegendItem {
            label: format!(
                "baseline p95 noise ({}–{} ms)",
                fmt_value(lo),
                fmt_value(hi)
            ),
            swatch: Swatch::Fill {
                color: BLUE,
                alpha: 0.16,
            },
        });
    }
    if c.points.iter().any(|p| p.regression) {
        legend.push(LegendItem {
            label: "flagged regression".into(),
            swatch: Swatch::Ring(VERMILLION),
        });
    }

    let plot_top = canvas::header(area, theme, &title, &subtitle, &legend)?;
    let labels: Vec<Vec<String>> = c.points.iter().map(|p| label_lines(&p.label)).collect();
    let lines = labels.iter().map(Vec::len).max().unwrap_or(1);
    let (w, h) = area.dim_in_pixel();
    let frame = Frame {
        left: canvas::y_axis_width(area, theme, &ticks.labels()),
        top: plot_top,
        right: w as i32 - theme.px(32.0),
        bottom: h as i32 - canvas::x_axis_height(theme, lines),
        x: (-0.5, n as f64 - 0.5),
        y: (0.0, ticks.max()),
        log_y: false,
    };
    let slot = frame.width() as f64 / n as f64;

    for (i, p) in c.points.iter().enumerate() {
        if p.highlight {
            let half = (slot * 0.42).min(f64::from(theme.px(40.0))) as i32;
            let x = frame.xpx(i as f64);
            area.draw(&Rectangle::new(
                [(x - half, frame.top), (x + half, frame.bottom)],
                YELLOW.mix(0.28).filled(),
            ))?;
        }
    }
    canvas::y_axis(
        area,
        theme,
        &frame,
        &ticks,
        &format!("{} (ms)", c.measure),
        false,
    )?;
    if let Some((lo, hi)) = band {
        area.draw(&Rectangle::new(
            [(frame.left, frame.ypx(hi)), (frame.right, frame.ypx(lo))],
            BLUE.mix(0.12).filled(),
        ))?;
    }
    if let Some(s) = slo_drawn {
        let y = frame.ypx(s);
        broken_line(
            area,
            &[Some((frame.left, y)), Some((frame.right, y))],
            stroke(INK, theme.px(1.5)),
            Some((theme.px(8.0), theme.px(5.0))),
        )?;
    }

    // p95 last so the line the verdict is about is drawn on top.
    let series: [(&str, Pick, RGBColor, f64, Marker, f64); 3] = [
        ("p99", |p| p.p99_ms, PURPLE, 2.0, Marker::Triangle, 4.0),
        ("p50", |p| p.p50_ms, GREEN, 2.0, Marker::Square, 3.8),
        ("p95", |p| p.p95_ms, BLUE, 3.0, Marker::Circle, 4.5),
    ];
    for (name, get, color, width, shape, r) in series {
        let pts: Vec<Option<(i32, i32)>> = c
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| usable(get(p)).map(|v| frame.px(i as f64, v)))
            .collect();
        broken_line(area, &pts, stroke(color, theme.px(width)), None)?;
        for (p, pt) in c.points.iter().zip(&pts) {
            let Some(pt) = pt else { continue };
            marker(area, shape, *pt, theme.px(r), color)?;
            theme.hover(*pt, || {
                let flagged = if p.regression {
                    " · flagged regression"
                } else {
                    ""
                };
                format!(
                    "{name} {} ms · {}{flagged}",
                    fmt_value(get(p)),
                    p.label.replace('\n', " ")
                )
            });
        }
    }

    for (i, p) in c.points.iter().enumerate() {
        let anchor = [p.p95_ms, p.p99_ms, p.p50_ms].into_iter().find_map(usable);
        let Some(v) = anchor else { continue };
        let at = frame.px(i as f64, v);
        if p.regression {
            ring(area, at, theme.px(11.0), theme.px(2.5), VERMILLION)?;
        }
        if p.highlight {
            annotate_p95(area, theme, &frame, &c.points, i)?;
        }
    }

    if let Some(s) = slo_drawn {
        let font = Font::new(theme.note(), INK);
        let label = format!("SLO p95 < {}ms", fmt_plain(s));
        let y = frame.ypx(s) - theme.px(14.0);
        canvas::boxed_text(
            area,
            theme,
            &label,
            (frame.left + theme.px(10.0), y),
            font,
            HPos::Left,
            None,
        )?;
    }

    let ticks_x: Vec<XTick> = c
        .points
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (p, lines))| XTick {
            x: i as f64,
            lines,
            strong: p.highlight,
        })
        .collect();
    canvas::x_axis(area, theme, &frame, &ticks_x, "run", true)?;

    if n == 1 {
        let font = Font::new(theme.note(), MUTED);
        canvas::boxed_text(
            area,
            theme,
            "only one run so far — the trend starts with the next run",
            ((frame.left + frame.right) / 2, frame.top + theme.px(20.0)),
            font,
            HPos::Center,
            Some(GRID),
        )?;
    }
    Ok(())
}

/// "p95 612 ms" beside the run under review, on the side away from the chart edge and above or
/// below the point depending on where the neighbouring line comes from, so it covers no data.
fn annotate_p95<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    frame: &Frame,
    points: &[TrendPoint],
    i: usize,
) -> Result<(), ChartError> {
    let Some(p95) = usable(points[i].p95_ms) else {
        return Ok(());
    };
    let font = Font::new(theme.note(), BLUE).bold();
    let label = format!("p95 {} ms", fmt_value(p95));
    let w = canvas::text_width(area, &label, font);
    let (px, py) = frame.px(i as f64, p95);
    let on_left = px > (frame.left + frame.right) / 2;
    let neighbour = if on_left {
        i.checked_sub(1).and_then(|j| points.get(j))
    } else {
        points.get(i + 1)
    };
    let neighbour_higher = neighbour
        .and_then(|n| usable(n.p95_ms))
        .is_some_and(|v| v > p95);
    let dx = theme.px(20.0) + w / 2;
    let x = if on_left { px - dx } else { px + dx };
    let y = if neighbour_higher {
        py + theme.px(18.0)
    } else {
        py - theme.px(16.0)
    };
    let pad = theme.px(8.0);
    let x = canvas::keep_within(x, frame.left + w / 2 + pad, frame.right - w / 2 - pad);
    let y = canvas::keep_within(y, frame.top + pad * 2, frame.bottom - pad * 2);
    canvas::boxed_text(area, theme, &label, (x, y), font, HPos::Center, Some(BLUE))?;
    Ok(())
}

fn label_lines(label: &str) -> Vec<String> {
    label
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{MEDIUM, SMALL, assert_chart, assert_series_drawn, inspect};
    use super::*;

    fn point(i: usize, p95: f64) -> TrendPoint {
        TrendPoint {
            label: format!("{:07x}\n11-{:02}", 0x3f2a1c9 + i * 7919, i + 1),
            p50_ms: p95 * 0.45,
            p95_ms: p95,
            p99_ms: p95 * 1.4,
            highlight: false,
            regression: false,
        }
    }

    fn chart(points: Vec<TrendPoint>) -> TrendChart {
        TrendChart {
            endpoint: "user-orders".into(),
            points,
            slo_p95_ms: Some(300.0),
            noise_band_ms: Some((110.0, 135.0)),
            measure: "latency",
        }
    }

    #[test]
    fn renders_a_regression_with_slo_and_band() {
        let mut points: Vec<_> = (0..10)
            .map(|i| point(i, 120.0 + (i % 3) as f64 * 5.0))
            .collect();
        let last = points.last_mut().unwrap();
        last.p95_ms = 250.0;
        last.highlight = true;
        last.regression = true;
        let size = ChartSize::default();
        let png = trend(&chart(points), size).unwrap();
        assert_chart(&png, size);
        assert_series_drawn(
            &png,
            &[("p50", GREEN), ("p95", BLUE), ("p99", PURPLE)],
            1000,
        );
    }

    #[test]
    fn empty_and_single_run_still_render() {
        let size = SMALL;
        assert_chart(&trend(&chart(vec![]), size).unwrap(), size);
        let mut one = point(0, 120.0);
        one.highlight = true;
        assert_chart(&trend(&chart(vec![one]), size).unwrap(), size);
    }

    #[test]
    fn bad_numbers_become_gaps_not_panics() {
        let mut points: Vec<_> = (0..30).map(|i| point(i, 100.0)).collect();
        points[3].p95_ms = f64::NAN;
        points[4].p99_ms = f64::INFINITY;
        points[5].p50_ms = -1.0;
        points[6] = TrendPoint {
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            ..points[6].clone()
        };
        points[29].highlight = true;
        let mut c = chart(points);
        c.noise_band_ms = Some((f64::NAN, 3.0));
        c.slo_p95_ms = Some(f64::INFINITY);
        assert_chart(&trend(&c, MEDIUM).unwrap(), MEDIUM);

        let all_bad = chart(vec![TrendPoint {
            p50_ms: f64::NAN,
            p95_ms: f64::NAN,
            p99_ms: f64::NAN,
            ..point(0, 1.0)
        }]);
        let (w, h, _) = inspect(&trend(&all_bad, SMALL).unwrap());
        assert_eq!((w, h), (SMALL.width, SMALL.height));

        let zeros = chart((0..3).map(|i| point(i, 0.0)).collect());
        assert_chart(&trend(&zeros, SMALL).unwrap(), SMALL);
    }
}
