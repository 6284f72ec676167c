//! LLM model comparison: time to first token, output tokens per second and cost, one bar per
//! model, side by side.
//!
//! Three small panels rather than one plot with three y axes: the quantities have different
//! units and "better" points in different directions (lower TTFT and cost, higher tok/s), so each
//! gets its own axis and its own title saying which way is better.

use plotters::prelude::{Color, PathElement, Rectangle};
use plotters::style::text_anchor::HPos;

use super::canvas::{self, Area, Font, Frame, LegendItem, Marker, Surface, VAlign, stroke};
use super::style::{GRID, INK, MUTED, SERIES, Theme, Ticks, fmt_value, max_finite, usable};
use super::{ChartError, ChartSize};

/// One model's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBar {
    pub name: String,
    pub ttft_p50_ms: f64,
    pub ttft_p95_ms: f64,
    /// Mean output tokens per second per request.
    pub tokens_per_s: f64,
    /// USD per 1000 successful requests; None without a price.
    pub cost_per_1k: Option<f64>,
    /// Fraction of requests that failed, 0–1.
    pub error_rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelChart {
    /// The scenario (or run) the models were measured in.
    pub title: String,
    pub models: Vec<ModelBar>,
}

pub fn models(chart: &ModelChart, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    canvas::render(size, |area, theme| draw(area, theme, chart))
}

struct Panel {
    title: &'static str,
    unit: &'static str,
    get: fn(&ModelBar) -> Option<f64>,
    /// A whisker above the bar (TTFT p95 over its p50).
    whisker: Option<fn(&ModelBar) -> Option<f64>>,
}

fn draw<DB: Surface>(area: &Area<DB>, theme: &Theme, c: &ModelChart) -> Result<(), ChartError> {
    let title = format!("{} — LLM models compared", c.title);
    if c.models.is_empty() {
        return canvas::no_data(
            area,
            theme,
            &title,
            "no data",
            "No LLM model was measured in this run.",
        );
    }
    let mut panels = vec![
        Panel {
            title: "time to first token (lower is better)",
            unit: "ms",
            get: |m| usable(m.ttft_p50_ms),
            whisker: Some(|m| usable(m.ttft_p95_ms)),
        },
        Panel {
            title: "output tok/s (higher is better)",
            unit: "tok/s",
            get: |m| usable(m.tokens_per_s),
            whisker: None,
        },
    ];
    if c.models.iter().any(|m| m.cost_per_1k.is_some()) {
        panels.push(Panel {
            title: "USD per 1k requests (lower is better)",
            unit: "USD",
            get: |m| m.cost_per_1k.and_then(usable),
            whisker: None,
        });
    }
    let legend: Vec<LegendItem> = c
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut label = m.name.clone();
            if m.error_rate > 0.0 {
                label.push_str(&format!(" ({:.1}% errors)", m.error_rate * 100.0));
            }
            LegendItem::line(label, SERIES[i % SERIES.len()], 8.0).with_marker(Marker::Square)
        })
        .collect();
    let subtitle = "TTFT bars are the median, whiskers the p95 · tok/s is the mean of output tokens / end-to-end seconds";
    let plot_top = canvas::header(area, theme, &title, subtitle, &legend)?;
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let margin = theme.px(16.0);
    let panel_w = (w - margin) / panels.len() as i32;
    let bottom = h - theme.px(40.0);
    let n = c.models.len() as f64;
    for (pi, p) in panels.iter().enumerate() {
        let top_values = c.models.iter().flat_map(|m| {
            [(p.get)(m), p.whisker.and_then(|wh| wh(m))]
                .into_iter()
                .flatten()
        });
        let ticks = Ticks::from_zero(max_finite(top_values).unwrap_or(1.0) * 1.15, 4);
        let x0 = margin + pi as i32 * panel_w;
        let left = x0 + canvas::y_axis_width(area, theme, &ticks.labels());
        let frame = Frame {
            left,
            top: plot_top + theme.px(28.0),
            right: x0 + panel_w - margin,
            bottom,
            x: (0.0, n),
            y: (0.0, ticks.max()),
            log_y: false,
        };
        // The panel's own title above its plot.
        canvas::text(
            area,
            &canvas::fit(
                area,
                p.title,
                Font::new(theme.note(), INK).bold(),
                frame.width(),
            ),
            (frame.left, plot_top + theme.px(6.0)),
            Font::new(theme.note(), INK).bold(),
            HPos::Left,
            VAlign::Top,
        )?;
        axis_in_panel(area, theme, &frame, &ticks, p.unit, x0)?;
        for (i, m) in c.models.iter().enumerate() {
            let color = SERIES[i % SERIES.len()];
            let (xl, xr) = (frame.xpx(i as f64 + 0.18), frame.xpx(i as f64 + 0.82));
            let Some(v) = (p.get)(m) else {
                let font = Font::new(theme.note(), MUTED);
                canvas::text(
                    area,
                    if p.unit == "USD" {
                        "no price"
                    } else {
                        "no data"
                    },
                    ((xl + xr) / 2, frame.bottom - theme.px(6.0)),
                    font,
                    HPos::Center,
                    VAlign::Baseline,
                )?;
                continue;
            };
            let yv = frame.ypx(v);
            area.draw(&Rectangle::new(
                [(xl, yv), (xr, frame.bottom)],
                color.filled(),
            ))?;
            let mut label_y = yv;
            if let Some(hi) = p.whisker.and_then(|wh| wh(m)) {
                let yh = frame.ypx(hi);
                let xm = (xl + xr) / 2;
                let s = stroke(INK, theme.px(2.0));
                area.draw(&PathElement::new(vec![(xm, yv), (xm, yh)], s))?;
                let cap = (xr - xl) / 4;
                area.draw(&PathElement::new(vec![(xm - cap, yh), (xm + cap, yh)], s))?;
                label_y = yh;
            }
            let label = match p.unit {
                "USD" => format!("${}", fmt_value(v)),
                _ => fmt_value(v),
            };
            canvas::text(
                area,
                &label,
                ((xl + xr) / 2, label_y - theme.px(6.0)),
                Font::new(theme.tick(), INK),
                HPos::Center,
                VAlign::Baseline,
            )?;
        }
    }
    Ok(())
}

/// Gridlines and tick labels of one panel (`canvas::y_axis` places its title at the image's
/// edge, which suits one plot per image, not three).
fn axis_in_panel<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    frame: &Frame,
    ticks: &Ticks,
    unit: &str,
    x0: i32,
) -> Result<(), ChartError> {
    let font = Font::new(theme.tick(), MUTED);
    for (v, label) in ticks.values.iter().zip(ticks.labels()) {
        let y = frame.ypx(*v);
        area.draw(&PathElement::new(
            vec![(frame.left, y), (frame.right, y)],
            stroke(GRID, theme.px(1.0)),
        ))?;
        canvas::text(
            area,
            &label,
            (frame.left - theme.px(8.0), y),
            font,
            HPos::Right,
            VAlign::Middle,
        )?;
    }
    canvas::text(
        area,
        unit,
        (x0 + theme.px(4.0), frame.top - theme.px(4.0)),
        Font::new(theme.tick(), MUTED),
        HPos::Left,
        VAlign::Baseline,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{MEDIUM, SMALL, assert_chart, assert_series_drawn};
    use super::*;

    pub(crate) fn sample() -> ModelChart {
        ModelChart {
            title: "chat".into(),
            models: vec![
                ModelBar {
                    name: "mock-fast".into(),
                    ttft_p50_ms: 152.0,
                    ttft_p95_ms: 160.0,
                    tokens_per_s: 115.0,
                    cost_per_1k: Some(0.62),
                    error_rate: 0.0,
                },
                ModelBar {
                    name: "mock-smart".into(),
                    ttft_p50_ms: 402.0,
                    ttft_p95_ms: 409.0,
                    tokens_per_s: 38.0,
                    cost_per_1k: Some(3.12),
                    error_rate: 0.05,
                },
            ],
        }
    }

    #[test]
    fn renders_models_side_by_side() {
        let png = models(&sample(), MEDIUM).unwrap();
        assert_chart(&png, MEDIUM);
        let [first, second, ..] = SERIES;
        assert_series_drawn(&png, &[("mock-fast", first), ("mock-smart", second)], 1000);
    }

    #[test]
    fn degenerate_inputs_still_render() {
        let empty = ModelChart {
            title: "x".into(),
            models: vec![],
        };
        assert_chart(&models(&empty, SMALL).unwrap(), SMALL);
        let mut odd = sample();
        odd.models[0].ttft_p50_ms = f64::NAN;
        odd.models[1].cost_per_1k = None;
        odd.models[1].tokens_per_s = f64::INFINITY;
        assert_chart(&models(&odd, SMALL).unwrap(), SMALL);
    }
}
