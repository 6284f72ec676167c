//! Charts for the PR comment and the job summary: plain numbers in, PNG bytes out.
//!
//! This room knows nothing of the store, files or the network, so every chart can be rendered in
//! a test and looked at. Text uses DejaVu Sans compiled into the binary (plotters' `ab_glyph`
//! feature) because CI runners and fresh machines have no fontconfig or freetype to lean on.
//! Every chart renders something readable for any input: no runs, one run, NaN or infinite
//! latencies all produce a valid PNG that says what is missing instead of an error.

mod canvas;
mod distribution;
mod models;
mod overview;
mod ramp;
pub mod series;
mod size;
mod spark;
mod style;
mod trend;

pub use distribution::{DistributionChart, Spectrum, distribution, spectrum_from_histogram};
pub use models::{ModelBar, ModelChart, models};
pub use overview::{LinesChart, OverviewChart, lines_svg, overview, overview_svg};
pub use ramp::{RampChart, RampStep, ramp};
pub use size::{ChartError, ChartSize};
pub use spark::{SparkChart, SparkPoint, spark, spark_svg};
pub use trend::{TrendChart, TrendPoint, trend, trend_svg};

pub use crate::names::{file_name, safe_name};

#[cfg(test)]
pub(crate) mod test_support {
    use super::ChartSize;

    /// Test sizes are small because unoptimised test builds render slowly; one test per chart
    /// kind uses the default size.
    pub(crate) const SMALL: ChartSize = ChartSize {
        width: 480,
        height: 240,
    };
    pub(crate) const MEDIUM: ChartSize = ChartSize {
        width: 800,
        height: 400,
    };

    /// Decodes a PNG and returns (width, height, distinct colours).
    pub(crate) fn inspect(png_bytes: &[u8]) -> (u32, u32, usize) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().expect("valid PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("sane size")];
        let info = reader.next_frame(&mut buf).expect("valid PNG data");
        let bytes = &buf[..info.buffer_size()];
        assert_eq!(info.color_type, png::ColorType::Rgb);
        // A bit per 24-bit colour: far faster than a HashSet in an unoptimised test build.
        let mut seen = vec![0u64; 1 << 18];
        for px in bytes.chunks_exact(3) {
            let c = usize::from(px[0]) << 16 | usize::from(px[1]) << 8 | usize::from(px[2]);
            seen[c >> 6] |= 1 << (c & 63);
        }
        let colours = seen.iter().map(|w| w.count_ones() as usize).sum();
        (info.width, info.height, colours)
    }

    /// The checks every rendered chart must pass.
    pub(crate) fn assert_chart(png_bytes: &[u8], size: ChartSize) {
        let (w, h, colours) = inspect(png_bytes);
        assert_eq!((w, h), (size.width, size.height));
        assert!(colours > 8, "image looks blank: {colours} colours");
    }

    /// A decoded chart, RGB row by row.
    pub(crate) struct Pixels {
        width: usize,
        height: usize,
        rgb: Vec<u8>,
    }

    /// A rectangle of pixels, edges included.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Rect {
        pub(crate) left: usize,
        pub(crate) top: usize,
        pub(crate) right: usize,
        pub(crate) bottom: usize,
    }

    impl Pixels {
        pub(crate) fn decode(png_bytes: &[u8]) -> Pixels {
            let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
            let mut reader = decoder.read_info().expect("valid PNG header");
            let mut buf = vec![0; reader.output_buffer_size().expect("sane size")];
            let info = reader.next_frame(&mut buf).expect("valid PNG data");
            assert_eq!(info.color_type, png::ColorType::Rgb);
            buf.truncate(info.buffer_size());
            Pixels {
                width: info.width as usize,
                height: info.height as usize,
                rgb: buf,
            }
        }

        fn row(&self, y: usize) -> impl Iterator<Item = &[u8]> {
            self.rgb[y * self.width * 3..(y + 1) * self.width * 3].chunks_exact(3)
        }

        /// The plot area: the box spanned by the gridlines and the x axis, found as the rows
        /// where grey line pixels run unbroken across at least an eighth of the image. Title,
        /// legend and axis labels lie outside it; text never makes such a run.
        pub(crate) fn plot_area(&self) -> Rect {
            let grey = |p: &[u8]| {
                let (lo, hi) = (p.iter().min().unwrap(), p.iter().max().unwrap());
                *lo >= 0x80 && *hi <= 0xF6 && hi - lo <= 20
            };
            let min_run = self.width / 8;
            let mut area: Option<Rect> = None;
            for y in 0..self.height {
                let mut start = 0;
                for (x, p) in self.row(y).enumerate() {
                    if !grey(p) {
                        start = x + 1;
                        continue;
                    }
                    if x + 1 - start < min_run {
                        continue;
                    }
                    let a = area.get_or_insert(Rect {
                        left: start,
                        top: y,
                        right: x,
                        bottom: y,
                    });
                    a.left = a.left.min(start);
                    a.right = a.right.max(x);
                    a.bottom = y;
                }
            }
            area.expect("a chart with gridlines")
        }

        /// Pixels inside `area` within 16 of `colour` on every channel: a line's own colour, not
        /// its anti-aliased edge blended into white.
        pub(crate) fn count(&self, area: Rect, colour: plotters::style::RGBColor) -> usize {
            let want = [colour.0, colour.1, colour.2];
            (area.top..=area.bottom)
                .flat_map(|y| self.row(y).skip(area.left).take(area.right + 1 - area.left))
                .filter(|p| p.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 16))
                .count()
        }
    }

    /// Each colour is drawn inside the plot area in at least `min` pixels. A chart that lost
    /// its data still has its size, title, legend (in the series' colours) and axes; this is
    /// what tells the two apart.
    pub(crate) fn assert_series_drawn(
        png_bytes: &[u8],
        series: &[(&str, plotters::style::RGBColor)],
        min: usize,
    ) {
        let pixels = Pixels::decode(png_bytes);
        let area = pixels.plot_area();
        let missing: Vec<String> = series
            .iter()
            .map(|(name, colour)| (name, colour, pixels.count(area, *colour)))
            .filter(|(_, _, n)| *n < min)
            .map(|(name, colour, n)| format!("{name} ({colour:?}): {n} pixels"))
            .collect();
        assert!(
            missing.is_empty(),
            "series not drawn inside the plot area {area:?} (want {min} pixels each): {missing:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_render_without_panicking() {
        let trend_chart = TrendChart {
            endpoint: "a\nvery long endpoint name that cannot possibly fit".repeat(3),
            points: (0..3)
                .map(|i| TrendPoint {
                    label: format!("r{i}"),
                    p50_ms: 1.0,
                    p95_ms: 2.0,
                    p99_ms: 3.0,
                    highlight: i == 2,
                    regression: i == 2,
                })
                .collect(),
            slo_p95_ms: Some(2.5),
            noise_band_ms: Some((1.5, 2.2)),
            measure: "latency",
        };
        let ramp_chart = RampChart {
            endpoint: "e".into(),
            steps: (1..4)
                .map(|c| RampStep {
                    concurrency: c * 10,
                    p50_ms: 1.0,
                    p95_ms: 2.0,
                    throughput_rps: 100.0,
                    error_rate: 0.1,
                })
                .collect(),
            knee: Some(20),
        };
        let spectrum = Spectrum {
            label: "s".into(),
            points: vec![(50.0, 1.0), (99.0, 4.0)],
        };
        let dist = DistributionChart {
            endpoint: "e".into(),
            base: spectrum.clone(),
            head: spectrum,
        };
        let over = OverviewChart {
            title: String::new(),
            run_labels: vec!["a".into(), "b".into()],
            series: vec![("e".into(), vec![Some(1.0), Some(2.0)])],
        };
        for (width, height) in [(1, 1), (60, 30), (1000, 40), (40, 500)] {
            let size = ChartSize { width, height };
            for png_bytes in [
                trend(&trend_chart, size).unwrap(),
                ramp(&ramp_chart, size).unwrap(),
                distribution(&dist, size).unwrap(),
                overview(&over, size).unwrap(),
            ] {
                assert_eq!(test_support::inspect(&png_bytes).0, width);
            }
        }
    }

    /// Hostile numbers everywhere: every chart must still come back as a PNG.
    #[test]
    fn arbitrary_values_never_panic() {
        const NASTY: [f64; 10] = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            1e-9,
            3.5,
            250.0,
            1e12,
            f64::MAX,
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            NASTY[(state % NASTY.len() as u64) as usize]
        };
        let size = ChartSize {
            width: 160,
            height: 80,
        };
        for round in 0..4 {
            let n = round * 3;
            let points = (0..n)
                .map(|i| TrendPoint {
                    label: String::new(),
                    p50_ms: next(),
                    p95_ms: next(),
                    p99_ms: next(),
                    highlight: i % 4 == 0,
                    regression: i % 3 == 0,
                })
                .collect();
            let t = TrendChart {
                endpoint: String::new(),
                points,
                slo_p95_ms: Some(next()),
                noise_band_ms: Some((next(), next())),
                measure: "latency",
            };
            trend(&t, size).unwrap();
            let steps = (0..n)
                .map(|i| RampStep {
                    concurrency: [0, 1, u32::MAX, 7][i % 4],
                    p50_ms: next(),
                    p95_ms: next(),
                    throughput_rps: next(),
                    error_rate: next(),
                })
                .collect();
            let knee = Some([0, 1, u32::MAX][round % 3]);
            ramp(
                &RampChart {
                    endpoint: "e".into(),
                    steps,
                    knee,
                },
                size,
            )
            .unwrap();
            let spectrum = |next: &mut dyn FnMut() -> f64| Spectrum {
                label: String::new(),
                points: (0..n).map(|_| (next().min(100.0), next())).collect(),
            };
            let d = DistributionChart {
                endpoint: "e".into(),
                base: spectrum(&mut next),
                head: spectrum(&mut next),
            };
            distribution(&d, size).unwrap();
            let o = OverviewChart {
                title: "o".into(),
                run_labels: vec![String::new(); n / 2],
                series: (0..round)
                    .map(|e| (format!("e{e}"), (0..n).map(|_| Some(next())).collect()))
                    .collect(),
            };
            overview(&o, size).unwrap();
        }
    }

    #[test]
    fn zero_and_huge_sizes_are_refused() {
        let chart = OverviewChart {
            title: "t".into(),
            run_labels: vec![],
            series: vec![],
        };
        for (width, height) in [(0, 600), (1200, 0), (100_000, 10)] {
            assert!(matches!(
                overview(&chart, ChartSize { width, height }),
                Err(ChartError::InvalidSize { .. })
            ));
        }
    }
}
