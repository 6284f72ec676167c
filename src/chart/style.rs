//! Palette, type sizes and number formatting shared by every chart.

use std::cell::RefCell;
use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

use super::{ChartError, ChartSize};

/// The family name the embedded DejaVu Sans is registered under; plotters looks fonts up by name.
pub(super) const FAMILY: &str = "sans-serif";

/// Charts are drawn at this multiple of the requested size and averaged down: plotters' bitmap
/// backend draws lines and circles without anti-aliasing, and 2x2 averaging smooths them for about
/// four times the pixel work, which stays well inside the render budget.
pub(super) const SUPERSAMPLE: u32 = 2;

// Okabe-Ito: distinguishable under the common colour-vision deficiencies and in greyscale by
// lightness. Yellow is kept for fills only: as a line it vanishes on white.
pub(super) const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub(super) const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
pub(super) const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
pub(super) const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
pub(super) const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
pub(super) const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
pub(super) const YELLOW: RGBColor = RGBColor(0xF0, 0xE4, 0x42);
pub(super) const BLACK: RGBColor = RGBColor(0x00, 0x00, 0x00);

/// Series colours in the order a multi-line chart hands them out.
pub(super) const SERIES: [RGBColor; 7] = [BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, BLACK];

pub(super) const INK: RGBColor = RGBColor(0x1F, 0x23, 0x28);
pub(super) const MUTED: RGBColor = RGBColor(0x57, 0x5E, 0x66);
pub(super) const AXIS: RGBColor = RGBColor(0x8C, 0x95, 0x9F);
pub(super) const GRID: RGBColor = RGBColor(0xE4, 0xE7, 0xEB);
pub(super) const WHITE: RGBColor = RGBColor(0xFF, 0xFF, 0xFF);

/// Sizes in drawing pixels. The design size is 1200x600 (what GitHub shows at full comment width);
/// other sizes scale type and strokes with the smaller of the two ratios so a thumbnail keeps the
/// same proportions, clamped so text stays legible.
pub(super) struct Theme {
    scale: f64,
    /// Hover texts of data points, collected while drawing an SVG (a bitmap has no hover).
    hovers: Option<RefCell<Vec<Hover>>>,
}

/// A data point's hover text at a drawing position, with the radius that catches the pointer.
pub(super) struct Hover {
    pub(super) x: i32,
    pub(super) y: i32,
    pub(super) r: i32,
    pub(super) text: String,
}

impl Theme {
    pub(super) fn new(size: ChartSize) -> Self {
        let ratio = (f64::from(size.width) / 1200.0).min(f64::from(size.height) / 600.0);
        Self {
            scale: ratio.clamp(0.6, 3.0) * f64::from(SUPERSAMPLE),
            hovers: None,
        }
    }

    pub(super) fn zoomed(self, zoom: f64) -> Self {
        let zoom = if zoom.is_finite() {
            zoom.clamp(0.5, 4.0)
        } else {
            1.0
        };
        Self {
            scale: self.scale * zoom,
            ..self
        }
    }

    pub(super) fn new_svg(size: ChartSize) -> Self {
        Self {
            hovers: Some(RefCell::new(Vec::new())),
            ..Self::new(size)
        }
    }

    /// Records what a reader hovering over the point at `(x, y)` should read; the text is
    /// built only for SVG output.
    pub(super) fn hover(&self, (x, y): (i32, i32), text: impl FnOnce() -> String) {
        if let Some(h) = &self.hovers {
            h.borrow_mut().push(Hover {
                x,
                y,
                r: self.px(9.0),
                text: text(),
            });
        }
    }

    pub(super) fn take_hovers(&self) -> Vec<Hover> {
        self.hovers
            .as_ref()
            .map(|h| std::mem::take(&mut *h.borrow_mut()))
            .unwrap_or_default()
    }

    /// A length given in design pixels, in drawing pixels.
    pub(super) fn px(&self, design: f64) -> i32 {
        (design * self.scale).round() as i32
    }

    /// A font size given in design pixels, in drawing pixels.
    pub(super) fn pt(&self, design: f64) -> f64 {
        design * self.scale
    }

    pub(super) fn title(&self) -> f64 {
        self.pt(25.0)
    }
    pub(super) fn subtitle(&self) -> f64 {
        self.pt(16.0)
    }
    pub(super) fn tick(&self) -> f64 {
        self.pt(15.0)
    }
    pub(super) fn axis_desc(&self) -> f64 {
        self.pt(16.0)
    }
    pub(super) fn legend(&self) -> f64 {
        self.pt(15.5)
    }
    pub(super) fn note(&self) -> f64 {
        self.pt(15.0)
    }
}

/// Registers the embedded fonts once per process; plotters keeps them in a global table.
pub(super) fn register_fonts() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

/// A latency or rate with three significant digits: enough to compare runs, short enough for a
/// label ("612", "61.2", "6.12", "0.612").
pub(super) fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    let decimals = if a == 0.0 || a >= 100.0 {
        0
    } else {
        (2 - a.log10().floor() as i32).clamp(0, 3) as usize
    };
    trim_zeros(format!("{v:.decimals$}"))
}

/// A threshold the user wrote ("300", "250.5"): no trailing zeros, at most two decimals.
pub(super) fn fmt_plain(v: f64) -> String {
    trim_zeros(format!("{v:.2}"))
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Evenly spaced "nice" ticks (1, 2, 2.5, 5 × 10^k) from zero to at least `top`. The axis ends on
/// the last tick so the top gridline is labelled.
pub(super) struct Ticks {
    pub(super) values: Vec<f64>,
    pub(super) decimals: usize,
    /// 1-2-5 ticks for a log axis; labels then carry their own precision.
    pub(super) log: bool,
}

impl Ticks {
    pub(super) fn from_zero(top: f64, target: usize) -> Self {
        let top = if top.is_finite() && top > 0.0 {
            top
        } else {
            1.0
        };
        let raw = top / target.max(1) as f64;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * magnitude);
        let count = (top / step - 1e-9).ceil().max(1.0) as usize;
        let values = (0..=count).map(|i| i as f64 * step).collect();
        let decimals = (0..=6)
            .find(|d| {
                let scaled = step * 10f64.powi(*d);
                (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
            })
            .unwrap_or(6) as usize;
        Self {
            values,
            decimals,
            log: false,
        }
    }

    /// 1-2-5 ticks (…, 1, 2, 5, 10, 20, …) enclosing `lo..=hi`, or powers of ten (every n-th
    /// when the range is very wide) when that would be more than nine ticks. `lo` is raised to
    /// 0.001 so a 0 ms run cannot drag the axis down through endless decades.
    pub(super) fn log(lo: f64, hi: f64) -> Self {
        let lo = if lo.is_finite() {
            lo.clamp(1e-3, ABSURD)
        } else {
            1e-3
        };
        let hi = if hi.is_finite() {
            hi.clamp(lo * 1.000_001, ABSURD)
        } else {
            lo * 10.0
        };
        let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32 + 1);
        let all: Vec<f64> = (k0..=k1)
            .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
            .collect();
        let start = all.iter().rposition(|v| *v <= lo * 1.000_001).unwrap_or(0);
        let end = all
            .iter()
            .position(|v| *v >= hi / 1.000_001)
            .unwrap_or(all.len() - 1);
        // Two ticks at least, so the axis has a span.
        let end = end.max(start + 1).min(all.len() - 1);
        let mut values = all[start..=end].to_vec();
        if values.len() > 9 {
            let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
            let stride = ((e1 - e0).max(1) + 7) / 8;
            values = (0..)
                .map(|i| e0 + i * stride)
                .take_while(|e| *e - stride < e1)
                .map(|e| 10f64.powi(e))
                .collect();
        }
        Self {
            values,
            decimals: 3,
            log: true,
        }
    }

    pub(super) fn min(&self) -> f64 {
        self.values.first().copied().unwrap_or(0.0)
    }

    pub(super) fn max(&self) -> f64 {
        self.values.last().copied().unwrap_or(1.0)
    }

    pub(super) fn labels(&self) -> Vec<String> {
        let d = self.decimals;
        self.values
            .iter()
            .map(|v| {
                let s = format!("{v:.d$}");
                if self.log { trim_zeros(s) } else { s }
            })
            .collect()
    }
}

/// Anything above this (ms, req/s or %) is a unit mix-up or corrupt data, not a measurement: a
/// trillion milliseconds is 31 years. Such values are left out rather than stretching the axis
/// until every real point sits on the floor.
pub(super) const ABSURD: f64 = 1e12;

/// The largest usable value, which is what every y axis here is sized from.
pub(super) fn max_finite(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    values
        .into_iter()
        .filter_map(usable)
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

/// A value usable on a chart: finite, not negative, not absurd. NaN, infinities and negative
/// values (clock skew, a bad import) become gaps instead of wrecking the axis.
pub(super) fn usable(v: f64) -> Option<f64> {
    (v.is_finite() && (0.0..=ABSURD).contains(&v)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_three_significant_digits() {
        assert_eq!(fmt_value(612.4), "612");
        assert_eq!(fmt_value(61.24), "61.2");
        assert_eq!(fmt_value(6.124), "6.12");
        assert_eq!(fmt_value(0.6124), "0.612");
        assert_eq!(fmt_value(0.0), "0");
        assert_eq!(fmt_value(40.0), "40");
        assert_eq!(fmt_plain(300.0), "300");
        assert_eq!(fmt_plain(250.5), "250.5");
    }

    #[test]
    fn ticks_cover_the_top_with_round_steps() {
        let t = Ticks::from_zero(613.0, 6);
        assert_eq!(t.values.first(), Some(&0.0));
        assert!(t.max() >= 613.0);
        assert_eq!(t.labels()[1], "200");
        let small = Ticks::from_zero(0.37, 5);
        assert!(small.max() >= 0.37);
        assert_eq!(small.decimals, 1);
        let quarter = Ticks::from_zero(9.0, 4);
        assert_eq!(quarter.labels()[1], "2.5");
        assert_eq!(Ticks::from_zero(f64::NAN, 5).max(), 1.0);
    }

    #[test]
    fn log_ticks_enclose_the_range() {
        let t = Ticks::log(3.2, 840.0);
        assert_eq!(
            t.labels(),
            ["2", "5", "10", "20", "50", "100", "200", "500", "1000"]
        );
        let wide = Ticks::log(0.4, 90_000.0);
        assert_eq!(
            wide.labels(),
            ["0.1", "1", "10", "100", "1000", "10000", "100000"]
        );
        let zero = Ticks::log(0.0, 0.0);
        assert!(zero.min() > 0.0 && zero.max() > zero.min());
        let vast = Ticks::log(0.0, f64::MAX);
        assert!(
            vast.values.len() <= 10 && vast.max() >= ABSURD,
            "{:?}",
            vast.values
        );
    }
}
