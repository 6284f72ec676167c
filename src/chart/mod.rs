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
mod spark;
mod style;
mod trend;

pub use distribution::{DistributionChart, Spectrum, distribution, spectrum_from_histogram};
pub use models::{ModelBar, ModelChart, models};
pub use overview::{LinesChart, OverviewChart, lines_svg, overview, overview_svg};
pub use ramp::{RampChart, RampStep, ramp};
pub use spark::{SparkChart, SparkPoint, spark, spark_svg};
pub use trend::{TrendChart, TrendPoint, trend, trend_svg};

/// Output size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartSize {
    pub width: u32,
    pub height: u32,
}

impl Default for ChartSize {
    /// 1200x600: full width of a GitHub comment at 2:1, and the size the type scale is designed for.
    fn default() -> Self {
        Self {
            width: 1200,
            height: 600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(
        "chart size {width}x{height} is not drawable (each side must be 1 to {} pixels)",
        canvas::MAX_SIDE
    )]
    InvalidSize { width: u32, height: u32 },
    #[error("the embedded chart font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed")]
    Encode(#[from] png::EncodingError),
}

/// Longest slug kept from an endpoint name; the rest is replaced by a hash so names stay unique.
const MAX_SLUG: usize = 60;

/// A safe, stable file name for a chart: lowercase ASCII, digits and dashes only, so it works as a
/// path on every OS and as a URL segment on the assets branch without escaping. When the name had
/// to be shortened or had nothing ASCII in it, a hash of the original is appended so two endpoints
/// never share a file.
pub fn file_name(kind: &str, endpoint: &str) -> String {
    let kind = match slug(kind) {
        s if s.is_empty() => "chart".to_string(),
        s => s,
    };
    format!("{kind}-{}.png", safe_name(endpoint))
}

/// The endpoint part of `file_name`: lowercase ASCII, digits and dashes, at most 69 characters,
/// never empty.
pub fn safe_name(endpoint: &str) -> String {
    let full = slug(endpoint);
    if full.is_empty() {
        format!("endpoint-{:08x}", fnv1a(endpoint) as u32)
    } else if full.len() > MAX_SLUG {
        let cut = full[..MAX_SLUG].trim_end_matches('-');
        format!("{cut}-{:08x}", fnv1a(endpoint) as u32)
    } else {
        full
    }
}

fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// FNV-1a: tiny, and unlike `DefaultHasher` its output is fixed across Rust releases, which file
/// names committed to a branch need.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_stable() {
        assert_eq!(
            file_name("trend", "User Orders/v2"),
            "trend-user-orders-v2.png"
        );
        assert_eq!(
            file_name("distribution", "GET /api/v1/products/:id"),
            "distribution-get-api-v1-products-id.png"
        );
        assert_eq!(
            file_name("ramp", "  --weird__name--  "),
            "ramp-weird-name.png"
        );
        assert_eq!(file_name("", "x"), "chart-x.png");
        assert_eq!(
            file_name("Trend", "../../etc/passwd"),
            "trend-etc-passwd.png"
        );
    }

    #[test]
    fn file_names_never_collapse_to_the_same_empty_slug() {
        let a = file_name("trend", "用户");
        let b = file_name("trend", "注文");
        assert!(a.starts_with("trend-endpoint-") && a.ends_with(".png"));
        assert_ne!(a, b);
        assert_eq!(a, file_name("trend", "用户"));
    }

    #[test]
    fn long_file_names_are_cut_and_stay_unique() {
        let long_a = format!("{}a", "segment/".repeat(20));
        let long_b = format!("{}b", "segment/".repeat(20));
        let a = file_name("trend", &long_a);
        assert!(a.len() <= "trend-".len() + MAX_SLUG + 9 + ".png".len());
        assert_ne!(a, file_name("trend", &long_b));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        );
    }

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
