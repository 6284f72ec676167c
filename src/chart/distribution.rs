//! Base vs head latency percentile spectrum on the HdrHistogram "nines" axis.
//!
//! x = −log10(1 − p): 90% sits at 1, 99% at 2, 99.9% at 3, so each step right is a tail ten times
//! rarer and the tail gets as much room as the median, which is where regressions hide.

use plotters::prelude::PathElement;
use plotters::style::text_anchor::HPos;

use super::canvas::{
    self, Area, Font, Frame, LegendItem, Marker, Surface, VAlign, XTick, broken_line, marker,
    stroke,
};
use super::style::{
    BLUE, GRID, INK, MUTED, Theme, Ticks, VERMILLION, WHITE, fmt_value, max_finite, usable,
};
use super::{ChartError, ChartSize};

/// Latency by percentile for one side of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// Legend text, for example "base (main 3f2a1c9)".
    pub label: String,
    /// (percentile 0–100, latency ms), any order. Percentiles of 100 or more cannot be placed on
    /// the nines axis and are skipped.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DistributionChart {
    pub endpoint: String,
    pub base: Spectrum,
    pub head: Spectrum,
}

/// The axis never extends past 99.9999%: beyond it no realistic run has samples.
const MAX_NINES: f64 = 6.0;

/// Percentiles compared in the summary table, as nines.
const SUMMARY: [(f64, &str); 5] = [
    (std::f64::consts::LOG10_2, "p50"),
    (1.0, "p90"),
    (2.0, "p99"),
    (3.0, "p99.9"),
    (4.0, "p99.99"),
];

pub fn distribution(chart: &DistributionChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render(size, |area, theme| draw(area, theme, chart))
}

/// Samples the histogram evenly in nines (every 0.05, plus the median) up to the deepest
/// percentile its sample count supports: with 1,000 samples p99.99 would only repeat the maximum,
/// so the spectrum stops at 99.9%. Histogram values are microseconds; the spectrum is in ms.
pub fn spectrum_from_histogram(label: &str, h: &hdrhistogram::Histogram<u64>) -> Spectrum {
    let mut points = Vec::new();
    if !h.is_empty() {
        let deepest = (h.len() as f64).log10().clamp(1.0, 4.0);
        let mut xs: Vec<f64> = (0..=80)
            .map(|i| f64::from(i) * 0.05)
            .filter(|x| *x <= deepest + 1e-9)
            .collect();
        xs.push(SUMMARY[0].0);
        xs.sort_by(f64::total_cmp);
        for x in xs {
            let q = 1.0 - 10f64.powf(-x);
            let ms = crate::units::ms_from_us(h.value_at_quantile(q));
            points.push((q * 100.0, ms));
        }
    }
    Spectrum {
        label: label.to_string(),
        points,
    }
}

/// The position of a percentile on the nines axis, if it has one.
fn nines(percentile: f64) -> Option<f64> {
    if !(0.0..100.0).contains(&percentile) {
        return None;
    }
    let x = -(1.0 - percentile / 100.0).log10();
    (x <= MAX_NINES + 1e-9).then_some(x.max(0.0))
}

/// (nines, ms) sorted by nines, with unusable points dropped.
fn clean(s: &Spectrum) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .filter_map(|(p, ms)| Some((nines(*p)?, usable(*ms)?)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-12);
    pts
}

/// Latency at `x` nines by linear interpolation, if `x` lies inside the measured range.
fn at(pts: &[(f64, f64)], x: f64) -> Option<f64> {
    let (first, last) = (pts.first()?, pts.last()?);
    if x < first.0 - 1e-6 || x > last.0 + 1e-6 {
        return None;
    }
    let i = pts.partition_point(|p| p.0 < x).min(pts.len() - 1);
    if i == 0 {
        return Some(first.1);
    }
    let (a, b) = (pts[i - 1], pts[i]);
    let t = if b.0 > a.0 {
        (x - a.0) / (b.0 - a.0)
    } else {
        1.0
    };
    Some(a.1 + (b.1 - a.1) * t.clamp(0.0, 1.0))
}

fn nines_label(k: usize) -> String {
    match k {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        _ => format!("99.{}%", "9".repeat(k - 2)),
    }
}

fn draw<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    c: &DistributionChart,
) -> Result<(), ChartError> {
    let title = format!(
        "{} — latency distribution, base vs head (percentile spectrum)",
        c.endpoint
    );
    let base = clean(&c.base);
    let head = clean(&c.head);
    let Some(y_top) = max_finite(base.iter().chain(&head).map(|p| p.1)) else {
        return canvas::no_data(
            area,
            theme,
            &title,
            "no data",
            "Neither base nor head has latency samples for this endpoint.",
        );
    };
    let side_label = |s: &Spectrum, pts: &[(f64, f64)], fallback: &str| {
        let name = if s.label.trim().is_empty() {
            fallback
        } else {
            s.label.as_str()
        };
        if pts.is_empty() {
            format!("{name} (no samples)")
        } else {
            name.to_string()
        }
    };
    let base_label = side_label(&c.base, &base, "base");
    let head_label = side_label(&c.head, &head, "head");

    let deepest = base.iter().chain(&head).map(|p| p.0).fold(0.0, f64::max);
    let x_max = ((deepest - 1e-6).ceil() as usize).clamp(2, MAX_NINES as usize);
    let ticks = Ticks::from_zero(y_top * 1.06, 6);

    let legend = vec![
        LegendItem::line(base_label, BLUE, 2.5).with_marker(Marker::Circle),
        LegendItem::line(head_label, VERMILLION, 2.5).with_marker(Marker::Square),
    ];
    let subtitle = "latency at each percentile; the x axis counts nines (log scale), so each step \
                    right is a tail ten times rarer";
    let plot_top = canvas::header(area, theme, &title, subtitle, &legend)?;
    let (w, h) = area.dim_in_pixel();
    let frame = Frame {
        left: canvas::y_axis_width(area, theme, &ticks.labels()),
        top: plot_top,
        right: w as i32 - theme.px(40.0),
        bottom: h as i32 - canvas::x_axis_height(theme, 1),
        x: (0.0, x_max as f64),
        y: (0.0, ticks.max()),
        log_y: false,
    };

    canvas::y_axis(area, theme, &frame, &ticks, "latency (ms)", false)?;
    let mut x_ticks: Vec<XTick> = (0..=x_max)
        .map(|k| XTick {
            x: k as f64,
            lines: vec![nines_label(k)],
            strong: false,
        })
        .collect();
    // The median gets a guide too when there is room for its label next to 0%.
    if frame.xpx(SUMMARY[0].0) - frame.xpx(0.0) >= theme.px(64.0) {
        x_ticks.insert(
            1,
            XTick {
                x: SUMMARY[0].0,
                lines: vec!["50%".into()],
                strong: false,
            },
        );
    }
    for t in x_ticks.iter().filter(|t| t.x > 0.0) {
        let x = frame.xpx(t.x);
        area.draw(&PathElement::new(
            vec![(x, frame.top), (x, frame.bottom)],
            stroke(GRID, theme.px(1.0)),
        ))?;
    }

    let sides = [
        (&base, BLUE, Marker::Circle),
        (&head, VERMILLION, Marker::Square),
    ];
    for (pts, color, _) in sides {
        let line: Vec<Option<(i32, i32)>> =
            pts.iter().map(|(x, ms)| Some(frame.px(*x, *ms))).collect();
        broken_line(area, &line, stroke(color, theme.px(2.5)), None)?;
    }
    // Markers only at the summary percentiles: the line is dense, the markers say "read here".
    for (pts, color, shape) in sides {
        for (x, _) in SUMMARY {
            if let Some(ms) = at(pts, x) {
                let p = frame.px(x, ms);
                marker(area, shape, p, theme.px(5.5), WHITE)?;
                marker(area, shape, p, theme.px(4.0), color)?;
            }
        }
    }

    summary_table(area, theme, &frame, &base, &head)?;
    canvas::x_axis(
        area,
        theme,
        &frame,
        &x_ticks,
        "percentile (log scale of nines)",
        true,
    )?;

    let missing = match (base.is_empty(), head.is_empty()) {
        (true, _) => Some("no samples for base: only head is shown"),
        (_, true) => Some("no samples for head: only base is shown"),
        _ => None,
    };
    if let Some(note) = missing {
        let font = Font::new(theme.note(), MUTED);
        let at = ((frame.left + frame.right) / 2, frame.top + theme.px(20.0));
        canvas::boxed_text(area, theme, note, at, font, HPos::Center, Some(GRID))?;
    }
    Ok(())
}

/// base → head at the key percentiles, in the top-left corner where a spectrum (rising to the
/// right) leaves room.
fn summary_table<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    frame: &Frame,
    base: &[(f64, f64)],
    head: &[(f64, f64)],
) -> Result<(), ChartError> {
    let rows: Vec<[String; 4]> = SUMMARY
        .iter()
        .filter_map(|(x, name)| {
            let (b, h) = (at(base, *x), at(head, *x));
            if b.is_none() && h.is_none() {
                return None;
            }
            let delta = match (b, h) {
                (Some(b), Some(h)) if b > 0.0 => format!("{:+.0}%", (h / b - 1.0) * 100.0),
                _ => "–".to_string(),
            };
            let cell = |v: Option<f64>| v.map_or("–".to_string(), fmt_value);
            Some([name.to_string(), cell(b), cell(h), delta])
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let font = Font::new(theme.note(), INK);
    let head_font = Font::new(theme.note(), MUTED).bold();
    let header = ["", "base ms", "head ms", "Δ"];
    let widths: Vec<i32> = (0..4)
        .map(|col| {
            std::iter::once(canvas::text_width(area, header[col], head_font))
                .chain(rows.iter().map(|r| canvas::text_width(area, &r[col], font)))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let gap = theme.px(16.0);
    let pad = theme.px(10.0);
    let row_h = font.cap() + theme.px(10.0);
    let table_w: i32 = widths.iter().sum::<i32>() + gap * 3 + pad * 2;
    let table_h = row_h * (rows.len() as i32 + 1) + pad * 2 - theme.px(10.0);
    let (left, top) = (frame.left + theme.px(14.0), frame.top + theme.px(10.0));
    let rect = [(left, top), (left + table_w, top + table_h)];
    area.draw(&plotters::prelude::Rectangle::new(
        rect,
        plotters::style::Color::filled(&WHITE),
    ))?;
    area.draw(&plotters::prelude::Rectangle::new(
        rect,
        stroke(GRID, theme.px(1.0)),
    ))?;

    let mut y = top + pad;
    let all = std::iter::once((header.map(str::to_string), true))
        .chain(rows.into_iter().map(|r| (r, false)));
    for (cells, is_header) in all {
        // Names left-aligned, numbers right-aligned so their digits line up.
        let mut x = left + pad;
        for (col, cell) in cells.iter().enumerate() {
            let (hx, anchor) = if col == 0 {
                (x, HPos::Left)
            } else {
                (x + widths[col], HPos::Right)
            };
            let f = match (is_header, col) {
                (true, _) => head_font,
                (false, 0) => Font::new(font.size, MUTED),
                (false, _) => font,
            };
            canvas::text(area, cell, (hx, y), f, anchor, VAlign::Top)?;
            x += widths[col] + gap;
        }
        y += row_h;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{SMALL, assert_chart, assert_series_drawn};
    use super::*;

    fn histogram(scale: f64) -> hdrhistogram::Histogram<u64> {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        // A log-normal-ish spread: most requests near 20 ms, a long tail to ~400 ms.
        for i in 0..20_000u64 {
            let u = (i as f64 + 0.5) / 20_000.0;
            let tail = (-(1.0 - u).ln()).powf(1.6);
            let us = 15_000.0 + 9_000.0 * tail * if u > 0.9 { scale } else { 1.0 };
            h.record(us as u64).unwrap();
        }
        h
    }

    #[test]
    fn spectrum_follows_the_histogram() {
        let h = histogram(1.0);
        let s = spectrum_from_histogram("base", &h);
        let p50 = s
            .points
            .iter()
            .find(|(p, _)| (*p - 50.0).abs() < 1e-9)
            .unwrap()
            .1;
        assert!((p50 - h.value_at_quantile(0.5) as f64 / 1000.0).abs() < 1e-9);
        let deepest = s.points.iter().map(|p| p.0).fold(0.0, f64::max);
        assert!(
            (deepest - 99.99).abs() < 1e-6,
            "20k samples support p99.99, got {deepest}"
        );
        assert!(
            s.points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        let empty = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        assert!(spectrum_from_histogram("x", &empty).points.is_empty());
    }

    #[test]
    fn renders_base_vs_head() {
        let chart = DistributionChart {
            endpoint: "user-orders".into(),
            base: spectrum_from_histogram("base (main)", &histogram(1.0)),
            head: spectrum_from_histogram("head (PR)", &histogram(1.3)),
        };
        let png = distribution(&chart, ChartSize::default()).unwrap();
        assert_chart(&png, ChartSize::default());
        assert_series_drawn(&png, &[("base", BLUE), ("head", VERMILLION)], 400);
    }

    #[test]
    fn missing_sides_and_bad_points_still_render() {
        let size = SMALL;
        let empty = Spectrum {
            label: String::new(),
            points: vec![],
        };
        let bad = Spectrum {
            label: "head".into(),
            points: vec![
                (f64::NAN, 1.0),
                (100.0, 5.0),
                (50.0, f64::INFINITY),
                (-3.0, 1.0),
            ],
        };
        let none = DistributionChart {
            endpoint: "e".into(),
            base: empty.clone(),
            head: bad,
        };
        assert_chart(&distribution(&none, size).unwrap(), size);
        let one_side = DistributionChart {
            endpoint: "e".into(),
            base: empty,
            head: Spectrum {
                label: "head".into(),
                points: vec![(50.0, 0.0), (99.0, 0.0)],
            },
        };
        assert_chart(&distribution(&one_side, size).unwrap(), size);
    }

    #[test]
    fn nines_axis_labels() {
        let labels: Vec<String> = (0..5).map(nines_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
        assert_eq!(nines(99.9).map(|x| (x * 1e6).round() / 1e6), Some(3.0));
        assert_eq!(nines(100.0), None);
    }
}
