//! Drawing scaffolding shared by every chart: the supersampled canvas, PNG encoding, the header
//! with its legend, axes and the "no data" card.
//!
//! Axes are drawn here rather than by plotters' mesh because the mesh cannot lay out multi-line
//! tick labels (commit + date), cannot thin labels around a highlighted run, and anchors
//! `ab_glyph` text a few pixels off centre.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::{
    BitMapBackend, Circle, DrawingArea, DrawingAreaErrorKind, DrawingBackend, IntoDrawingArea,
    IntoFont, PathElement, Polygon, Rectangle, SVGBackend, Text,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontStyle, FontTransform, RGBColor, ShapeStyle, TextStyle};

use super::size::{ChartError, ChartSize, MAX_SIDE};
use super::style::{self, AXIS, FAMILY, GRID, INK, MUTED, SUPERSAMPLE, Theme, WHITE};

pub(super) type Area<DB> = DrawingArea<DB, Shift>;

/// A backend the charts draw on. Text placement differs between them: plotters' SVG backend
/// writes `<text>` at font-size / 1.24 with `dy="0.76em"` for a top anchor, while the bitmap path
/// lays glyphs out with `ab_glyph`; `VECTOR` lets `text` correct for that so both look alike.
pub(super) trait Surface: DrawingBackend {
    const VECTOR: bool;
}

impl Surface for BitMapBackend<'_> {
    const VECTOR: bool = false;
}

impl Surface for SVGBackend<'_> {
    const VECTOR: bool = true;
}

/// SVG text size and baseline that match the bitmap's DejaVu layout: `ab_glyph` scales the
/// font so ascent − descent (1.164 em for DejaVu Sans) equals the size, so one em is
/// size / 1.164; plotters' SVG backend divides the size by 1.24. A top anchor then puts the
/// baseline 0.76 em below y in SVG, but 0.5 × size below y in the bitmap.
const SVG_SIZE: f64 = 1.24 / 1.164;
const SVG_SHIFT: f64 = 0.76 / 1.164 - 0.5;

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError::Draw(e.to_string())
    }
}

/// Renders at `SUPERSAMPLE`x, averages down and encodes, so every chart is a function of data only.
pub(super) fn render(
    size: ChartSize,
    draw: impl FnOnce(&Area<BitMapBackend<'_>>, &Theme) -> Result<(), ChartError>,
) -> Result<Vec<u8>, ChartError> {
    render_zoomed(size, 1.0, draw)
}

/// `render` with type, strokes and margins `zoom` times their usual size for this image size:
/// small multiples are shown small, so they need larger type than the design scale gives.
pub(super) fn render_zoomed(
    size: ChartSize,
    zoom: f64,
    draw: impl FnOnce(&Area<BitMapBackend<'_>>, &Theme) -> Result<(), ChartError>,
) -> Result<Vec<u8>, ChartError> {
    check_size(size)?;
    style::register_fonts()?;
    let (w, h) = (size.width * SUPERSAMPLE, size.height * SUPERSAMPLE);
    let mut big = vec![0xFF; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut big, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root, &Theme::new(size).zoomed(zoom))?;
        root.present()?;
    }
    let small = halve(&big, w as usize);
    encode_png(&small, size.width, size.height)
}

/// The same drawing as an SVG document (UTF-8 bytes): the shapes and text of the PNG, drawn in
/// the same supersampled coordinates (the `viewBox`) and shown at `size`, plus an invisible hit
/// target with a `<title>` per data point, which browsers show on hover with no script. Text is
/// `<text>` set in the chart family, so a page that embeds DejaVu Sans (the dashboard does) shows
/// it exactly as measured here; elsewhere the reader's sans-serif stands in.
pub(super) fn render_svg(
    size: ChartSize,
    draw: impl FnOnce(&Area<SVGBackend<'_>>, &Theme) -> Result<(), ChartError>,
) -> Result<Vec<u8>, ChartError> {
    render_svg_zoomed(size, 1.0, draw)
}

/// `render_svg` at `zoom` (see `render_zoomed`).
pub(super) fn render_svg_zoomed(
    size: ChartSize,
    zoom: f64,
    draw: impl FnOnce(&Area<SVGBackend<'_>>, &Theme) -> Result<(), ChartError>,
) -> Result<Vec<u8>, ChartError> {
    check_size(size)?;
    style::register_fonts()?;
    let (w, h) = (size.width * SUPERSAMPLE, size.height * SUPERSAMPLE);
    let theme = Theme::new_svg(size).zoomed(zoom);
    let mut doc = String::new();
    {
        let root = SVGBackend::with_string(&mut doc, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root, &theme)?;
        root.present()?;
    }
    // plotters writes `<svg width="W" height="H" viewBox="0 0 W H" ...>` at drawing size; the
    // chart is shown at the requested size and scales with its container.
    let head = format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"");
    let Some(rest) = doc.strip_prefix(&head) else {
        return Err(ChartError::Draw(
            "unexpected SVG header from plotters".into(),
        ));
    };
    let mut out = format!(
        "<svg class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {w} {h}\" role=\"img\"{rest}",
        size.width, size.height
    );
    let hovers = theme.take_hovers();
    if !hovers.is_empty() {
        let Some(end) = out.rfind("</svg>") else {
            return Err(ChartError::Draw("unterminated SVG from plotters".into()));
        };
        let mut targets = String::from("<g class=\"hover\">\n");
        for hv in hovers {
            targets.push_str(&format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"#000\" fill-opacity=\"0\" pointer-events=\"all\"><title>{}</title></circle>\n",
                hv.x,
                hv.y,
                hv.r,
                xml_escape(&hv.text)
            ));
        }
        targets.push_str("</g>\n");
        out.insert_str(end, &targets);
    }
    Ok(out.into_bytes())
}

fn check_size(size: ChartSize) -> Result<(), ChartError> {
    if size.width == 0 || size.height == 0 || size.width > MAX_SIDE || size.height > MAX_SIDE {
        return Err(ChartError::InvalidSize {
            width: size.width,
            height: size.height,
        });
    }
    Ok(())
}

/// Escapes text for XML content and attribute values.
pub(super) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

// `halve` averages 2x2 blocks; a different factor needs a different filter.
const _: () = assert!(SUPERSAMPLE == 2);

/// Averages each 2x2 block of an RGB image (box filter). Written over row pairs and 6-byte
/// chunks rather than indices so it stays fast in unoptimised test builds too.
fn halve(big: &[u8], w: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(big.len() / 4);
    let mut rows = big.chunks_exact(w * 3);
    while let (Some(upper), Some(lower)) = (rows.next(), rows.next()) {
        for (a, b) in upper.chunks_exact(6).zip(lower.chunks_exact(6)) {
            for c in 0..3 {
                let sum =
                    u16::from(a[c]) + u16::from(a[c + 3]) + u16::from(b[c]) + u16::from(b[c + 3]);
                out.push(((sum + 2) / 4) as u8);
            }
        }
    }
    out
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // These PNGs are committed to an assets branch on every PR. Balanced halves the file size of
    // the fast level (about 55 KB instead of 100 KB at 1200x600) for about 10 ms more.
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// How text is pinned vertically. plotters' `ab_glyph` path anchors on a layout box that does not
/// match the glyphs, so positions are corrected here from DejaVu Sans' metrics: with plotters'
/// `VPos::Top` anchor at y, capitals span y − 0.126·size to y + 0.5·size (baseline).
#[derive(Clone, Copy)]
pub(super) enum VAlign {
    /// The top of the capitals at y.
    Top,
    /// The middle of the capitals at y.
    Middle,
    /// The baseline at y.
    Baseline,
}

#[derive(Clone, Copy)]
pub(super) struct Font {
    pub(super) size: f64,
    pub(super) color: RGBColor,
    pub(super) bold: bool,
}

impl Font {
    pub(super) fn new(size: f64, color: RGBColor) -> Self {
        Self {
            size,
            color,
            bold: false,
        }
    }
    pub(super) fn bold(self) -> Self {
        Self { bold: true, ..self }
    }
    fn style(&self, h: HPos) -> TextStyle<'static> {
        let face = if self.bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        (FAMILY, self.size, face)
            .into_font()
            .color(&self.color)
            .pos(Pos::new(h, VPos::Top))
    }
    /// Cap height, for stacking lines of text.
    pub(super) fn cap(&self) -> i32 {
        (self.size * 0.626).round() as i32
    }
}

/// Control characters (a newline in an endpoint name) have no glyph and would draw as boxes.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        s.replace(char::is_control, " ").into()
    } else {
        s.into()
    }
}

pub(super) fn text_width<DB: Surface>(area: &Area<DB>, s: &str, font: Font) -> i32 {
    area.estimate_text_size(&printable(s), &font.style(HPos::Left))
        .map(|(w, _)| w as i32)
        .unwrap_or(0)
}

pub(super) fn text<DB: Surface>(
    area: &Area<DB>,
    s: &str,
    (x, y): (i32, i32),
    font: Font,
    h: HPos,
    v: VAlign,
) -> Result<(), ChartError> {
    let mut dy = match v {
        VAlign::Top => 0.126,
        VAlign::Middle => -0.187,
        VAlign::Baseline => -0.5,
    } * font.size;
    let style = if DB::VECTOR {
        dy -= SVG_SHIFT * font.size;
        Font {
            size: font.size * SVG_SIZE,
            ..font
        }
        .style(h)
    } else {
        font.style(h)
    };
    area.draw(&Text::new(
        printable(s).into_owned(),
        (x, y + dy.round() as i32),
        style,
    ))?;
    Ok(())
}

/// Text on a white card, so a label stays readable over lines and bands.
pub(super) fn boxed_text<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    s: &str,
    (x, y): (i32, i32),
    font: Font,
    h: HPos,
    border: Option<RGBColor>,
) -> Result<(), ChartError> {
    let w = text_width(area, s, font);
    let pad = theme.px(5.0);
    let left = match h {
        HPos::Left => x,
        HPos::Center => x - w / 2,
        HPos::Right => x - w,
    };
    let cap = font.cap();
    let rect = [
        (left - pad, y - cap / 2 - pad),
        (left + w + pad, y + cap / 2 + pad + theme.px(1.0)),
    ];
    area.draw(&Rectangle::new(rect, WHITE.mix(0.92).filled()))?;
    if let Some(c) = border {
        area.draw(&Rectangle::new(
            rect,
            c.stroke_width(theme.px(1.0).max(1) as u32),
        ))?;
    }
    text(area, s, (left, y), font, HPos::Left, VAlign::Middle)
}

/// Shortens `s` with an ellipsis until it fits `max_w`; long endpoint names must not run off the
/// image or into the next legend entry.
pub(super) fn fit<DB: Surface>(area: &Area<DB>, s: &str, font: Font, max_w: i32) -> String {
    if text_width(area, s, font) <= max_w {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut keep = chars.len();
    while keep > 1 {
        keep -= 1;
        let candidate: String = chars[..keep].iter().collect::<String>() + "…";
        if text_width(area, &candidate, font) <= max_w {
            return candidate;
        }
    }
    "…".to_string()
}

pub(super) fn stroke(color: RGBColor, width: i32) -> ShapeStyle {
    color.stroke_width(width.max(1) as u32)
}

/// Polyline through the points; `None` breaks the line so a missing run shows as a gap rather
/// than a made-up slope.
pub(super) fn broken_line<DB: Surface>(
    area: &Area<DB>,
    points: &[Option<(i32, i32)>],
    style: ShapeStyle,
    dashed: Option<(i32, i32)>,
) -> Result<(), ChartError> {
    for run in points.split(|p| p.is_none()) {
        let run: Vec<(i32, i32)> = run.iter().flatten().copied().collect();
        if run.len() < 2 {
            continue;
        }
        match dashed {
            Some((dash, gap)) => area.draw(&DashedPathElement::new(run, dash, gap, style))?,
            None => area.draw(&PathElement::new(run, style))?,
        }
    }
    Ok(())
}

/// Marker shapes, so series stay apart for readers who cannot tell the colours apart.
#[derive(Clone, Copy)]
pub(super) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

pub(super) const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
];

pub(super) fn marker<DB: Surface>(
    area: &Area<DB>,
    kind: Marker,
    (x, y): (i32, i32),
    r: i32,
    color: RGBColor,
) -> Result<(), ChartError> {
    let fill = color.filled();
    match kind {
        Marker::Circle => area.draw(&Circle::new((x, y), r, fill))?,
        Marker::Square => {
            let s = (f64::from(r) * 0.85).round() as i32;
            area.draw(&Rectangle::new([(x - s, y - s), (x + s, y + s)], fill))?;
        }
        Marker::Triangle => {
            let s = (f64::from(r) * 1.2).round() as i32;
            area.draw(&Polygon::new(
                vec![(x, y - s), (x + s, y + s * 3 / 4), (x - s, y + s * 3 / 4)],
                fill,
            ))?;
        }
        Marker::Diamond => {
            let s = (f64::from(r) * 1.2).round() as i32;
            area.draw(&Polygon::new(
                vec![(x, y - s), (x + s, y), (x, y + s), (x - s, y)],
                fill,
            ))?;
        }
    }
    Ok(())
}

/// An unfilled circle; marks a flagged run without hiding the point inside it.
pub(super) fn ring<DB: Surface>(
    area: &Area<DB>,
    centre: (i32, i32),
    r: i32,
    width: i32,
    color: RGBColor,
) -> Result<(), ChartError> {
    area.draw(&Circle::new(centre, r, stroke(color, width)))?;
    Ok(())
}

/// What a legend entry shows next to its label.
pub(super) enum Swatch {
    Line {
        color: RGBColor,
        width: f64,
        dashed: bool,
        marker: Option<Marker>,
    },
    Fill {
        color: RGBColor,
        alpha: f64,
    },
    Ring(RGBColor),
}

pub(super) struct LegendItem {
    pub(super) label: String,
    pub(super) swatch: Swatch,
}

impl LegendItem {
    pub(super) fn line(label: impl Into<String>, color: RGBColor, width: f64) -> Self {
        Self {
            label: label.into(),
            swatch: Swatch::Line {
                color,
                width,
                dashed: false,
                marker: None,
            },
        }
    }
    pub(super) fn with_marker(mut self, m: Marker) -> Self {
        if let Swatch::Line { marker, .. } = &mut self.swatch {
            *marker = Some(m);
        }
        self
    }
    pub(super) fn dashed(mut self) -> Self {
        if let Swatch::Line { dashed, .. } = &mut self.swatch {
            *dashed = true;
        }
        self
    }
}

/// Title, subtitle and a wrapping one-line legend across the top. Returns the y where the plot
/// may start. The legend sits above the plot, not inside it, so it never covers data.
pub(super) fn header<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    title: &str,
    subtitle: &str,
    legend: &[LegendItem],
) -> Result<i32, ChartError> {
    let (width, _) = area.dim_in_pixel();
    let width = width as i32;
    let left = theme.px(24.0);
    let max_w = width - left * 2;

    let title_font = Font::new(theme.title(), INK).bold();
    let mut y = theme.px(22.0);
    let title = fit(area, title, title_font, max_w);
    text(area, &title, (left, y), title_font, HPos::Left, VAlign::Top)?;
    y += title_font.cap() + theme.px(14.0);

    if !subtitle.is_empty() {
        let font = Font::new(theme.subtitle(), MUTED);
        let subtitle = fit(area, subtitle, font, max_w);
        text(area, &subtitle, (left, y), font, HPos::Left, VAlign::Top)?;
        y += font.cap() + theme.px(16.0);
    }

    if !legend.is_empty() {
        y += theme.px(4.0);
        y = draw_legend(area, theme, legend, left, y, max_w)?;
    }
    Ok(y + theme.px(26.0))
}

/// At most this many legend rows; past it the rest is summarised so the plot keeps its height.
const LEGEND_ROWS: usize = 3;

fn draw_legend<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    items: &[LegendItem],
    left: i32,
    top: i32,
    max_w: i32,
) -> Result<i32, ChartError> {
    let font = Font::new(theme.legend(), INK);
    let muted = Font::new(font.size, MUTED);
    let swatch_w = theme.px(30.0);
    let gap = theme.px(8.0);
    let spacing = theme.px(26.0);
    let row_h = theme.px(26.0);
    let label_max = (max_w / 3).max(theme.px(120.0));
    let right = left + max_w;

    let labels: Vec<String> = items
        .iter()
        .map(|it| fit(area, &it.label, font, label_max))
        .collect();
    let widths: Vec<i32> = labels
        .iter()
        .map(|l| swatch_w + gap + text_width(area, l, font))
        .collect();
    let more = |n: usize| format!("+{n} more");
    let more_w = text_width(area, &more(items.len()), muted);

    let (mut x, mut row) = (left, 0);
    for (i, item) in items.iter().enumerate() {
        let y = |row: usize| top + row as i32 * row_h + font.cap() / 2;
        let remaining = items.len() - i;
        if x > left && x + widths[i] > right {
            if row + 1 == LEGEND_ROWS {
                text(
                    area,
                    &more(remaining),
                    (x, y(row)),
                    muted,
                    HPos::Left,
                    VAlign::Middle,
                )?;
                break;
            }
            row += 1;
            x = left;
        }
        if row + 1 == LEGEND_ROWS && remaining > 1 {
            // Last row: draw this entry only if the rest fits too, or a "+N more" still fits
            // after it.
            let rest: i32 = widths[i..].iter().map(|w| w + spacing).sum::<i32>() - spacing;
            if x + rest > right && x + widths[i] + spacing + more_w > right {
                text(
                    area,
                    &more(remaining),
                    (x, y(row)),
                    muted,
                    HPos::Left,
                    VAlign::Middle,
                )?;
                break;
            }
        }
        draw_swatch(area, theme, &item.swatch, (x, y(row)), swatch_w)?;
        let label_at = (x + swatch_w + gap, y(row));
        text(area, &labels[i], label_at, font, HPos::Left, VAlign::Middle)?;
        x += widths[i] + spacing;
    }
    Ok(top + row as i32 * row_h + font.cap())
}

fn draw_swatch<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    swatch: &Swatch,
    (x, y): (i32, i32),
    w: i32,
) -> Result<(), ChartError> {
    match swatch {
        Swatch::Line {
            color,
            width,
            dashed,
            marker: m,
        } => {
            let pts = vec![Some((x, y)), Some((x + w, y))];
            let dash = dashed.then(|| (theme.px(6.0), theme.px(4.0)));
            broken_line(area, &pts, stroke(*color, theme.px(*width)), dash)?;
            if let Some(m) = m {
                marker(area, *m, (x + w / 2, y), theme.px(4.5), *color)?;
            }
        }
        Swatch::Fill { color, alpha } => {
            let h = theme.px(7.0);
            area.draw(&Rectangle::new(
                [(x, y - h), (x + w, y + h)],
                color.mix(*alpha).filled(),
            ))?;
        }
        Swatch::Ring(color) => ring(area, (x + w / 2, y), theme.px(7.0), theme.px(2.0), *color)?,
    }
    Ok(())
}

/// A finished chart that has nothing to plot: the title, the reason in words, and an empty frame
/// so the image reads as a chart, not as a broken upload.
pub(super) fn no_data<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    title: &str,
    message: &str,
    detail: &str,
) -> Result<(), ChartError> {
    let top = header(area, theme, title, "", &[])?;
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let margin = theme.px(24.0);
    let rect = [(margin, top), (w - margin, h - margin)];
    area.draw(&Rectangle::new(rect, RGBColor(0xF6, 0xF8, 0xFA).filled()))?;
    area.draw(&Rectangle::new(rect, stroke(GRID, theme.px(1.0))))?;
    let cy = (top + h - margin) / 2;
    let big = Font::new(theme.pt(26.0), MUTED).bold();
    text(
        area,
        message,
        (w / 2, cy - theme.px(14.0)),
        big,
        HPos::Center,
        VAlign::Baseline,
    )?;
    if !detail.is_empty() {
        let small = Font::new(theme.subtitle(), MUTED);
        let detail = fit(area, detail, small, w - 4 * margin);
        text(
            area,
            &detail,
            (w / 2, cy + theme.px(14.0)),
            small,
            HPos::Center,
            VAlign::Top,
        )?;
    }
    Ok(())
}

/// Maps data to drawing pixels inside the plot rectangle.
#[derive(Clone)]
pub(super) struct Frame {
    pub(super) left: i32,
    pub(super) top: i32,
    pub(super) right: i32,
    pub(super) bottom: i32,
    pub(super) x: (f64, f64),
    pub(super) y: (f64, f64),
    /// y is placed by its logarithm; `y.0` must then be positive.
    pub(super) log_y: bool,
}

impl Frame {
    pub(super) fn px(&self, x: f64, y: f64) -> (i32, i32) {
        (self.xpx(x), self.ypx(y))
    }
    pub(super) fn xpx(&self, x: f64) -> i32 {
        let t = (x - self.x.0) / (self.x.1 - self.x.0);
        lerp(self.left, self.right, t)
    }
    pub(super) fn ypx(&self, y: f64) -> i32 {
        let t = if self.log_y {
            let (lo, hi) = (self.y.0.log10(), self.y.1.log10());
            (y.max(self.y.0).log10() - lo) / (hi - lo)
        } else {
            (y - self.y.0) / (self.y.1 - self.y.0)
        };
        lerp(self.bottom, self.top, t)
    }
    pub(super) fn width(&self) -> i32 {
        self.right - self.left
    }
}

/// `v` clamped to `lo..=hi`; on a canvas too small for the label (`lo > hi`) it is centred
/// instead of panicking as `Ord::clamp` would.
pub(super) fn keep_within(v: i32, lo: i32, hi: i32) -> i32 {
    if lo > hi {
        (lo + hi) / 2
    } else {
        v.clamp(lo, hi)
    }
}

fn lerp(a: i32, b: i32, t: f64) -> i32 {
    // Clamped far outside the image so a stray value cannot overflow i32 in plotters' maths.
    let t = if t.is_finite() {
        t.clamp(-4.0, 5.0)
    } else {
        0.0
    };
    (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as i32
}

/// One x-axis label; `lines` stack downwards, `strong` ones are bold and always shown.
pub(super) struct XTick {
    pub(super) x: f64,
    pub(super) lines: Vec<String>,
    pub(super) strong: bool,
}

/// Space the x axis needs below the plot for labels with `lines` lines plus the axis title.
pub(super) fn x_axis_height(theme: &Theme, lines: usize) -> i32 {
    let font = Font::new(theme.tick(), MUTED);
    theme.px(12.0)
        + lines.max(1) as i32 * (font.cap() + theme.px(8.0))
        + theme.px(14.0)
        + Font::new(theme.axis_desc(), MUTED).cap()
        + theme.px(18.0)
}

/// Width the y axis needs left of the plot for these tick labels plus the rotated axis title.
pub(super) fn y_axis_width<DB: Surface>(area: &Area<DB>, theme: &Theme, labels: &[String]) -> i32 {
    let font = Font::new(theme.tick(), MUTED);
    let widest = labels
        .iter()
        .map(|l| text_width(area, l, font))
        .max()
        .unwrap_or(0);
    theme.px(24.0)
        + Font::new(theme.axis_desc(), MUTED).cap()
        + theme.px(16.0)
        + widest
        + theme.px(10.0)
}

/// Horizontal gridlines with labels on the left (or right, for a second axis) and the axis title.
pub(super) fn y_axis<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    frame: &Frame,
    ticks: &style::Ticks,
    desc: &str,
    right_side: bool,
) -> Result<(), ChartError> {
    let font = Font::new(theme.tick(), MUTED);
    for (v, label) in ticks.values.iter().zip(ticks.labels()) {
        let y = frame.ypx(*v);
        if !right_side {
            let line_style = if Some(v) == ticks.values.first() {
                AXIS
            } else {
                GRID
            };
            area.draw(&PathElement::new(
                vec![(frame.left, y), (frame.right, y)],
                stroke(line_style, theme.px(1.0)),
            ))?;
            text(
                area,
                &label,
                (frame.left - theme.px(10.0), y),
                font,
                HPos::Right,
                VAlign::Middle,
            )?;
        } else {
            text(
                area,
                &label,
                (frame.right + theme.px(10.0), y),
                font,
                HPos::Left,
                VAlign::Middle,
            )?;
        }
    }
    let desc_font = Font::new(theme.axis_desc(), MUTED);
    let cy = (frame.top + frame.bottom) / 2;
    // The rotated title's baseline runs vertically; on SVG it sits SVG_SHIFT further out.
    let (drawn, shift) = if DB::VECTOR {
        let f = Font {
            size: desc_font.size * SVG_SIZE,
            ..desc_font
        };
        (f, (SVG_SHIFT * desc_font.size).round() as i32)
    } else {
        (desc_font, 0)
    };
    let style = drawn.style(HPos::Center).transform(if right_side {
        FontTransform::Rotate90
    } else {
        FontTransform::Rotate270
    });
    let (w, _) = area.dim_in_pixel();
    let x = if right_side {
        w as i32 - theme.px(24.0) - theme.px(2.0) + shift
    } else {
        theme.px(24.0) - (0.126 * desc_font.size).round() as i32 - shift
    };
    area.draw(&Text::new(desc.to_string(), (x, cy), style))?;
    Ok(())
}

/// Tick marks and labels under the plot, thinned so labels never overlap: every k-th label is
/// kept, counted from the strong one (the run under review) so it is always labelled.
pub(super) fn x_axis<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    frame: &Frame,
    ticks: &[XTick],
    desc: &str,
    labels_shown: bool,
) -> Result<(), ChartError> {
    let font = Font::new(theme.tick(), MUTED);
    area.draw(&PathElement::new(
        vec![(frame.left, frame.bottom), (frame.right, frame.bottom)],
        stroke(AXIS, theme.px(1.0)),
    ))?;
    let shown = if labels_shown {
        thin(area, theme, frame, ticks, font)
    } else {
        vec![false; ticks.len()]
    };
    let line_h = font.cap() + theme.px(8.0);
    for (tick, show) in ticks.iter().zip(shown) {
        let x = frame.xpx(tick.x);
        let len = if show { theme.px(6.0) } else { theme.px(3.0) };
        area.draw(&PathElement::new(
            vec![(x, frame.bottom), (x, frame.bottom + len)],
            stroke(AXIS, theme.px(1.0)),
        ))?;
        if !show {
            continue;
        }
        for (i, line) in tick.lines.iter().enumerate() {
            let mut f = font;
            if tick.strong {
                f = Font::new(font.size, INK).bold();
            }
            let y = frame.bottom + theme.px(12.0) + i as i32 * line_h;
            text(area, line, (x, y), f, HPos::Center, VAlign::Top)?;
        }
    }
    if desc.is_empty() {
        return Ok(());
    }
    let lines = ticks.iter().map(|t| t.lines.len()).max().unwrap_or(1);
    let desc_font = Font::new(theme.axis_desc(), MUTED);
    let y = frame.bottom + theme.px(12.0) + lines.max(1) as i32 * line_h + theme.px(8.0);
    text(
        area,
        desc,
        ((frame.left + frame.right) / 2, y),
        desc_font,
        HPos::Center,
        VAlign::Top,
    )?;
    Ok(())
}

fn thin<DB: Surface>(
    area: &Area<DB>,
    theme: &Theme,
    frame: &Frame,
    ticks: &[XTick],
    font: Font,
) -> Vec<bool> {
    let n = ticks.len();
    if n == 0 {
        return Vec::new();
    }
    let gap = theme.px(14.0);
    let bold = Font::new(font.size, INK).bold();
    let placed: Vec<(i32, i32)> = ticks
        .iter()
        .map(|t| {
            let f = if t.strong { bold } else { font };
            let w = t
                .lines
                .iter()
                .map(|l| text_width(area, l, f))
                .max()
                .unwrap_or(0);
            (frame.xpx(t.x), w)
        })
        .collect();
    let anchor = ticks.iter().rposition(|t| t.strong).unwrap_or(n - 1);
    let overlaps = |keep: &[bool]| {
        let mut kept = placed
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(p, _)| *p);
        let Some(mut prev) = kept.next() else {
            return false;
        };
        for cur in kept {
            if (cur.0 - prev.0).abs() < (prev.1 + cur.1) / 2 + gap {
                return true;
            }
            prev = cur;
        }
        false
    };
    (1..=n)
        .map(|k| {
            (0..n)
                .map(|i| i.abs_diff(anchor) % k == 0)
                .collect::<Vec<_>>()
        })
        .find(|keep| !overlaps(keep))
        .unwrap_or_else(|| (0..n).map(|i| i == anchor).collect())
}
