//! Stepped-concurrency ramp: latency and throughput against concurrency, the knee marked.
//!
//! Two panels sharing one x axis rather than two y axes on one plot: latency and throughput cross
//! each other arbitrarily on a shared plot, and readers then compare the wrong lines.

use plotters::prelude::PathElement;
use plotters::style::RGBColor;
use plotters::style::text_anchor::HPos;

use super::canvas::{
    self, Area, Font, Frame, LegendItem, Marker, Surface, XTick, broken_line, marker, stroke,
};
use super::style::{
    BLUE, GREEN, GRID, INK, MUTED, ORANGE, PURPLE, Theme, Ticks, fmt_value, max_finite, usable,
};
use super::{ChartError, ChartSize};

/// One step of the ramp.
#[derive(Debug, Clone, PartialEq)]
pub struct RampStep {
    pub concurrency: u32,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub throughput_rps: f64,
    /// Fraction of requests that failed, 0–1 (drawn as a percentage).
    pub error_rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RampChart {
    pub endpoint: String,
    pub steps: Vec<RampStep>,
    /// Concurrency of the knee: past it latency climbs and throughput stops growing.
    pub knee: Option<u32>,
}

/// Steps spanning at least this ratio are placed on a log axis: ramps usually double
/// (1, 2, 4 … 128), and on a linear axis the interesting low steps would pile up on the left.
const LOG_RATIO: f64 = 8.0;

pub fn ramp(chart: &RampChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render(size, |area, theme| draw(area, theme, chart))
}

struct Series<'f> {
    frame: &'f Frame,
    get: fn(&RampStep) -> f64,
    color: RGBColor,
    width: f64,
    marker: Marker,
    /// Dashed, and unmarked where zero.
    errors: bool,
}

impl<'f> Series<'f> {
    fn new(
        frame: &'f Frame,
        get: fn(&RampStep) -> f64,
        color: RGBColor,
        width: f64,
        marker: Marker,
    ) -> Self {
        Self {
            frame,
            get,
            color,
            width,
            marker,
            errors: false,
        }
    }
}

/// Concurrency → x position, linear or log.
struct XScale {
    log: bool,
}

impl XScale {
    fn pos(&self, concurrency: u32) -> f64 {
        if self.log {
            f64::from(concurrency.max(1)).ln()
        } else {
            f64::from(concurrency)
        }
    }
}

fn draw<DB: Surface>(area: &Area<DB>, theme: &Theme, c: &RampChart) -> Result<(), ChartError> {
    let title = format!(
        "{} — ramp: latency and throughput vs concurrency",
        c.endpoint
    );
    let mut steps: Vec<&RampStep> = c.steps.iter().collect();
    steps.sort_by_key(|s| s.concurrency);
    let latency_max = max_finite(steps.iter().flat_map(|s| [s.p50_ms, s.p95_ms]));
    let rps_max = max_finite(steps.iter().map(|s| s.throughput_rps));
    if steps.is_empty() || (latency_max.is_none() && rps_max.is_none()) {
        let detail = if steps.is_empty() {
            "No ramp steps were recorded for this endpoint."
        } else {
            "The ramp steps carry no usable latency or throughput values."
        };
        return canvas::no_data(area, theme, &title, "no data", detail);
    }
    let error_max = max_finite(steps.iter().map(|s| s.error_rate * 100.0)).filter(|e| *e > 0.0);

    let (lo, hi) = (steps[0].concurrency, steps[steps.len() - 1].concurrency);
    let scale = XScale {
        log: lo >= 1 && f64::from(hi) / f64::from(lo) >= LOG_RATIO,
    };
    let (x0, x1) = (scale.pos(lo), scale.pos(hi));
    let pad = if x1 > x0 { (x1 - x0) * 0.04 } else { 1.0 };
    let knee = c.knee.filter(|k| (lo..=hi).contains(k));

    let lat_ticks = Ticks::from_zero(latency_max.unwrap_or(1.0) * 1.08, 4);
    let rps_ticks = Ticks::from_zero(rps_max.unwrap_or(1.0) * 1.08, 4);
    let err_ticks = error_max.map(|e| Ticks::from_zero((e * 1.1).min(100.0), 4));

    let mut subtitle = match steps.len() {
        1 => format!("1 step at {lo} concurrent requests"),
        n if lo == hi => format!("{n} steps at {lo} concurrent requests"),
        n => format!("{n} steps, {lo}–{hi} concurrent requests"),
    };
    match (knee, c.knee) {
        (Some(k), _) => subtitle.push_str(&format!(
            " · knee at {k}: past it latency or errors climb while throughput stops growing"
        )),
        (None, Some(k)) => subtitle.push_str(&format!(" · knee {k} is outside the steps run")),
        (None, None) => subtitle.push_str(" · no knee found"),
    }

    let mut legend = vec![
        LegendItem::line("p50 latency", GREEN, 2.0).with_marker(Marker::Square),
        LegendItem::line("p95 latency", BLUE, 3.0).with_marker(Marker::Circle),
        LegendItem::line("throughput", ORANGE, 3.0).with_marker(Marker::Diamond),
    ];
    if error_max.is_some() {
        legend.push(
            LegendItem::line("errors", PURPLE, 2.0)
                .dashed()
                .with_marker(Marker::Triangle),
        );
    }
    if knee.is_some() {
        legend.push(LegendItem::line("knee", INK, 1.5).dashed());
    }

    let plot_top = canvas::header(area, theme, &title, &subtitle, &legend)?;
    let (w, h) = area.dim_in_pixel();
    let mut left_labels = lat_ticks.labels();
    left_labels.extend(rps_ticks.labels());
    let left = canvas::y_axis_width(area, theme, &left_labels);
    let right = match &err_ticks {
        Some(t) => w as i32 - canvas::y_axis_width(area, theme, &t.labels()),
        None => w as i32 - theme.px(32.0),
    };
    let bottom = h as i32 - canvas::x_axis_height(theme, 1);
    let gap = theme.px(40.0);
    let split = plot_top + (bottom - plot_top - gap) * 11 / 20;
    let x = (x0 - pad, x1 + pad);
    let top_frame = Frame {
        left,
        top: plot_top,
        right,
        bottom: split,
        x,
        y: (0.0, lat_ticks.max()),
        log_y: false,
    };
    let low_frame = Frame {
        left,
        top: split + gap,
        right,
        bottom,
        x,
        y: (0.0, rps_ticks.max()),
        log_y: false,
    };

    canvas::y_axis(area, theme, &top_frame, &lat_ticks, "latency (ms)", false)?;
    canvas::y_axis(
        area,
        theme,
        &low_frame,
        &rps_ticks,
        "throughput (req/s)",
        false,
    )?;
    let err_frame = err_ticks.as_ref().map(|t| Frame {
        y: (0.0, t.max()),
        ..low_frame.clone()
    });
    if let (Some(f), Some(t)) = (&err_frame, &err_ticks) {
        canvas::y_axis(area, theme, f, t, "errors (%)", true)?;
    }

    // Both panels get tick marks; only the lower one carries the labels.
    let ticks: Vec<XTick> = steps
        .iter()
        .map(|s| XTick {
            x: scale.pos(s.concurrency),
            lines: vec![s.concurrency.to_string()],
            strong: Some(s.concurrency) == knee,
        })
        .collect();
    for f in [&top_frame, &low_frame] {
        for t in &ticks {
            let x = f.xpx(t.x);
            area.draw(&PathElement::new(
                vec![(x, f.top), (x, f.bottom)],
                stroke(GRID, theme.px(1.0)),
            ))?;
        }
    }

    if let Some(k) = knee {
        for f in [&top_frame, &low_frame] {
            let xk = f.xpx(scale.pos(k));
            broken_line(
                area,
                &[Some((xk, f.top)), Some((xk, f.bottom))],
                stroke(INK, theme.px(1.5)),
                Some((theme.px(7.0), theme.px(5.0))),
            )?;
        }
    }

    let mut series = vec![
        Series::new(&top_frame, |s| s.p50_ms, GREEN, 2.0, Marker::Square),
        Series::new(&top_frame, |s| s.p95_ms, BLUE, 3.0, Marker::Circle),
        Series::new(
            &low_frame,
            |s| s.throughput_rps,
            ORANGE,
            3.0,
            Marker::Diamond,
        ),
    ];
    if let Some(f) = &err_frame {
        series.push(Series {
            errors: true,
            ..Series::new(f, |s| s.error_rate * 100.0, PURPLE, 2.0, Marker::Triangle)
        });
    }
    for line in series {
        let pts: Vec<Option<(i32, i32)>> = steps
            .iter()
            .map(|s| usable((line.get)(s)).map(|v| line.frame.px(scale.pos(s.concurrency), v)))
            .collect();
        let dash = line.errors.then(|| (theme.px(7.0), theme.px(5.0)));
        broken_line(area, &pts, stroke(line.color, theme.px(line.width)), dash)?;
        // An error marker at zero on every healthy step is noise; mark only steps with errors.
        let zero_y = line.frame.ypx(0.0);
        for p in pts
            .iter()
            .flatten()
            .filter(|p| !line.errors || p.1 != zero_y)
        {
            marker(area, line.marker, *p, theme.px(4.5), line.color)?;
        }
    }

    if let Some(k) = knee {
        let at = steps.iter().find(|s| s.concurrency == k);
        let mut label = format!("knee: {k} concurrent");
        if let Some(s) = at {
            let mut facts = Vec::new();
            if let Some(r) = usable(s.throughput_rps) {
                facts.push(format!("{} req/s", fmt_value(r)));
            }
            if let Some(p) = usable(s.p95_ms) {
                facts.push(format!("p95 {} ms", fmt_value(p)));
            }
            if !facts.is_empty() {
                label = format!("{label} · {}", facts.join(", "));
            }
        }
        let font = Font::new(theme.note(), INK).bold();
        let w_label = canvas::text_width(area, &label, font);
        let xk = top_frame.xpx(scale.pos(k));
        let room_right = top_frame.right - xk;
        let (lx, anchor) = if room_right > w_label + theme.px(30.0) {
            (xk + theme.px(12.0), HPos::Left)
        } else {
            (xk - theme.px(12.0), HPos::Right)
        };
        let ly = top_frame.top + theme.px(14.0);
        canvas::boxed_text(area, theme, &label, (lx, ly), font, anchor, Some(GRID))?;
    }

    let desc = if scale.log {
        "concurrency (requests in flight, log scale)"
    } else {
        "concurrency (requests in flight)"
    };
    canvas::x_axis(area, theme, &top_frame, &ticks, "", false)?;
    canvas::x_axis(area, theme, &low_frame, &ticks, desc, true)?;

    if steps.len() == 1 {
        let font = Font::new(theme.note(), MUTED);
        let at = ((left + right) / 2, top_frame.top + theme.px(20.0));
        canvas::boxed_text(
            area,
            theme,
            "only one step so far — a ramp needs at least two to show a curve",
            at,
            font,
            HPos::Center,
            Some(GRID),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{MEDIUM, SMALL, assert_chart, assert_series_drawn};
    use super::*;

    fn step(c: u32) -> RampStep {
        let load = f64::from(c) / 25.0;
        RampStep {
            concurrency: c,
            p50_ms: 20.0 + 10.0 * load.powi(2),
            p95_ms: 45.0 + 40.0 * load.powi(3),
            throughput_rps: 40.0 * f64::from(c.min(25)),
            error_rate: if c > 40 { 0.02 } else { 0.0 },
        }
    }

    #[test]
    fn renders_a_ramp_with_a_knee_and_errors() {
        let chart = RampChart {
            endpoint: "user-orders".into(),
            steps: [1, 2, 5, 10, 25, 50, 100].into_iter().map(step).collect(),
            knee: Some(25),
        };
        let size = MEDIUM;
        let png = ramp(&chart, size).unwrap();
        assert_chart(&png, size);
        assert_series_drawn(
            &png,
            &[
                ("p50 latency", GREEN),
                ("p95 latency", BLUE),
                ("throughput", ORANGE),
                ("errors", PURPLE),
            ],
            100,
        );
    }

    #[test]
    fn degenerate_ramps_still_render() {
        let size = SMALL;
        let empty = RampChart {
            endpoint: "e".into(),
            steps: vec![],
            knee: None,
        };
        assert_chart(&ramp(&empty, size).unwrap(), size);
        let one = RampChart {
            endpoint: "e".into(),
            steps: vec![step(10)],
            knee: Some(10),
        };
        assert_chart(&ramp(&one, size).unwrap(), size);
        let bad = RampStep {
            concurrency: 0,
            p50_ms: f64::NAN,
            p95_ms: f64::INFINITY,
            throughput_rps: -5.0,
            error_rate: f64::NAN,
        };
        let weird = RampChart {
            endpoint: "e".into(),
            steps: vec![bad, step(0), step(10), step(10)],
            knee: Some(999),
        };
        assert_chart(&ramp(&weird, size).unwrap(), size);
    }
}
